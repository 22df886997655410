"""Argument types and help texts the commands share.

Light on purpose: every command module imports this when the parser is built, so
``python -m pipeline --help`` must not pay for anything heavier than argparse.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

ISO = "ISO 8601, e.g. 2026-01-31T14:05:00Z; UTC when no zone is given"
PROG = "python -m pipeline"


# The largest whole number a flag takes: SQLite's INTEGER limit, 2^63 - 1.
MAX_WHOLE = (1 << 63) - 1


def whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` to ``MAX_WHOLE``."""

    def parse(text: str) -> int:
        if len(text.strip()) > 30:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:30]!r}...")
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        if value > MAX_WHOLE:
            raise argparse.ArgumentTypeError(f"expected a number up to {MAX_WHOLE}, got {value}")
        return value

    return parse


positive_int = whole(1)
count = whole(0)


def seconds(text: str) -> float:
    """An argparse type: seconds as a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds as a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions filled to the terminal's width; the examples kept line by line.

    The width is read here rather than by argparse, which imports ``shutil`` (and
    with it bz2, lzma and zlib) for it every time a parser is built.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_width() - 2)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _terminal_width() -> int:
    """``$COLUMNS``, else the terminal's width, else 80 (as ``shutil.get_terminal_size``)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--project-dir`` and ``--store``.

    The top-level parser has them with their defaults; every command (and record's
    kinds) has a copy without (``defaults=False``), so an option given after the
    command is taken and one given before it is left as it was.
    """
    parser.add_argument(
        "--project-dir",
        metavar="DIR",
        default=None if defaults else argparse.SUPPRESS,
        help="the Pulumi project (default: the nearest parent directory with Pulumi.yaml)",
    )
    parser.add_argument(
        "--store",
        metavar="PATH_OR_URL",
        default=os.environ.get("PIPELINE_STORE") if defaults else argparse.SUPPRESS,
        help="record store: a SQLite file or s3://bucket/prefix "
        "(env PIPELINE_STORE; default .pipeline/records.db in the project)",
    )


def command_parent() -> argparse.ArgumentParser:
    """The parent parser every command's parser is made with: the global options."""
    parent = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
    global_options(parent, defaults=False)
    return parent


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    """A command's (or record kind's) parser, with the global options."""
    return commands.add_parser(
        name,
        help=summary,
        parents=[command_parent()],
        formatter_class=HelpFormatter,
    )


def examples(*lines: str) -> str:
    """An epilog of example command lines (each without the ``python -m pipeline``)."""
    return "examples:\n" + "\n".join(f"  {PROG} {line}" for line in lines)


__all__ = [
    "ISO",
    "PROG",
    "HelpFormatter",
    "add_command",
    "command_parent",
    "count",
    "examples",
    "global_options",
    "positive_int",
    "seconds",
    "whole",
]
