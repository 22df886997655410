"""The model gates: is the candidate's model at least as good as the one the target runs,
and does it take and give what that one does? Pure functions over model cards.

The model "now in the target" is the one of the target's last successful
deployment, judged by that digest's newest card. The candidate's evidence is
judged as a whole: with several cards for its digest, its lowest accuracy and
highest p95 latency count, and its cards must agree on the signature. Either
side without a card is refused (``--skip-gate`` skips a gate, recorded).

- ``model-quality``: candidate accuracy >= current accuracy - ``promotionMaxAccuracyDrop``,
  and, when ``promotionMaxLatencyMs`` is set, candidate p95 latency <= it.
- ``model-compatible``: the signatures are equal (MLflow's specs compared, not their
  text), or the candidate's major version is higher: a declared breaking change.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.images.refs import short_digest
from pipeline.promotion.signatures import signature_differences
from pipeline.records.model import ModelCard
from pipeline.records.sources.mlmodel import MLmodelError, Signature, parse_signature

_SHOWN = 4  # differences named in a reason before "and N more"
# Accuracies are fractions written with a few decimals: 0.97 - 0.005 is 0.9650000000000001
# in binary floating point, which must not refuse a candidate at exactly 0.965.
_ROUNDING = 12


@dataclass(frozen=True)
class ModelSide:
    """One side of the comparison: a digest and its cards (oldest first)."""

    digest: str | None
    cards: tuple[ModelCard, ...] = ()

    @property
    def newest(self) -> ModelCard | None:
        return self.cards[-1] if self.cards else None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def _missing(candidate: ModelSide, current: ModelSide, target: str) -> Verdict | None:
    if not candidate.cards:
        return Verdict(False, f"no model card recorded for {short_digest(candidate.digest)}")
    if current.digest is None:
        return Verdict(
            False, f"{target} has no successful deployment: no model there to compare with"
        )
    if not current.cards:
        return Verdict(
            False,
            f"no model card recorded for {short_digest(current.digest)}, the model {target} runs",
        )
    return None


def judge_quality(
    candidate: ModelSide,
    current: ModelSide,
    target: str,
    max_drop: float,
    max_latency_ms: float | None,
) -> Verdict:
    missing = _missing(candidate, current, target)
    if missing is not None:
        return missing
    now = current.newest
    assert now is not None
    accuracy = min(c.accuracy for c in candidate.cards)
    needed = round(now.accuracy - max_drop, _ROUNDING)
    several = f" (lowest of {len(candidate.cards)} cards)" if len(candidate.cards) > 1 else ""
    parts = [
        f"accuracy {accuracy:.4f}{several} vs {now.accuracy:.4f} in {target} "
        f"(needs >= {needed:.4f})"
    ]
    passed = round(accuracy, _ROUNDING) >= needed
    if max_latency_ms is not None:
        p95s = [c.latency_p95_ms for c in candidate.cards]
        if any(p is None for p in p95s):
            passed = False
            parts.append(
                "the candidate's card has no latency_ms.p95 (promotionMaxLatencyMs is set)"
            )
        else:
            p95 = max(p for p in p95s if p is not None)
            passed = passed and p95 <= max_latency_ms
            parts.append(f"p95 {p95:g} ms (limit {max_latency_ms:g} ms)")
    return Verdict(passed, "; ".join(parts))


def _signature(card: ModelCard) -> Signature:
    raw = {"inputs": card.inputs, "outputs": card.outputs, "params": card.params}
    return parse_signature(raw, source=f"model card #{card.id}")


def major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def judge_compatibility(candidate: ModelSide, current: ModelSide, target: str) -> Verdict:
    missing = _missing(candidate, current, target)
    if missing is not None:
        return missing
    now = current.newest
    new = candidate.newest
    assert now is not None
    assert new is not None
    try:
        mine = [_signature(c) for c in candidate.cards]
        theirs = _signature(now)
    except MLmodelError as exc:
        return Verdict(False, f"a recorded signature cannot be read: {exc}")
    if any(signature_differences(mine[0], other) for other in mine[1:]):
        return Verdict(
            False,
            f"the {len(mine)} cards of {short_digest(candidate.digest)} disagree on the signature",
        )
    differences = signature_differences(theirs, mine[-1])
    versions = f"{now.version} -> {new.version}"
    if not differences:
        return Verdict(
            True,
            f"signature unchanged ({len(mine[-1].inputs)} input(s), "
            f"{len(mine[-1].outputs)} output(s)); {versions}",
        )
    listed = "; ".join(differences[:_SHOWN]) + (
        f"; and {len(differences) - _SHOWN} more" if len(differences) > _SHOWN else ""
    )
    old_major, new_major = major(now.version), major(new.version)
    if old_major is not None and new_major is not None and new_major > old_major:
        return Verdict(
            True, f"breaking change declared by the major version ({versions}): {listed}"
        )
    return Verdict(False, f"signature differs without a new major version ({versions}): {listed}")


def describe_specs(text: str | None) -> str:
    """A signature side in a few words: "tensor float64 [-1, 64]", "4 columns (double)"."""
    if not text:
        return "-"
    try:
        sig = parse_signature({"inputs": text}, source="card")
    except MLmodelError:
        return "unreadable"
    specs = sig.inputs
    if len(specs) == 1:
        return specs[0].describe()
    kinds = sorted({s.describe() for s in specs})
    return f"{len(specs)} specs ({', '.join(kinds[:3])}{', ...' if len(kinds) > 3 else ''})"


__all__ = [
    "ModelSide",
    "Verdict",
    "describe_specs",
    "judge_compatibility",
    "judge_quality",
    "major",
]
