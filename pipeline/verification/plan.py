"""Which pods a verification looks at, over which window, and where a failed one rolls
back to (pure).

- The deployment verified is the stack's last recorded one; it must have succeeded.
- Its pods are selected by the labels the ServiceMonitor gives (``labels``): the
  stack's namespace, its app name, and the version label of the deployed image.
- The window ends now and is never older than the deployment: a verification
  asked for before ``window`` has passed since the deployment waits for it, so
  that it measures that long of the new pods' traffic.
- A failed verification rolls back to the last digest of the stack that passed a
  verification (and was deployed successfully), else to the successful
  deployment before the current one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.errors import PipelineError
from pipeline.images.refs import InvalidReferenceError, parse_ref, short_digest
from pipeline.project import PROJECT_NAME
from pipeline.records.model import Deployment, Verification, utc
from pipeline.verification.labels import APP, NAMESPACE, VERSION, version_label
from pipeline.verification.selector import Matcher

DEFAULT_APP = "model-server"
DEFAULT_PREDICT = "/predict"


def deployment_to_verify(stack: str, deployments: Sequence[Deployment]) -> Deployment:
    """The stack's last deployment, when it succeeded with a digest; else PipelineError."""
    if not deployments:
        raise PipelineError(f"no deployment of {stack} is recorded: nothing to verify")
    last = max(deployments, key=lambda d: (utc(d.finished), d.id or 0))
    when = f"{utc(last.finished):%Y-%m-%d %H:%M} UTC"
    if last.result != "succeeded":
        raise PipelineError(
            f"the last deployment of {stack} (finished {when}) failed: there is nothing new "
            "to verify; deploy again first"
        )
    if not last.digest:
        raise PipelineError(f"the last deployment of {stack} ({when}) recorded no digest")
    return last


def default_selector(
    stack: str, config: Mapping[str, Any], deployment: Deployment
) -> tuple[Matcher, ...]:
    """``{namespace=..., app=..., version=...}`` of the deployment's pods."""
    namespace = str(config.get("namespace") or f"{PROJECT_NAME}-{stack}")
    app = str(config.get("appName") or DEFAULT_APP)
    try:
        tag = parse_ref(deployment.image).tag
    except InvalidReferenceError:
        tag = None
    version = version_label(tag, deployment.digest)
    if version is None:
        raise PipelineError(
            f"the deployment of {stack} ({deployment.image}) has no version label to select "
            "its pods by; give --selector"
        )
    return (
        Matcher(NAMESPACE, "=", namespace),
        Matcher(APP, "=", app),
        Matcher(VERSION, "=", version),
    )


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()


def wait_seconds(deployment: Deployment, window_seconds: float, now: datetime) -> float:
    """How long to wait until ``window_seconds`` have passed since the deployment."""
    ready = utc(deployment.finished) + timedelta(seconds=window_seconds)
    return max(0.0, (ready - utc(now)).total_seconds())


def measured_window(deployment: Deployment, window_seconds: float, now: datetime) -> Window:
    """The window ending ``now``: ``window_seconds`` long, never before the deployment."""
    until = utc(now)
    since = max(until - timedelta(seconds=window_seconds), utc(deployment.finished))
    return Window(since, until)


def rollback_target(
    stack: str,
    current: str | None,
    deployments: Iterable[Deployment],
    verifications: Iterable[Verification],
) -> tuple[str | None, str]:
    """The digest to roll back to and why, in words (None: nothing to return to).

    Each digest is judged by its newest verification in the stack: the last digest
    whose newest verification passed, else the newest successful deployment of a
    digest whose newest verification did not fail (one that passed once and failed
    since is no place to return to).
    """
    newest: dict[str, Verification] = {}
    for v in sorted(
        (v for v in verifications if v.stack == stack), key=lambda v: (utc(v.until), v.id or 0)
    ):
        newest[v.digest] = v
    succeeded = [d for d in deployments if d.result == "succeeded" and d.digest]
    deployed = {d.digest for d in succeeded}
    passed = [
        v for digest, v in newest.items()
        if v.result == "passed" and digest != current and digest in deployed
    ]  # fmt: skip
    if passed:
        last = max(passed, key=lambda v: (utc(v.until), v.id or 0))
        return last.digest, f"the last verified digest ({short_digest(last.digest)})"
    failed = {digest for digest, v in newest.items() if v.result == "failed"}
    for d in sorted(succeeded, key=lambda d: (utc(d.finished), d.id or 0), reverse=True):
        if d.digest != current and d.digest not in failed:
            return d.digest, (
                "the deployment before it (no earlier digest of the stack passed a verification)"
            )
    return None, "nothing to return to"


__all__ = [
    "Window",
    "default_selector",
    "deployment_to_verify",
    "measured_window",
    "rollback_target",
    "wait_seconds",
]
