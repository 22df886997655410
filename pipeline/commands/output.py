"""What the commands print: aligned tables, coloured on a terminal, and records in a line.

Colour follows https://no-color.org: only when the stream is a terminal, and never
when ``NO_COLOR`` is set to anything but the empty string. Widths are measured on
the plain text, so a coloured table lines up exactly like a plain one.

Cells hold stored and foreign text (a hold's reason, a record's source, a gate's
reason): each is printed as one line with its control characters escaped, so a
stored ANSI sequence or line break cannot repaint the terminal or forge a row.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from pipeline.records.model import Record

from pipeline.errors import one_line

Colour = Literal["green", "red", "yellow", "bold"]
_CODES: Mapping[Colour, str] = {"green": "32", "red": "31", "yellow": "33", "bold": "1"}


def use_colour(stream: TextIO) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, and no ``NO_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, colour: Colour | None, enabled: bool) -> str:
    if not enabled or colour is None or not text:
        return text
    return f"\033[{_CODES[colour]}m{text}\033[0m"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    colours: Sequence[Sequence[Colour | None]] | None = None,
    *,
    colour: bool = False,
) -> str:
    """Columns separated by two spaces, trailing blanks stripped; ``colours`` per cell.

    Every cell is printed as ``one_line`` makes it: breaks folded, controls escaped."""
    headers = [one_line(h) for h in headers]
    rows = [[one_line(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for index, row in enumerate((headers, *rows)):
        tints: Sequence[Colour | None] = (
            colours[index - 1] if colours is not None and index > 0 else [None] * len(row)
        )
        cells = [
            paint(cell, tint, colour) + " " * (width - len(cell))
            for cell, width, tint in zip(row, widths, tints, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def print_diff(diff: str) -> None:
    """A unified diff as it is, ending with exactly one line break."""
    print(diff, end="" if diff.endswith("\n") else "\n")


def describe(record: Record) -> str:
    """One line for a stored record (``recorded deployment #12: ...``)."""
    from collections import Counter

    from pipeline.images.refs import short_digest
    from pipeline.records.model import FINDING_SEVERITIES, CiRun, Deployment, ModelCard, Scan

    if isinstance(record, Deployment):
        digest = record.digest or "no digest"
        return (
            f"deployment #{record.id}: {record.stack} {record.result} {digest} "
            f"({record.duration_seconds:.0f} s)"
        )
    if isinstance(record, CiRun):
        total = record.passed + record.failed + record.errors
        return (
            f"CI run #{record.id}: {record.digest or record.image or 'no image'} "
            f"({record.passed}/{total} tests passed)"
        )

    if isinstance(record, Scan):
        tally = Counter(f.severity for f in record.findings)
        counts = ", ".join(f"{tally[s]} {s}" for s in FINDING_SEVERITIES if tally[s])
        tool = " ".join(p for p in (record.scanner, record.scanner_version) if p) or record.format
        return (
            f"scan #{record.id} of {short_digest(record.digest)}: {tool}, "
            f"{len(record.findings)} finding(s){f' ({counts})' if counts else ''}"
        )
    if isinstance(record, ModelCard):
        return (
            f"model card #{record.id} of {short_digest(record.digest)}: {record.name} "
            f"{record.version}, accuracy {record.accuracy:.4f}"
        )
    return f"{type(record).__name__} #{record.id}"


__all__ = ["Colour", "describe", "paint", "print_diff", "table", "use_colour"]
