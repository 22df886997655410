"""Posting the preview comment against a local server that behaves like GitHub's REST API."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.cli import main
from pipeline.errors import PipelineError, UsageError
from pipeline.github import GitHubClient, GitHubError, PullRequest, token_from_env
from pipeline.preview_comment import MARKER
from tests.quiet_server import QuietHTTPServer

TOKEN = "ghs_test-token-for-the-local-api"
FIXTURES = Path(__file__).parent / "fixtures" / "preview"


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
def server() -> Iterator[tuple[ThreadingHTTPServer, FakeGitHub]]:
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
def api(server: tuple[ThreadingHTTPServer, FakeGitHub]) -> FakeGitHub:
    fake = server[1]
    fake.comments.clear()
    fake.requests.clear()
    fake.link_base = ""
    return fake


def _client(api: FakeGitHub, token: str = TOKEN) -> GitHubClient:
    return GitHubClient(token, api.base, timeout=(2.0, 5.0))


PR = PullRequest("acme", "cv-platform", 7)


def test_creates_the_comment_when_none_has_the_marker(api: FakeGitHub) -> None:
    api.add(7, "LGTM")
    posted = _client(api).upsert_comment(PR, f"{MARKER}\nfirst", MARKER)
    assert posted.action == "created"
    assert [c["body"] for c in api.comments[7]] == ["LGTM", f"{MARKER}\nfirst"]
    method, path, headers = api.requests[-1]
    assert (method, path) == ("POST", "/repos/acme/cv-platform/issues/7/comments")
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["Content-Type"] == "application/json"


def test_updates_the_marked_comment_on_a_later_page_without_duplicating(api: FakeGitHub) -> None:
    for i in range(230):
        api.add(7, f"review comment {i}")
    cid = api.add(7, f"{MARKER}\nold preview")
    for i in range(30):
        api.add(7, f"later comment {i}")
    posted = _client(api).upsert_comment(PR, f"{MARKER}\nnew preview", MARKER)
    assert (posted.action, posted.comment_id) == ("updated", cid)
    bodies = [c["body"] for c in api.comments[7]]
    assert bodies.count(f"{MARKER}\nnew preview") == 1
    assert not any("old preview" in b for b in bodies)
    gets = [p for m, p, _ in api.requests if m == "GET"]
    assert gets[0].endswith("/comments?per_page=100")
    assert len(gets) == 3  # followed Link rel="next" to page 3, where the marker is
    assert ("PATCH", f"/repos/acme/cv-platform/issues/comments/{cid}") in [
        (m, p) for m, p, _ in api.requests
    ]


def test_a_pagination_link_to_another_host_gets_no_token(api: FakeGitHub) -> None:
    for i in range(150):
        api.add(7, f"review comment {i}")
    # The same server under another name: a request that followed the link would show up.
    api.link_base = api.base.replace("127.0.0.1", "localhost")
    with pytest.raises(GitHubError, match=r"pointed to http://localhost:\d+/repositories/"):
        _client(api).upsert_comment(PR, f"{MARKER}\nx", MARKER)
    assert [h.get("Host", "").split(":")[0] for _, _, h in api.requests] == ["127.0.0.1"]
    assert 7 in api.comments
    assert not any(c["body"].startswith(MARKER) for c in api.comments[7])


def test_a_quoted_marker_is_not_our_comment(api: FakeGitHub) -> None:
    api.add(7, f"> {MARKER}\n> what does this mean?")
    assert _client(api).upsert_comment(PR, f"{MARKER}\nx", MARKER).action == "created"


def test_same_body_is_left_alone(api: FakeGitHub) -> None:
    api.add(7, f"{MARKER}\nsame")
    assert _client(api).upsert_comment(PR, f"{MARKER}\nsame", MARKER).action == "unchanged"
    assert [m for m, _, _ in api.requests] == ["GET"]


def test_bad_token_is_a_clear_error(api: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match=r"rejected the token \(401 \(Bad credentials\)\)"):
        _client(api, token="nope").upsert_comment(PR, f"{MARKER}\nx", MARKER)


def test_unknown_repository_is_a_clear_error(api: FakeGitHub) -> None:
    pr = PullRequest("acme", "no-such-repo", 7)
    with pytest.raises(GitHubError, match=r"not found \(404"):
        _client(api).upsert_comment(pr, f"{MARKER}\nx", MARKER)


def test_validation_failure_is_a_clear_error(api: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match=r"422 \(Validation Failed: missing_field\)"):
        _client(api).upsert_comment(PR, "", MARKER)


def test_unreachable_api_is_a_clear_error() -> None:
    client = GitHubClient(TOKEN, "http://127.0.0.1:9", timeout=(1.0, 1.0))
    with pytest.raises(GitHubError, match=r"cannot reach GitHub API at .*: connection refused$"):
        client.upsert_comment(PR, "x", MARKER)


def test_silent_api_times_out_with_one_line() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts connections in the kernel, never answers
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = GitHubClient(TOKEN, base, timeout=(1.0, 0.2))
        with pytest.raises(GitHubError) as caught:
            client.upsert_comment(PR, "x", MARKER)
    assert str(caught.value) == (
        f"listing comments of {PR}: GitHub API at {base} did not answer within 0.2 s"
    )


@pytest.mark.parametrize(
    "text", ["acme/cv", "acme#3", "acme/cv#0", "acme/cv#x", "/cv#1", "acme/..#1", "acme/cv/x#1"]
)
def test_pull_request_reference_must_be_owner_repo_number(text: str) -> None:
    with pytest.raises(UsageError):
        PullRequest.parse(text)


def test_missing_token_is_one_clear_line() -> None:
    with pytest.raises(PipelineError, match="GITHUB_TOKEN is not set"):
        token_from_env({})


def test_cli_posts_then_updates_the_same_comment(
    api: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    project_root: Path,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", api.base)
    argv = [
        "--project-dir",
        str(project_root),
        "preview",
        "--preview-json",
        str(FIXTURES / "replace.json"),
        "--stack",
        "prod",
        "--post-github",
        "acme/cv-platform#7",
    ]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "preview comment created on acme/cv-platform#7" in first.err
    assert main(argv) == 0
    assert "preview comment unchanged" in capsys.readouterr().err
    (comment,) = api.comments[7]
    assert comment["body"] == first.out


def test_cli_without_token_fails_before_previewing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], project_root: Path
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    code = main(
        [
            "--project-dir",
            str(project_root),
            "preview",
            "--preview-json",
            str(FIXTURES / "replace.json"),
            "--post-github",
            "acme/cv-platform#7",
        ]
    )
    out = capsys.readouterr()
    assert code == 1
    assert out.out == ""
    assert out.err.strip().splitlines() == [
        "python -m pipeline preview: error: GITHUB_TOKEN is not set: export a token that may "
        "write pull-request comments to use --post-github"
    ]
