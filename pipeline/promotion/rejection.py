"""The ``not-rejected`` gate: a digest the target rejected stays out until re-admitted.

A digest is rejected from a stack when it was rolled back from it, or when it failed
its verification there (``pipeline verify``; an inconclusive one rejects nothing). It
is refused until a readmission for that stack and digest newer than its last rejection
is recorded; ``promote --readmit REASON`` records one together with the promotion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.records.model import Readmission, Rollback, Verification


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Rejection:
    """A digest refused by a stack, when, and why (one line)."""

    stack: str
    digest: str
    at: datetime
    why: str


def rejections_from_rollbacks(rollbacks: Iterable[Rollback]) -> tuple[Rejection, ...]:
    """Each rollback rejects the digest it rolled away from."""
    return tuple(
        Rejection(
            r.stack,
            r.from_digest,
            r.at,
            f"rolled back from {r.stack} {_when(r.at)}" + (f" by {r.actor}" if r.actor else ""),
        )
        for r in rollbacks
        if r.from_digest
    )


def rejections_from_verifications(verifications: Iterable[Verification]) -> tuple[Rejection, ...]:
    """Each failed verification rejects the digest it judged."""
    return tuple(
        Rejection(
            v.stack,
            v.digest,
            v.until,
            f"failed verification in {v.stack} {_when(v.until)}"
            + (f" ({v.reason})" if v.reason else ""),
        )
        for v in verifications
        if v.result == "failed"
    )


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    # The promotion must record a readmission (``--readmit`` was needed and given).
    readmit: bool = False


def judge_rejection(
    stack: str,
    digest: str,
    rejections: Sequence[Rejection],
    readmissions: Sequence[Readmission],
    readmit_reason: str = "",
) -> Verdict:
    mine = [r for r in rejections if r.stack == stack and r.digest == digest]
    if not mine:
        note = " (--readmit not needed: nothing recorded)" if readmit_reason else ""
        return Verdict(True, f"never rejected from {stack}{note}")
    last = max(mine, key=lambda r: r.at)
    again = [a for a in readmissions if a.stack == stack and a.digest == digest and a.at >= last.at]
    if again:
        latest = max(again, key=lambda a: a.at)
        who = f" by {latest.actor}" if latest.actor else ""
        return Verdict(
            True, f"re-admitted {_when(latest.at)}{who} ({latest.reason}); was {last.why}"
        )
    if readmit_reason:
        return Verdict(True, f"re-admitted now ({readmit_reason}); was {last.why}", readmit=True)
    return Verdict(
        False, f"{last.why}; promote again with --readmit REASON to re-admit it explicitly"
    )


__all__ = [
    "Rejection",
    "Verdict",
    "judge_rejection",
    "rejections_from_rollbacks",
    "rejections_from_verifications",
]
