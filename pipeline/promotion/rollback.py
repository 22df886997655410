"""Rollback planning: which earlier digest a stack returns to (pure).

A stack rolls back only to a digest it ran successfully before: by default the
one before its current digest, ``--steps N`` back, or ``--to DIGEST`` when that
digest was deployed there. A digest deployed several times counts once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.images.refs import short_digest
from pipeline.records.model import Deployment


@dataclass(frozen=True)
class RollbackPlan:
    stack: str
    from_digest: str | None
    # The successful deployment whose image the stack returns to.
    to: Deployment
    # Earlier digests, newest first, as offered (for messages).
    choices: tuple[str, ...]


def rollback_choices(deployments: Iterable[Deployment], current: str | None) -> list[Deployment]:
    """Earlier successfully deployed digests of a stack, newest first, one per digest.

    The stack file's ``current`` digest is not a choice; a digest deployed
    several times counts once, at its latest deployment.
    """
    seen: set[str] = set()
    out: list[Deployment] = []
    ordered = sorted(deployments, key=lambda d: (d.finished, d.id or 0), reverse=True)
    for deployment in ordered:
        digest = deployment.digest
        if deployment.result != "succeeded" or not digest or digest == current or digest in seen:
            continue
        seen.add(digest)
        out.append(deployment)
    return out


def plan_rollback(
    stack: str,
    deployments: Iterable[Deployment],
    current: str | None,
    *,
    steps: int | None = None,
    to_digest: str | None = None,
) -> RollbackPlan:
    """Which earlier digest to return to: ``to_digest``, ``steps`` back, or the one before."""
    choices = rollback_choices(deployments, current)
    digests = tuple(d.digest for d in choices if d.digest)
    if not choices:
        raise PipelineError(
            f"nothing to roll back to: no successful deployment of {stack} with a digest "
            f"other than the current {short_digest(current)}"
        )
    if to_digest is not None:
        if to_digest == current:
            raise PipelineError(f"{stack} already pins {to_digest}")
        for deployment in choices:
            if deployment.digest == to_digest:
                return RollbackPlan(stack, current, deployment, digests)
        offered = ", ".join(short_digest(d) for d in digests)
        raise PipelineError(
            f"--to {to_digest} was never successfully deployed to {stack}; earlier digests: "
            f"{offered}"
        )
    count = 1 if steps is None else steps
    if count < 1:
        raise PipelineError(f"--steps must be >= 1, got {count}")
    if count > len(choices):
        raise PipelineError(
            f"--steps {count}: {stack} has only {len(choices)} earlier successfully "
            "deployed digest(s)"
        )
    return RollbackPlan(stack, current, choices[count - 1], digests)


__all__ = ["RollbackPlan", "plan_rollback", "rollback_choices"]
