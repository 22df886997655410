"""The metrics core: the specification's worked example, DORA keys, empty and skewed data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.metrics import dora
from pipeline.metrics.compute import compute, weekly
from pipeline.metrics.figures import median
from pipeline.records.model import (
    CiRun,
    Deployment,
    Records,
    Rollback,
    Verification,
    Window,
    change_entry,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
UNTIL = T0 + timedelta(days=28)
WINDOW = Window(T0, UNTIL)


def ci(
    at: datetime,
    build: float | None = 1200,
    test: float | None = 1800,
    passed: int = 0,
    failed: int = 0,
    errors: int = 0,
    skipped: int = 0,
    digest: str | None = None,
    commit: str | None = None,
    commit_time: datetime | None = None,
) -> CiRun:
    return CiRun(
        image="registry.example/cv/model",
        digest=digest,
        commit=commit,
        commit_time=commit_time,
        started=at,
        build_seconds=build,
        test_seconds=test,
        passed=passed,
        failed=failed,
        errors=errors,
        skipped=skipped,
    )


def deploy(
    finished: datetime,
    result: str = "succeeded",
    stack: str = "prod",
    minutes: float = 10,
    digest: str | None = None,
    commit_time: datetime | None = None,
    changes: tuple[str, ...] = (),
) -> Deployment:
    return Deployment(
        stack=stack,
        result=result,  # type: ignore[arg-type]
        image="registry.example/cv/model",
        digest=digest,
        started=finished - timedelta(minutes=minutes),
        finished=finished,
        commit_time=commit_time,
        changes=changes,
    )


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_worked_example_m_ci_is_the_formula_not_the_printed_25() -> None:
    records = Records(
        ci_runs=(ci(T0 + hours(1), build=20 * 60, test=30 * 60),),
        deployments=(deploy(T0 + hours(2), minutes=10),),
    )
    m = compute(records, WINDOW)
    assert (m.t_c_minutes, m.t_t_minutes, m.t_d_minutes) == (20, 30, 10)
    assert m.m_ci_minutes == pytest.approx(20.0)


def test_worked_example_m_cd_is_p_t_times_p_d() -> None:
    runs = (ci(T0 + hours(1), passed=9, failed=1),)
    deploys = (
        *tuple(deploy(T0 + hours(2 + i)) for i in range(19)),
        deploy(T0 + hours(30), result="failed"),
    )
    m = compute(Records(ci_runs=runs, deployments=deploys), WINDOW)
    assert m.p_t == pytest.approx(0.9)
    assert m.p_d == pytest.approx(0.95)
    assert m.m_cd == pytest.approx(0.855)


def test_means_are_over_runs_in_the_window_only() -> None:
    runs = (
        ci(T0 - hours(1), build=9999),  # before the window
        ci(T0 + hours(1), build=600),
        ci(T0 + hours(2), build=1200),
        ci(UNTIL, build=9999),  # the window is half-open
    )
    m = compute(Records(ci_runs=runs), WINDOW)
    assert m.ci_runs == 2
    assert m.t_c_minutes == pytest.approx(15.0)


def test_p_t_excludes_skips_and_counts_errors_as_not_passed() -> None:
    runs = (ci(T0 + hours(1), passed=6, failed=1, errors=1, skipped=12),)
    m = compute(Records(ci_runs=runs), WINDOW)
    assert m.p_t == pytest.approx(0.75)
    assert m.skipped == 12


def test_empty_window_gives_none_everywhere_never_zero() -> None:
    m = compute(Records(), WINDOW)
    data = m.to_json()
    for key in ("m_ci_minutes", "m_cd", "t_c_minutes", "t_t_minutes", "t_d_minutes", "p_t", "p_d"):
        assert data[key] is None, key
    for key in (
        "deployment_frequency_per_week",
        "lead_time_hours",
        "change_failure_rate",
        "recovery_time_hours",
    ):
        assert data["dora"][key] is None, key
    assert all(tier is None for tier in data["dora"]["tiers"].values())
    assert (data["ci_runs"], data["deployments"]) == (0, 0)


def test_json_has_the_fixed_keys() -> None:
    data = compute(Records(), WINDOW).to_json()
    fixed = {
        "m_ci_minutes",
        "m_cd",
        "t_c_minutes",
        "t_t_minutes",
        "t_d_minutes",
        "p_t",
        "p_d",
        "ci_runs",
        "deployments",
        "dora",
        "window",
    }
    assert fixed <= set(data)
    assert {
        "deployment_frequency_per_week",
        "lead_time_hours",
        "change_failure_rate",
        "recovery_time_hours",
        "tiers",
    } <= set(data["dora"])
    assert data["window"] == {"since": "2026-11-02T09:00:00Z", "until": "2026-11-30T09:00:00Z"}


def test_m_ci_is_none_when_a_part_is_missing_and_says_which() -> None:
    m = compute(Records(ci_runs=(ci(T0 + hours(1)),)), WINDOW)
    assert m.t_c_minutes == 20
    assert m.m_ci_minutes is None
    assert any("T_D" in w for w in m.warnings)


def test_single_records_give_their_own_values() -> None:
    commit_time = T0 + hours(1)
    records = Records(
        ci_runs=(ci(T0 + hours(2), passed=3, digest="sha256:a", commit_time=commit_time),),
        deployments=(deploy(T0 + hours(5), digest="sha256:a"),),
    )
    m = compute(records, WINDOW)
    assert m.p_t == 1.0
    assert m.p_d == 1.0
    assert m.dora.lead_time_hours == pytest.approx(4.0)
    assert m.dora.change_failure_rate == 0.0
    assert m.dora.recovery_time_hours is None
    assert m.dora.deployment_frequency_per_week == pytest.approx(0.25)


def test_negative_durations_are_excluded_and_counted() -> None:
    skewed = Deployment(
        stack="prod",
        result="succeeded",
        image="r/cv",
        digest=None,
        started=T0 + hours(3),
        finished=T0 + hours(2),
    )
    records = Records(
        ci_runs=(ci(T0 + hours(1), build=-30), ci(T0 + hours(1), build=600)),
        deployments=(skewed, deploy(T0 + hours(4), minutes=6)),
    )
    m = compute(records, WINDOW)
    assert m.t_c_minutes == pytest.approx(10.0)
    assert m.t_d_minutes == pytest.approx(6.0)
    assert "1 negative build time(s) (clock skew?) left out" in m.warnings
    assert "1 negative deployment duration(s) (clock skew?) left out" in m.warnings


def test_lead_time_after_deploy_is_skew_and_excluded() -> None:
    records = Records(
        deployments=(
            deploy(T0 + hours(2), commit_time=T0 + hours(3)),
            deploy(T0 + hours(10), commit_time=T0 + hours(8)),
        )
    )
    m = compute(records, WINDOW)
    assert m.dora.lead_time_hours == pytest.approx(2.0)
    assert "1 negative lead time(s) (clock skew?) left out" in m.warnings


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median([4.0, 1.0, 3.0, 10.0]) == pytest.approx(3.5)
    assert median([5.0]) == 5.0
    assert median([]) is None


def test_lead_time_median_over_an_even_number_of_deployments() -> None:
    leads = [1, 2, 6, 30]  # hours; median = (2 + 6) / 2 = 4
    deploys = tuple(
        deploy(T0 + hours(40 * (i + 1)), commit_time=T0 + hours(40 * (i + 1) - h))
        for i, h in enumerate(leads)
    )
    m = compute(Records(deployments=deploys), WINDOW)
    assert m.dora.lead_time_hours == pytest.approx(4.0)
    assert m.dora.lead_time_samples == 4


def test_lead_time_takes_commit_time_from_the_ci_run_that_built_the_digest() -> None:
    runs = (
        ci(T0 - hours(30), digest="sha256:d1", commit="c1", commit_time=T0 - hours(26)),
        ci(T0 + hours(1), commit="c2", commit_time=T0),
    )
    deploys = (
        deploy(T0 + hours(2), digest="sha256:d1"),
        Deployment(
            stack="prod",
            result="succeeded",
            image="r/cv",
            digest=None,
            started=T0 + hours(5),
            finished=T0 + hours(6),
            commit="c2",
        ),
    )
    m = compute(Records(ci_runs=runs, deployments=deploys), WINDOW)
    # 28 h by digest (run before the window still counts), 6 h by commit: median 17.
    assert m.dora.lead_time_hours == pytest.approx(17.0)


def test_change_failure_rate_counts_failed_deploys_and_rollbacks() -> None:
    deploys = (
        deploy(T0 + hours(1), digest="sha256:1"),
        deploy(T0 + hours(2), digest="sha256:2"),  # rolled back below
        deploy(T0 + hours(3), result="failed"),
        deploy(T0 + hours(5), digest="sha256:1"),
    )
    rollbacks = (
        Rollback(
            stack="prod",
            from_digest="sha256:2",
            to_digest="sha256:1",
            image="r/cv",
            at=T0 + hours(4),
        ),
    )
    m = compute(Records(deployments=deploys, rollbacks=rollbacks), WINDOW)
    assert m.dora.failed_changes == 2
    assert m.dora.change_failure_rate == pytest.approx(0.5)
    assert m.p_d == pytest.approx(0.75)  # P_D is about update results only


def test_recovery_runs_from_first_failure_to_next_success_of_that_stack() -> None:
    deploys = (
        deploy(T0 + hours(1)),
        deploy(T0 + hours(2), result="failed"),
        deploy(T0 + hours(3), result="failed"),
        deploy(T0 + hours(2.5), stack="staging"),  # another stack: no recovery of prod
        deploy(T0 + hours(6)),  # recovers: 4 h after the first failure
        deploy(T0 + hours(10), result="failed"),
        deploy(T0 + hours(12)),  # 2 h
    )
    m = compute(Records(deployments=deploys), WINDOW, stacks=("prod",))
    assert m.dora.recovery_time_hours == pytest.approx(3.0)  # median of 4 and 2
    assert m.dora.recoveries == 2
    assert m.dora.unrecovered == 0


def test_rollback_recovery_waits_for_the_deploy_after_the_rollback() -> None:
    deploys = (
        deploy(T0 + hours(1)),  # bad change
        deploy(T0 + hours(2)),  # another bad one, later rolled back
        deploy(T0 + hours(9)),  # the rollback's deployment
    )
    rollbacks = (
        Rollback(
            stack="prod", from_digest=None, to_digest="sha256:0", image="r/cv", at=T0 + hours(8)
        ),
    )
    m = compute(Records(deployments=deploys, rollbacks=rollbacks), WINDOW)
    assert m.dora.failed_changes == 1
    assert m.dora.recovery_time_hours == pytest.approx(7.0)


def test_unrecovered_failure_is_reported_not_timed() -> None:
    m = compute(Records(deployments=(deploy(T0 + hours(1), result="failed"),)), WINDOW)
    assert m.dora.recovery_time_hours is None
    assert m.dora.unrecovered == 1
    assert m.dora.change_failure_rate == 1.0


def test_deployment_frequency_counts_successful_prod_deploys_per_week() -> None:
    deploys = (
        *tuple(deploy(T0 + hours(12 * i)) for i in range(56)),
        deploy(T0 + hours(5), stack="staging"),
        deploy(T0 + hours(7), result="failed"),
    )
    m = compute(Records(deployments=deploys), WINDOW)
    assert m.dora.deployment_frequency_per_week == pytest.approx(14.0)
    assert m.dora.tiers()["deployment_frequency"] == "elite"
    assert m.dora.stacks == ("prod",)


def test_deployment_frequency_is_zero_not_n_a_when_every_deploy_failed() -> None:
    # Deployments happened and none succeeded: a measured 0/week, not missing data.
    deploys = tuple(deploy(T0 + hours(6 * i), result="failed") for i in range(3))
    m = compute(Records(deployments=deploys), WINDOW)
    assert m.dora.deployment_frequency_per_week == 0.0
    assert m.dora.tiers()["deployment_frequency"] == "low"
    assert compute(Records(), WINDOW).dora.deployment_frequency_per_week is None


def test_stack_selection_applies_to_p_d_and_dora() -> None:
    deploys = (
        deploy(T0 + hours(1), stack="staging", result="failed"),
        deploy(T0 + hours(2), stack="prod"),
    )
    m = compute(Records(deployments=deploys), WINDOW, stacks=("staging",))
    assert m.p_d == 0.0
    assert m.deployments == 1
    assert m.dora.stacks == ("staging",)
    assert m.dora.change_failure_rate == 1.0


@pytest.mark.parametrize(
    ("days", "bucket", "tier"),
    [
        ([3, 3, 0, 5], "daily", "elite"),  # median 3 days a week: fourkeys' "daily"
        ([7, 2, 2, 1], "weekly", "high"),  # median 2: every week, not 3 days
        ([1, 1, 1, 0], "weekly", "high"),  # most weeks have one
        # Half the weeks: the median of 1, 1, 0, 0 is 0.5 (PERCENTILE_CONT interpolates too).
        ([1, 1, 0, 0], "monthly", "medium"),
        ([1, 0, 0, 0], "monthly", "medium"),
        ([0, 0, 0, 0], "yearly", "low"),
    ],
)
def test_frequency_buckets_follow_fourkeys(days: list[int], bucket: str, tier: str) -> None:
    months = ["2026-11"] * len(days)
    assert dora.frequency_bucket(days, months) == bucket
    found = dora.frequency_bucket(days, months)
    keys = dora.Dora(None, None, None, None, (), frequency_bucket=found)
    assert keys.tiers()["deployment_frequency"] == tier


def test_a_release_every_week_is_weekly_not_medium() -> None:
    # One deployment in each of four weeks: 1/week, which "successes / weeks" read as
    # the edge of medium; fourkeys: most weeks have a deployment, so weekly (high).
    deploys = tuple(deploy(T0 + timedelta(days=7 * i, hours=3)) for i in range(4))
    m = compute(Records(deployments=deploys), WINDOW)
    assert m.dora.weeks == 4
    assert m.dora.deployment_days_per_week == 1
    assert m.dora.frequency_bucket == "weekly"
    assert m.dora.tiers()["deployment_frequency"] == "high"


def test_three_days_a_week_is_daily() -> None:
    days = [7 * week + day for week in range(4) for day in (0, 2, 4)]
    deploys = tuple(deploy(T0 + timedelta(days=day, hours=2)) for day in days)
    m = compute(Records(deployments=deploys), WINDOW)
    assert m.dora.deployment_days_per_week == 3
    assert m.dora.tiers()["deployment_frequency"] == "elite"


def test_months_count_the_weeks_of_the_calendar_month_that_had_a_deployment() -> None:
    # Each week counts the weeks of its calendar month that had a deployment; the median
    # over the weeks must reach 1. Two December weeks leave Nov and Jan weeks at 0: yearly.
    # One week in each month gives every week a count of 1: monthly.
    weeks = [f"2026-{m:02d}" for m in (11, 11, 11, 11, 12, 12, 12, 12, 1, 1, 1, 1)]
    assert dora.frequency_bucket([0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0], weeks) == "yearly"
    assert dora.frequency_bucket([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], weeks) == "monthly"


# --- DORA from real failures (issue 12) -------------------------------------------------


def test_rolling_back_a_failed_deployment_is_one_failed_change_recovered_in_minutes() -> None:
    # Good A (two days earlier), failed B, rollback from B to A, A again: the one failed
    # change is B, and it was recovered 20 minutes later -- not "2 of 3" and 49 hours.
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    deploys = (
        deploy(T0 + hours(1), digest=a),
        deploy(T0 + hours(50), result="failed", digest=b),
        deploy(T0 + hours(50) + timedelta(minutes=20), digest=a),
    )
    rollbacks = (Rollback("prod", b, a, "r/cv", at=T0 + hours(50) + timedelta(minutes=5)),)
    m = compute(Records(deployments=deploys, rollbacks=rollbacks), WINDOW)
    assert (m.dora.failed_changes, m.dora.deployments) == (1, 3)
    assert m.dora.recovery_time_hours == pytest.approx(20 / 60)
    assert m.dora.tiers()["recovery_time"] == "elite"


def test_a_failed_verification_is_a_failed_change_recovered_by_the_next_good_deploy() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    bad = T0 + hours(10)
    deploys = (
        deploy(T0 + hours(1), digest=a),
        deploy(bad, digest=b),  # `pulumi up` succeeded ...
        deploy(bad + timedelta(minutes=30), digest=a),  # ... the rollback's deployment
    )
    verifications = (
        Verification("prod", a, "r/cv", "passed", T0 + hours(1), T0 + hours(1.1)),
        # ... but its verification failed:
        Verification("prod", b, "r/cv", "failed", bad, bad + timedelta(minutes=10)),
    )
    rollbacks = (Rollback("prod", b, a, "r/cv", at=bad + timedelta(minutes=11)),)
    records = Records(deployments=deploys, rollbacks=rollbacks, verifications=verifications)
    m = compute(records, WINDOW)
    assert (m.dora.failed_changes, m.dora.deployments) == (1, 3)
    assert m.dora.recovery_time_hours == pytest.approx(0.5)
    assert m.p_d == 1.0  # P_D is about `pulumi up` results only


def test_a_passing_or_inconclusive_verification_is_no_failure() -> None:
    deploys = (deploy(T0 + hours(1), digest="sha256:1"),)
    verifications = tuple(
        Verification("prod", "sha256:1", "r/cv", result, T0 + hours(1), T0 + hours(2))  # type: ignore[arg-type]
        for result in ("passed", "inconclusive")
    )
    m = compute(Records(deployments=deploys, verifications=verifications), WINDOW)
    assert m.dora.failed_changes == 0


def test_recovery_waits_for_a_deployment_that_does_not_fail_its_verification() -> None:
    deploys = (
        deploy(T0 + hours(1), result="failed", digest="sha256:1"),
        deploy(T0 + hours(2), digest="sha256:2"),  # succeeded, but fails verification
        deploy(T0 + hours(4), digest="sha256:3"),  # recovers: 3 h after the first failure
    )
    verifications = (
        Verification("prod", "sha256:2", "r/cv", "failed", T0 + hours(2), T0 + hours(2.2)),
    )
    m = compute(Records(deployments=deploys, verifications=verifications), WINDOW)
    assert m.dora.failed_changes == 2
    assert m.dora.recoveries == 1
    assert m.dora.recovery_time_hours == pytest.approx(3.0)


def test_lead_time_counts_every_commit_a_deployment_brought() -> None:
    # The head commit was made 2 h before the deployment, but it brought three commits:
    # 2 h, 30 h and 60 h old; per change the median is 30 h ("high"), not 2 h ("elite").
    done = T0 + hours(100)
    changes = tuple(change_entry(f"c{h}", done - hours(h)) for h in (2, 30, 60))
    deploys = (deploy(done, commit_time=done - hours(2), changes=changes),)
    m = compute(Records(deployments=deploys), WINDOW)
    assert m.dora.lead_time_samples == 3
    assert m.dora.lead_time_hours == pytest.approx(30.0)
    assert m.dora.tiers()["lead_time"] == "high"


def test_a_commit_counts_once_with_the_first_deployment_that_brought_it() -> None:
    first, second = T0 + hours(10), T0 + hours(20)
    shared = change_entry("c1", T0)
    deploys = (
        deploy(first, changes=(shared,)),
        # e.g. after a rollback: the range since the last deployment holds c1 again
        deploy(second, changes=(shared, change_entry("c2", second - hours(1)))),
    )
    m = compute(Records(deployments=deploys), WINDOW)
    assert m.dora.lead_time_samples == 2
    assert m.dora.lead_time_hours == pytest.approx((10 + 1) / 2)


def test_changes_of_a_failed_deployment_do_not_count() -> None:
    deploys = (deploy(T0 + hours(5), result="failed", changes=(change_entry("c1", T0),)),)
    assert compute(Records(deployments=deploys), WINDOW).dora.lead_time_samples == 0


@pytest.mark.parametrize(
    ("hours_", "lead", "recovery"),
    [
        (0.5, "elite", "elite"),
        (5, "elite", "high"),
        (30, "high", "medium"),
        (200, "medium", "low"),
        (800, "low", "low"),
    ],
)
def test_time_tiers(hours_: float, lead: str, recovery: str) -> None:
    assert dora.lead_time_tier(hours_) == lead
    assert dora.recovery_tier(hours_) == recovery


@pytest.mark.parametrize(
    ("rate", "tier"),
    [(0.0, "elite"), (0.05, "elite"), (0.1, "high"), (0.15, "medium"), (0.64, "low")],
)
def test_change_failure_tiers(rate: float, tier: str) -> None:
    assert dora.change_failure_tier(rate) == tier


def test_weekly_points_cover_the_window_with_gaps_as_none() -> None:
    records = Records(
        ci_runs=(ci(T0 + hours(1), passed=1),),
        deployments=(deploy(T0 + hours(2)), deploy(T0 + timedelta(days=15), result="failed")),
    )
    points = weekly(records, T0, T0 + timedelta(days=28))
    assert [p.start for p in points] == [T0 + timedelta(days=7 * i) for i in range(4)]
    assert points[0].m_ci_minutes == pytest.approx(20.0)
    assert points[2].m_ci_minutes is None  # a deployment but no CI run that week
    assert points[0].m_cd == 1.0
    assert points[1].m_cd is None
    assert [p.deployments for p in points] == [1, 0, 1, 0]
    assert [p.deployments_failed for p in points] == [0, 0, 1, 0]


def test_weekly_agrees_with_compute_week_by_week() -> None:
    import random

    rng = random.Random(3)
    runs = tuple(
        ci(
            T0 + hours(rng.uniform(-24, 30 * 24)),
            build=rng.choice([None, -5, rng.uniform(60, 900)]),
            test=rng.uniform(60, 900),
            passed=rng.randint(0, 9),
            failed=rng.randint(0, 2),
            errors=rng.randint(0, 1),
        )
        for _ in range(300)
    )
    deploys = tuple(
        deploy(
            T0 + hours(rng.uniform(-24, 30 * 24)),
            result=rng.choice(["succeeded", "succeeded", "failed"]),
            stack=rng.choice(["prod", "staging"]),
            minutes=rng.uniform(-2, 20),
        )
        for _ in range(300)
    )
    records = Records(ci_runs=runs, deployments=deploys)
    until = T0 + timedelta(days=26)
    for stacks in ((), ("prod",)):
        points = weekly(records, T0, until, stacks)
        assert len(points) == 4
        for point in points:
            stop = min(point.start + timedelta(days=7), until)
            m = compute(records, Window(point.start, stop), stacks)
            assert point.m_ci_minutes == pytest.approx(m.m_ci_minutes)
            assert point.m_cd == pytest.approx(m.m_cd)
            assert (point.deployments, point.deployments_failed) == (
                m.deployments,
                m.deployments_failed,
            )
