"""Servers that answer too slowly, without end, or with too much: every request ends at
its deadline with one line, whichever client (registry, Jenkins, GitHub) made it.

The servers are real sockets on 127.0.0.1 (tests/hostile_server.py) that trickle one
byte every few hundredths of a second: per-read timeouts never fire against them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.io.http import HttpBodyTooLarge, HttpTimeout, Session, failure
from pipeline.preview.github import GitHubClient, GitHubError, PullRequest
from pipeline.records.sources.jenkins import JenkinsClient, JenkinsError, StageMap
from tests.hostile_server import Plan, hostile_server, silent_listener
from tests.pipeline.hostile import (
    DIGEST,
    STAGING,
    assert_refused,
    cli,
    make_project,
    snapshot,
)

MANIFEST_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    b"Docker-Content-Digest: " + DIGEST.encode() + b"\r\n"
    b"Content-Length: 2\r\n\r\n"
)


def test_a_trickled_answer_ends_at_the_total_deadline() -> None:
    with hostile_server(Plan(interval=0.05)) as host, pytest.raises(HttpTimeout) as caught:
        Session().get(f"http://{host}/", timeout=0.5)
    assert caught.value.total
    assert str(caught.value) == "no complete answer within 0.5 s"


def test_an_answer_that_never_ends_ends_at_the_deadline() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"  # no length: read to close
    plan = Plan(head=head, body=b"x" * 512, trickle=False, interval=0.01, repeat=True)
    with hostile_server(plan) as host, pytest.raises(HttpTimeout, match="no complete answer"):
        Session().get(f"http://{host}/", timeout=(0.5, 0.5))


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\n\r\n",  # read until the server closes
        b"HTTP/1.1 200 OK\r\nContent-Length: 1610612736\r\n\r\n",  # 1.5 GiB announced
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["to-close", "content-length", "chunked"],
)
def test_a_body_past_its_cap_is_refused_without_reading_it_all(head: bytes) -> None:
    chunked = b"chunked" in head
    body = b"10000\r\n" + b"x" * 65536 + b"\r\n" if chunked else b"x" * 65536
    plan = Plan(head=head, body=body, trickle=False, interval=0, repeat=True, limit=8 << 20)
    with hostile_server(plan) as host, pytest.raises(HttpBodyTooLarge) as caught:
        Session().get(f"http://{host}/", timeout=5.0, max_body=1 << 20)
    assert str(caught.value) == "an answer larger than 1 MiB"
    assert "sent an answer larger than 1 MiB" in failure(caught.value, "registry r.io")


def test_a_silent_server_is_no_answer_not_an_incomplete_one() -> None:
    with silent_listener() as host, pytest.raises(HttpTimeout, match=r"^no answer within 0\.3 s$"):
        Session().get(f"http://{host}/", timeout=0.3)


def test_a_tls_handshake_trickled_by_the_server_ends_at_the_deadline() -> None:
    # A TLS record header announcing 16 KiB, then the record's bytes one at a time.
    plan = Plan(head=b"", body=b"\x16\x03\x03\x40\x00" + b"\x00" * 16384, interval=0.05)
    with hostile_server(plan) as host, pytest.raises(HttpTimeout):
        Session().get(f"https://{host}/", timeout=0.5)


def test_set_image_against_a_trickling_registry_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with hostile_server(Plan(head=MANIFEST_HEAD, body=b"{}", interval=0.05)) as host:
        root = make_project(
            tmp_path / "p",
            {"staging": STAGING.replace("registry.example.internal", host)},
        )
        before = snapshot(root)
        monkeypatch.setenv("PIPELINE_REGISTRY_TIMEOUT", "0.5")
        monkeypatch.setenv("PIPELINE_REGISTRY_RETRIES", "0")
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
        result = cli(capsys, "--project-dir", str(root), "set-image", "staging", "v2")
    assert_refused(result, f"registry {host} did not finish answering within 0.5 s (HEAD")
    assert snapshot(root) == before


def test_jenkins_trickling_its_json_fails_in_one_line() -> None:
    with hostile_server(Plan(body=b'{"status": "SUCCESS"}', interval=0.05)) as host:
        client = JenkinsClient(timeout=0.5)
        with pytest.raises(JenkinsError) as caught:
            client.read_build(f"http://{host}/job/x/1/", StageMap())
    assert str(caught.value) == f"Jenkins at {host} did not finish answering within 0.5 s"


def test_github_trickling_its_answer_fails_in_one_line() -> None:
    with hostile_server(Plan(body=b"[]", interval=0.05)) as host:
        client = GitHubClient("t0ken", f"http://{host}/api/v3", timeout=(0.3, 0.3))
        with pytest.raises(GitHubError, match=r"did not finish answering within 0\.6 s"):
            client.upsert_comment(PullRequest("o", "r", 1), "body", "<!-- m -->")


def _announcing(size: int, content_type: str = "application/json") -> Plan:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {size}\r\n\r\n"
    return Plan(head=head.encode(), body=b"x" * 65536, trickle=False, interval=0, repeat=True)


@pytest.mark.parametrize(
    ("plan", "fragment"),
    [
        # HEAD announces 1.5 GiB: refused before any GET.
        (
            _announcing(1610612736, "application/vnd.oci.image.manifest.v1+json"),
            "answered 1,610,612,736 bytes for",
        ),
        # No length and no digest on HEAD: the GET-and-hash fallback streams past 4 MiB.
        (
            Plan(
                head=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n",
                body=b"10000\r\n" + b"x" * 65536 + b"\r\n",
                trickle=False,
                interval=0,
                repeat=True,
                limit=16 << 20,
            ),
            "sent an answer larger than 4 MiB, more than such an answer can be",
        ),
    ],
    ids=["head-length", "get-fallback"],
)
def test_set_image_does_not_read_a_huge_manifest_into_memory(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    plan: Plan,
    fragment: str,
) -> None:
    with hostile_server(plan) as host:
        root = make_project(
            tmp_path / "p", {"staging": STAGING.replace("registry.example.internal", host)}
        )
        before = snapshot(root)
        monkeypatch.setenv("PIPELINE_REGISTRY_RETRIES", "0")
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
        result = cli(capsys, "--project-dir", str(root), "set-image", "staging", "v2")
    assert_refused(result, fragment)
    assert snapshot(root) == before


def test_jenkins_describe_past_its_cap_is_refused() -> None:
    too_large = pytest.raises(JenkinsError, match="sent an answer larger than 16 MiB")
    with hostile_server(_announcing(17 << 20)) as host, too_large:
        JenkinsClient(timeout=5).read_build(f"http://{host}/job/x/1/", StageMap())


def test_a_github_answer_past_its_cap_is_refused() -> None:
    with hostile_server(_announcing(65 << 20)) as host:
        client = GitHubClient("t0ken", f"http://{host}/api/v3", timeout=(5, 5))
        with pytest.raises(GitHubError, match="sent an answer larger than 64 MiB"):
            client.upsert_comment(PullRequest("o", "r", 1), "body", "<!-- m -->")
