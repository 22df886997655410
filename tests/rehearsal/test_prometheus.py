"""The rehearsal's Prometheus, for real: it scrapes what the deploy stand-in's target
files name, labelled as the ServiceMonitor would, loads the rendered rules on a
reload, and is gone (with its TSDB) when stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.monitoring.monitor import Target
from rehearsal.proc import pid_alive
from rehearsal.prometheus import BINARY, RehearsalPrometheus, write_targets
from tests.monitoring.servers import exposition_server
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

# What the model server exports (its own `endpoint` and `version` labels included).
EXPOSITION = (
    'model_http_requests_total{endpoint="/predict",method="POST",status="200"} 7\n'
    'model_info{version="3f2a"} 1\n'
)


@pytest.fixture
def rehearsal_prometheus(tmp_path: Path) -> Iterator[RehearsalPrometheus]:
    if not os.access(BINARY, os.X_OK):
        pytest.skip(f"{BINARY} is not installed (Debian package prometheus)")
    server = RehearsalPrometheus(tmp_path / "prometheus", tmp_path / "prometheus.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_deployed_replicas_are_scraped_with_the_service_monitor_labels(
    rehearsal_prometheus: RehearsalPrometheus,
) -> None:
    with exposition_server(EXPOSITION) as address:
        target = Target(address, "cv-staging", "model-server", "model-server-0", "9f3c2ab")
        write_targets(rehearsal_prometheus.root, "staging", [target])
        # file_sd re-reads every 5 s; then a scrape a second.
        assert rehearsal_prometheus.wait_scraped("cv-staging", 1, timeout=30)
        selector = '{namespace="cv-staging",app="model-server",version="9f3c2ab"}'
        wait_until(
            lambda: bool(
                rehearsal_prometheus.api(f"/api/v1/query?query=model_info{selector}")["result"]
            ),
            what="model_info",
            timeout=10,
        )
        (requests,) = rehearsal_prometheus.api(
            f"/api/v1/query?query=model_http_requests_total{selector}"
        )["result"]
        (info,) = rehearsal_prometheus.api(f"/api/v1/query?query=model_info{selector}")["result"]
    # The app's route is back in `endpoint`, the model's hash in `model_version`.
    assert requests["metric"]["endpoint"] == "/predict"
    assert requests["metric"]["pod"] == "model-server-0"
    assert "exported_endpoint" not in requests["metric"]
    assert info["metric"]["model_version"] == "3f2a"


def test_replicas_not_scraped_is_false_within_the_timeout(
    rehearsal_prometheus: RehearsalPrometheus,
) -> None:
    assert not rehearsal_prometheus.wait_scraped("cv-prod", 1, timeout=2)


def test_the_rendered_rules_are_loaded_on_reload(
    rehearsal_prometheus: RehearsalPrometheus, tmp_path: Path
) -> None:
    render = tmp_path / "render"
    render.mkdir()
    rule = {"record": "namespace:up:sum", "expr": 'sum by (namespace) (up{namespace="cv-x"})'}
    (render / "prometheusrule-cv-x-model-server-rules.yaml").write_text(
        yaml.safe_dump(
            {"kind": "PrometheusRule", "spec": {"groups": [{"name": "g", "rules": [rule]}]}}
        )
    )
    assert rehearsal_prometheus.load_rules("staging", render) == 1

    def loaded() -> bool:
        groups = rehearsal_prometheus.api("/api/v1/rules")["groups"]
        return [r["name"] for g in groups for r in g["rules"]] == ["namespace:up:sum"]

    wait_until(loaded, what="the reloaded rules", timeout=15, interval=0.2)


def test_stop_ends_the_process_and_removes_the_tsdb(tmp_path: Path) -> None:
    if not os.access(BINARY, os.X_OK):
        pytest.skip(f"{BINARY} is not installed (Debian package prometheus)")
    server = RehearsalPrometheus(tmp_path / "prometheus", tmp_path / "prometheus.log")
    try:
        server.start()
        pid = server.pid
        assert pid is not None
        assert pid_alive(pid)
        assert (server.root / "tsdb").is_dir()
    finally:
        server.stop()
    assert not pid_alive(pid)
    assert not (server.root / "tsdb").exists()
