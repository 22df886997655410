"""Text formats of the metrics: an aligned table for a terminal, Markdown for a page.

Every figure with no data is "n/a"; warnings and notes follow the figures.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.metrics.compute import Metrics
from pipeline.records.model import utc


def number(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def stack_label(metrics: Metrics) -> str:
    return ", ".join(metrics.stacks) if metrics.stacks else "all"


def window_label(metrics: Metrics) -> str:
    def show(at: datetime | None) -> str:
        return "-" if at is None else utc(at).strftime("%Y-%m-%d %H:%M UTC")

    return f"{show(metrics.since)} .. {show(metrics.until)}"


def _rows(metrics: Metrics) -> list[tuple[str, str, str]]:
    m = metrics
    d = m.dora
    tiers = d.tiers()
    return [
        (
            "M_CI",
            number(m.m_ci_minutes, 1, " min"),
            "(T_C + T_T + T_D) / 3",
        ),
        ("T_C build", number(m.t_c_minutes, 1, " min"), f"mean over {m.ci_runs} CI run(s)"),
        ("T_T test", number(m.t_t_minutes, 1, " min"), f"mean over {m.ci_runs} CI run(s)"),
        (
            "T_D deploy",
            number(m.t_d_minutes, 1, " min"),
            f"mean over {m.deployments} deployment(s)",
        ),
        ("M_CD", number(m.m_cd, 3), "P_T x P_D"),
        (
            "P_T",
            number(m.p_t, 3),
            f"{m.passed} passed, {m.failed} failed, {m.errors} errors ({m.skipped} skipped)",
        ),
        (
            "P_D",
            number(m.p_d, 3),
            f"{m.deployments_succeeded} succeeded, {m.deployments_failed} failed",
        ),
        (
            "deployment frequency",
            number(d.deployment_frequency_per_week, 2, " /week"),
            _tier_detail(
                tiers["deployment_frequency"],
                f"{d.frequency_bucket}: median {d.deployment_days_per_week:g} day(s) a week "
                f"with a deployment, over {d.weeks} week(s)"
                if d.frequency_bucket and d.deployment_days_per_week is not None
                else "no deployment",
            ),
        ),
        (
            "lead time for changes",
            number(d.lead_time_hours, 1, " h"),
            _tier_detail(
                tiers["lead_time"],
                f"median of {d.lead_time_samples} change(s)"
                if d.lead_time_samples
                else "no commit time known for a successful deployment"
                if d.deployments
                else "no deployment",
            ),
        ),
        (
            "change failure rate",
            _pct(d.change_failure_rate),
            _tier_detail(
                tiers["change_failure_rate"],
                f"{d.failed_changes} of {d.deployments} deployment(s)",
            ),
        ),
        (
            "recovery time",
            number(d.recovery_time_hours, 1, " h"),
            _tier_detail(
                tiers["recovery_time"],
                (
                    f"median of {d.recoveries}"
                    if d.recoveries or d.failed_changes
                    else "no failed change"
                    if d.deployments
                    else "no deployment"
                )
                + (f", {d.unrecovered} not yet recovered" if d.unrecovered else ""),
            ),
        ),
    ]


def _tier_detail(tier: str | None, detail: str) -> str:
    return f"{tier} ({detail})" if tier else detail


def render_table(metrics: Metrics) -> str:
    lines = [
        f"Delivery metrics {window_label(metrics)} (stacks: {stack_label(metrics)}; "
        f"DORA over {', '.join(metrics.dora.stacks) or 'none'})"
    ]
    rows = _rows(metrics)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for i, (name, value, detail) in enumerate(rows):
        if i == 7:
            lines.append("DORA (2023 definitions)")
        lines.append(f"  {name.ljust(width)}  {value.rjust(value_width)}  {detail}".rstrip())
    lines.extend(f"warning: {w}" for w in metrics.warnings)
    lines.extend(f"note: {n}" for n in metrics.notes)
    return "\n".join(lines)


def render_markdown(metrics: Metrics) -> str:
    lines = [
        f"### Delivery metrics, {window_label(metrics)}",
        "",
        f"Stacks: {stack_label(metrics)}; DORA over {', '.join(metrics.dora.stacks) or 'none'}.",
        "",
        "| metric | value | detail |",
        "|---|---:|---|",
    ]
    for name, value, detail in _rows(metrics):
        cells = (c.replace("|", "\\|") for c in (name, value, detail))
        lines.append("| " + " | ".join(cells) + " |")
    for w in metrics.warnings:
        lines.append(f"\n> warning: {w}")
    for n in metrics.notes:
        lines.append(f"\n> note: {n}")
    return "\n".join(lines)
