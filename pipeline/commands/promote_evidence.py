"""What ``promote`` asks the store about the candidate's evidence, and how it shows it.

The evidence gates (vulnerabilities from scans and waivers, model-quality and
model-compatible from model cards, not-rejected from rollbacks and
readmissions) decide in ``pipeline.promotion``; this module gathers their facts
for the candidate's digest (only those of gates not skipped) and prints the
candidate's model beside the one the target runs.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from collections.abc import Set
    from typing import Any

    from pipeline.promotion.gates import PromotionFacts
    from pipeline.records.model import ModelCard, Readmission
    from pipeline.records.stores import Store


def evidence_facts(
    store: Store, digest: str | None, target: str, skip: Set[str], readmit: str
) -> dict[str, Any]:
    """``PromotionFacts`` fields for the evidence gates (empty for skipped gates)."""
    from pipeline.promotion.gates import (
        MODEL_COMPATIBLE,
        MODEL_QUALITY,
        NOT_REJECTED,
        VULNERABILITIES,
        last_successful,
    )
    from pipeline.promotion.rejection import (
        rejections_from_rollbacks,
        rejections_from_verifications,
    )

    facts: dict[str, Any] = {"readmit_reason": readmit}
    if digest is None:
        return facts
    if VULNERABILITIES not in skip:
        facts["scans"] = tuple(store.scans(digest))
        facts["waivers"] = tuple(store.waivers(digest))
    if not {MODEL_QUALITY, MODEL_COMPATIBLE} <= skip:
        facts["candidate_cards"] = tuple(store.model_cards(digest))
        current = last_successful(store.deployments(target))
        if current is not None and current.digest:
            facts["current_digest"] = current.digest
            facts["current_cards"] = tuple(store.model_cards(current.digest))
    if NOT_REJECTED not in skip:
        facts["rejections"] = (
            *rejections_from_rollbacks(store.rollbacks(target)),
            *rejections_from_verifications(store.verifications(target)),
        )
        facts["readmissions"] = tuple(store.readmissions(target))
    return facts


def readmission(facts: PromotionFacts, digest: str, actor: str) -> Readmission | None:
    """The readmission this promotion records: --readmit given for a rejected digest."""
    from pipeline.promotion.rejection import judge_rejection
    from pipeline.records.model import Readmission

    if not facts.readmit_reason:
        return None
    verdict = judge_rejection(
        facts.target_stack, digest, facts.rejections, facts.readmissions, facts.readmit_reason
    )
    if not verdict.readmit:
        return None
    return Readmission(facts.target_stack, digest, facts.readmit_reason, facts.now, actor)


def _column(digest: str | None, cards: tuple[ModelCard, ...], *, whole: bool) -> list[str]:
    """One side of the model table, aggregated as the gates judge it: the candidate
    (``whole``) by its lowest accuracy and highest p95 over all its cards, the current
    model by its newest card (``pipeline.promotion.models``)."""
    from pipeline.images.refs import short_digest
    from pipeline.promotion.models import describe_specs

    if not cards:
        return [short_digest(digest), "no model card", "", "", "", "", ""]
    card = cards[-1]
    judged = cards if whole else (card,)
    accuracy = min(c.accuracy for c in judged)
    p95s = [c.latency_p95_ms for c in judged if c.latency_p95_ms is not None]
    p50 = "-" if card.latency_p50_ms is None else f"{card.latency_p50_ms:g}"
    latency = f"{p50} / {max(p95s):g} ms" if p95s else "-"
    several = f" (lowest of {len(judged)})" if len(judged) > 1 else ""
    return [
        short_digest(digest),
        card.name,
        card.version,
        f"{accuracy:.4f}{several}",
        latency,
        describe_specs(card.inputs),
        describe_specs(card.outputs),
    ]


def model_table(facts: PromotionFacts, digest: str | None) -> str | None:
    """The candidate's model beside the target's current one (None when neither has a card)."""
    from pipeline.commands.output import table

    if not facts.candidate_cards and not facts.current_cards:
        return None
    rows = zip(
        ("digest", "model", "version", "accuracy", "latency p50/p95", "inputs", "outputs"),
        _column(digest, facts.candidate_cards, whole=True),
        _column(facts.current_digest, facts.current_cards, whole=False),
        strict=True,
    )
    heads = ("MODEL", f"CANDIDATE ({facts.source_stack})", f"CURRENT ({facts.target_stack})")
    return table(heads, [tuple(row) for row in rows])


__all__ = ["evidence_facts", "model_table", "readmission"]
