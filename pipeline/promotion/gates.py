"""Promotion gates: pure functions over plain data.

The command (``pipeline.commands.promote``) gathers the facts -- records
from the store, the target's stack file, the registry's answer, the scan
findings -- into a ``PromotionFacts``; everything here decides from those
facts alone, so every gate is tested without a registry, a store or a clock.

The digest promoted is the one of the last *successful* deployment of the
source stack, never the newest tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pipeline.errors import ConfigError, PipelineError
from pipeline.images.refs import short_digest
from pipeline.records.model import CiRun, Deployment, Hold

SOURCE_SUCCEEDED = "source-succeeded"
SOAK = "soak"
DIGEST_RESOLVES = "digest-resolves"
TESTS_PASSED = "tests-passed"
VULNERABILITIES = "vulnerabilities"
NOT_ON_HOLD = "not-on-hold"
NOT_ALREADY_DEPLOYED = "not-already-deployed"

# In evaluation and display order.
GATE_NAMES = (
    SOURCE_SUCCEEDED,
    SOAK,
    DIGEST_RESOLVES,
    TESTS_PASSED,
    VULNERABILITIES,
    NOT_ON_HOLD,
    NOT_ALREADY_DEPLOYED,
)

GateStatus = Literal["pass", "FAIL", "skipped"]
Severity = Literal["none", "low", "medium", "high", "critical"]
# promotionBlockSeverity values, lowest first; "none" blocks nothing.
SEVERITIES: tuple[Severity, ...] = ("none", "low", "medium", "high", "critical")
_LEVEL = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
# Findings whose severity the scanner did not settle: they block at any threshold.
_UNSETTLED = frozenset({"undefined", "untriaged"})
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
class PromotionPolicy:
    """The target stack's promotion settings (``promotion*`` config keys)."""

    soak_minutes: int = 30
    min_pass_percent: int = 100
    block_severity: Severity = "critical"


def policy_from_config(values: Mapping[str, object], stack: str) -> PromotionPolicy:
    """Validate the ``promotion*`` keys (given without the project prefix)."""

    def integer(key: str, default: int, low: int, high: int | None) -> int:
        value = values.get(key, default)
        # YAML may give 30.0 or "30"; bool is an int subclass and never meant here.
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"stack {stack}: cv-platform:{key} must be a whole number")
        try:
            number = int(str(value).strip()) if isinstance(value, str) else int(value)
        except ValueError:
            raise ConfigError(
                f"stack {stack}: cv-platform:{key} must be a whole number, got {value!r}"
            ) from None
        if number != value and not isinstance(value, str):
            raise ConfigError(f"stack {stack}: cv-platform:{key} must be a whole number")
        if number < low or (high is not None and number > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise ConfigError(f"stack {stack}: cv-platform:{key} must be {bounds}, got {number}")
        return number

    severity = values.get("promotionBlockSeverity", "critical")
    level = next(
        (s for s in SEVERITIES if isinstance(severity, str) and severity.lower() == s), None
    )
    if level is None:
        raise ConfigError(
            f"stack {stack}: cv-platform:promotionBlockSeverity must be one of "
            f"{'|'.join(SEVERITIES)}, got {severity!r}"
        )
    return PromotionPolicy(
        soak_minutes=integer("promotionSoakMinutes", 30, 0, None),
        min_pass_percent=integer("promotionMinPassPercent", 100, 0, 100),
        block_severity=level,
    )


@dataclass(frozen=True)
class DigestCheck:
    """The registry's answer: does the digest still serve the same manifest?"""

    matches: bool
    detail: str = ""


@dataclass(frozen=True)
class ScanFindings:
    """Vulnerability counts for the candidate image, from one source.

    ``counts`` maps lowercase severity to a count; ``covers`` is the lowest
    severity the source counts at all (an ECR scan counts every level; a CI
    run records only critical and high), so a threshold below it cannot be
    checked from this source.
    """

    source: str
    counts: tuple[tuple[str, int], ...]
    covers: str = "low"


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
    try:
        ready = candidate.finished + needed
    except OverflowError:  # a row from before times were checked: "finished" in 9999
        return GateResult(
            SOAK,
            False,
            f"its deployment is recorded as finished {_when(candidate.finished)}, ahead of "
            "this machine's clock: record the real deployment (record deploy)",
        )
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
    threshold = facts.policy.block_severity
    if threshold == "none":
        return GateResult(VULNERABILITIES, True, "promotionBlockSeverity is none")
    findings = facts.findings
    if findings is None:
        return GateResult(VULNERABILITIES, False, facts.findings_error or "no scan findings")
    if _LEVEL[findings.covers] > _LEVEL[threshold]:
        return GateResult(
            VULNERABILITIES,
            False,
            f"{findings.source} counts only {findings.covers} and above; "
            f"cannot check findings at {threshold}",
        )
    blocking = [
        (severity, count)
        for severity, count in findings.counts
        if count > 0 and (severity in _UNSETTLED or _LEVEL.get(severity, 0) >= _LEVEL[threshold])
    ]
    if blocking:
        listed = ", ".join(f"{count} {severity}" for severity, count in blocking)
        return GateResult(
            VULNERABILITIES, False, f"{findings.source}: {listed} (blocks at {threshold})"
        )
    counted = ", ".join(f"{count} {severity}" for severity, count in findings.counts if count)
    return GateResult(
        VULNERABILITIES,
        True,
        f"{findings.source}: nothing at {threshold} or above"
        + (f" ({counted})" if counted else ""),
    )


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
        elif name == DIGEST_RESOLVES:
            results.append(_digest_resolves(facts, candidate))
        elif name == TESTS_PASSED:
            results.append(_tests_passed(facts, digest))
        else:
            results.append(_not_already_deployed(facts, digest))
    return tuple(results)


def refused(results: Iterable[GateResult]) -> list[GateResult]:
    """The gates that stop the promotion (failed and not skipped)."""
    return [r for r in results if not r.passed and not r.skipped]


def findings_from_counts(source: str, counts: Mapping[str, int]) -> ScanFindings:
    """Scanner counts (any case, e.g. ECR's ``findingSeverityCounts``) as ScanFindings."""
    order = {**_LEVEL, "undefined": -1, "untriaged": -1}
    merged: dict[str, int] = {}
    for severity, count in counts.items():
        merged[severity.lower()] = merged.get(severity.lower(), 0) + int(count)
    ranked = sorted(merged.items(), key=lambda item: -order.get(item[0], -1))
    return ScanFindings(source, tuple(ranked), covers="low")


def findings_from_ci_run(run: CiRun) -> ScanFindings | None:
    """The scan counts recorded with a CI run (critical, and high when recorded)."""
    if run.scan_critical is None:
        return None
    counts = [("critical", run.scan_critical)]
    if run.scan_high is not None:
        counts.append(("high", run.scan_high))
    covers = "high" if run.scan_high is not None else "critical"
    return ScanFindings(f"CI run #{run.id} scan", tuple(counts), covers=covers)


__all__ = [
    "GATE_NAMES",
    "SEVERITIES",
    "DigestCheck",
    "GateResult",
    "PromotionFacts",
    "PromotionPolicy",
    "ScanFindings",
    "current_hold",
    "evaluate_gates",
    "findings_from_ci_run",
    "findings_from_counts",
    "last_successful",
    "policy_from_config",
    "producing_ci_run",
    "refused",
]
