"""What the commands print: aligned tables, coloured on a terminal.

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
from typing import Literal, TextIO

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


__all__ = ["Colour", "paint", "print_diff", "table", "use_colour"]
