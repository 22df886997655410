"""Pass, fail or inconclusive: what a verification's measured values say (pure).

Nothing is judged below ``min_requests``: too little traffic is inconclusive,
never a pass. A broken limit fails even when another value is missing (a
deployment answering only 5xx has no latency to speak of); otherwise any missing
value is inconclusive. Only a pass with every value measured is a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.records.model import Verification, VerifyResult


@dataclass(frozen=True)
class Thresholds:
    min_requests: int
    max_error_ratio: float
    max_p95_ms: float


@dataclass(frozen=True)
class Measured:
    """What Prometheus answered; None when it had no data (no series, or NaN)."""

    requests: float | None
    error_ratio: float | None
    p95_seconds: float | None


@dataclass(frozen=True)
class Check:
    name: str
    measured: str
    threshold: str
    status: str  # pass | FAIL | n/a


@dataclass(frozen=True)
class Verdict:
    result: VerifyResult
    checks: tuple[Check, ...]
    reason: str


def percent(ratio: float | None) -> str:
    return "no data" if ratio is None else f"{ratio * 100:.2f}%"


def milliseconds(seconds: float | None) -> str:
    return "no data" if seconds is None else f"{seconds * 1000:.0f} ms"


def requests_text(count: float | None) -> str:
    return "no data" if count is None else f"{count:.0f}"


def decide(measured: Measured, limits: Thresholds) -> Verdict:
    """The verdict on ``measured`` against ``limits``, with one check row per value."""
    count = measured.requests
    enough = count is not None and count >= limits.min_requests
    checks = [
        Check(
            "requests",
            requests_text(count),
            f">= {limits.min_requests}",
            "pass" if enough else "FAIL",
        )
    ]
    if not enough:
        why = "no prediction requests" if count is None else f"{count:.0f} < {limits.min_requests}"
        checks += [
            Check("error ratio", percent(measured.error_ratio), _ratio_limit(limits), "n/a"),
            Check("p95 latency", milliseconds(measured.p95_seconds), _p95_limit(limits), "n/a"),
        ]
        return Verdict("inconclusive", tuple(checks), f"too few requests to judge: {why}")
    broken: list[str] = []
    missing: list[str] = []
    ratio = measured.error_ratio
    if ratio is None:
        missing.append("error ratio")
        checks.append(Check("error ratio", "no data", _ratio_limit(limits), "n/a"))
    else:
        ok = ratio <= limits.max_error_ratio
        checks.append(Check("error ratio", percent(ratio), _ratio_limit(limits), _status(ok)))
        if not ok:
            broken.append(f"error ratio {percent(ratio)} > {percent(limits.max_error_ratio)}")
    p95 = measured.p95_seconds
    if p95 is None:
        missing.append("p95 latency")
        checks.append(Check("p95 latency", "no data", _p95_limit(limits), "n/a"))
    else:
        ok = p95 * 1000 <= limits.max_p95_ms
        checks.append(Check("p95 latency", milliseconds(p95), _p95_limit(limits), _status(ok)))
        if not ok:
            broken.append(f"p95 latency {milliseconds(p95)} > {limits.max_p95_ms:g} ms")
    if broken:
        return Verdict("failed", tuple(checks), "; ".join(broken))
    if missing:
        return Verdict("inconclusive", tuple(checks), f"no data for {' and '.join(missing)}")
    assert count is not None
    return Verdict(
        "passed",
        tuple(checks),
        f"{count:.0f} requests, error ratio {percent(ratio)}, p95 {milliseconds(p95)}",
    )


def _status(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _ratio_limit(limits: Thresholds) -> str:
    return f"<= {percent(limits.max_error_ratio)}"


def _p95_limit(limits: Thresholds) -> str:
    return f"<= {limits.max_p95_ms:g} ms"


def summary(record: Verification) -> str:
    """One line of what a recorded verification measured (history, the verified gate)."""
    measured = (
        f"{requests_text(record.requests)} requests, error ratio {percent(record.error_ratio)}, "
        f"p95 {milliseconds(record.p95_seconds)}"
    )
    if record.result == "passed":
        return f"passed: {measured}"
    return f"{record.result}: {record.reason or measured}"


__all__ = ["Check", "Measured", "Thresholds", "Verdict", "decide", "summary"]
