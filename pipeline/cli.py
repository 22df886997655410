"""Command line: global options, every command's parser, and exit codes.

Each command registers its own arguments (``pipeline.commands.<module>.register``)
and runs as ``run(args, adapters)``. The list of commands and their one-line help
is ``pipeline.commands.COMMANDS``: start-up imports argparse and nothing heavy,
and only the command being run is imported and gets its arguments built, so
``python -m pipeline --help`` stays fast. Typed errors become exit codes and one
line on stderr here, and nowhere else.

The global options (``--project-dir``, ``--store``) are accepted before or after
the command: ``history prod --store FILE`` works like ``--store FILE history prod``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType

from pipeline.commands import COMMANDS
from pipeline.commands.options import PROG, HelpFormatter, add_command, examples, global_options
from pipeline.errors import EXIT_ERROR, EXIT_USAGE, PipelineError, one_line, os_reason

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters

_GLOBAL_WITH_VALUE = ("--project-dir", "--store")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"pipeline.commands.{COMMANDS[name][0]}")


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only ``commands`` get their arguments (None: every command)."""
    full = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Move model images through the cv-platform stacks, preview changes, "
        "and measure delivery. Exit codes: 0 done, 1 error, 2 usage, 3 a gate refused.",
        epilog=examples(
            "set-image staging 9f3c2ab",
            "promote --from staging --to prod --dry-run",
            "history prod --store .pipeline/records.db",
            "COMMAND --help",
        ),
        formatter_class=HelpFormatter,
    )
    global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in COMMANDS.items():
        if name in full:
            _module(name).register(add_command(sub, name, summary))
        else:
            # Only its name and line in --help are used; a full parser (with the global
            # options' parent and -h) costs a few ms of argparse and gettext per command.
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, skipping global options (and their values) before it."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _GLOBAL_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None, adapters: Adapters | None = None) -> int:
    """Run one command; ``adapters`` (default: the real ones) is every outside effect."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = command_in(args_list)
    args = build_parser([chosen] if chosen else []).parse_args(args_list)
    if adapters is None:
        from pipeline.commands.adapters import Adapters

        adapters = Adapters()
    try:
        result: int = _module(args.command).run(args, adapters)
        return result
    except PipelineError as exc:
        print(f"{PROG} {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # Files, sockets and subprocesses: "PATH: reason" rather than "[Errno 13] ...".
        where = exc.filename if isinstance(exc.filename, str) else None
        reason = os_reason(exc) if exc.strerror else str(exc)
        message = f"{where}: {reason}" if where else reason
        print(f"{PROG} {args.command}: error: {one_line(message)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # the contract is one line, no traceback
        if os.environ.get("PIPELINE_DEBUG"):
            raise
        # A program's own exception may span lines; the contract is one.
        message = one_line(str(exc))
        print(
            f"{PROG} {args.command}: internal error: {type(exc).__name__}: {message} "
            "(set PIPELINE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


__all__ = ["EXIT_USAGE", "build_parser", "command_in", "main"]
