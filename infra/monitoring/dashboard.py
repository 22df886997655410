"""The Grafana dashboard of one model environment: serving above, delivery below.

Serving: request rate, the prediction endpoint's 5xx ratio and latency quantiles
(the PrometheusRule's recorded series, with the alert thresholds as lines), ready
replicas and targets up, restarts, predictions by digit, and the model and image
versions running. Delivery: the ``pipeline metrics --format prometheus`` series
(``DELIVERY_SERIES``; a test checks every name against that output), read from a
textfile collector or Pushgateway. JSON model schemaVersion 39, a ``datasource``
variable, deterministic (sorted keys) so a second render changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, Literal

from infra.monitoring.rules import PRODUCTION, Budgets, RecordNames

PanelType = Literal["timeseries", "stat", "table"]
_DS: Final = {"type": "prometheus", "uid": "${datasource}"}
# The delivery metrics' names (pipeline/metrics/prometheus.py writes them).
DELIVERY_SERIES: Final = {
    "mci": "cvplatform_mci_seconds",
    "mcd": "cvplatform_mcd_ratio",
    "build": "cvplatform_ci_build_time_seconds",
    "test": "cvplatform_ci_test_time_seconds",
    "deploy": "cvplatform_deploy_time_seconds",
    "p_t": "cvplatform_test_pass_ratio",
    "p_d": "cvplatform_deploy_success_ratio",
    "frequency": "cvplatform_dora_deployment_frequency_per_week",
    "lead_time": "cvplatform_dora_lead_time_seconds",
    "failure": "cvplatform_dora_change_failure_ratio",
    "recovery": "cvplatform_dora_recovery_time_seconds",
    "tier": "cvplatform_dora_tier",
    "deployments": "cvplatform_deployments_total",
    "verifications": "cvplatform_verifications_total",
}


def _panel(
    pid: int,
    kind: PanelType,
    title: str,
    grid: tuple[int, int, int, int],
    targets: Sequence[tuple[str, str]],
    unit: str = "none",
    thresholds: Sequence[tuple[str, float | None]] = (("green", None),),
    description: str = "",
) -> dict[str, Any]:
    x, y, w, h = grid
    panel: dict[str, Any] = {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": _DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [
            {"datasource": _DS, "expr": expr, "legendFormat": legend, "refId": chr(65 + i)}
            for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": c, "value": v} for c, v in thresholds],
                },
            },
            "overrides": [],
        },
    }
    if description:
        panel["description"] = description
    if kind == "timeseries" and len(thresholds) > 1:
        panel["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
    if kind == "table":
        for target in panel["targets"]:
            target.update({"format": "table", "instant": True})
    return panel


def _row(pid: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def serving_panels(service: str, predict: str, budgets: Budgets) -> list[dict[str, Any]]:
    names = RecordNames(PRODUCTION.window)
    sel = f'namespace="$namespace",service="{service}"'
    on_predict = f'{sel},endpoint="{predict}"'
    ksm = 'namespace="$namespace"'
    red = budgets.error_ratio
    return [
        _row(1, "Serving", 0),
        _panel(
            2,
            "timeseries",
            "Requests by endpoint and status",
            (0, 1, 12, 8),
            [
                (
                    f"sum by (endpoint, status) "
                    f"(rate(model_http_requests_total{{{sel}}}[$__rate_interval]))",
                    "{{endpoint}} {{status}}",
                )
            ],
            "reqps",
        ),
        _panel(
            3,
            "timeseries",
            f"{predict} 5xx ratio",
            (12, 1, 12, 8),
            [(f"{names.error_ratio}{{{on_predict}}}", "5xx share")],
            "percentunit",
            (("green", None), ("red", red)),
            f"The 5xx share of {predict} over {PRODUCTION.window}; the line is the alert's.",
        ),
        _panel(
            4,
            "timeseries",
            f"{predict} latency p50 / p95 / p99",
            (0, 9, 12, 8),
            [(f"{names.quantile(q)}{{{on_predict}}}", f"p{q}") for q in (50, 95, 99)],
            "s",
            (("green", None), ("orange", budgets.p95_seconds), ("red", budgets.p99_seconds)),
            "Quantiles interpolate inside histogram buckets: budgets sit on bucket bounds.",
        ),
        _panel(
            5,
            "timeseries",
            "Ready replicas",
            (12, 9, 6, 8),
            [
                (
                    f'kube_deployment_status_replicas_available{{{ksm},deployment="{service}"}}',
                    "available",
                ),
                (f'kube_deployment_spec_replicas{{{ksm},deployment="{service}"}}', "desired"),
            ],
        ),
        _panel(
            6,
            "stat",
            "Targets up",
            (18, 9, 6, 4),
            [(f"sum(up{{{sel}}})", "up")],
            thresholds=(("red", None), ("green", 1)),
        ),
        _panel(
            7,
            "stat",
            "Container restarts (1h)",
            (18, 13, 6, 4),
            [
                (
                    "sum(increase(kube_pod_container_status_restarts_total"
                    f'{{{ksm},container="{service}"}}[1h]))',
                    "restarts",
                )
            ],
            thresholds=(("green", None), ("red", 1)),
        ),
        _panel(
            8,
            "timeseries",
            "Predictions by digit",
            (0, 17, 12, 8),
            [
                (
                    f"sum by (digit) (rate(model_predictions_total{{{sel}}}[$__rate_interval]))",
                    "{{digit}}",
                )
            ],
            "reqps",
            description="A shift between digits after a deployment can mean a changed model.",
        ),
        _panel(
            9,
            "table",
            "Model and image versions running",
            (12, 17, 12, 8),
            [(f"count by (model_version, version) (model_info{{{sel}}})", "")],
            description="version: the image (git sha); model_version: the model's own hash.",
        ),
    ]


def delivery_panels(y: int) -> list[dict[str, Any]]:
    m = DELIVERY_SERIES
    return [
        _row(20, "Delivery (pipeline metrics)", y),
        _panel(21, "stat", "M_CI", (0, y + 1, 4, 4), [(m["mci"], "{{stacks}}")], "s"),
        _panel(
            22,
            "stat",
            "M_CD",
            (4, y + 1, 4, 4),
            [(m["mcd"], "{{stacks}}")],
            "percentunit",
            (("red", None), ("orange", 0.8), ("green", 0.95)),
        ),
        _panel(
            23,
            "stat",
            "P_T / P_D",
            (8, y + 1, 8, 4),
            [(m["p_t"], "P_T {{stacks}}"), (m["p_d"], "P_D {{stacks}}")],
            "percentunit",
        ),
        _panel(
            24,
            "timeseries",
            "Build / test / deploy time (window means)",
            (16, y + 1, 8, 8),
            [(m["build"], "T_C build"), (m["test"], "T_T test"), (m["deploy"], "T_D deploy")],
            "s",
        ),
        _panel(
            25,
            "stat",
            "DORA keys",
            (0, y + 5, 16, 4),
            [
                (m["frequency"], "deployments/week"),
                (m["lead_time"], "lead time (s)"),
                (m["failure"], "change failure rate"),
                (m["recovery"], "recovery (s)"),
            ],
            description="Lead time and recovery in seconds, change failure rate 0..1.",
        ),
        _panel(
            26,
            "table",
            "DORA levels",
            (0, y + 9, 8, 6),
            [(f"{m['tier']} == 1", "")],
        ),
        _panel(
            27,
            "timeseries",
            "Deployments and verifications recorded",
            (8, y + 9, 16, 6),
            [
                (f"sum by (stack, result) ({m['deployments']})", "deploy {{stack}} {{result}}"),
                (f"sum by (stack, result) ({m['verifications']})", "verify {{stack}} {{result}}"),
            ],
        ),
    ]


def dashboard(
    service: str, namespace: str, stack: str, predict: str, budgets: Budgets
) -> dict[str, Any]:
    """The dashboard model; ``namespace`` is the default of its ``namespace`` variable."""
    variable_query = f'label_values(up{{service="{service}"}}, namespace)'
    return {
        "uid": f"cv-{service}-{stack}"[:40],
        "title": f"cv-platform {service} ({stack})",
        "tags": ["cv-platform", "model-server", stack],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                },
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": _DS,
                    "definition": variable_query,
                    "query": {"query": variable_query, "refId": "namespace"},
                    "current": {"text": namespace, "value": namespace},
                    "refresh": 2,
                    "hide": 0,
                },
            ]
        },
        "panels": [*serving_panels(service, predict, budgets), *delivery_panels(25)],
    }


def dashboard_json(model: dict[str, Any]) -> str:
    """The dashboard as the ConfigMap carries it: sorted keys, stable across runs."""
    return json.dumps(model, sort_keys=True, indent=1) + "\n"


def panel_queries(model: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, panel type, expr) of every target of every panel."""
    return [
        (str(panel["title"]), str(panel["type"]), str(target["expr"]))
        for panel in model["panels"]
        for target in panel.get("targets", [])
    ]


__all__ = ["DELIVERY_SERIES", "dashboard", "dashboard_json", "panel_queries"]
