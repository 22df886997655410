"""``cv-platform:verification``: when and how a stack's deployments are verified.

The object's fields, with the defaults ``Pulumi.yaml`` declares (mirrored in
``DEFAULTS``; a test keeps them equal): ``required`` (promotion from this stack
needs a passing verification), ``window`` (a Prometheus duration), ``minRequests``
(fewer is too few to judge), ``maxErrorRatio`` (5xx share of prediction
requests, 0..1), ``maxP95LatencyMs`` and ``prometheusUrl``. Every problem is one
line naming the key. Pure: the command reads the stack config and passes it in.

A Prometheus URL (the setting, ``--prometheus``, the client's) is checked by
``prometheus_url_problem``: ``pipeline.io.urls.split``'s rules, and no credentials in
it (a bearer token goes in ``PIPELINE_PROMETHEUS_TOKEN``); no message quotes userinfo.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pipeline.errors import ConfigError, UsageError
from pipeline.io.urls import BadUrl, has_userinfo, split

KEY: Final = "cv-platform:verification"
ENV_TOKEN: Final = "PIPELINE_PROMETHEUS_TOKEN"  # noqa: S105 - the variable's name
DEFAULTS: Final[Mapping[str, Any]] = {
    "required": False,
    "window": "5m",
    "minRequests": 100,
    "maxErrorRatio": 0.01,
    "maxP95LatencyMs": 250,
    "prometheusUrl": "",
}
# A window must hold at least two scrapes for rate() (Prometheus answers nothing
# for a rate over one sample); longer than a day is not a post-deploy check.
MIN_WINDOW_SECONDS: Final = 2.0
MAX_WINDOW_SECONDS: Final = 24 * 3600.0
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


@dataclass(frozen=True)
class VerificationPolicy:
    required: bool
    window_seconds: float
    min_requests: int
    max_error_ratio: float
    max_p95_ms: float
    prometheus_url: str


def duration_seconds(text: str) -> float:
    """A Prometheus duration (``90s``, ``5m``, ``1h30m``, ``500ms``) in seconds; ValueError."""
    raw = text.strip()
    match = _DURATION.match(raw)
    if not raw or match is None or not any(match.groups()):
        raise ValueError(f"must be a duration such as 30s, 5m or 1h30m, got {text!r}")
    hours, minutes, secs, millis = (int(g) if g else 0 for g in match.groups())
    return hours * 3600.0 + minutes * 60.0 + secs + millis / 1000.0


def format_duration(seconds: float) -> str:
    """Seconds as PromQL writes them (``300s``; whole milliseconds below a second)."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


# Each check returns its value, or raises ValueError("must ...") for the caller to prefix.


def check_window(seconds: float) -> float:
    if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(
            f"must be from {MIN_WINDOW_SECONDS:g}s to 24h (two scrapes at least), "
            f"got {format_duration(seconds)}"
        )
    return seconds


def check_ratio(value: float) -> float:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"must be a ratio from 0 to 1, got {value:g}")
    return value


def check_latency(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"must be milliseconds > 0, got {value:g}")
    return value


def policy_from_config(value: Any, stack: str) -> VerificationPolicy:
    """The stack's ``cv-platform:verification`` object (None: every default)."""
    fields = dict(DEFAULTS)
    if value is not None:
        if not isinstance(value, dict):
            raise ConfigError(f"stack {stack}: {KEY} must be an object, got {value!r}")
        unknown = sorted(set(value) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"stack {stack}: {KEY}.{unknown[0]} is not a known field: "
                f"{KEY} has only {', '.join(DEFAULTS)}"
            )
        fields.update({k: v for k, v in value.items() if v is not None})

    def fail(name: str, problem: str) -> ConfigError:
        return ConfigError(f"stack {stack}: {KEY}.{name} {problem}")

    required = fields["required"]
    if not isinstance(required, bool):
        raise fail("required", f"must be true or false, got {required!r}")
    try:
        window = check_window(duration_seconds(str(fields["window"])))
    except ValueError as exc:
        raise fail("window", str(exc)) from None
    min_requests = fields["minRequests"]
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        raise fail("minRequests", f"must be a whole number >= 1, got {min_requests!r}")
    numbers: dict[str, float] = {}
    for name, check in (("maxErrorRatio", check_ratio), ("maxP95LatencyMs", check_latency)):
        raw = fields[name]
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise fail(name, f"must be a number, got {raw!r}")
        try:
            numbers[name] = check(float(raw))
        except ValueError as exc:
            raise fail(name, str(exc)) from None
    url = fields["prometheusUrl"]
    if not isinstance(url, str):
        raise fail("prometheusUrl", f"must be an http(s):// URL or empty, got {url!r}")
    problem = prometheus_url_problem(url) if url else None
    if problem:
        raise fail("prometheusUrl", problem)
    return VerificationPolicy(
        required=required,
        window_seconds=window,
        min_requests=min_requests,
        max_error_ratio=numbers["maxErrorRatio"],
        max_p95_ms=numbers["maxP95LatencyMs"],
        prometheus_url=url.rstrip("/"),
    )


def prometheus_url_problem(url: str) -> str | None:
    """What is wrong with a Prometheus base URL (to follow its name), or None.

    Never quotes the URL's userinfo: a URL with some is refused outright, since the
    client sends a bearer token from ``PIPELINE_PROMETHEUS_TOKEN`` and nothing else.
    """
    if has_userinfo(url):
        return (
            "carries credentials (user:password@ before the host): remove them; "
            f"a token goes in {ENV_TOKEN}"
        )
    try:
        split(url)
    except BadUrl as exc:
        return str(exc)
    return None


def window_option(text: str) -> float:
    """``--window``: a Prometheus duration within the limits (UsageError otherwise)."""
    try:
        return check_window(duration_seconds(text))
    except ValueError as exc:
        raise UsageError(f"--window {exc}") from None


__all__ = [
    "DEFAULTS",
    "ENV_TOKEN",
    "KEY",
    "VerificationPolicy",
    "check_latency",
    "check_ratio",
    "duration_seconds",
    "format_duration",
    "policy_from_config",
    "prometheus_url_problem",
    "window_option",
]
