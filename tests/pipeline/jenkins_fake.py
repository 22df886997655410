"""A fake Jenkins on 127.0.0.1 (port chosen by the OS) serving REST JSON per path."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.quiet_server import QuietHTTPServer


class FakeJenkins:
    """Routes path -> (status, body); checks Basic auth when credentials are set."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.credentials: tuple[str, str] | None = None
        handler = self._handler()
        self.server = QuietHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                auth = self.headers.get("Authorization")
                fake.requests.append((self.path, auth))
                if fake.credentials is not None:
                    expected = (
                        "Basic " + base64.b64encode(":".join(fake.credentials).encode()).decode()
                    )
                    if auth != expected:
                        self._send(401, b"<html>Unauthorized</html>", "text/html")
                        return
                status, body = fake.routes.get(path, (404, b"<html>Not Found</html>"))
                self._send(status, body, "application/json" if status == 200 else "text/html")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        return Handler

    def serve(self, path: str, data: Any, status: int = 200) -> None:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.routes[path] = (status, body)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeJenkins]:
    fake = FakeJenkins()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=5)


@pytest.fixture
def jenkins_server(server: FakeJenkins) -> FakeJenkins:
    server.routes.clear()
    server.requests.clear()
    server.credentials = None
    return server
