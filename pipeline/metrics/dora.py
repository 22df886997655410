"""The four DORA keys over the production stack(s), as fourkeys and DevLake define them.

* deployment frequency: successful deployments per week in the window. Its tier
  is fourkeys' bucket: the window is cut into weeks counted back from its end;
  "daily" when the median week had a deployment on at least 3 days, "weekly"
  when most weeks had one, "monthly" when the median week's calendar month had
  one, else "yearly" (elite, high, medium, low).
* lead time for changes: for every commit a successful deployment brought to the
  stack for the first time (``Deployment.changes``, read from git when it was
  recorded), deployment finished - committed; the median over those changes.
  A deployment recorded without its changes counts its head commit: its own
  commit time, else that of the CI run that built the deployed digest, else that
  of a CI run of the same commit.
* change failure rate: failed changes / deployments. A change failed when its
  deployment failed, when a verification of it failed (``pipeline verify``), or
  when the stack was rolled back *from* it (the rollback's ``from_digest``); the
  deployment rolled back *to* did not fail.
* failed-deployment recovery time: from a failed change to the next deployment of
  that stack that succeeded and did not fail its verification (and, after a
  rollback or a failed verification, finished after it); a run of consecutive
  failures is one failure, timed from its first. Median, hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from pipeline.metrics.figures import Skew, median, ratio
from pipeline.records.model import (
    Deployment,
    Records,
    Rollback,
    Verification,
    Window,
    read_change,
    utc,
)

Tier = Literal["elite", "high", "medium", "low"]
Bucket = Literal["daily", "weekly", "monthly", "yearly"]

WEEK = timedelta(days=7)
_DAY_HOURS = 24.0
_WEEK_HOURS = 7 * 24.0
_MONTH_HOURS = 30 * 24.0
# fourkeys: "If the median number of days per week is more than 3, then Daily".
DAILY_DAYS_PER_WEEK = 3
_BUCKET_TIER: dict[Bucket, Tier] = {
    "daily": "elite",
    "weekly": "high",
    "monthly": "medium",
    "yearly": "low",
}

# DORA tier thresholds for the time and rate keys, from the 2023 Accelerate State
# of DevOps report (DORA / Google Cloud, "How do you compare?", software delivery
# performance clusters; https://dora.dev/research/2023/dora-report/):
#
#   level   lead time        failure rate  recovery time
#   elite   < one day        5%            < one hour
#   high    1 day .. 1 week  10%           < one day
#   medium  1 week .. 1 mo.  15%           1 day .. 1 week
#   low     1 week .. 1 mo.  64%           1 month .. 6 months
#
# The report gives cluster descriptions, not cut-offs; this module uses: lead time
# < 1 day elite, < 1 week high, < 1 month medium, else low; change failure rate
# <= 5% elite, <= 10% high, <= 15% medium, else low; recovery < 1 hour elite,
# < 1 day high, < 1 week medium, else low. Deployment frequency follows fourkeys'
# buckets (its dashboard query), mapped daily -> elite, weekly -> high, monthly ->
# medium, yearly -> low.


def frequency_bucket(days_per_week: Sequence[int], month_of_week: Sequence[str]) -> Bucket | None:
    """fourkeys' bucket from each week's number of days with a successful deployment.

    ``month_of_week`` names each week's calendar month (of its first day): a week's
    monthly count is how many weeks of its month had a deployment.
    """
    if not days_per_week:
        return None
    if (median(days_per_week) or 0) >= DAILY_DAYS_PER_WEEK:
        return "daily"
    deployed = [1 if days else 0 for days in days_per_week]
    if (median(deployed) or 0) >= 1:
        return "weekly"
    per_month: dict[str, int] = {}
    for month, flag in zip(month_of_week, deployed, strict=True):
        per_month[month] = per_month.get(month, 0) + flag
    if (median([per_month[month] for month in month_of_week]) or 0) >= 1:
        return "monthly"
    return "yearly"


def lead_time_tier(hours: float | None) -> Tier | None:
    if hours is None:
        return None
    if hours < _DAY_HOURS:
        return "elite"
    if hours < _WEEK_HOURS:
        return "high"
    if hours < _MONTH_HOURS:
        return "medium"
    return "low"


def change_failure_tier(rate: float | None) -> Tier | None:
    if rate is None:
        return None
    if rate <= 0.05:
        return "elite"
    if rate <= 0.10:
        return "high"
    if rate <= 0.15:
        return "medium"
    return "low"


def recovery_tier(hours: float | None) -> Tier | None:
    if hours is None:
        return None
    if hours < 1:
        return "elite"
    if hours < _DAY_HOURS:
        return "high"
    if hours < _WEEK_HOURS:
        return "medium"
    return "low"


@dataclass(frozen=True)
class Dora:
    deployment_frequency_per_week: float | None
    lead_time_hours: float | None
    change_failure_rate: float | None
    recovery_time_hours: float | None
    stacks: tuple[str, ...]
    deployments: int = 0
    failed_changes: int = 0
    lead_time_samples: int = 0
    recoveries: int = 0
    unrecovered: int = 0
    # The weeks the frequency bucket was read from, and their median days with a deployment.
    weeks: int = 0
    deployment_days_per_week: float | None = None
    frequency_bucket: Bucket | None = None

    def tiers(self) -> dict[str, Tier | None]:
        return {
            "deployment_frequency": (
                _BUCKET_TIER[self.frequency_bucket] if self.frequency_bucket else None
            ),
            "lead_time": lead_time_tier(self.lead_time_hours),
            "change_failure_rate": change_failure_tier(self.change_failure_rate),
            "recovery_time": recovery_tier(self.recovery_time_hours),
        }


@dataclass
class _Counts:
    deployments: int = 0
    successes: int = 0
    failed_changes: int = 0
    unrecovered: int = 0


_Kind = TypeVar("_Kind", Deployment, Rollback, Verification)


def _by_stack(items: Iterable[_Kind], stacks: frozenset[str]) -> dict[str, list[_Kind]]:
    found: dict[str, list[_Kind]] = {}
    for item in items:
        if item.stack in stacks:
            found.setdefault(item.stack, []).append(item)
    return found


def _last_with_digest(history: Sequence[Deployment], digest: str | None, at: datetime) -> int:
    """Index of the last deployment of ``digest`` finished at or before ``at`` (-1: none).

    Without a digest (the stack had none), the last deployment before ``at``.
    """
    for i in range(len(history) - 1, -1, -1):
        d = history[i]
        if utc(d.finished) <= at and (digest is None or d.digest == digest):
            return i
    return -1


def failed_changes(
    history: Sequence[Deployment],
    rollbacks: Iterable[Rollback],
    verifications: Iterable[Verification],
) -> dict[int, datetime]:
    """The failed changes of one stack's history (sorted by finish), by index, with the
    time a recovery must come after: the deployment itself, its failed verification,
    or the rollback from it, whichever is latest."""
    failed: dict[int, datetime] = {}

    def mark(index: int, after: datetime) -> None:
        if index >= 0:
            failed[index] = max(after, failed.get(index, after))

    for i, d in enumerate(history):
        if d.result == "failed":
            mark(i, utc(d.finished))
    for rb in rollbacks:
        at = utc(rb.at)
        mark(_last_with_digest(history, rb.from_digest, at), at)
    for v in verifications:
        if v.result != "failed":
            continue
        index = _last_with_digest(history, v.digest, utc(v.since))
        if index >= 0 and history[index].result == "succeeded":
            mark(index, utc(v.until))
    return failed


def dora_keys(records: Records, window: Window, stacks: frozenset[str], skew: Skew) -> Dora:
    by_stack = _by_stack(records.deployments, stacks)
    rollbacks = _by_stack(records.rollbacks, stacks)
    verifications = _by_stack(records.verifications, stacks)
    by_digest, by_commit = _commit_times(records)

    counts = _Counts()
    lead_hours: list[float] = []
    recovery_hours: list[float] = []
    for stack, history in by_stack.items():
        history.sort(key=lambda d: (utc(d.finished), d.id or 0))
        failed = failed_changes(history, rollbacks.get(stack, ()), verifications.get(stack, ()))
        lead_hours += _lead_times(history, window, by_digest, by_commit, skew)
        failure_start: datetime | None = None
        recover_after: datetime | None = None
        for i, d in enumerate(history):
            at = utc(d.finished)
            counted = window.contains(at)
            if counted:
                counts.deployments += 1
                counts.successes += d.result == "succeeded"
                counts.failed_changes += i in failed
            if i in failed:
                if failure_start is None and counted:
                    failure_start = at
                gate = failed[i]
                recover_after = gate if recover_after is None else max(recover_after, gate)
                continue
            if d.result != "succeeded":
                continue
            if failure_start is not None and recover_after is not None and at > recover_after:
                recovery_hours.append((at - failure_start).total_seconds() / 3600)
                failure_start = recover_after = None
            elif failure_start is None:
                recover_after = None
        counts.unrecovered += failure_start is not None

    weeks = _weeks(window, by_stack)
    days = [_deployment_days(by_stack, start, end) for start, end in weeks]
    months = [f"{start:%Y-%m}" for start, _ in weeks]
    # No deployment in the window is no data; deployments that all failed are 0/week.
    frequency: float | None = None
    if counts.deployments and weeks:
        span = (weeks[-1][1] - weeks[0][0]) / WEEK
        frequency = counts.successes / span if span else None
    return Dora(
        deployment_frequency_per_week=frequency,
        lead_time_hours=median(lead_hours),
        change_failure_rate=ratio(counts.failed_changes, counts.deployments),
        recovery_time_hours=median(recovery_hours),
        stacks=tuple(sorted(stacks)),
        deployments=counts.deployments,
        failed_changes=counts.failed_changes,
        lead_time_samples=len(lead_hours),
        recoveries=len(recovery_hours),
        unrecovered=counts.unrecovered,
        weeks=len(weeks) if counts.deployments else 0,
        deployment_days_per_week=median(days) if counts.deployments else None,
        frequency_bucket=frequency_bucket(days, months) if counts.deployments else None,
    )


def _commit_times(records: Records) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Commit times by the digest a CI run built, and by its commit (earliest wins)."""
    by_digest: dict[str, datetime] = {}
    by_commit: dict[str, datetime] = {}
    for run in records.ci_runs:
        if run.commit_time is None:
            continue
        at = utc(run.commit_time)
        if run.digest and (run.digest not in by_digest or at < by_digest[run.digest]):
            by_digest[run.digest] = at
        if run.commit and (run.commit not in by_commit or at < by_commit[run.commit]):
            by_commit[run.commit] = at
    return by_digest, by_commit


def _lead_times(
    history: Sequence[Deployment],
    window: Window,
    by_digest: dict[str, datetime],
    by_commit: dict[str, datetime],
    skew: Skew,
) -> list[float]:
    """Hours from commit to deployment, one per change a deployment in the window brought.

    Every successful deployment of the stack is walked (earlier ones too), so a commit
    counts once: with the first deployment that brought it.
    """
    seen: set[str] = set()
    hours: list[float] = []
    for d in history:
        if d.result != "succeeded":
            continue
        finished = utc(d.finished)
        changes = [c for c in (read_change(entry) for entry in d.changes) if c is not None]
        if changes:
            samples = [finished - at for sha, at in changes if sha not in seen]
            seen.update(sha for sha, _ in changes)
        else:
            head = _head_commit_time(d, by_digest, by_commit)
            samples = [] if head is None or (d.commit and d.commit in seen) else [finished - head]
            if d.commit:
                seen.add(d.commit)
        if not window.contains(finished):
            continue
        for lead in samples:
            if lead < timedelta(0):
                skew.add("lead time(s)")
            else:
                hours.append(lead.total_seconds() / 3600)
    return hours


def _head_commit_time(
    d: Deployment, by_digest: dict[str, datetime], by_commit: dict[str, datetime]
) -> datetime | None:
    committed = d.commit_time
    if committed is None and d.digest:
        committed = by_digest.get(d.digest)
    if committed is None and d.commit:
        committed = by_commit.get(d.commit)
    return None if committed is None else utc(committed)


def _weeks(
    window: Window, by_stack: dict[str, list[Deployment]]
) -> list[tuple[datetime, datetime]]:
    """The window's weeks, oldest first, counted back from its end (an open end is closed
    by the data it holds); a window shorter than a week is one period."""
    times = [utc(d.finished) for history in by_stack.values() for d in history]
    since = utc(window.since) if window.since is not None else min(times, default=None)
    until = utc(window.until) if window.until is not None else max(times, default=None)
    if since is None or until is None or until <= since:
        return []
    count = max(1, int((until - since) / WEEK))
    if until - since < WEEK:
        return [(since, until)]
    return [(until - (n + 1) * WEEK, until - n * WEEK) for n in reversed(range(count))]


def _deployment_days(by_stack: dict[str, list[Deployment]], start: datetime, end: datetime) -> int:
    """Calendar days (UTC) in [start, end) with a successful deployment of the stacks."""
    return len(
        {
            utc(d.finished).date()
            for history in by_stack.values()
            for d in history
            if d.result == "succeeded" and start <= utc(d.finished) < end
        }
    )


__all__ = [
    "WEEK",
    "Bucket",
    "Dora",
    "Tier",
    "change_failure_tier",
    "dora_keys",
    "failed_changes",
    "frequency_bucket",
    "lead_time_tier",
    "recovery_tier",
]
