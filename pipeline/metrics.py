"""Delivery metrics over recorded CI runs and deployments (pure functions).

The project's two metrics, exactly as specified:

* ``M_CI = (T_C + T_T + T_D) / 3`` in minutes, with T_C the mean build time and
  T_T the mean test time of the window's CI runs, and T_D the mean duration of
  the window's deployments (succeeded and failed: both took that long). The
  specification's worked example prints 25 for T_C = 20, T_T = 30, T_D = 10;
  the formula gives 20, and this module implements the formula.
* ``M_CD = P_T * P_D`` with P_T = passed / (passed + failed + errors) summed over
  the window's CI runs (skips are reported beside it, not in it) and
  P_D = succeeded / (succeeded + failed) over the window's deployments of the
  selected stacks (in-progress updates are never recorded).

And the four DORA keys (definitions of the 2023 Accelerate State of DevOps
report), over the production stack(s):

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

Medians are ``statistics.median``: the middle value, or the mean of the two
middle values for an even count. A value with no data is ``None`` (JSON null,
"n/a" in tables), never 0 or NaN. A negative duration (clock skew between the
machines that wrote the records) is left out and counted in a warning.

Window membership: a CI run by its start time (else when it was recorded), a
deployment by when it finished, a rollback by when it was made.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pipeline.records import CiRun, Deployment, Records, Rollback, Window, utc

Tier = Literal["elite", "high", "medium", "low"]

PRODUCTION_STACKS: tuple[str, ...] = ("prod",)

WEEK = timedelta(days=7)
_ALL_TIME = Window()
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


def median(values: Sequence[float]) -> float | None:
    """``statistics.median`` (mean of the two middle values when even), or None when empty."""
    return statistics.median(values) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


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


@dataclass(frozen=True)
class Metrics:
    """Everything ``pipeline metrics`` prints, for one window and stack selection."""

    since: datetime | None
    until: datetime | None
    stacks: tuple[str, ...]  # empty: every stack
    t_c_minutes: float | None
    t_t_minutes: float | None
    t_d_minutes: float | None
    m_ci_minutes: float | None
    p_t: float | None
    p_d: float | None
    m_cd: float | None
    ci_runs: int
    deployments: int
    passed: int
    failed: int
    errors: int
    skipped: int
    deployments_succeeded: int
    deployments_failed: int
    dora: Dora
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # All-time counts (every record passed in), for Prometheus counters.
    totals: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The fixed JSON shape (extra keys sit beside the fixed ones)."""
        return {
            "m_ci_minutes": self.m_ci_minutes,
            "m_cd": self.m_cd,
            "t_c_minutes": self.t_c_minutes,
            "t_t_minutes": self.t_t_minutes,
            "t_d_minutes": self.t_d_minutes,
            "p_t": self.p_t,
            "p_d": self.p_d,
            "ci_runs": self.ci_runs,
            "deployments": self.deployments,
            "dora": {
                "deployment_frequency_per_week": self.dora.deployment_frequency_per_week,
                "lead_time_hours": self.dora.lead_time_hours,
                "change_failure_rate": self.dora.change_failure_rate,
                "recovery_time_hours": self.dora.recovery_time_hours,
                "tiers": self.dora.tiers(),
                "stacks": list(self.dora.stacks),
                "failed_changes": self.dora.failed_changes,
                "unrecovered_failures": self.dora.unrecovered,
            },
            "window": {
                "since": _iso(self.since),
                "until": _iso(self.until),
            },
            "stacks": list(self.stacks),
            "tests": {
                "passed": self.passed,
                "failed": self.failed,
                "errors": self.errors,
                "skipped": self.skipped,
            },
            "deployment_results": {
                "succeeded": self.deployments_succeeded,
                "failed": self.deployments_failed,
            },
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat().replace("+00:00", "Z")


def _ci_time(run: CiRun) -> datetime | None:
    at = run.started or run.recorded_at
    return None if at is None else utc(at)


@dataclass
class _Skew:
    """Negative durations seen, by what they were."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def warnings(self) -> list[str]:
        return [
            f"{n} negative {what} (clock skew?) left out" for what, n in sorted(self.counts.items())
        ]


def _non_negative(values: Iterable[float | None], what: str, skew: _Skew) -> list[float]:
    kept: list[float] = []
    for value in values:
        if value is None:
            continue
        if value < 0:
            skew.add(what)
            continue
        kept.append(value)
    return kept


def compute(
    records: Records,
    window: Window = _ALL_TIME,
    stacks: Sequence[str] = (),
    production: Sequence[str] = PRODUCTION_STACKS,
    notes: Sequence[str] = (),
) -> Metrics:
    """Compute every metric for ``window`` over ``records``.

    ``records`` may hold more than the window (earlier CI runs let a deployment
    find its commit time; later deployments end a recovery); only what falls in
    the window is measured. ``stacks`` selects deployments (empty: all). DORA is
    measured over ``stacks`` when given, else over ``production``.
    """
    selected = frozenset(stacks)
    skew = _Skew()

    runs = [r for r in records.ci_runs if _in_window(window, _ci_time(r))]
    build = _non_negative((r.build_seconds for r in runs), "build time(s)", skew)
    test = _non_negative((r.test_seconds for r in runs), "test time(s)", skew)
    passed = sum(r.passed for r in runs)
    failed = sum(r.failed for r in runs)
    errors = sum(r.errors for r in runs)
    skipped = sum(r.skipped for r in runs)

    chosen = [d for d in records.deployments if not selected or d.stack in selected]
    in_window = [d for d in chosen if window.contains(utc(d.finished))]
    durations = _non_negative(
        (d.duration_seconds for d in in_window), "deployment duration(s)", skew
    )
    succeeded = sum(1 for d in in_window if d.result == "succeeded")
    failed_deploys = len(in_window) - succeeded

    t_c = _minutes(_mean(build))
    t_t = _minutes(_mean(test))
    t_d = _minutes(_mean(durations))
    m_ci = (
        (t_c + t_t + t_d) / 3 if t_c is not None and t_t is not None and t_d is not None else None
    )
    p_t = _ratio(passed, passed + failed + errors)
    p_d = _ratio(succeeded, succeeded + failed_deploys)
    m_cd = p_t * p_d if p_t is not None and p_d is not None else None

    warnings: list[str] = []
    if m_ci is None and (t_c, t_t, t_d) != (None, None, None):
        missing = [
            name for name, value in (("T_C", t_c), ("T_T", t_t), ("T_D", t_d)) if value is None
        ]
        warnings.append(f"M_CI needs T_C, T_T and T_D; no data for {', '.join(missing)}")

    dora_stacks = tuple(sorted(selected)) if selected else tuple(production)
    dora = _dora(records, window, frozenset(dora_stacks), skew)
    warnings.extend(skew.warnings())

    totals: dict[str, int] = {
        "ci_runs": len(records.ci_runs),
        "rollbacks": sum(1 for r in records.rollbacks if not selected or r.stack in selected),
    }
    for d in chosen:
        key = f"deployments:{d.stack}:{d.result}"
        totals[key] = totals.get(key, 0) + 1

    return Metrics(
        since=window.since,
        until=window.until,
        stacks=tuple(sorted(selected)),
        t_c_minutes=t_c,
        t_t_minutes=t_t,
        t_d_minutes=t_d,
        m_ci_minutes=m_ci,
        p_t=p_t,
        p_d=p_d,
        m_cd=m_cd,
        ci_runs=len(runs),
        deployments=len(in_window),
        passed=passed,
        failed=failed,
        errors=errors,
        skipped=skipped,
        deployments_succeeded=succeeded,
        deployments_failed=failed_deploys,
        dora=dora,
        warnings=tuple(warnings),
        notes=tuple(notes),
        totals=totals,
    )


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _in_window(window: Window, at: datetime | None) -> bool:
    if at is None:
        return window.since is None and window.until is None
    return window.contains(at)


def _dora(records: Records, window: Window, stacks: frozenset[str], skew: _Skew) -> Dora:
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
        change_failure_rate=_ratio(failed_changes, deployments),
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


@dataclass(frozen=True)
class WeekPoint:
    start: datetime
    m_ci_minutes: float | None
    m_cd: float | None
    deployments: int
    deployments_failed: int


@dataclass
class _Week:
    build: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    deploy: list[float] = field(default_factory=list)
    passed: int = 0
    not_passed: int = 0
    succeeded: int = 0
    failed: int = 0


def weekly(
    records: Records,
    since: datetime,
    until: datetime,
    stacks: Sequence[str] = (),
) -> list[WeekPoint]:
    """M_CI, M_CD and deployment counts per week from ``since`` (for the chart).

    One pass over the records, bucketed by week, with the rules of ``compute``
    (same window membership, negative durations left out, None without data).
    """
    start = utc(since)
    end = utc(until)
    starts: list[datetime] = []
    at = start
    while at < end:
        starts.append(at)
        at += WEEK
    weeks = [_Week() for _ in starts]

    def bucket(when: datetime | None) -> _Week | None:
        if when is None:
            return None
        when = utc(when)
        if not start <= when < end:
            return None
        return weeks[int((when - start) / WEEK)]

    for run in records.ci_runs:
        week = bucket(_ci_time(run))
        if week is None:
            continue
        if run.build_seconds is not None and run.build_seconds >= 0:
            week.build.append(run.build_seconds)
        if run.test_seconds is not None and run.test_seconds >= 0:
            week.test.append(run.test_seconds)
        week.passed += run.passed
        week.not_passed += run.failed + run.errors
    selected = frozenset(stacks)
    for d in records.deployments:
        if selected and d.stack not in selected:
            continue
        week = bucket(d.finished)
        if week is None:
            continue
        if d.duration_seconds >= 0:
            week.deploy.append(d.duration_seconds)
        if d.result == "succeeded":
            week.succeeded += 1
        else:
            week.failed += 1

    points: list[WeekPoint] = []
    for first, week in zip(starts, weeks, strict=True):
        parts = [_minutes(_mean(v)) for v in (week.build, week.test, week.deploy)]
        m_ci = None
        if all(p is not None for p in parts):
            m_ci = sum(p for p in parts if p is not None) / 3
        p_t = _ratio(week.passed, week.passed + week.not_passed)
        p_d = _ratio(week.succeeded, week.succeeded + week.failed)
        points.append(
            WeekPoint(
                start=first,
                m_ci_minutes=m_ci,
                m_cd=p_t * p_d if p_t is not None and p_d is not None else None,
                deployments=week.succeeded + week.failed,
                deployments_failed=week.failed,
            )
        )
    return points
