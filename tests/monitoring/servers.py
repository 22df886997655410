"""Real servers for the monitoring tests: the model server under gunicorn (as its
image starts it), a text-exposition server, and Prometheus (Debian's 2.42) in the
foreground on free loopback ports, each stopped by PID and waited for with bounds.

The exposition server stands in for kube-state-metrics (no Kubernetes API server
runs here) and for the node-exporter textfile collector that would carry
``pipeline metrics --format prometheus``: it serves fixed text in the real format.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.registry_fixture import free_port
from tests.waiting import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = PROJECT_ROOT / "model"
HERE = Path(__file__).resolve().parent


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL after a bounded wait."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def write_model(path: Path) -> Path:
    """A model file the server loads (fixed parameters: these tests are about serving,
    not accuracy, so no training run is spent on them)."""
    sys.path.insert(0, str(MODEL_DIR))
    try:
        from model_server.classifier import DigitClassifier
    finally:
        sys.path.remove(str(MODEL_DIR))
    pattern = np.sin(np.arange(640, dtype=np.float64)).reshape(10, 64)
    model = DigitClassifier(
        mean=np.full(64, 4.0),
        scale=np.full(64, 6.0),
        coef=pattern,
        intercept=np.zeros(10),
        metadata={"purpose": "monitoring tests"},
    )
    model.save(path)
    return path


@dataclass(frozen=True)
class ModelServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]


@contextmanager
def model_server(
    tmp: Path, model_path: Path, *, app: str | None = None, ready: bool = True, **env: str
) -> Iterator[ModelServer]:
    """gunicorn with the image's gunicorn.conf.py on loopback; ``app`` replaces its app."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "gunicorn.log"
    argv = [sys.executable, "-m", "gunicorn", "--config", str(MODEL_DIR / "gunicorn.conf.py")]
    argv += ["--bind", f"127.0.0.1:{port}", *([app] if app else [])]
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{MODEL_DIR}{os.pathsep}{HERE}",
        "MODEL_PATH": str(model_path),
        "TMPDIR": str(tmp),
        "HOME": str(tmp),
        "PYTHONDONTWRITEBYTECODE": "1",
        "GUNICORN_THREADS": "8",
        "LOG_LEVEL": "warning",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=MODEL_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wanted = 200 if ready else 503

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2):
                    return wanted == 200
            except urllib.error.HTTPError as exc:
                return exc.code == wanted

        wait_until(answers, what=f"gunicorn on {url}", timeout=60, process=process, log=log)
        yield ModelServer(url, port, process)
    finally:
        stop(process)


class _Exposition(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def exposition_server(text: str) -> Iterator[str]:
    """An HTTP server answering every GET with ``text`` (exposition format); its host:port."""
    handler = type("Fixed", (_Exposition,), {"body": text.encode()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float  # time.monotonic() at start

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.load(answer)["data"]


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip("prometheus is not installed (Debian package prometheus; make setup)")
    return found


@contextmanager
def prometheus(
    directory: Path,
    scrape_configs: Sequence[dict[str, Any]],
    groups: Sequence[dict[str, Any]] = (),
) -> Iterator[Prometheus]:
    """Prometheus in the foreground: 1 s scrapes and rule evaluations, a TSDB of its own."""
    binary = prometheus_binary()
    directory.mkdir(parents=True, exist_ok=True)
    rules = directory / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": list(groups)}, sort_keys=False))
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(rules)],
                "scrape_configs": list(scrape_configs),
            },
            sort_keys=False,
        )
    )
    port = free_port()
    log = directory / "prometheus.log"
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                return int(answer.status) == 200

        wait_until(ready, what=f"prometheus on {url}", timeout=30, process=process, log=log)
        yield Prometheus(url, process, log, started)
    finally:
        stop(process)
