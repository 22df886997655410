"""`render STACK --out DIR`: the credential-free view of what a stack will create."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.project import find_project


def run(args: argparse.Namespace) -> int:
    from pipeline.render import render_stack, summary

    project = find_project(args.project_dir)
    project.existing_stack_file(args.stack)
    out = Path(args.out)
    result = render_stack(project, args.stack, out)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary(result, out))
    return 0
