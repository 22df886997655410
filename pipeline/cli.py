"""Command line: the argument contract of every command, and exit codes.

Only argparse is imported at start-up; each command's module is imported when
that command runs (``pipeline.commands.<name>.run(args) -> int``), so
``python -m pipeline --help`` stays fast. Typed errors become exit codes and
one line on stderr here, and nowhere else.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from pipeline.errors import EXIT_ERROR, EXIT_USAGE, PipelineError

PROG = "python -m pipeline"
_ISO = "ISO 8601, e.g. 2026-01-31T14:05:00Z; UTC when no zone is given"


def _whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _whole(1)
_count = _whole(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds as a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Move model images through the cv-platform stacks, preview changes, "
        "and measure delivery.",
    )
    parser.add_argument(
        "--project-dir",
        metavar="DIR",
        help="the Pulumi project (default: the nearest parent directory with Pulumi.yaml)",
    )
    parser.add_argument(
        "--store",
        metavar="PATH_OR_URL",
        default=os.environ.get("PIPELINE_STORE"),
        help="record store: a SQLite file or s3://bucket/prefix "
        "(env PIPELINE_STORE; default .pipeline/records.db in the project)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # render ----------------------------------------------------------------
    p = sub.add_parser(
        "render",
        help="render a stack's resources offline (Pulumi mocks, no credentials)",
        description="Run the Pulumi program for STACK under Pulumi's mock runtime and write "
        "every Kubernetes object as a manifest plus resources.json. Secrets are [secret].",
    )
    p.add_argument("stack", metavar="STACK")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (replaced)")

    # set-image -------------------------------------------------------------
    p = sub.add_parser(
        "set-image",
        help="pin a stack to an image (tag resolved to its digest)",
        description="Resolve REF in the registry and write cv-platform:image in "
        "Pulumi.STACK.yaml. REF: repo:tag, repo@sha256:..., repo:tag@sha256:..., "
        "or a bare tag or digest for the stack's current repository.",
    )
    p.add_argument("stack", metavar="STACK")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--dry-run", action="store_true", help="print the file diff, write nothing")
    p.add_argument(
        "--expect-digest",
        metavar="DIGEST",
        help="write only if the stack's current digest is DIGEST (compare-and-swap)",
    )
    p.add_argument(
        "--allow-mutable",
        action="store_true",
        help="accept a mutable tag such as latest (never for prod)",
    )

    # promote ---------------------------------------------------------------
    p = sub.add_parser(
        "promote",
        help="promote the last good digest of one stack to another, through gates",
        description="Promote the digest of the last successful deployment of --from to --to. "
        "Exit 3 when a gate refuses; the target file is then untouched.",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="STACK",
        help="the stack whose last successful deployment is promoted",
    )
    p.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="STACK",
        help="the stack whose Pulumi.STACK.yaml is written",
    )
    p.add_argument("--dry-run", action="store_true", help="evaluate gates, print the diff only")
    p.add_argument(
        "--skip-gate",
        action="append",
        default=[],
        metavar="NAME",
        help="skip a gate by name (recorded); may be repeated",
    )

    # rollback --------------------------------------------------------------
    p = sub.add_parser(
        "rollback",
        help="return a stack to an earlier successfully deployed digest, and hold it",
    )
    p.add_argument("stack", metavar="STACK")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--to", dest="to_digest", metavar="DIGEST", help="the digest to return to")
    group.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="go back N successful deployments (default 1)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the file diff, write nothing")

    # hold ------------------------------------------------------------------
    p = sub.add_parser("hold", help="place or release a hold that blocks promotion to a stack")
    p.add_argument("stack", metavar="STACK")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reason", metavar="TEXT", default="", help="why the stack is held")
    group.add_argument("--release", action="store_true", help="release the hold")

    # history ---------------------------------------------------------------
    p = sub.add_parser(
        "history", help="a stack's deployments, promotions, rollbacks and holds, newest first"
    )
    p.add_argument("stack", metavar="STACK")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--limit",
        type=_positive_int,
        default=20,
        metavar="N",
        help="show the newest N events (default 20)",
    )

    # record ----------------------------------------------------------------
    p = sub.add_parser("record", help="record a deployment or a CI run in the record store")
    rec = p.add_subparsers(dest="record_kind", metavar="KIND", required=True)

    d = rec.add_parser(
        "deploy",
        help="record a finished deployment (or read them from `pulumi stack history`)",
    )
    d.add_argument("--stack", required=True, metavar="S", help="the stack deployed")
    d.add_argument("--from-pulumi", action="store_true", help="read updates from the Pulumi CLI")
    d.add_argument("--result", choices=("succeeded", "failed"), help="how the deployment ended")
    d.add_argument(
        "--image",
        metavar="REF",
        help="the image deployed (repo[:tag]@digest; default: the one Pulumi.STACK.yaml pins)",
    )
    d.add_argument("--started", metavar="ISO", help=f"when it started ({_ISO})")
    d.add_argument("--finished", metavar="ISO", help=f"when it finished ({_ISO})")
    d.add_argument("--commit", metavar="SHA", help="the git commit deployed (for lead time)")

    c = rec.add_parser("ci", help="record a CI run (build/test times, test counts, scan counts)")
    c.add_argument(
        "--image",
        metavar="REF",
        help="the image built (repo[:tag]@digest); required unless --junit or --from-jenkins",
    )
    c.add_argument("--build-seconds", type=_seconds, metavar="N", help="build time in seconds")
    c.add_argument(
        "--test-seconds",
        type=_seconds,
        metavar="N",
        help="test time in seconds (with --junit, default: the reports' time)",
    )
    for flag, words in (
        ("passed", "tests that passed"),
        ("failed", "tests that failed"),
        ("errors", "tests that errored"),
        ("skipped", "tests skipped"),
    ):
        c.add_argument(f"--{flag}", type=_count, metavar="N", help=words)
    for severity in ("critical", "high"):
        c.add_argument(
            f"--scan-{severity}",
            type=_count,
            metavar="N",
            help=f"{severity} findings of the image's vulnerability scan",
        )
    c.add_argument(
        "--commit",
        metavar="SHA",
        help="the git commit built (its commit time is read from the local checkout)",
    )
    c.add_argument("--started", metavar="ISO", help=f"when the run started ({_ISO})")
    c.add_argument(
        "--junit",
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE_OR_GLOB",
        help="JUnit XML report(s) or quoted globs ('reports/**/*.xml') to count tests from; "
        "several may follow one --junit (a glob the shell expanded), or repeat it",
    )
    c.add_argument(
        "--from-jenkins",
        metavar="BUILD_URL",
        help="read stage times and test counts from a Jenkins build "
        "(credentials from JENKINS_USER and JENKINS_TOKEN)",
    )

    # metrics ---------------------------------------------------------------
    p = sub.add_parser(
        "metrics",
        help="M_CI, M_CD and the DORA keys over a time window",
        description="M_CI = (T_C + T_T + T_D) / 3 in minutes; M_CD = P_T x P_D; plus DORA.",
    )
    p.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="S",
        help="measure this stack; repeat for more (default: every stack; DORA over prod)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--since", metavar="ISO", help=f"window start, up to now ({_ISO})")
    group.add_argument("--window", metavar="SPAN", help="e.g. 30d, 12w, 48h (default 30d)")
    p.add_argument(
        "--format",
        choices=("table", "json", "markdown", "prometheus"),
        default="table",
        help="output format (default table)",
    )
    p.add_argument("--plot", metavar="FILE.png", help="write a weekly chart")
    p.add_argument("--push-cloudwatch", metavar="NAMESPACE", help="put the metrics to CloudWatch")

    # preview ---------------------------------------------------------------
    p = sub.add_parser(
        "preview",
        help="what a change does to each stack, as a pull-request comment (Markdown)",
    )
    p.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="S",
        help="preview this stack; repeat for more (default: every Pulumi.<stack>.yaml)",
    )
    p.add_argument(
        "--preview-json",
        metavar="FILE",
        help="read a saved `pulumi preview --json` output instead of running pulumi",
    )
    p.add_argument(
        "--offline", action="store_true", help="diff offline renders instead of `pulumi preview`"
    )
    p.add_argument(
        "--base",
        metavar="REF",
        help="git ref to diff against (with --offline; default: the merge-base of HEAD and "
        "origin/main, else main)",
    )
    p.add_argument(
        "--post-github",
        metavar="OWNER/REPO#PR",
        help="create or update the comment on that pull request (token from GITHUB_TOKEN)",
    )
    return parser


# Each command's implementation: pipeline.commands.<module>.run(args) -> int.
_COMMAND_MODULES = {
    "render": "render",
    "set-image": "set_image",
    "promote": "promotion",
    "rollback": "promotion",
    "hold": "promotion",
    "history": "promotion",
    "record": "record",
    "metrics": "metrics",
    "preview": "preview",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        module = importlib.import_module(f"pipeline.commands.{_COMMAND_MODULES[args.command]}")
        result: int = module.run(args)
        return result
    except PipelineError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # Files, sockets and subprocesses: "PATH: reason" rather than "[Errno 13] ...".
        where = exc.filename if isinstance(exc.filename, str) else None
        message = f"{where}: {exc.strerror}" if where and exc.strerror else exc.strerror or str(exc)
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # the contract is one line, no traceback
        if os.environ.get("PIPELINE_DEBUG"):
            raise
        # A program's own exception may span lines; the contract is one.
        message = " ".join(str(exc).split())
        print(
            f"{PROG} {args.command}: internal error: {type(exc).__name__}: {message} "
            "(set PIPELINE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


__all__ = ["EXIT_USAGE", "build_parser", "main"]
