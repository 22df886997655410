"""The ``verified`` gate: promotion from a stack that requires verification needs a
passing ``pipeline verify`` of the candidate's deployment (pure).

The verifications that count measured the candidate's digest in the source stack
from its deployment on (their window starts at or after the deployment finished).
A failed one refuses the promotion even when a later one passed: evidence is
judged as a whole, and a later record never erases an earlier finding (deploy
again for a fresh verification). Inconclusive ones (too few requests) count for
neither.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.images.refs import short_digest
from pipeline.records.model import Deployment, Verification, utc
from pipeline.verification.decide import summary


def _when(v: Verification) -> str:
    return f"{utc(v.until):%Y-%m-%d %H:%M} UTC"


def verified(
    required: bool, stack: str, candidate: Deployment, verifications: Iterable[Verification]
) -> tuple[bool, str]:
    """(passes, reason with the measured values)."""
    if not required:
        return True, f"not required from {stack} (cv-platform:verification.required is false)"
    since = utc(candidate.finished)
    mine = sorted(
        (
            v
            for v in verifications
            if v.stack == stack and v.digest == candidate.digest and utc(v.since) >= since
        ),
        key=lambda v: (utc(v.until), v.id or 0),
    )
    failed = [v for v in mine if v.result == "failed"]
    if failed:
        v = failed[-1]
        return False, (
            f"verification #{v.id} ({_when(v)}) {summary(v)}; a later pass does not erase it: "
            f"deploy {stack} again to verify anew"
        )
    passed = [v for v in mine if v.result == "passed"]
    if passed:
        v = passed[-1]
        return True, f"verification #{v.id} ({_when(v)}) {summary(v)}"
    digest = short_digest(candidate.digest)
    tried = f"; {len(mine)} inconclusive: {mine[-1].reason}" if mine else ""
    return False, (
        f"no passing verification of {digest} in {stack} since its deployment "
        f"({since:%Y-%m-%d %H:%M} UTC){tried} (run: pipeline verify {stack})"
    )


__all__ = ["verified"]
