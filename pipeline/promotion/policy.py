"""The target stack's promotion settings: the ``promotion*`` config keys, validated.

Each bad value is one line naming the key, like every other setting. Fractions and
milliseconds are read from numbers or from text (``pulumi config set`` writes a
top-level value as a string, and Pulumi's typed schema has no number type, so
``Pulumi.yaml`` declares those two keys as strings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pipeline.errors import ConfigError

Severity = Literal["none", "low", "medium", "high", "critical"]
# promotionBlockSeverity values, lowest first; "none" blocks nothing.
SEVERITIES: tuple[Severity, ...] = ("none", "low", "medium", "high", "critical")
DEFAULT_MAX_ACCURACY_DROP = 0.005


@dataclass(frozen=True)
class PromotionPolicy:
    """The target stack's promotion settings (``promotion*`` config keys)."""

    soak_minutes: int = 30
    min_pass_percent: int = 100
    block_severity: Severity = "critical"
    # The candidate's held-out accuracy may be this much below the current model's.
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    # The candidate's p95 latency (one image, from its card) may be at most this; None: any.
    max_latency_ms: float | None = None


def _whole(
    values: Mapping[str, object], stack: str, key: str, default: int, low: int, high: int | None
) -> int:
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


def _number(values: Mapping[str, object], stack: str, key: str, expected: str) -> float | None:
    """A finite number from a number or its text; None when absent or empty text."""
    value = values.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ConfigError(f"stack {stack}: cv-platform:{key} must be {expected}, got {value!r}")
    return number


def policy_from_config(values: Mapping[str, object], stack: str) -> PromotionPolicy:
    """Validate the ``promotion*`` keys (given without the project prefix)."""
    severity = values.get("promotionBlockSeverity", "critical")
    level = next(
        (s for s in SEVERITIES if isinstance(severity, str) and severity.lower() == s), None
    )
    if level is None:
        raise ConfigError(
            f"stack {stack}: cv-platform:promotionBlockSeverity must be one of "
            f"{'|'.join(SEVERITIES)}, got {severity!r}"
        )
    fraction = "a fraction in 0..1 (e.g. 0.005)"
    drop = _number(values, stack, "promotionMaxAccuracyDrop", fraction)
    if drop is not None and not 0 <= drop <= 1:
        raise ConfigError(
            f"stack {stack}: cv-platform:promotionMaxAccuracyDrop must be {fraction}, got {drop}"
        )
    positive = "milliseconds above 0 (e.g. 25), or empty for no limit"
    latency = _number(values, stack, "promotionMaxLatencyMs", positive)
    if latency is not None and latency <= 0:
        raise ConfigError(
            f"stack {stack}: cv-platform:promotionMaxLatencyMs must be {positive}, got {latency:g}"
        )
    return PromotionPolicy(
        soak_minutes=_whole(values, stack, "promotionSoakMinutes", 30, 0, None),
        min_pass_percent=_whole(values, stack, "promotionMinPassPercent", 100, 0, 100),
        block_severity=level,
        max_accuracy_drop=DEFAULT_MAX_ACCURACY_DROP if drop is None else drop,
        max_latency_ms=latency,
    )


# The keys ``policy_from_config`` reads, as the promote command asks the stack for them.
POLICY_KEYS = (
    "promotionSoakMinutes",
    "promotionMinPassPercent",
    "promotionBlockSeverity",
    "promotionMaxAccuracyDrop",
    "promotionMaxLatencyMs",
)

__all__ = ["POLICY_KEYS", "SEVERITIES", "PromotionPolicy", "Severity", "policy_from_config"]
