"""A local server that answers Prometheus' instant-query API (``/api/v1/query``) the way
Prometheus does, with fixed values for the three queries ``pipeline verify`` asks, for
the stage-script tests (tests/monitoring runs a real Prometheus).

The values are the answers' numbers as Prometheus prints them (``"NaN"`` included); a
query it does not know gets Prometheus' own 400 ``bad_data`` body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.quiet_server import QuietHTTPServer


@dataclass
class FakePrometheus:
    requests: str = "2033"
    error_ratio: str = "0"
    p95_seconds: str = "0.004"
    queries: list[str] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def value(self, expr: str) -> str | None:
        if expr.startswith("histogram_quantile(0.95"):
            return self.p95_seconds
        if expr.startswith("(sum(increase(model_http_requests_total"):
            return self.error_ratio
        if expr.startswith("sum(increase(model_http_requests_total"):
            return self.requests
        return None


def _handler(api: FakePrometheus) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            expr = query.get("query", [""])[0]
            with api.lock:
                api.queries.append(expr)
            value = api.value(expr) if parts.path == "/api/v1/query" else None
            body: dict[str, Any]
            if value is None:
                status, body = 400, {"status": "error", "errorType": "bad_data",
                                     "error": f"unknown query {expr!r}"}  # fmt: skip
            else:
                at = float(query.get("time", ["0"])[0])
                result = [{"metric": {}, "value": [at, value]}]
                status, body = (
                    200,
                    {
                        "status": "success",
                        "data": {"resultType": "vector", "result": result},
                    },
                )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def prometheus_api() -> Iterator[FakePrometheus]:
    api = FakePrometheus()
    server = QuietHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
