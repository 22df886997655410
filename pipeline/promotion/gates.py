"""Promotion gates: pure functions over plain data.

The command (``pipeline.commands.promote``) gathers the facts -- records
from the store, the target's stack file, the registry's answer, the scan
findings -- into a ``PromotionFacts``; everything here decides from those
facts alone, so every gate is tested without a registry, a store or a clock.

The digest promoted is the one of the last *successful* deployment of the
source stack, never the newest tag. The evidence gates judge every record of the
candidate's digest at once: ``findings`` (scans and waivers), ``models`` (model
cards) and ``rejection`` (rollbacks and readmissions) hold their rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pipeline.errors import PipelineError
from pipeline.images.refs import short_digest
from pipeline.promotion.counts import (
    ScanFindings,
    findings_from_ci_run,
    findings_from_ci_runs,
    findings_from_counts,
    judge_counts,
)
from pipeline.promotion.findings import judge_scans
from pipeline.promotion.models import ModelSide, judge_compatibility, judge_quality
from pipeline.promotion.policy import SEVERITIES, PromotionPolicy, Severity, policy_from_config
from pipeline.promotion.rejection import Rejection, judge_rejection
from pipeline.promotion.verified import verified
from pipeline.records.model import (
    CiRun,
    Deployment,
    Hold,
    ModelCard,
    Readmission,
    Scan,
    Verification,
    Waiver,
)

SOURCE_SUCCEEDED = "source-succeeded"
SOAK = "soak"
VERIFIED = "verified"
DIGEST_RESOLVES = "digest-resolves"
TESTS_PASSED = "tests-passed"
VULNERABILITIES = "vulnerabilities"
MODEL_QUALITY = "model-quality"
MODEL_COMPATIBLE = "model-compatible"
NOT_REJECTED = "not-rejected"
NOT_ON_HOLD = "not-on-hold"
NOT_ALREADY_DEPLOYED = "not-already-deployed"

# In evaluation and display order.
GATE_NAMES = (
    SOURCE_SUCCEEDED,
    SOAK,
    VERIFIED,
    DIGEST_RESOLVES,
    TESTS_PASSED,
    VULNERABILITIES,
    MODEL_QUALITY,
    MODEL_COMPATIBLE,
    NOT_REJECTED,
    NOT_ON_HOLD,
    NOT_ALREADY_DEPLOYED,
)

GateStatus = Literal["pass", "FAIL", "skipped"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    reason: str
    skipped: bool = False

    @property
    def status(self) -> GateStatus:
        return "skipped" if self.skipped else ("pass" if self.passed else "FAIL")


@dataclass(frozen=True)
class DigestCheck:
    """The registry's answer: does the digest still serve the same manifest?"""

    matches: bool
    detail: str = ""


@dataclass(frozen=True)
class PromotionFacts:
    source_stack: str
    target_stack: str
    now: datetime
    policy: PromotionPolicy
    # The source stack's deployments, oldest first.
    source_deployments: tuple[Deployment, ...]
    # CI runs recorded for the candidate's digest (any order).
    ci_runs: tuple[CiRun, ...] = ()
    # None when the gate is skipped or there is no candidate.
    digest_check: DigestCheck | None = None
    # None when no findings could be obtained (the reason in findings_error).
    findings: ScanFindings | None = None
    findings_error: str = ""
    # The target stack's holds, oldest first.
    target_holds: tuple[Hold, ...] = ()
    # The digest the target's stack file pins now.
    target_digest: str | None = None
    # Every scan recorded for the candidate's digest, and its waivers.
    scans: tuple[Scan, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    # The candidate's model cards, and the model the target runs now (the digest of its
    # last successful deployment, with that digest's cards).
    candidate_cards: tuple[ModelCard, ...] = ()
    current_digest: str | None = None
    current_cards: tuple[ModelCard, ...] = ()
    # Why digests were refused by the target (rollbacks, failed verifications), and
    # the readmissions since; ``readmit_reason``: this promotion re-admits (--readmit).
    rejections: tuple[Rejection, ...] = ()
    readmissions: tuple[Readmission, ...] = ()
    readmit_reason: str = ""
    # The source's cv-platform:verification.required, and its verifications (any order).
    verification_required: bool = False
    source_verifications: tuple[Verification, ...] = ()


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def last_deployment(deployments: Sequence[Deployment]) -> Deployment | None:
    return max(deployments, key=lambda d: (d.finished, d.id or 0), default=None)


def last_successful(deployments: Iterable[Deployment]) -> Deployment | None:
    """The most recently finished successful deployment (the promotion candidate)."""
    succeeded = [d for d in deployments if d.result == "succeeded"]
    return max(succeeded, key=lambda d: (d.finished, d.id or 0), default=None)


def producing_ci_run(digest: str, runs: Iterable[CiRun]) -> CiRun | None:
    """The latest CI run that built ``digest`` (a rebuild supersedes an earlier run)."""
    matching = [r for r in runs if r.digest == digest]

    def order(run: CiRun) -> tuple[datetime, int]:
        return (run.started or run.recorded_at or _EPOCH, run.id or 0)

    return max(matching, key=order, default=None)


def current_hold(holds: Sequence[Hold]) -> Hold | None:
    """The hold in force (the last event, if it placed one), else None."""
    if not holds:
        return None
    last = max(holds, key=lambda h: (h.at, h.id or 0))
    return last if last.action == "placed" else None


def pass_percent(run: CiRun) -> float | None:
    total = run.passed + run.failed + run.errors
    return None if total == 0 else 100.0 * run.passed / total


# -- the gates ------------------------------------------------------------------


def _source_succeeded(facts: PromotionFacts) -> GateResult:
    last = last_deployment(facts.source_deployments)
    if last is None:
        return GateResult(
            SOURCE_SUCCEEDED, False, f"no deployment of {facts.source_stack} recorded"
        )
    if last.result != "succeeded":
        return GateResult(
            SOURCE_SUCCEEDED,
            False,
            f"the last deployment of {facts.source_stack} ({short_digest(last.digest)}, finished "
            f"{_when(last.finished)}) failed",
        )
    if not last.digest:
        return GateResult(
            SOURCE_SUCCEEDED,
            False,
            f"the last deployment of {facts.source_stack} recorded no digest ({last.image})",
        )
    return GateResult(
        SOURCE_SUCCEEDED, True, f"{short_digest(last.digest)} deployed {_when(last.finished)}"
    )


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 2 * 24 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


def _soak(facts: PromotionFacts, candidate: Deployment) -> GateResult:
    needed = timedelta(minutes=facts.policy.soak_minutes)
    ran = facts.now - candidate.finished
    if ran >= needed:
        return GateResult(
            SOAK, True, f"ran {_minutes(ran)} (needs {facts.policy.soak_minutes} min)"
        )
    ready = candidate.finished + needed  # no stored time lies past the clock (limits.py)
    return GateResult(
        SOAK,
        False,
        f"ran {_minutes(max(ran, timedelta(0)))} of {facts.policy.soak_minutes} min; "
        f"promotable from {_when(ready)}",
    )


def _digest_resolves(facts: PromotionFacts, candidate: Deployment) -> GateResult:
    check = facts.digest_check
    if check is None:
        return GateResult(DIGEST_RESOLVES, False, "the registry was not asked")
    if check.matches:
        return GateResult(DIGEST_RESOLVES, True, check.detail or "the registry serves the manifest")
    return GateResult(
        DIGEST_RESOLVES,
        False,
        check.detail or f"{short_digest(candidate.digest)} is gone or changed",
    )


def _tests_passed(facts: PromotionFacts, digest: str) -> GateResult:
    run = producing_ci_run(digest, facts.ci_runs)
    if run is None:
        return GateResult(TESTS_PASSED, False, f"no CI run recorded for {short_digest(digest)}")
    percent = pass_percent(run)
    total = run.passed + run.failed + run.errors
    if percent is None:
        return GateResult(TESTS_PASSED, False, f"CI run #{run.id} recorded no tests")
    needed = facts.policy.min_pass_percent
    summary = f"{run.passed}/{total} passed ({percent:.1f}%, needs {needed}%)"
    # Integer comparison: 99.99...% must not round up to 100.
    ok = run.passed * 100 >= needed * total
    return GateResult(TESTS_PASSED, ok, f"CI run #{run.id}: {summary}")


def _vulnerabilities(facts: PromotionFacts) -> GateResult:
    """Every source at once: the recorded scans (with waivers) and the counted sources."""
    threshold = facts.policy.block_severity
    if threshold == "none":
        return GateResult(VULNERABILITIES, True, "promotionBlockSeverity is none")
    parts: list[tuple[bool, str]] = []
    if facts.scans:
        verdict = judge_scans(facts.scans, facts.waivers, threshold, facts.now)
        parts.append((verdict.passed, verdict.reason))
    if facts.findings is not None:
        parts.append(judge_counts(facts.findings, threshold))
    if not parts:
        return GateResult(VULNERABILITIES, False, facts.findings_error or "no scan findings")
    return GateResult(
        VULNERABILITIES, all(ok for ok, _ in parts), "; ".join(reason for _, reason in parts)
    )


def _model(facts: PromotionFacts, name: str, digest: str) -> GateResult:
    candidate = ModelSide(digest, facts.candidate_cards)
    current = ModelSide(facts.current_digest, facts.current_cards)
    if name == MODEL_QUALITY:
        verdict = judge_quality(
            candidate,
            current,
            facts.target_stack,
            facts.policy.max_accuracy_drop,
            facts.policy.max_latency_ms,
        )
    else:
        verdict = judge_compatibility(candidate, current, facts.target_stack)
    return GateResult(name, verdict.passed, verdict.reason)


def _not_rejected(facts: PromotionFacts, digest: str) -> GateResult:
    verdict = judge_rejection(
        facts.target_stack, digest, facts.rejections, facts.readmissions, facts.readmit_reason
    )
    return GateResult(NOT_REJECTED, verdict.passed, verdict.reason)


def _not_on_hold(facts: PromotionFacts) -> GateResult:
    hold = current_hold(facts.target_holds)
    if hold is None:
        return GateResult(NOT_ON_HOLD, True, f"{facts.target_stack} is not on hold")
    why = f": {hold.reason}" if hold.reason else ""
    return GateResult(
        NOT_ON_HOLD,
        False,
        f"{facts.target_stack} on hold since {_when(hold.at)}{why} "
        f"(release: hold {facts.target_stack} --release)",
    )


def _not_already_deployed(facts: PromotionFacts, digest: str) -> GateResult:
    if facts.target_digest == digest:
        return GateResult(
            NOT_ALREADY_DEPLOYED, False, f"{facts.target_stack} already pins {short_digest(digest)}"
        )
    return GateResult(
        NOT_ALREADY_DEPLOYED,
        True,
        f"{facts.target_stack} pins {short_digest(facts.target_digest)}",
    )


def evaluate_gates(facts: PromotionFacts, skip: Iterable[str] = ()) -> tuple[GateResult, ...]:
    """Every gate's result, in ``GATE_NAMES`` order; skipped gates are not evaluated."""
    skipped = frozenset(skip)
    unknown = skipped - set(GATE_NAMES)
    if unknown:
        raise PipelineError(f"unknown gate(s): {', '.join(sorted(unknown))}")
    candidate = last_successful(facts.source_deployments)
    digest = candidate.digest if candidate is not None else None
    no_candidate = f"no successful deployment of {facts.source_stack} with a digest"

    results: list[GateResult] = []
    for name in GATE_NAMES:
        if name in skipped:
            results.append(GateResult(name, False, "skipped (--skip-gate)", skipped=True))
        elif name == SOURCE_SUCCEEDED:
            results.append(_source_succeeded(facts))
        elif name == VULNERABILITIES:
            results.append(_vulnerabilities(facts))
        elif name == NOT_ON_HOLD:
            results.append(_not_on_hold(facts))
        elif candidate is None or digest is None:
            results.append(GateResult(name, False, no_candidate))
        elif name == SOAK:
            results.append(_soak(facts, candidate))
        elif name == VERIFIED:
            ok, why = verified(
                facts.verification_required,
                facts.source_stack,
                candidate,
                facts.source_verifications,
            )
            results.append(GateResult(VERIFIED, ok, why))
        elif name == DIGEST_RESOLVES:
            results.append(_digest_resolves(facts, candidate))
        elif name == TESTS_PASSED:
            results.append(_tests_passed(facts, digest))
        elif name in (MODEL_QUALITY, MODEL_COMPATIBLE):
            results.append(_model(facts, name, digest))
        elif name == NOT_REJECTED:
            results.append(_not_rejected(facts, digest))
        else:
            results.append(_not_already_deployed(facts, digest))
    return tuple(results)


def refused(results: Iterable[GateResult]) -> list[GateResult]:
    """The gates that stop the promotion (failed and not skipped)."""
    return [r for r in results if not r.passed and not r.skipped]


__all__ = [
    "GATE_NAMES",
    "MODEL_COMPATIBLE",
    "MODEL_QUALITY",
    "NOT_REJECTED",
    "SEVERITIES",
    "DigestCheck",
    "GateResult",
    "PromotionFacts",
    "PromotionPolicy",
    "ScanFindings",
    "Severity",
    "current_hold",
    "evaluate_gates",
    "findings_from_ci_run",
    "findings_from_ci_runs",
    "findings_from_counts",
    "last_successful",
    "policy_from_config",
    "producing_ci_run",
    "refused",
]
