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

And the four DORA keys (as fourkeys and DevLake compute them, tiers of the 2023
Accelerate State of DevOps report) over the production stack(s):
``pipeline.metrics.dora``.

Medians are ``statistics.median``: the middle value, or the mean of the two
middle values for an even count. A value with no data is ``None`` (JSON null,
"n/a" in tables), never 0 or NaN. A negative duration (clock skew between the
machines that wrote the records) is left out and counted in a warning.

Window membership: a CI run by its start time (else when it was recorded), a
deployment by when it finished, a rollback by when it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.metrics.dora import WEEK, Dora, dora_keys
from pipeline.metrics.figures import (
    Skew,
    ci_time,
    in_window,
    iso,
    mean,
    minutes,
    non_negative,
    ratio,
)
from pipeline.records.model import Records, Window, utc

PRODUCTION_STACKS: tuple[str, ...] = ("prod",)
_ALL_TIME = Window()


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
                # The sample counts behind each figure (medians say nothing without them).
                "deployments": self.dora.deployments,
                "lead_time_samples": self.dora.lead_time_samples,
                "recoveries": self.dora.recoveries,
                "weeks": self.dora.weeks,
                "deployment_days_per_week": self.dora.deployment_days_per_week,
                "frequency_bucket": self.dora.frequency_bucket,
            },
            "window": {
                "since": iso(self.since),
                "until": iso(self.until),
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
    skew = Skew()

    runs = [r for r in records.ci_runs if in_window(window, ci_time(r))]
    build = non_negative((r.build_seconds for r in runs), "build time(s)", skew)
    test = non_negative((r.test_seconds for r in runs), "test time(s)", skew)
    passed = sum(r.passed for r in runs)
    failed = sum(r.failed for r in runs)
    errors = sum(r.errors for r in runs)
    skipped = sum(r.skipped for r in runs)

    chosen = [d for d in records.deployments if not selected or d.stack in selected]
    windowed = [d for d in chosen if window.contains(utc(d.finished))]
    durations = non_negative((d.duration_seconds for d in windowed), "deployment duration(s)", skew)
    succeeded = sum(1 for d in windowed if d.result == "succeeded")
    failed_deploys = len(windowed) - succeeded

    t_c = minutes(mean(build))
    t_t = minutes(mean(test))
    t_d = minutes(mean(durations))
    m_ci = (
        (t_c + t_t + t_d) / 3 if t_c is not None and t_t is not None and t_d is not None else None
    )
    p_t = ratio(passed, passed + failed + errors)
    p_d = ratio(succeeded, succeeded + failed_deploys)
    m_cd = p_t * p_d if p_t is not None and p_d is not None else None

    warnings: list[str] = []
    if m_ci is None and (t_c, t_t, t_d) != (None, None, None):
        missing = [
            name for name, value in (("T_C", t_c), ("T_T", t_t), ("T_D", t_d)) if value is None
        ]
        warnings.append(f"M_CI needs T_C, T_T and T_D; no data for {', '.join(missing)}")

    dora_stacks = tuple(sorted(selected)) if selected else tuple(production)
    dora = dora_keys(records, window, frozenset(dora_stacks), skew)
    warnings.extend(skew.warnings())

    totals: dict[str, int] = {
        "ci_runs": len(records.ci_runs),
        "rollbacks": sum(1 for r in records.rollbacks if not selected or r.stack in selected),
    }
    for d in chosen:
        key = f"deployments:{d.stack}:{d.result}"
        totals[key] = totals.get(key, 0) + 1
    for v in records.verifications:
        if not selected or v.stack in selected:
            key = f"verifications:{v.stack}:{v.result}"
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
        deployments=len(windowed),
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
        week = bucket(ci_time(run))
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
        parts = [minutes(mean(v)) for v in (week.build, week.test, week.deploy)]
        m_ci = None
        if all(p is not None for p in parts):
            m_ci = sum(p for p in parts if p is not None) / 3
        p_t = ratio(week.passed, week.passed + week.not_passed)
        p_d = ratio(week.succeeded, week.succeeded + week.failed)
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
