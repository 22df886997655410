"""cv-platform:monitoring in ModelEnvironment: the ServiceMonitor, the PrometheusRule and
the Grafana dashboard both stacks declare, and the settings' rules (through the program
and parse_settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import DEFAULTS, LATENCY_BUCKETS_MS, SettingsError, parse_settings
from pipeline.render.mocks import ProgramRun
from pipeline.verification import settings as verification_settings
from tests.infra.conftest import BASE, by_kind, engine_values, one, unwrap

STACKS = ("staging", "prod")


def settings(**monitoring: Any) -> Any:
    values = engine_values({**BASE, "monitoring": monitoring})
    return parse_settings(values, stack="staging").monitoring


def refused(**monitoring: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        settings(**monitoring)
    return str(caught.value)


def dashboards(run: ProgramRun) -> list[Any]:
    maps = by_kind(run, "ConfigMap")
    return [c for c in maps if c.inputs["metadata"]["name"].endswith("-dashboard")]


@pytest.fixture(scope="module", params=STACKS)
def run(request: pytest.FixtureRequest) -> ProgramRun:
    found: ProgramRun = request.getfixturevalue(request.param)
    return found


def test_both_stacks_declare_a_monitor_rules_and_a_dashboard(run: ProgramRun) -> None:
    monitor = one(run, "ServiceMonitor").inputs
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == "model-server"
    rules = one(run, "PrometheusRule").inputs
    assert rules["metadata"]["name"] == "model-server-rules"
    (board,) = [
        c for c in by_kind(run, "ConfigMap") if c.inputs["metadata"]["name"].endswith("-dashboard")
    ]
    assert board.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_monitor_scrapes_the_services_http_port_on_the_metrics_path(run: ProgramRun) -> None:
    monitor = one(run, "ServiceMonitor").inputs
    service = one(run, "Service").inputs
    namespace = service["metadata"]["namespace"]
    assert monitor["metadata"]["namespace"] == namespace
    assert monitor["spec"]["selector"] == {"matchLabels": service["spec"]["selector"]}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [namespace]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "http"
    assert endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is False


def test_the_monitor_labels_series_with_app_and_version_from_the_pod(run: ProgramRun) -> None:
    (endpoint,) = one(run, "ServiceMonitor").inputs["spec"]["endpoints"]
    pod_labels = one(run, "Deployment").inputs["spec"]["template"]["metadata"]["labels"]
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets == {
        "app": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        "version": ["__meta_kubernetes_pod_label_app_kubernetes_io_version"],
    }
    assert "app.kubernetes.io/name" in pod_labels
    assert "app.kubernetes.io/version" in pod_labels
    # The app's own endpoint and version labels would collide with the target's.
    renamed = {r.get("targetLabel") for r in endpoint["metricRelabelings"]}
    assert renamed == {"endpoint", "model_version", None}


def test_rule_groups_are_the_environments_own(run: ProgramRun) -> None:
    namespace = one(run, "Service").inputs["metadata"]["namespace"]
    groups = one(run, "PrometheusRule").inputs["spec"]["groups"]
    assert [g["name"] for g in groups] == [
        f"model-server.{namespace}.recording",
        f"model-server.{namespace}.alerts",
    ]
    for group in groups:
        for rule in group["rules"]:
            if "absent(" not in rule["expr"] and "kube_" not in rule["expr"]:
                assert f'namespace="{namespace}",service="model-server"' in rule["expr"]


def test_the_dashboard_is_json_for_the_environment(run: ProgramRun) -> None:
    (board,) = [
        c for c in by_kind(run, "ConfigMap") if c.inputs["metadata"]["name"].endswith("-dashboard")
    ]
    (name, text) = next(iter(board.inputs["data"].items()))
    model = json.loads(text)
    namespace = one(run, "Service").inputs["metadata"]["namespace"]
    assert name.endswith(".json")
    assert model["templating"]["list"][1]["current"]["value"] == namespace
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    kinds = {panel["type"] for panel in model["panels"]}
    assert kinds == {"row", "stat", "timeseries", "table"}
    assert len(text) < 200_000  # far under a ConfigMap's 1 MiB


def test_monitoring_off_declares_none_of_it(run_stack: Any) -> None:
    off = run_stack("staging", {"monitoring": {"enabled": False}})
    assert by_kind(off, "ServiceMonitor") == []
    assert by_kind(off, "PrometheusRule") == []
    names = [c.inputs["metadata"]["name"] for c in by_kind(off, "ConfigMap")]
    assert names == ["model-server-settings"]


def test_the_selector_label_lets_a_prometheus_select_the_monitor_and_rules(run_stack: Any) -> None:
    run = run_stack("staging", {"monitoring": {"selectorLabel": "release=kube-prometheus-stack"}})
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert one(run, kind).inputs["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_alert_budgets_reach_the_rules(run_stack: Any) -> None:
    run = run_stack("staging", {"monitoring": {"alertErrorRatio": 0.02, "alertP95LatencyMs": 100}})
    alerts = {
        r["alert"]: r["expr"]
        for g in unwrap(one(run, "PrometheusRule").inputs)["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert alerts["ModelServerHighErrorRatio"].endswith("> 0.02")
    assert alerts["ModelServerLatencyP95High"].endswith("> 0.1")


def test_monitoring_is_on_by_default() -> None:
    parsed = parse_settings(engine_values(BASE), stack="staging")
    assert parsed.monitoring is not None
    assert parsed.monitoring.prometheus_namespace == "monitoring"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"enabled": "yes"}, "cv-platform:monitoring.enabled must be true or false"),
        (
            {"scrapeInterval": "15 seconds"},
            "cv-platform:monitoring.scrapeInterval must be a duration",
        ),
        ({"alertErrorRatio": 1.5}, "cv-platform:monitoring.alertErrorRatio must be a ratio"),
        ({"alertP95LatencyMs": 300}, "cv-platform:monitoring.alertP95LatencyMs must be a bound"),
        (
            {"alertP95LatencyMs": 500, "alertP99LatencyMs": 250},
            "cv-platform:monitoring.alertP99LatencyMs must be at least alertP95LatencyMs",
        ),
        (
            {"prometheusNamespace": "Monitoring"},
            "cv-platform:monitoring.prometheusNamespace must be",
        ),
        ({"selectorLabel": "release"}, "cv-platform:monitoring.selectorLabel entries must be"),
        # Prometheus is admitted by its pods' label, never as its whole namespace.
        (
            {"prometheusPodSelector": ""},
            "cv-platform:monitoring.prometheusPodSelector entries must be",
        ),
        ({"grafana": True}, "cv-platform:monitoring.grafana is not a known field"),
    ],
)
def test_bad_monitoring_settings_are_one_line_naming_the_field(
    fields: dict[str, Any], message: str
) -> None:
    text = refused(**fields)
    assert text.startswith(message if message.startswith("cv-") else f"cv-platform:{message}")
    assert "\n" not in text


def test_latency_budgets_are_the_servers_histogram_bounds(project_root: Path) -> None:
    import ast

    tree = ast.parse((project_root / "model/model_server/app.py").read_text())
    (buckets,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "LATENCY_BUCKETS" for t in node.targets)
    ]
    assert tuple(b * 1000 for b in buckets) == pytest.approx(LATENCY_BUCKETS_MS)


def test_verification_defaults_equal_pulumi_yaml(project_root: Path) -> None:
    block = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    assert block["verification"]["value"] == dict(verification_settings.DEFAULTS)
    assert block["monitoring"]["value"] == DEFAULTS["monitoring"]
