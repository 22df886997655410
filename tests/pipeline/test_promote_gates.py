"""The promotion gates as pure functions: each one passing and failing, on plain data."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from pipeline.errors import ConfigError, PipelineError
from pipeline.promotion.gates import (
    GATE_NAMES,
    DigestCheck,
    GateResult,
    PromotionFacts,
    PromotionPolicy,
    Severity,
    evaluate_gates,
    findings_from_ci_run,
    findings_from_counts,
    last_successful,
    policy_from_config,
    refused,
)
from pipeline.records.model import Hold, Verification, VerifyResult
from tests.pipeline.recordkit import DIGEST_A, DIGEST_B, T0, ci_run, deployment, model_card

NOW = T0 + timedelta(hours=2)


def good_facts(**changes: object) -> PromotionFacts:
    """Facts under which every gate passes; each test breaks one thing."""
    run = dataclasses.replace(ci_run(0, failed=0, scan_critical=0, scan_high=0), id=7)
    facts = PromotionFacts(
        source_stack="staging",
        target_stack="prod",
        now=NOW,
        policy=PromotionPolicy(soak_minutes=30, min_pass_percent=100, block_severity="critical"),
        source_deployments=(deployment(0, digest=DIGEST_B), deployment(10)),
        ci_runs=(run,),
        digest_check=DigestCheck(True, "served"),
        findings=findings_from_ci_run(run),
        target_holds=(),
        target_digest=DIGEST_B,
        # prod runs DIGEST_B's model; the candidate's card is as good, with the same signature.
        candidate_cards=(model_card(DIGEST_A),),
        current_digest=DIGEST_B,
        current_cards=(model_card(DIGEST_B),),
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def gate(facts: PromotionFacts, name: str, skip: tuple[str, ...] = ()) -> GateResult:
    return {r.name: r for r in evaluate_gates(facts, skip)}[name]


def test_every_gate_passes_on_good_facts() -> None:
    results = evaluate_gates(good_facts())
    assert [r.name for r in results] == list(GATE_NAMES)
    assert refused(results) == []


def test_the_candidate_is_the_last_successful_deployment_not_the_last_one() -> None:
    runs = (deployment(0), deployment(10, digest=DIGEST_B, result="failed"))
    candidate = last_successful(runs)
    assert candidate is not None
    assert candidate.digest == DIGEST_A


def test_source_succeeded_fails_when_the_last_deployment_failed() -> None:
    facts = good_facts(
        source_deployments=(deployment(0), deployment(20, digest=DIGEST_B, result="failed"))
    )
    result = gate(facts, "source-succeeded")
    assert not result.passed
    assert "failed" in result.reason


def test_source_succeeded_fails_without_any_deployment() -> None:
    result = gate(good_facts(source_deployments=()), "source-succeeded")
    assert not result.passed
    assert "no deployment of staging" in result.reason


def test_without_a_candidate_the_candidate_gates_fail() -> None:
    facts = good_facts(source_deployments=(deployment(0, result="failed"),))
    failed = {r.name for r in refused(evaluate_gates(facts))}
    assert {"source-succeeded", "soak", "digest-resolves", "tests-passed"} <= failed


@pytest.mark.parametrize(
    ("minutes_ago", "passes"), [(31, True), (30, True), (29, False), (-5, False)]
)
def test_soak_needs_the_configured_minutes_since_the_deployment_finished(
    minutes_ago: int, passes: bool
) -> None:
    finished = deployment(10).finished
    facts = good_facts(now=finished + timedelta(minutes=minutes_ago))
    assert gate(facts, "soak").passed is passes


def test_soak_failure_says_when_promotion_becomes_possible() -> None:
    finished = deployment(10).finished
    reason = gate(good_facts(now=finished + timedelta(minutes=5)), "soak").reason
    assert f"promotable from {(finished + timedelta(minutes=30)):%Y-%m-%d %H:%M}" in reason


def test_digest_resolves_fails_when_the_registry_no_longer_serves_it() -> None:
    facts = good_facts(digest_check=DigestCheck(False, "manifest unknown"))
    result = gate(facts, "digest-resolves")
    assert not result.passed
    assert result.reason == "manifest unknown"


@pytest.mark.parametrize(
    ("passed", "failed", "errors", "needed", "passes"),
    [
        (100, 0, 0, 100, True),
        (99, 1, 0, 100, False),
        (95, 3, 2, 95, True),
        (94, 3, 3, 95, False),
        # 2/3 is 66.67%: rounding must not pass 67.
        (2, 1, 0, 67, False),
        (2, 1, 0, 66, True),
        (0, 0, 5, 0, True),
    ],
)
def test_tests_passed_compares_the_pass_rate_with_the_minimum(
    passed: int, failed: int, errors: int, needed: int, passes: bool
) -> None:
    run = ci_run(0, passed=passed, failed=failed, errors=errors)
    facts = good_facts(
        ci_runs=(run,), policy=PromotionPolicy(min_pass_percent=needed, soak_minutes=30)
    )
    assert gate(facts, "tests-passed").passed is passes


def test_tests_passed_fails_without_a_ci_run_for_the_digest() -> None:
    result = gate(good_facts(ci_runs=(ci_run(0, digest=DIGEST_B),)), "tests-passed")
    assert not result.passed
    assert "no CI run recorded" in result.reason


def test_tests_passed_fails_when_no_tests_ran() -> None:
    run = ci_run(0, passed=0, failed=0, errors=0, skipped=4)
    assert not gate(good_facts(ci_runs=(run,)), "tests-passed").passed


def test_tests_passed_uses_the_latest_run_that_built_the_digest() -> None:
    runs = (ci_run(0, failed=5), ci_run(30, failed=0))
    assert gate(good_facts(ci_runs=runs), "tests-passed").passed


def policy(severity: Severity) -> PromotionPolicy:
    return PromotionPolicy(soak_minutes=30, min_pass_percent=100, block_severity=severity)


@pytest.mark.parametrize(
    ("severity", "passes"),
    [("critical", True), ("high", False), ("medium", False), ("low", False), ("none", True)],
)
def test_ecr_counts_block_at_or_above_the_severity(severity: Severity, passes: bool) -> None:
    findings = findings_from_counts("ECR scan", {"HIGH": 1, "INFORMATIONAL": 3})
    facts = good_facts(findings=findings, policy=policy(severity))
    assert gate(facts, "vulnerabilities").passed is passes


def test_informational_findings_never_block() -> None:
    findings = findings_from_counts("ECR scan", {"INFORMATIONAL": 9})
    assert gate(good_facts(findings=findings, policy=policy("low")), "vulnerabilities").passed


def test_findings_of_unsettled_severity_block() -> None:
    findings = findings_from_counts("ECR scan", {"UNDEFINED": 1})
    assert not gate(good_facts(findings=findings), "vulnerabilities").passed


def test_ci_scan_counts_block_criticals() -> None:
    run = ci_run(0, scan_critical=2, scan_high=0)
    result = gate(good_facts(findings=findings_from_ci_run(run)), "vulnerabilities")
    assert not result.passed
    assert "2 critical" in result.reason


def test_ci_scan_counts_cannot_vouch_below_high() -> None:
    run = ci_run(0, scan_critical=0, scan_high=0)
    facts = good_facts(findings=findings_from_ci_run(run), policy=policy("medium"))
    result = gate(facts, "vulnerabilities")
    assert not result.passed
    assert "cannot check findings at medium" in result.reason


def test_vulnerabilities_fail_without_findings() -> None:
    facts = good_facts(findings=None, findings_error="CI run #7 recorded no scan counts")
    result = gate(facts, "vulnerabilities")
    assert not result.passed
    assert result.reason == "CI run #7 recorded no scan counts"


def test_not_on_hold_fails_while_the_target_is_held_and_passes_after_release() -> None:
    placed = Hold("prod", "placed", T0, "incident 12")
    held = gate(good_facts(target_holds=(placed,)), "not-on-hold")
    assert not held.passed
    assert "incident 12" in held.reason
    released = Hold("prod", "released", T0 + timedelta(minutes=5))
    assert gate(good_facts(target_holds=(placed, released)), "not-on-hold").passed


def test_not_already_deployed_fails_when_the_target_pins_the_digest() -> None:
    result = gate(good_facts(target_digest=DIGEST_A), "not-already-deployed")
    assert not result.passed


def test_a_skipped_gate_is_not_evaluated_and_does_not_refuse() -> None:
    facts = good_facts(digest_check=None, target_holds=(Hold("prod", "placed", T0),))
    results = evaluate_gates(facts, ("digest-resolves", "not-on-hold"))
    skipped = [r.name for r in results if r.skipped]
    assert skipped == ["digest-resolves", "not-on-hold"]
    assert refused(results) == []


def test_an_unknown_gate_name_is_an_error() -> None:
    with pytest.raises(PipelineError, match="unknown gate"):
        evaluate_gates(good_facts(), ("soak-time",))


def test_policy_is_read_and_validated_from_config() -> None:
    assert policy_from_config({}, "prod") == PromotionPolicy(30, 100, "critical")
    got = policy_from_config(
        {
            "promotionSoakMinutes": 60,
            "promotionMinPassPercent": 95.0,
            "promotionBlockSeverity": "HIGH",
        },
        "prod",
    )
    assert got == PromotionPolicy(60, 95, "high")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"promotionSoakMinutes": -1}, "promotionSoakMinutes must be >= 0"),
        ({"promotionMinPassPercent": 101}, r"promotionMinPassPercent must be 0\.\.100"),
        ({"promotionMinPassPercent": 99.5}, "whole number"),
        ({"promotionSoakMinutes": True}, "whole number"),
        ({"promotionBlockSeverity": "severe"}, "none|low|medium|high|critical"),
    ],
)
def test_bad_policy_values_name_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        policy_from_config(values, "prod")


# -- verified ----------------------------------------------------------------------------


def check(
    result: VerifyResult, minutes_after: float = 1, digest: str = DIGEST_A, id_: int = 1
) -> Verification:
    """A verification of the candidate (deployment(10) finished at T0 + 11.5 min)."""
    since = deployment(10).finished + timedelta(minutes=minutes_after)
    return Verification(
        "staging",
        digest,
        f"r/m@{digest}",
        result,
        since,
        since + timedelta(minutes=5),
        requests=2033.0 if result != "inconclusive" else 3.0,
        error_ratio=0.0 if result != "failed" else 0.5,
        p95_seconds=0.004,
        reason={"failed": "error ratio 50.00% > 1.00%", "inconclusive": "too few"}.get(result, ""),
        id=id_,
    )


def test_verified_passes_when_not_required() -> None:
    result = gate(good_facts(), "verified")
    assert result.passed
    assert "not required" in result.reason


def test_verified_needs_a_passing_verification_when_required() -> None:
    result = gate(good_facts(verification_required=True), "verified")
    assert not result.passed
    assert "no passing verification of sha256:aaaaaaaaaaaa in staging" in result.reason


def test_verified_shows_the_measured_values() -> None:
    facts = good_facts(verification_required=True, source_verifications=(check("passed"),))
    result = gate(facts, "verified")
    assert result.passed
    assert "passed: 2033 requests, error ratio 0.00%, p95 4 ms" in result.reason


@pytest.mark.parametrize(
    "verification",
    [
        check("passed", minutes_after=-5),  # measured before the deployment finished
        check("passed", digest=DIGEST_B),  # another digest
        check("inconclusive"),
    ],
    ids=["before-the-deployment", "other-digest", "inconclusive"],
)
def test_verified_ignores_what_does_not_vouch_for_the_deployment(
    verification: Verification,
) -> None:
    facts = good_facts(verification_required=True, source_verifications=(verification,))
    assert not gate(facts, "verified").passed


def test_a_failed_verification_is_not_erased_by_a_later_pass() -> None:
    checks = (check("failed", 1, id_=1), check("passed", 10, id_=2))
    facts = good_facts(verification_required=True, source_verifications=checks)
    result = gate(facts, "verified")
    assert not result.passed
    assert "verification #1" in result.reason
    assert "error ratio 50.00% > 1.00%" in result.reason
