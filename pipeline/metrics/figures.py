"""Small numeric rules every metric follows: medians, means, ratios, clock skew.

A value with no data is ``None``, never 0 or NaN; a negative duration (clock skew
between the machines that wrote the records) is left out and counted.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.records.model import CiRun, Window, utc


def median(values: Sequence[float]) -> float | None:
    """``statistics.median`` (mean of the two middle values when even), or None when empty."""
    return statistics.median(values) if values else None


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class Skew:
    """Negative durations seen, by what they were."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def warnings(self) -> list[str]:
        return [
            f"{n} negative {what} (clock skew?) left out" for what, n in sorted(self.counts.items())
        ]


def non_negative(values: Iterable[float | None], what: str, skew: Skew) -> list[float]:
    kept: list[float] = []
    for value in values:
        if value is None:
            continue
        if value < 0:
            skew.add(what)
            continue
        kept.append(value)
    return kept


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def in_window(window: Window, at: datetime | None) -> bool:
    if at is None:
        return window.since is None and window.until is None
    return window.contains(at)


def iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat().replace("+00:00", "Z")


def ci_time(run: CiRun) -> datetime | None:
    at = run.started or run.recorded_at
    return None if at is None else utc(at)
