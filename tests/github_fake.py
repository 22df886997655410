"""A local server that behaves like GitHub's REST API for issue comments.

Paging (Link headers by repository id, as GitHub writes them), bearer-token auth,
and GitHub's error bodies. ``github_server`` (module scope) runs it on a free
loopback port; ``github_api`` gives each test an empty one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.quiet_server import QuietHTTPServer

TOKEN = "ghs_test-token-for-the-local-api"


@dataclass
class FakeGitHub:
    """Issue comments of one repository, with GitHub's paging, auth and error answers."""

    repo: str = "acme/cv-platform"
    repo_id: int = 700123  # GitHub's pagination links name the repository by id
    link_base: str = ""  # where "next" links point ('' = this server), to test a foreign host
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    next_id: int = 1000
    base: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, issue: int, body: str) -> int:
        with self.lock:
            self.next_id += 1
            self.comments.setdefault(issue, []).append(
                {
                    "id": self.next_id,
                    "body": body,
                    "html_url": f"https://github.test/{self.repo}/pull/{issue}#c{self.next_id}",
                }
            )
            return self.next_id


def _handler(api: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, **extra: Any) -> None:
            # GitHub's error body: message, documentation_url, status (a string), maybe errors.
            payload = {
                "message": message,
                "documentation_url": "https://docs.github.com/rest/issues/comments",
                "status": str(status),
                **extra,
            }
            self._send(status, payload)

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            api.requests.append((method, self.path, dict(self.headers)))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._error(401, "Bad credentials")
                return
            body: Any = None
            if method in ("POST", "PATCH"):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
            repo = rf"/(?:repos/{api.repo}|repositories/{api.repo_id})"
            listing = re.fullmatch(rf"{repo}/issues/(\d+)/comments", url.path)
            single = re.fullmatch(rf"{repo}/issues/comments/(\d+)", url.path)
            if listing and method == "GET":
                issue = int(listing.group(1))
                query = parse_qs(url.query)
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                items = api.comments.get(issue, [])
                chunk = items[(page - 1) * per_page : page * per_page]
                headers = {}
                last = max(1, -(-len(items) // per_page))
                # As GitHub writes it: prev, next, last, first; by repository id.
                pages = f"{api.link_base or api.base}/repositories/{api.repo_id}/issues/{issue}"
                rels = []
                if page > 1:
                    rels.append(("prev", page - 1))
                if page < last:
                    rels += [("next", page + 1), ("last", last)]
                if page > 1:
                    rels.append(("first", 1))
                if rels:
                    headers["Link"] = ", ".join(
                        f'<{pages}/comments?per_page={per_page}&page={n}>; rel="{rel}"'
                        for rel, n in rels
                    )
                self._send(200, chunk, headers)
            elif listing and method == "POST":
                if not isinstance(body, dict) or not body.get("body"):
                    missing = {"resource": "IssueComment", "code": "missing_field", "field": "body"}
                    self._error(422, "Validation Failed", errors=[missing])
                    return
                cid = api.add(int(listing.group(1)), body["body"])
                self._send(
                    201,
                    {"id": cid, "body": body["body"], "html_url": f"https://github.test/c{cid}"},
                )
            elif single and method == "PATCH":
                cid = int(single.group(1))
                for items in api.comments.values():
                    for comment in items:
                        if comment["id"] == cid:
                            comment["body"] = body["body"]
                            self._send(200, comment)
                            return
                self._error(404, "Not Found")
            else:
                self._error(404, "Not Found")

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@pytest.fixture(scope="module")
def github_server() -> Iterator[tuple[ThreadingHTTPServer, FakeGitHub]]:
    api = FakeGitHub()
    httpd = QuietHTTPServer(("127.0.0.1", 0), _handler(api))
    api.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd, api
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def github_api(github_server: tuple[ThreadingHTTPServer, FakeGitHub]) -> FakeGitHub:
    fake = github_server[1]
    fake.comments.clear()
    fake.requests.clear()
    fake.link_base = ""
    return fake
