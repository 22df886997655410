"""The rehearsal's Prometheus (Debian's 2.42), scraping the replicas the deploys run.

No Prometheus Operator runs here, so the ServiceMonitor is stood in for by the same
scrape as plain config (``infra.monitoring.monitor``): the replicas come from files
the deploy stand-in writes (``file_sd``: ``targets-STACK.json``, re-read when they
change), each with the labels the ServiceMonitor would give (namespace, service,
pod, app, version) and its metric relabelings; the rules are the rendered
PrometheusRules' groups (``rules-STACK.yaml``, loaded again on SIGHUP). 1 s scrapes
and evaluations; the TSDB lives under the run directory and is removed with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from infra.monitoring.monitor import METRIC_RELABELINGS, Target, prometheus_relabel, target_group
from rehearsal.proc import StageFailed, pid_alive, start_background, stop_pid, wait_until
from rehearsal.registry import free_port

BINARY = "/usr/bin/prometheus"
JOB = "serviceMonitor/model-server"


def write_targets(directory: Path, stack: str, targets: list[Target]) -> None:
    """The stack's replicas for file_sd, replaced atomically (Prometheus watches it)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".targets-{stack}.json.tmp"
    tmp.write_text(json.dumps([target_group(t) for t in targets], indent=1))
    tmp.replace(directory / f"targets-{stack}.json")


class RehearsalPrometheus:
    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.pid: int | None = None
        self.url = ""

    def config(self, metrics_path: str) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(self.root / "rules-*.yaml")],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": metrics_path,
                    "file_sd_configs": [
                        {"files": [str(self.root / "targets-*.json")], "refresh_interval": "5s"}
                    ],
                    "metric_relabel_configs": [prometheus_relabel(r) for r in METRIC_RELABELINGS],
                }
            ],
        }

    def start(self, metrics_path: str = "/metrics") -> str:
        if not os.access(BINARY, os.X_OK):
            raise StageFailed(f"start Prometheus: {BINARY} is missing (Debian package prometheus)")
        shutil.rmtree(self.root / "tsdb", ignore_errors=True)
        for stale in [*self.root.glob("targets-*.json"), *self.root.glob("rules-*.yaml")]:
            stale.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(metrics_path), sort_keys=False))
        address = f"127.0.0.1:{free_port()}"
        argv = [
            BINARY,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.root / 'tsdb'}",
            f"--web.listen-address={address}",
            "--log.level=warn",
        ]
        self.pid = start_background(argv, log=self.log)
        pid = self.pid
        self.url = f"http://{address}"

        def ready() -> bool:
            try:
                ready_url = f"{self.url}/-/ready"
                with urllib.request.urlopen(ready_url, timeout=1) as answer:  # noqa: S310
                    return int(answer.status) == 200
            except OSError:
                return False

        if not wait_until(ready, timeout=30, alive=lambda: pid_alive(pid)):
            raise StageFailed(f"start Prometheus: {self.url}/-/ready did not answer within 30 s")
        return self.url

    def load_rules(self, stack: str, render_dir: Path) -> int:
        """The rendered PrometheusRule's groups as ``rules-STACK.yaml``; reload. The count."""
        groups: list[Any] = []
        for path in sorted(render_dir.glob("prometheusrule-*.yaml")):
            groups += (yaml.safe_load(path.read_text()) or {}).get("spec", {}).get("groups", [])
        (self.root / f"rules-{stack}.yaml").write_text(
            yaml.safe_dump({"groups": groups}, sort_keys=False)
        )
        if self.pid is not None:
            os.kill(self.pid, signal.SIGHUP)
        return sum(len(g.get("rules", [])) for g in groups)

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:  # noqa: S310 - loopback
            return json.load(answer)["data"]

    def wait_scraped(self, namespace: str, count: int, timeout: float = 30) -> bool:
        """Whether ``count`` replicas of ``namespace`` were scraped within ``timeout``."""
        query = f'/api/v1/query?query=sum(up{{namespace="{namespace}"}})'

        def scraped() -> bool:
            try:
                found = self.api(query)["result"]
            except OSError:
                return False
            return bool(found) and float(found[0]["value"][1]) >= count

        return wait_until(scraped, timeout=timeout, interval=0.5)

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid, grace=10)
            self.pid = None
        shutil.rmtree(self.root / "tsdb", ignore_errors=True)


__all__ = ["RehearsalPrometheus", "write_targets"]
