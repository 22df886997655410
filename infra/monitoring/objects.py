"""The monitoring objects of one model environment, as plain data for ModelEnvironment.

A ServiceMonitor and a PrometheusRule (``monitoring.coreos.com/v1``), labelled with
the settings' ``selectorLabel`` so the Prometheus selects them, and a dashboard
ConfigMap labelled ``grafana_dashboard: "1"``, the label kube-prometheus-stack's
Grafana sidecar loads dashboards by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from infra.config import MonitoringSettings, ServerSettings
from infra.monitoring.dashboard import dashboard, dashboard_json
from infra.monitoring.monitor import service_monitor_spec
from infra.monitoring.rules import Budgets, rule_groups

MONITORING_API: Final = "monitoring.coreos.com/v1"
GRAFANA_DASHBOARD_LABEL: Final = "grafana_dashboard"


@dataclass(frozen=True)
class MonitoringObjects:
    # (resource name suffix, kind, object name, spec) of each custom resource.
    custom: tuple[tuple[str, str, str, dict[str, Any]], ...]
    extra_labels: Mapping[str, str]
    # (ConfigMap name, data) of the dashboard; None without one.
    dashboard: tuple[str, dict[str, str]] | None


def budgets_of(monitoring: MonitoringSettings) -> Budgets:
    return Budgets(
        monitoring.alert_error_ratio, monitoring.alert_p95_seconds, monitoring.alert_p99_seconds
    )


def monitoring_objects(
    app: str,
    namespace: str,
    stack: str,
    selector: Mapping[str, str],
    server: ServerSettings,
    monitoring: MonitoringSettings,
) -> MonitoringObjects:
    budgets = budgets_of(monitoring)
    monitor = service_monitor_spec(
        namespace, selector, server.metrics_path, monitoring.scrape_interval
    )
    rules = {"groups": rule_groups(namespace, app, server.predict_path, budgets)}
    board = None
    if monitoring.dashboard:
        model = dashboard(app, namespace, stack, server.predict_path, budgets)
        board = (f"{app}-dashboard", {f"{app}-{stack}.json": dashboard_json(model)})
    return MonitoringObjects(
        custom=(
            ("service-monitor", "ServiceMonitor", app, monitor),
            ("rules", "PrometheusRule", f"{app}-rules", rules),
        ),
        extra_labels=dict([monitoring.selector_label]) if monitoring.selector_label else {},
        dashboard=board,
    )


__all__ = ["GRAFANA_DASHBOARD_LABEL", "MONITORING_API", "MonitoringObjects", "monitoring_objects"]
