"""``cv-platform:monitoring``: the model environment's monitoring, as the operator wants it.

One object, declared in Pulumi.yaml with its defaults (``MONITORING_DEFAULTS``) and
on in both stacks: a ServiceMonitor for the metrics path, a PrometheusRule (recording
rules and alerts) and a Grafana dashboard ConfigMap, plus the NetworkPolicy rule
that lets Prometheus scrape. ``enabled: false`` declares none of them (a cluster
without the Prometheus Operator has no ServiceMonitor kind). Every problem is one
line naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from infra.config.defaults import MONITORING_DEFAULTS
from infra.config.kubernetes import dns_label, label_pair
from infra.config.values import SettingsError, config_object

KEY: Final = "monitoring"
# The model server's latency histogram buckets (model/model_server/app.py
# LATENCY_BUCKETS, in ms; a test keeps them equal). A budget on a bucket bound makes
# "p95 > budget" exact: more than 5% of requests were slower than the budget.
LATENCY_BUCKETS_MS: Final = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
# The Prometheus Operator's duration grammar (its CRDs' pattern).
_DURATION: Final = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)


@dataclass(frozen=True)
class MonitoringSettings:
    prometheus_namespace: str
    # (key, value) of the Prometheus pods allowed to scrape (never the whole namespace).
    prometheus_pod_label: tuple[str, str]
    # (key, value) put on the ServiceMonitor and PrometheusRule so that the Prometheus
    # selects them (kube-prometheus-stack: release=<its release>); None: no extra label.
    selector_label: tuple[str, str] | None
    scrape_interval: str
    alert_error_ratio: float
    alert_p95_seconds: float
    alert_p99_seconds: float
    dashboard: bool


def _pair(field: str, text: str) -> tuple[str, str] | None:
    return label_pair(f"{KEY}.{field}", text) if text else None


def parse_monitoring(raw: str | None) -> MonitoringSettings | None:
    """The ``cv-platform:monitoring`` object (engine string), or None when it is off."""
    value = MONITORING_DEFAULTS if raw is None else _json(raw)
    fields = config_object(value, MONITORING_DEFAULTS, KEY)
    if not fields["enabled"]:
        return None
    interval = fields["scrapeInterval"]
    if not _DURATION.match(interval) or interval in ("", "0"):
        raise SettingsError(
            f"{KEY}.scrapeInterval", f"must be a duration such as 15s or 1m, got {interval!r}"
        )
    ratio = fields["alertErrorRatio"]
    if not 0 < ratio < 1:
        raise SettingsError(
            f"{KEY}.alertErrorRatio", f"must be a ratio between 0 and 1 (e.g. 0.05), got {ratio!r}"
        )
    budgets = []
    for field in ("alertP95LatencyMs", "alertP99LatencyMs"):
        ms = fields[field]
        if ms not in LATENCY_BUCKETS_MS:
            bounds = ", ".join(f"{b:g}" for b in LATENCY_BUCKETS_MS if b == int(b))
            raise SettingsError(
                f"{KEY}.{field}",
                f"must be a bound of the server's latency histogram ({bounds}), got {ms!r}",
            )
        budgets.append(ms / 1000)
    if budgets[0] > budgets[1]:
        raise SettingsError(
            f"{KEY}.alertP99LatencyMs",
            f"must be at least alertP95LatencyMs ({fields['alertP95LatencyMs']}), "
            f"got {fields['alertP99LatencyMs']}",
        )
    return MonitoringSettings(
        prometheus_namespace=dns_label(f"{KEY}.prometheusNamespace", fields["prometheusNamespace"]),
        prometheus_pod_label=label_pair(
            f"{KEY}.prometheusPodSelector", fields["prometheusPodSelector"]
        ),
        selector_label=_pair("selectorLabel", fields["selectorLabel"]),
        scrape_interval=interval,
        alert_error_ratio=ratio,
        alert_p95_seconds=budgets[0],
        alert_p99_seconds=budgets[1],
        dashboard=fields["dashboard"],
    )


def _json(raw: str) -> object:
    import json

    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


__all__ = ["LATENCY_BUCKETS_MS", "MonitoringSettings", "parse_monitoring"]
