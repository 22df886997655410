"""M_CD broken down per model version (pure): which models deliver, and which do not.

Each CI run and deployment belongs to the model of its digest: the newest model
card recorded for that digest (``name version``), or "no model card". Per model,
P_T, P_D and M_CD = P_T x P_D are computed by ``compute`` with all its rules
(window, stack selection, n/a without data) over that model's records alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.metrics.compute import compute
from pipeline.records.model import Records, Window

NO_CARD = "no model card"
_ALL_TIME = Window()


@dataclass(frozen=True)
class ModelFigures:
    model: str  # "digits 1.2.0", or NO_CARD
    p_t: float | None
    p_d: float | None
    m_cd: float | None
    ci_runs: int
    deployments: int

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "m_cd": self.m_cd,
            "p_t": self.p_t,
            "p_d": self.p_d,
            "ci_runs": self.ci_runs,
            "deployments": self.deployments,
        }


def by_model(
    records: Records, window: Window = _ALL_TIME, stacks: Sequence[str] = ()
) -> tuple[ModelFigures, ...]:
    """One row per model version with CI runs or deployments in the window, by name."""
    model_of = {card.digest: f"{card.name} {card.version}" for card in records.model_cards}

    def label(digest: str | None) -> str:
        return model_of.get(digest or "", NO_CARD)

    labels = sorted(
        {label(r.digest) for r in records.ci_runs} | {label(d.digest) for d in records.deployments},
        key=lambda name: (name == NO_CARD, name),
    )
    rows = []
    for name in labels:
        subset = Records(
            ci_runs=tuple(r for r in records.ci_runs if label(r.digest) == name),
            deployments=tuple(d for d in records.deployments if label(d.digest) == name),
        )
        figures = compute(subset, window, stacks)
        if figures.ci_runs or figures.deployments:
            rows.append(
                ModelFigures(
                    name,
                    figures.p_t,
                    figures.p_d,
                    figures.m_cd,
                    figures.ci_runs,
                    figures.deployments,
                )
            )
    return tuple(rows)


def render_by_model(rows: Sequence[ModelFigures], *, markdown: bool = False) -> str:
    """The breakdown as a table (or Markdown), "n/a" without data."""

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    cells = [
        (r.model, show(r.m_cd), show(r.p_t), show(r.p_d), str(r.ci_runs), str(r.deployments))
        for r in rows
    ]
    heads = ("MODEL", "M_CD", "P_T", "P_D", "CI RUNS", "DEPLOYMENTS")
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|---|---:|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(["", "M_CD by model version:", "", *lines])
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]
    text = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [heads, *cells]
    ]
    return "\n".join(["M_CD by model version", *(f"  {line}" for line in text)])


__all__ = ["NO_CARD", "ModelFigures", "by_model", "render_by_model"]
