"""Report files a CI job hands the pipeline (JUnit XML, and whatever reads files next).

A path given on the command line may name anything: only a regular file is opened
(a FIFO given as ``--junit`` blocked for ever, a device never ends), with O_NONBLOCK
so that even the open cannot wait for a writer; a file larger than
``MAX_REPORT_BYTES`` is refused before it is read, and a pattern may match at most
``MAX_FILES`` paths.

``Pieces`` feeds a parser in large pieces: expat before 2.6 (reparse deferral)
re-scans an unfinished token from its start on every feed, and ``iterparse`` feeds
16 KiB at a time, so a 40 MB attribute cost the square of its size (51 s measured).
Pieces of at least an eighth of the file (16 MiB at least) bound the re-scanning to a
few times the file's size, while memory stays one piece's events. Even fed whole,
expat reads a huge attribute at about 10 MB/s here, which is what the 64 MiB limit
keeps within seconds; real reports (the junit plugin's 7,580 cases) are about 1 MB.
An XML report that fails to parse is described in words (``xml_error_position``,
``defused_reason``).
"""

from __future__ import annotations

import glob
import itertools
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import PipelineError

MAX_REPORT_BYTES = 64 << 20
MAX_FILES = 10_000
MIN_PIECE = 16 << 20
_GLOB_CHARS = frozenset("*?[")


class ReportError(PipelineError):
    """A report file is missing, not a regular file, too large or unreadable."""


class Pieces:
    """A report file read in large pieces (see the module doc), ``MAX_REPORT_BYTES`` at most."""

    def __init__(
        self, handle: BinaryIO, size: int, name: str, error: type[ReportError] = ReportError
    ) -> None:
        self._handle = handle
        self._piece = max(MIN_PIECE, -(-size // 8))
        self._read = 0
        self._name = name
        self._error = error

    def read(self, _size: int = -1) -> bytes:
        data = self._handle.read(self._piece)
        self._read += len(data)
        if self._read > MAX_REPORT_BYTES:
            raise self._error(_too_large(self._name, self._read))
        return data


def _too_large(name: str, size: int) -> str:
    return (
        f"{name}: {size / (1 << 20):,.0f} MiB, more than a report can reasonably be "
        f"(limit {MAX_REPORT_BYTES >> 20} MiB): is it the right file?"
    )


def open_report(name: str, error: type[ReportError] = ReportError) -> tuple[BinaryIO, int]:
    """The report opened for reading, and its size; only a regular file is opened.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    """
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(name)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{name}: not a regular file (a FIFO, a device or a socket); "
                "give the report file itself"
            )
        if info.st_size > MAX_REPORT_BYTES:
            raise error(_too_large(name, info.st_size))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def expand_reports(
    patterns: Sequence[str], flag: str, error: type[ReportError] = ReportError
) -> list[Path]:
    """Expand file names and globs (``**`` allowed) into a sorted, de-duplicated list."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        if _GLOB_CHARS.intersection(pattern):
            matches = sorted(itertools.islice(glob.iglob(pattern, recursive=True), MAX_FILES + 1))
            if len(matches) > MAX_FILES:
                raise error(
                    f"{flag} {pattern}: matches more than {MAX_FILES:,} paths: narrow the pattern"
                )
            files = [m for m in matches if os.path.isfile(m)]
            if not files:
                raise error(f"{flag} {pattern}: no file matches this pattern")
            for match in files:
                found.setdefault(os.path.realpath(match), Path(match))
        else:
            if not os.path.exists(pattern):
                raise error(f"{flag} {pattern}: no such file")
            found.setdefault(os.path.realpath(pattern), Path(pattern))
        if len(found) > MAX_FILES:
            raise error(f"{flag}: more than {MAX_FILES:,} report files: narrow the patterns")
    return list(found.values())


def xml_error_position(exc: Exception) -> str:
    """Where an XML parser stopped (``ParseError.position``), in words."""
    position = getattr(exc, "position", None)
    if position:
        return f"line {position[0]}, column {position[1] + 1}"
    return "position unknown"


def defused_reason(exc: Exception) -> str:
    """What defusedxml refused, in words (its repr names internals)."""
    entity = getattr(exc, "name", None)
    system_id = getattr(exc, "sysid", None)
    if entity:
        where = f" pointing at {system_id}" if system_id else ""
        return (
            f"the report declares the entity {entity!r}{where}; "
            "reports must not declare entities (nothing was expanded or fetched)"
        )
    return f"{type(exc).__name__}: reports must not declare entities or external references"


__all__ = [
    "MAX_FILES",
    "MAX_REPORT_BYTES",
    "Pieces",
    "ReportError",
    "defused_reason",
    "expand_reports",
    "open_report",
    "xml_error_position",
]
