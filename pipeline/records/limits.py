"""What a record may hold: no time past this machine's clock, no number off the scale.

Checked where every source meets the store (``check_records``, called by both stores'
``add_many`` before anything is written), so a flag, a Jenkins build, ``pulumi stack
history``, a JUnit file or an evidence file are held to the same limits:

- a time may be at most ``MAX_CLOCK_SKEW`` past this machine's clock (a deployment
  that "finished" in 2099 would be "the last successful deployment" for ever, and one
  in 9999 overflows every later promotion's soak arithmetic); a waiver's expiry is
  the one time meant to lie ahead, and is bounded by ``MAX_WAIVER`` instead;
- a real number must be finite and within ``0 .. MAX_REAL`` (NaN and Infinity are
  not JSON, and no duration, latency, ratio or count here is negative);
- an integer within ``0 .. MAX_INT`` (SQLite's and every JSON reader's range).

A commit time comes from a committer's clock, not the source's: ``record`` takes one
ahead of its record as the record's own time before it gets here
(``pipeline.records.sources.git.within_record``), so this check then holds.

A row stored before these limits existed is not an error to read: it is dropped from
what a command sees (in SQL by ``sql_condition``, for S3 objects by ``usable``) and
said once on stderr (``history``, ``promote`` and
``metrics`` then work on the rest). Pure apart from that note.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError
from pipeline.records.model import utc

if TYPE_CHECKING:
    from pipeline.records.model import Record
    from pipeline.records.stores.kinds import Kind

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_WAIVER = timedelta(days=366)
MAX_REAL = 1e12  # 31,700 years in seconds; far above any real duration, latency or count
MAX_INT = 2**63 - 1
# Times that lie ahead by design, each with its own bound.
_AHEAD = {"expires": MAX_WAIVER}


class RecordRefused(PipelineError):
    """A record holds a time or a number outside what a record may hold."""


def _label(kind: Kind, record: Any) -> str:
    name = kind.name.removesuffix("s").replace("_", " ")
    return f"{name} #{record.id}" if getattr(record, "id", None) is not None else name


def span_text(span: timedelta) -> str:
    days = span.total_seconds() / 86400
    if days >= 365:
        return f"{days / 365.25:,.0f} year(s)"
    if days >= 1:
        return f"{days:,.0f} day(s)"
    return f"{span.total_seconds() / 60:,.0f} minute(s)"


def problem(kind: Kind, record: Any, now: datetime) -> str | None:
    """Why ``record`` may not be stored or used (one phrase), or None."""
    for name, ftype in kind.columns:
        value = getattr(record, name)
        if value is None:
            continue
        if ftype == "time":
            bound = _AHEAD.get(name, MAX_CLOCK_SKEW)
            value = utc(value)  # a naive time is stored as UTC
            if value > now + bound:
                return (
                    f"{name} {value:%Y-%m-%dT%H:%M:%SZ} is {span_text(value - now)} past this "
                    f"machine's clock (at most {span_text(bound)} ahead is accepted)"
                )
        elif ftype == "real":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{name} {value!r} is not a number"
            if not math.isfinite(value):
                return f"{name} is {value} (not a finite number)"
            if not 0 <= value <= MAX_REAL:
                return f"{name} {value:g} is outside 0 .. {MAX_REAL:g}"
        elif ftype == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{name} {value!r} is not a whole number"
            if not 0 <= value <= MAX_INT:
                return f"{name} {value} is outside 0 .. 2^63 - 1"
    return None


def sql_condition(kind: Kind) -> tuple[str, tuple[timedelta, ...]]:
    """The limits as an SQLite condition on ``kind``'s table, true for a row within them,
    and for each ``?`` in it the span past now its time may reach (SQLite keeps times as
    fixed-width ISO text, and NaN as NULL; Infinity fails the range)."""
    terms: list[str] = []
    spans: list[timedelta] = []
    for name, ftype in kind.columns:
        column = f'"{name}"'
        if ftype == "time":
            terms.append(f"({column} IS NULL OR {column} <= ?)")
            spans.append(_AHEAD.get(name, MAX_CLOCK_SKEW))
        elif ftype == "real":
            terms.append(f"({column} IS NULL OR {column} BETWEEN 0 AND {MAX_REAL!r})")
        elif ftype == "int":
            terms.append(f"({column} IS NULL OR {column} BETWEEN 0 AND {MAX_INT})")
    return (" AND ".join(terms) or "1"), tuple(spans)


def check_records(records: Sequence[Record], now: datetime | None = None) -> None:
    """Raise ``RecordRefused`` (one line, nothing stored) for the first record off limits."""
    from pipeline.records.stores.kinds import kind_of

    now = now or datetime.now(UTC)
    for record in records:
        kind = kind_of(record)
        why = problem(kind, record, now)
        if why is not None:
            source = getattr(record, "source", "")
            where = f" (from {source})" if source and source != "cli" else ""
            if "clock" in why:
                fix = "check that source's clock" if where else "check the time and the clock"
            else:
                fix = "check that source's data" if where else "give a finite number >= 0"
            raise RecordRefused(f"{_label(kind, record)}{where}: {why}; {fix}; nothing recorded")


_told: set[tuple[str, Any]] = set()


def usable(
    kind: Kind, records: Iterable[Any], where: str, now: datetime | None = None
) -> list[Any]:
    """``records`` without those off limits (stored before the limits), each said once."""
    now = now or datetime.now(UTC)
    kept: list[Any] = []
    for record in records:
        why = problem(kind, record, now)
        if why is None:
            kept.append(record)
            continue
        seen = (f"{where}/{kind.name}", getattr(record, "id", None))
        if seen not in _told:
            _told.add(seen)
            print(
                f"note: record store {where}: ignoring {_label(kind, record)}: {why} "
                "(stored before such records were refused)",
                file=sys.stderr,
            )
    return kept


__all__ = [
    "MAX_CLOCK_SKEW",
    "MAX_INT",
    "MAX_REAL",
    "MAX_WAIVER",
    "RecordRefused",
    "check_records",
    "problem",
    "span_text",
    "sql_condition",
    "usable",
]
