"""The four DORA keys (2023 definitions) over the production stack(s), and their tiers.

* deployment frequency: successful deployments per week in the window;
* lead time for changes: commit time -> deployment finished, median, hours.
  The commit time is the deployment's own, else that of the CI run that built
  the deployed digest, else that of a CI run of the same commit;
* change failure rate: (failed deployments + successful deployments later
  rolled back) / deployments;
* failed-deployment recovery time: from a failed change (a failed deployment,
  or a deployment that was rolled back) to the next successful deployment of
  that stack, median, hours; a run of consecutive failures is one failure,
  timed from its first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pipeline.metrics.figures import Skew, median, ratio
from pipeline.records.model import Deployment, Records, Rollback, Window, utc

Tier = Literal["elite", "high", "medium", "low"]

WEEK = timedelta(days=7)
_DAY_HOURS = 24.0
_WEEK_HOURS = 7 * 24.0
_MONTH_HOURS = 30 * 24.0
_MONTHLY_PER_WEEK = 12 / 52  # once a month, in deployments per week

# DORA tier thresholds, from the 2023 Accelerate State of DevOps report
# (DORA / Google Cloud, "Accelerate State of DevOps Report 2023", section
# "How do you compare?", software delivery performance clusters;
# https://dora.dev/research/2023/dora-report/, summarised with the same table at
# https://octopus.com/blog/software-delivery-performance-clusters-2023). The
# 2023 report renamed "time to restore service" to "failed deployment recovery
# time":
#
#   level   deployment frequency      lead time        failure rate  recovery time
#   elite   on demand                 < one day        5%            < one hour
#   high    once a day .. once a week 1 day .. 1 week  10%           < one day
#   medium  once a week .. once a mo. 1 week .. 1 mo.  15%           1 day .. 1 week
#   low     once a week .. once a mo. 1 week .. 1 mo.  64%           1 month .. 6 months
#
# The report gives cluster descriptions, not cut-offs, and its medium and low
# clusters share the same frequency and lead-time ranges. This module turns
# them into cut-offs: frequency >= 7/week (daily) elite, >= 1/week high,
# >= once a month medium, else low; lead time < 1 day elite, < 1 week high,
# < 1 month medium, else low; change failure rate <= 5% elite, <= 10% high,
# <= 15% medium, else low; recovery < 1 hour elite, < 1 day high, < 1 week
# medium, else low.


def frequency_tier(per_week: float | None) -> Tier | None:
    if per_week is None:
        return None
    if per_week >= 7:
        return "elite"
    if per_week >= 1:
        return "high"
    if per_week >= _MONTHLY_PER_WEEK:
        return "medium"
    return "low"


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

    def tiers(self) -> dict[str, Tier | None]:
        return {
            "deployment_frequency": frequency_tier(self.deployment_frequency_per_week),
            "lead_time": lead_time_tier(self.lead_time_hours),
            "change_failure_rate": change_failure_tier(self.change_failure_rate),
            "recovery_time": recovery_tier(self.recovery_time_hours),
        }


def dora_keys(records: Records, window: Window, stacks: frozenset[str], skew: Skew) -> Dora:
    by_stack: dict[str, list[Deployment]] = {}
    for d in records.deployments:
        if d.stack in stacks:
            by_stack.setdefault(d.stack, []).append(d)
    rollbacks: dict[str, list[Rollback]] = {}
    for r in records.rollbacks:
        if r.stack in stacks:
            rollbacks.setdefault(r.stack, []).append(r)

    # Commit times for lead time: by digest first (the CI run that built what
    # was deployed), then by commit.
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

    deployments = 0
    successes = 0
    failed_changes = 0
    lead_hours: list[float] = []
    recovery_hours: list[float] = []
    unrecovered = 0
    for stack, history in by_stack.items():
        history.sort(key=lambda d: utc(d.finished))
        # Each rollback marks the last successful deployment before it as a failed change.
        rolled_back: set[int] = set()
        recover_after: dict[int, datetime] = {}
        finished = [utc(d.finished) for d in history]
        for rb in rollbacks.get(stack, ()):
            at = utc(rb.at)
            for i in range(_last_before(finished, at), -1, -1):
                if history[i].result == "succeeded":
                    if i not in rolled_back:
                        rolled_back.add(i)
                        recover_after[i] = at
                    break
        failure_start: datetime | None = None
        failure_gate: datetime | None = None  # recovery must finish after this
        for i, d in enumerate(history):
            at = finished[i]
            counted = window.contains(at)
            is_failure = d.result == "failed" or i in rolled_back
            if counted:
                deployments += 1
                if d.result == "succeeded":
                    successes += 1
                    lead = _lead_time(d, by_digest, by_commit)
                    if lead is not None:
                        hours = lead.total_seconds() / 3600
                        if hours < 0:
                            skew.add("lead time(s)")
                        else:
                            lead_hours.append(hours)
                if is_failure:
                    failed_changes += 1
            if is_failure:
                if failure_start is None and counted:
                    failure_start = at
                gate = recover_after.get(i, at)
                failure_gate = gate if failure_gate is None else max(failure_gate, gate)
                continue
            if (
                d.result == "succeeded"
                and failure_start is not None
                and failure_gate is not None
                and at > failure_gate
            ):
                recovery_hours.append((at - failure_start).total_seconds() / 3600)
                failure_start = None
                failure_gate = None
            elif failure_start is None:
                failure_gate = None
        if failure_start is not None:
            unrecovered += 1

    # No deployment in the window is no data; deployments that all failed are 0/week.
    frequency: float | None = None
    if deployments:
        span = _span_weeks(window, by_stack)
        frequency = successes / span if span else None
    return Dora(
        deployment_frequency_per_week=frequency,
        lead_time_hours=median(lead_hours),
        change_failure_rate=ratio(failed_changes, deployments),
        recovery_time_hours=median(recovery_hours),
        stacks=tuple(sorted(stacks)),
        deployments=deployments,
        failed_changes=failed_changes,
        lead_time_samples=len(lead_hours),
        recoveries=len(recovery_hours),
        unrecovered=unrecovered,
    )


def _last_before(times: Sequence[datetime], at: datetime) -> int:
    """Index of the last entry finished at or before ``at`` (-1 if none); ``times`` sorted."""
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid] <= at:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def _lead_time(
    d: Deployment, by_digest: dict[str, datetime], by_commit: dict[str, datetime]
) -> timedelta | None:
    committed = d.commit_time
    if committed is None and d.digest:
        committed = by_digest.get(d.digest)
    if committed is None and d.commit:
        committed = by_commit.get(d.commit)
    return None if committed is None else utc(d.finished) - utc(committed)


def _span_weeks(window: Window, by_stack: dict[str, list[Deployment]]) -> float | None:
    """The window's length in weeks; an open end is closed by the data it holds."""
    times = [utc(d.finished) for history in by_stack.values() for d in history]
    since = window.since if window.since is not None else min(times, default=None)
    until = window.until if window.until is not None else max(times, default=None)
    if since is None or until is None or until <= since:
        return None
    return (utc(until) - utc(since)) / WEEK


__all__ = [
    "WEEK",
    "Dora",
    "Tier",
    "change_failure_tier",
    "dora_keys",
    "frequency_tier",
    "lead_time_tier",
    "recovery_tier",
]
