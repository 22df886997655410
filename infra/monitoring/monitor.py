"""The ServiceMonitor for the model server's metrics path, and the same scrape as a
plain Prometheus scrape config (a Prometheus without the operator: the rehearsal's
and the tests').

Through a ServiceMonitor every series gets the target labels ``namespace``,
``service``, ``pod``, ``container``, ``endpoint`` (the port name) and ``job``; the
relabelings below add ``app`` and ``version`` from the pod's labels, which is how
``pipeline verify`` finds a deployment's pods (``pipeline.verification.labels``).
The app exports labels of its own named ``endpoint`` (the route) and ``version``
(on ``model_info``: the model's hash). Without ``honorLabels`` Prometheus renames
those to ``exported_endpoint`` and ``exported_version``, and every selector on
``endpoint="/predict"`` would silently match nothing; the metric relabelings put
the route back into ``endpoint`` and the model's hash into ``model_version``.
``honorLabels: true`` would fix the names too, but would let the app override
``namespace`` and ``pod``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pipeline.verification.labels import (
    APP,
    MODEL_VERSION,
    POD_NAME_LABEL,
    POD_VERSION_LABEL,
    VERSION,
)

PORT_NAME: Final = "http"


def _meta_label(pod_label: str) -> str:
    """The discovery label of a pod label (Prometheus' sanitised form)."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in pod_label)


RELABELINGS: Final[tuple[Mapping[str, Any], ...]] = (
    {"sourceLabels": [_meta_label(POD_NAME_LABEL)], "targetLabel": APP, "action": "replace"},
    {"sourceLabels": [_meta_label(POD_VERSION_LABEL)], "targetLabel": VERSION, "action": "replace"},
)
METRIC_RELABELINGS: Final[tuple[Mapping[str, Any], ...]] = (
    {
        "sourceLabels": ["exported_endpoint"],
        "regex": "(.+)",
        "targetLabel": "endpoint",
        "replacement": "$1",
        "action": "replace",
    },
    {
        "sourceLabels": ["exported_version"],
        "regex": "(.+)",
        "targetLabel": MODEL_VERSION,
        "replacement": "$1",
        "action": "replace",
    },
    {"regex": "exported_endpoint|exported_version", "action": "labeldrop"},
)


def service_monitor_spec(
    namespace: str, selector: Mapping[str, str], metrics_path: str, interval: str
) -> dict[str, Any]:
    """The ServiceMonitor's spec: the Service's ``http`` port, in its own namespace."""
    return {
        "selector": {"matchLabels": dict(selector)},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [
            {
                "port": PORT_NAME,
                "path": metrics_path,
                "scheme": "http",
                "interval": interval,
                "honorLabels": False,
                "relabelings": [dict(r) for r in RELABELINGS],
                "metricRelabelings": [dict(r) for r in METRIC_RELABELINGS],
            }
        ],
    }


_SNAKE = {"sourceLabels": "source_labels", "targetLabel": "target_label"}


def prometheus_relabel(relabeling: Mapping[str, Any]) -> dict[str, Any]:
    """An operator relabeling (camelCase) as Prometheus' relabel_config (snake_case)."""
    return {_SNAKE.get(key, key): value for key, value in relabeling.items()}


@dataclass(frozen=True)
class Target:
    """One pod as the ServiceMonitor would label it."""

    address: str  # host:port
    namespace: str
    service: str
    pod: str
    version: str


def target_group(target: Target) -> dict[str, Any]:
    """A static (or file_sd) target group: the pod with the labels the ServiceMonitor gives."""
    return {
        "targets": [target.address],
        "labels": {
            "namespace": target.namespace,
            "service": target.service,
            "job": target.service,
            "pod": target.pod,
            "container": target.service,
            "endpoint": PORT_NAME,
            APP: target.service,
            VERSION: target.version,
        },
    }


def static_scrape_config(
    job: str, targets: Sequence[Target], metrics_path: str, interval: str, timeout: str
) -> dict[str, Any]:
    """A Prometheus ``scrape_configs`` entry with the labels the ServiceMonitor gives."""
    return {
        "job_name": job,
        "metrics_path": metrics_path,
        "scrape_interval": interval,
        "scrape_timeout": timeout,
        "static_configs": [target_group(t) for t in targets],
        "metric_relabel_configs": [prometheus_relabel(r) for r in METRIC_RELABELINGS],
    }


__all__ = [
    "METRIC_RELABELINGS",
    "RELABELINGS",
    "Target",
    "prometheus_relabel",
    "service_monitor_spec",
    "static_scrape_config",
    "target_group",
]
