"""``render STACK --out DIR``: the credential-free view of what a stack will create."""

from __future__ import annotations

import argparse

from pipeline.commands.options import examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the Pulumi program for STACK under Pulumi's mock runtime and write every "
        "Kubernetes object as a manifest, plus resources.json and stack-outputs.json. "
        "Secrets are [secret]; the secrets the stack needs are listed."
    )
    parser.epilog = examples(
        "render staging --out build/render/staging",
        "render prod --out build/render/prod",
    )
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write (replaced)")


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    import sys
    from pathlib import Path

    from pipeline.project import find_project
    from pipeline.render.stack import render_stack, summary

    project = find_project(args.project_dir)
    project.existing_stack_file(args.stack)
    out = Path(args.out)
    result = render_stack(project, args.stack, out)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary(result, out))
    return 0
