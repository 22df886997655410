"""The evidence gates as pure functions: vulnerabilities from every scan and waiver,
model-quality and model-compatible from model cards, not-rejected from rollbacks."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from pipeline.errors import ConfigError
from pipeline.promotion.gates import (
    GateResult,
    PromotionFacts,
    evaluate_gates,
    findings_from_ci_runs,
    findings_from_counts,
    policy_from_config,
    refused,
)
from pipeline.promotion.policy import PromotionPolicy
from pipeline.promotion.rejection import Rejection, rejections_from_rollbacks
from pipeline.records.model import Readmission, Rollback, Waiver
from tests.pipeline.recordkit import (
    CLASSES_OUT,
    DIGEST_A,
    DIGEST_B,
    T0,
    finding,
    model_card,
    scan,
)
from tests.pipeline.test_promote_gates import NOW, good_facts

CRITICAL = finding("CVE-2019-18224", "critical")
POLICY = PromotionPolicy(soak_minutes=30, min_pass_percent=100, block_severity="critical")


def facts(**changes: object) -> PromotionFacts:
    """Good facts whose vulnerability evidence is recorded scans (no counts)."""
    base = good_facts(findings=None, scans=(scan(DIGEST_A),), policy=POLICY)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def gate(given: PromotionFacts, name: str) -> GateResult:
    return {r.name: r for r in evaluate_gates(given)}[name]


def waiver(finding_id: str = CRITICAL.id, days: float = 30, **changes: object) -> Waiver:
    base = Waiver(
        DIGEST_A, finding_id, "not reachable: no IDN input", NOW + timedelta(days=days), T0, "ana"
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- vulnerabilities --------------------------------------------------------------------


def test_good_evidence_passes_every_gate() -> None:
    assert refused(evaluate_gates(facts())) == []


def test_a_finding_at_the_threshold_refuses_and_is_named() -> None:
    result = gate(facts(scans=(scan(DIGEST_A, CRITICAL),)), "vulnerabilities")
    assert not result.passed
    assert "1 at critical or above: CVE-2019-18224 critical (libidn2-0, fix 2.0.5-1+deb10u1)" in (
        result.reason
    )


def test_a_later_clean_report_does_not_erase_an_earlier_finding() -> None:
    scans = (scan(DIGEST_A, CRITICAL), scan(DIGEST_A))
    result = gate(facts(scans=scans), "vulnerabilities")
    assert not result.passed
    assert result.reason.startswith("2 scan(s) (Trivy 0.73.0 x2)")


def test_findings_of_every_report_are_merged_by_id_and_package() -> None:
    trivy = scan(DIGEST_A, finding("CVE-1", "medium"), finding("CVE-1", "medium", "libssl1.1"))
    grype = scan(DIGEST_A, finding("CVE-1", "critical"), format="grype", scanner="grype")
    result = gate(facts(scans=(trivy, grype)), "vulnerabilities")
    assert not result.passed
    assert "1 at critical or above: CVE-1 critical (libidn2-0" in result.reason  # the highest


def test_unknown_severity_blocks_at_any_threshold_unless_a_scanner_settled_it() -> None:
    unsettled = scan(DIGEST_A, finding("CVE-2", "unknown"))
    assert not gate(facts(scans=(unsettled,)), "vulnerabilities").passed
    settled = scan(DIGEST_A, finding("CVE-2", "low"))
    assert gate(facts(scans=(unsettled, settled)), "vulnerabilities").passed


def test_negligible_ranks_below_low() -> None:
    low = dataclasses.replace(POLICY, block_severity="low")
    negligible = (scan(DIGEST_A, finding("CVE-3", "negligible")),)
    assert gate(facts(scans=negligible, policy=low), "vulnerabilities").passed
    lows = (scan(DIGEST_A, finding("CVE-3", "low")),)
    assert not gate(facts(scans=lows, policy=low), "vulnerabilities").passed


def test_an_active_waiver_lets_the_finding_through_and_is_listed() -> None:
    result = gate(facts(scans=(scan(DIGEST_A, CRITICAL),), waivers=(waiver(),)), "vulnerabilities")
    assert result.passed
    assert "waived: CVE-2019-18224 until" in result.reason
    assert "by ana (not reachable: no IDN input)" in result.reason


def test_an_expired_waiver_no_longer_applies_and_is_named() -> None:
    lapsed = waiver(days=-1)
    result = gate(facts(scans=(scan(DIGEST_A, CRITICAL),), waivers=(lapsed,)), "vulnerabilities")
    assert not result.passed
    assert "expired: waiver of CVE-2019-18224 ended" in result.reason


def test_a_waiver_of_another_finding_waives_nothing() -> None:
    other = waiver("CVE-2000-0001")
    assert not gate(
        facts(scans=(scan(DIGEST_A, CRITICAL),), waivers=(other,)), "vulnerabilities"
    ).passed


def test_counts_without_ids_still_refuse_beside_clean_scans() -> None:
    counted = findings_from_counts("ECR scan of sha256:aaaa", {"CRITICAL": 1})
    result = gate(facts(findings=counted), "vulnerabilities")
    assert not result.passed
    assert "nothing open at critical or above" in result.reason
    assert "ECR scan of sha256:aaaa: 1 critical (blocks at critical)" in result.reason


def test_ci_run_counts_of_every_run_count_not_only_the_newest() -> None:
    from tests.pipeline.recordkit import ci_run

    first = dataclasses.replace(ci_run(0, scan_critical=2, scan_high=1), id=3)
    later = dataclasses.replace(ci_run(5, scan_critical=0, scan_high=0), id=4)
    counts = findings_from_ci_runs([first, later])
    assert counts is not None
    assert counts.counts == (("critical", 2), ("high", 1))
    assert counts.source == "CI runs #3, #4 scans"
    assert findings_from_ci_runs([dataclasses.replace(first, scan_critical=None)]) is None


def test_no_evidence_at_all_refuses() -> None:
    result = gate(
        facts(scans=(), findings_error="no scan recorded for sha256:aaaa"), "vulnerabilities"
    )
    assert (result.passed, result.reason) == (False, "no scan recorded for sha256:aaaa")


# --- model-quality ------------------------------------------------------------------------


def test_lower_accuracy_than_the_model_in_prod_is_refused() -> None:
    worse = facts(candidate_cards=(model_card(DIGEST_A, accuracy=0.9600),))
    result = gate(worse, "model-quality")
    assert not result.passed
    assert result.reason == "accuracy 0.9600 vs 0.9733 in prod (needs >= 0.9683)"


def test_a_drop_within_the_tolerance_passes_exactly_at_the_bound() -> None:
    # 0.8 - 0.1 is 0.7000000000000001 in binary floating point: 0.7 is still at the bound.
    tolerant = dataclasses.replace(POLICY, max_accuracy_drop=0.1)
    current = (model_card(DIGEST_B, accuracy=0.8),)
    at_bound = facts(
        policy=tolerant,
        current_cards=current,
        candidate_cards=(model_card(DIGEST_A, accuracy=0.7),),
    )
    assert gate(at_bound, "model-quality").passed
    below = dataclasses.replace(at_bound, candidate_cards=(model_card(DIGEST_A, accuracy=0.6999),))
    assert not gate(below, "model-quality").passed


def test_the_candidates_lowest_card_and_the_current_models_newest_card_count() -> None:
    candidate = (model_card(DIGEST_A, accuracy=0.99), model_card(DIGEST_A, accuracy=0.95))
    result = gate(facts(candidate_cards=candidate), "model-quality")
    assert not result.passed
    assert "0.9500 (lowest of 2 cards)" in result.reason
    current = (model_card(DIGEST_B, accuracy=0.99), model_card(DIGEST_B, accuracy=0.96))
    assert gate(facts(current_cards=current), "model-quality").passed


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"candidate_cards": ()}, "no model card recorded for sha256:aaaaaaaaaaaa"),
        (
            {"current_cards": ()},
            "no model card recorded for sha256:bbbbbbbbbbbb, the model prod runs",
        ),
        (
            {"current_digest": None},
            "prod has no successful deployment: no model there to compare with",
        ),
    ],
)
def test_either_side_without_a_card_is_refused(changes: dict[str, object], reason: str) -> None:
    for name in ("model-quality", "model-compatible"):
        result = gate(facts(**changes), name)
        assert (result.passed, result.reason) == (False, reason)


def test_p95_latency_is_held_to_the_limit_when_one_is_set() -> None:
    limited = dataclasses.replace(POLICY, max_latency_ms=0.04)
    result = gate(facts(policy=limited), "model-quality")
    assert not result.passed
    assert "p95 0.05 ms (limit 0.04 ms)" in result.reason
    no_figure = (model_card(DIGEST_A, latency_p95_ms=None, latency_p50_ms=None),)
    assert not gate(facts(policy=limited, candidate_cards=no_figure), "model-quality").passed
    assert gate(facts(candidate_cards=no_figure), "model-quality").passed  # no limit set


def test_a_better_model_passes() -> None:
    better = facts(candidate_cards=(model_card(DIGEST_A, accuracy=0.9801, version="1.1.0"),))
    assert gate(better, "model-quality").passed
    assert gate(better, "model-compatible").passed


# --- model-compatible ---------------------------------------------------------------------

WIDER = CLASSES_OUT.replace("[-1, 10]", "[-1, 11]")


def test_a_different_signature_is_refused_and_the_difference_shown() -> None:
    changed = facts(candidate_cards=(model_card(DIGEST_A, outputs=WIDER, version="1.1.0"),))
    result = gate(changed, "model-compatible")
    assert not result.passed
    assert result.reason == (
        "signature differs without a new major version (1.0.0 -> 1.1.0): "
        "output #1: tensor float64 [-1, 10] -> tensor float64 [-1, 11]"
    )


def test_a_new_major_version_declares_the_breaking_change() -> None:
    declared = facts(candidate_cards=(model_card(DIGEST_A, outputs=WIDER, version="2.0.0"),))
    result = gate(declared, "model-compatible")
    assert result.passed
    assert result.reason.startswith(
        "breaking change declared by the major version (1.0.0 -> 2.0.0)"
    )


def test_the_same_specs_written_differently_are_the_same_signature() -> None:
    compact = CLASSES_OUT.replace(", ", ",").replace(": ", ":")
    assert gate(
        facts(candidate_cards=(model_card(DIGEST_A, outputs=compact),)), "model-compatible"
    ).passed


def test_candidate_cards_that_disagree_on_the_signature_are_refused() -> None:
    cards = (model_card(DIGEST_A), model_card(DIGEST_A, outputs=WIDER))
    result = gate(facts(candidate_cards=cards), "model-compatible")
    assert not result.passed
    assert "disagree on the signature" in result.reason


# --- not-rejected -------------------------------------------------------------------------

ROLLED_BACK = Rollback(
    "prod", DIGEST_A, DIGEST_B, "r/m@" + DIGEST_B, T0, "rollback --steps 1", actor="ana"
)


def test_a_digest_rolled_back_from_the_target_is_refused_until_readmitted() -> None:
    rejected = facts(rejections=rejections_from_rollbacks([ROLLED_BACK]))
    result = gate(rejected, "not-rejected")
    assert not result.passed
    assert result.reason == (
        "rolled back from prod 2026-03-02 09:00 UTC by ana; promote again with --readmit "
        "REASON to re-admit it explicitly"
    )
    readmitted = dataclasses.replace(
        rejected,
        readmissions=(
            Readmission("prod", DIGEST_A, "config fixed, INC-31", T0 + timedelta(minutes=5), "bo"),
        ),
    )
    result = gate(readmitted, "not-rejected")
    assert result.passed
    assert result.reason.startswith("re-admitted 2026-03-02 09:05 UTC by bo (config fixed, INC-31)")


def test_a_readmission_older_than_the_rejection_does_not_count() -> None:
    old = Readmission("prod", DIGEST_A, "earlier", T0 - timedelta(days=1))
    given = facts(rejections=rejections_from_rollbacks([ROLLED_BACK]), readmissions=(old,))
    assert not gate(given, "not-rejected").passed


def test_readmit_with_a_reason_passes_and_asks_for_the_record() -> None:
    from pipeline.promotion.rejection import judge_rejection

    verdict = judge_rejection(
        "prod", DIGEST_A, rejections_from_rollbacks([ROLLED_BACK]), (), "INC-31 fixed"
    )
    assert (verdict.passed, verdict.readmit) == (True, True)
    assert verdict.reason.startswith("re-admitted now (INC-31 fixed); was rolled back from prod")


def test_rejections_elsewhere_do_not_count_and_any_rejection_kind_does() -> None:
    staging = dataclasses.replace(ROLLED_BACK, stack="staging")
    assert gate(facts(rejections=rejections_from_rollbacks([staging])), "not-rejected").passed
    # A failed verification (issue 12's records) is one more Rejection in the same list.
    failed = Rejection("prod", DIGEST_A, T0, "failed verification in prod 2026-03-02 09:00 UTC")
    result = gate(facts(rejections=(failed,)), "not-rejected")
    assert not result.passed
    assert result.reason.startswith("failed verification in prod")


# --- the new settings ---------------------------------------------------------------------


def test_the_model_settings_are_read_from_numbers_or_text() -> None:
    policy = policy_from_config(
        {"promotionMaxAccuracyDrop": "0.01", "promotionMaxLatencyMs": 25}, "prod"
    )
    assert (policy.max_accuracy_drop, policy.max_latency_ms) == (0.01, 25.0)
    default = policy_from_config({"promotionMaxLatencyMs": ""}, "prod")
    assert (default.max_accuracy_drop, default.max_latency_ms) == (0.005, None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"promotionMaxAccuracyDrop": "lots"},
            r"cv-platform:promotionMaxAccuracyDrop must be a fraction in 0\.\.1",
        ),
        ({"promotionMaxAccuracyDrop": 1.5}, "promotionMaxAccuracyDrop must be a fraction in 0..1"),
        ({"promotionMaxAccuracyDrop": "nan"}, "promotionMaxAccuracyDrop must be a fraction"),
        ({"promotionMaxLatencyMs": "0"}, "promotionMaxLatencyMs must be milliseconds above 0"),
        ({"promotionMaxLatencyMs": True}, "promotionMaxLatencyMs must be milliseconds above 0"),
    ],
)
def test_bad_model_settings_name_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_from_config(values, "prod")
    assert str(caught.value).startswith("stack prod: cv-platform:")
    assert message.replace("\\", "") in str(caught.value) or message in str(caught.value)
