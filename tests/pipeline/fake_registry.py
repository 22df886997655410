"""A small scripted HTTP server on 127.0.0.1 for what a real registry will not do on
demand: answer 500, 503 with Retry-After, hang past the timeout, omit the digest
header, or run the Bearer token flow."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.quiet_server import QuietHTTPServer

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "c" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


@dataclass
class Script:
    """How the fake answers. ``fail_first`` requests get ``fail_status``."""

    fail_status: int = 0
    fail_first: int = 0
    retry_after: str | None = None
    delay: float = 0.0
    digest_header: bool = True
    # What a manifest request answers: its Content-Type (None: no such header) and body.
    manifest_type: str | None = "application/vnd.oci.image.manifest.v1+json"
    manifest: bytes = MANIFEST
    bearer_user: str | None = None  # require Bearer tokens issued to this user
    bearer_password: str = ""
    tags: list[str] = field(default_factory=list)  # served by tags/list, Link-paginated
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth
    token_requests: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        script = self.server.script
        auth = self.headers.get("Authorization", "")
        script.requests.append((self.command, self.path, auth))
        if script.delay:
            time.sleep(script.delay)
        if self.path.startswith("/token"):
            expected = base64.b64encode(
                f"{script.bearer_user}:{script.bearer_password}".encode()
            ).decode()
            if auth != f"Basic {expected}":
                self._reply(401, {})
                return
            script.token_requests += 1
            body = json.dumps({"token": "tok-123", "expires_in": 300}).encode()
            self._reply(200, {"Content-Type": "application/json"}, body)
            return
        if script.bearer_user is not None and auth != "Bearer tok-123":
            realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
            challenge = f'Bearer realm="{realm}",service="fake",scope="repository:cv/model:pull"'
            self._reply(401, {"WWW-Authenticate": challenge})
            return
        served = len([r for r in script.requests if not r[1].startswith("/token")])
        if script.fail_status and served <= script.fail_first:
            headers = {"Content-Type": "application/json"}
            if script.retry_after is not None:
                headers["Retry-After"] = script.retry_after
            self._reply(script.fail_status, headers, b'{"errors":[]}')
            return
        if "/tags/list" in self.path:
            self._tags(script)
            return
        if "/manifests/" in self.path:
            headers = {}
            if script.manifest_type is not None:
                headers["Content-Type"] = script.manifest_type
            if script.digest_header:
                headers["Docker-Content-Digest"] = MANIFEST_DIGEST
            self._reply(200, headers, script.manifest)
            return
        self._reply(404, {"Content-Type": "application/json"}, b'{"errors":[]}')

    def _tags(self, script: Script) -> None:
        # Distribution 3's pagination: n per page, `last` = the previous page's last
        # tag, and a relative Link to the next page.
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        size = int(query.get("n", ["100"])[0])
        last = query.get("last", [""])[0]
        remaining = [tag for tag in sorted(script.tags) if tag > last]
        page = remaining[:size]
        headers = {"Content-Type": "application/json"}
        if len(remaining) > size:
            headers["Link"] = f'<{url.path}?last={page[-1]}&n={size}>; rel="next"'
        self._reply(200, headers, json.dumps({"name": "cv/model", "tags": page}).encode())

    do_GET = _handle
    do_HEAD = _handle


class _Server(QuietHTTPServer):
    daemon_threads = True
    block_on_close = False
    script: Script


@contextmanager
def fake_registry(script: Script) -> Iterator[str]:
    """Serve ``script`` on 127.0.0.1; yields ``host:port``."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script = script
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
