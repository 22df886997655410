"""The metrics in the Prometheus text exposition format (0.0.4), for a textfile collector.

Names are ``cvplatform_*``; figures with no data are left out (never NaN), counters
carry the ``_total`` suffix, and every sample is labelled with the stacks it covers.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.metrics.compute import Metrics
from pipeline.metrics.report import stack_label

PROMETHEUS_PREFIX = "cvplatform"


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in pairs.items()) + "}"


def _by_stack_and_result(
    totals: dict[str, int], kind: str
) -> list[tuple[dict[str, str], float | None]]:
    """Samples of the totals keyed ``KIND:STACK:RESULT``."""
    samples: list[tuple[dict[str, str], float | None]] = []
    for key, value in sorted(totals.items()):
        if key.startswith(f"{kind}:"):
            _, stack, result = key.split(":", 2)
            samples.append(({"stack": stack, "result": result}, float(value)))
    return samples


def render_prometheus(metrics: Metrics) -> str:
    """Text exposition format 0.0.4; metrics with no data are left out (never NaN)."""
    out: list[str] = []
    scope = {"stacks": stack_label(metrics)}
    dora_scope = {"stacks": ", ".join(metrics.dora.stacks) or "none"}

    def family(
        name: str,
        kind: str,
        help_text: str,
        samples: Sequence[tuple[dict[str, str], float | None]],
    ) -> None:
        present = [(labels, value) for labels, value in samples if value is not None]
        if not present:
            return
        # Text format 0.0.4: a counter is declared and sampled under its _total name.
        full = f"{PROMETHEUS_PREFIX}_{name}" + ("_total" if kind == "counter" else "")
        out.append(f"# HELP {full} {help_text}")
        out.append(f"# TYPE {full} {kind}")
        for labels, value in present:
            out.append(f"{full}{_labels(labels)} {float(value)!r}")

    def seconds(minutes: float | None) -> float | None:
        return None if minutes is None else minutes * 60

    def hours_to_s(hours: float | None) -> float | None:
        return None if hours is None else hours * 3600

    m = metrics
    d = m.dora
    # M_CI and M_CD as one word: promtool reads an "m" token as the abbreviated unit metre.
    family(
        "mci_seconds", "gauge", "M_CI = (T_C + T_T + T_D) / 3", [(scope, seconds(m.m_ci_minutes))]
    )
    family(
        "ci_build_time_seconds",
        "gauge",
        "T_C: mean build time of the window's CI runs",
        [(scope, seconds(m.t_c_minutes))],
    )
    family(
        "ci_test_time_seconds",
        "gauge",
        "T_T: mean test time of the window's CI runs",
        [(scope, seconds(m.t_t_minutes))],
    )
    family(
        "deploy_time_seconds",
        "gauge",
        "T_D: mean duration of the window's deployments",
        [(scope, seconds(m.t_d_minutes))],
    )
    family("mcd_ratio", "gauge", "M_CD = P_T * P_D (0..1)", [(scope, m.m_cd)])
    family(
        "test_pass_ratio",
        "gauge",
        "P_T = passed / (passed + failed + errors) (0..1)",
        [(scope, m.p_t)],
    )
    family(
        "deploy_success_ratio",
        "gauge",
        "P_D = succeeded / (succeeded + failed) (0..1)",
        [(scope, m.p_d)],
    )
    family("window_ci_runs", "gauge", "CI runs in the window", [(scope, float(m.ci_runs))])
    family(
        "window_deployments", "gauge", "deployments in the window", [(scope, float(m.deployments))]
    )
    family(
        "window_tests",
        "gauge",
        "test results summed over the window's CI runs",
        [
            ({**scope, "result": "passed"}, float(m.passed)),
            ({**scope, "result": "failed"}, float(m.failed)),
            ({**scope, "result": "error"}, float(m.errors)),
            ({**scope, "result": "skipped"}, float(m.skipped)),
        ],
    )
    family(
        "dora_deployment_frequency_per_week",
        "gauge",
        "DORA deployment frequency: successful deployments per week",
        [(dora_scope, d.deployment_frequency_per_week)],
    )
    family(
        "dora_lead_time_seconds",
        "gauge",
        "DORA lead time for changes: median commit -> deployed",
        [(dora_scope, hours_to_s(d.lead_time_hours))],
    )
    family(
        "dora_change_failure_ratio",
        "gauge",
        "DORA change failure rate (0..1)",
        [(dora_scope, d.change_failure_rate)],
    )
    family(
        "dora_recovery_time_seconds",
        "gauge",
        "DORA failed-deployment recovery time: median failure -> next success",
        [(dora_scope, hours_to_s(d.recovery_time_hours))],
    )
    family(
        "dora_samples",
        "gauge",
        "Samples behind the DORA figures: deployments, changes timed, recoveries, weeks",
        [
            ({**dora_scope, "key": "deployments"}, float(d.deployments)),
            ({**dora_scope, "key": "lead_time"}, float(d.lead_time_samples)),
            ({**dora_scope, "key": "recovery_time"}, float(d.recoveries)),
            ({**dora_scope, "key": "weeks"}, float(d.weeks)),
        ],
    )
    family(
        "dora_tier",
        "gauge",
        "DORA 2023 performance level per key (1 for the level reached)",
        [
            ({**dora_scope, "key": key, "tier": tier}, 1.0)
            for key, tier in d.tiers().items()
            if tier is not None
        ],
    )
    family(
        "ci_runs",
        "counter",
        "CI runs recorded up to the window's end",
        [({}, float(m.totals.get("ci_runs", 0)))],
    )
    family(
        "deployments",
        "counter",
        "deployments recorded up to the window's end",
        _by_stack_and_result(m.totals, "deployments"),
    )
    family(
        "rollbacks",
        "counter",
        "rollbacks recorded up to the window's end",
        [({}, float(m.totals.get("rollbacks", 0)))],
    )
    family(
        "verifications",
        "counter",
        "verifications recorded up to the window's end",
        _by_stack_and_result(m.totals, "verifications"),
    )
    return "\n".join(out) + "\n"
