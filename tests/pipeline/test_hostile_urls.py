"""URLs with a bad port, an open IPv6 bracket or credentials in them, from a user or a
server: one line each, never an internal error, and never the credentials echoed."""

from __future__ import annotations

import re

import pytest

from pipeline.errors import PipelineError, RegistryError
from pipeline.images.auth import RegistryAuth
from pipeline.io.http import HttpConnectionError, Session
from pipeline.io.urls import BadUrl, has_userinfo, shown, split
from pipeline.preview.github import api_url_from_env
from pipeline.records.sources.jenkins import JenkinsError, normalize_build_url
from tests.hostile_server import Plan, hostile_server
from tests.pipeline.fake_transport import FakeTransport, answer
from tests.pipeline.hostile import assert_refused, cli

BAD_URLS = [
    ("http://127.0.0.1:99999/", "invalid port (a port is a number from 1 to 65535)"),
    ("http://127.0.0.1:0/", "invalid port (0; use 1-65535)"),
    ("http://127.0.0.1:8o80/", "invalid port"),
    ("http://[::1/", "an IPv6 address must be written in brackets"),
    ("http://::1:8080/", "invalid port"),
    ("http:///path", "has no host"),
    ("ftp://example.com/", "is not a http/https URL"),
    ("http://exa mple.com/", "contains spaces or control characters"),
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS, ids=[u for u, _ in BAD_URLS])
def test_split_names_what_is_wrong_with_a_url(url: str, reason: str) -> None:
    with pytest.raises(BadUrl, match=reason.replace("(", r"\(").replace(")", r"\)")):
        split(url)


@pytest.mark.parametrize(("url", "reason"), BAD_URLS, ids=[u for u, _ in BAD_URLS])
def test_a_request_to_a_bad_url_is_a_connection_error_not_a_crash(url: str, reason: str) -> None:
    with pytest.raises(HttpConnectionError, match="invalid URL"):
        Session().get(url, timeout=1.0)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@host/",
        "https://x-access-token:ghp_secret@github.example/api/v3",
        "http://user@host:8080/x?y=1",
        "https://a:b@[::1]:8443/",
    ],
)
def test_shown_never_prints_userinfo(url: str) -> None:
    assert has_userinfo(url)
    text = shown(url)
    assert "@" in text
    assert "pw" not in text
    assert "secret" not in text
    assert "user" not in text
    assert ":b@" not in text
    assert not has_userinfo("https://host/a@b")  # an @ in the path is not userinfo
    assert shown("https://host/a@b") == "https://host/a@b"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("http://user:pw@127.0.0.1/", "GITHUB_API_URL carries credentials"),
        ("https://octo:hunter2@[::1]:8443/api/v3", "GITHUB_API_URL carries credentials"),
        ("http://127.0.0.1:99999/api/v3", "GITHUB_API_URL 'http://127.0.0.1:99999/api/v3' has"),
        ("http://[::1/api/v3", "must be written in brackets"),
    ],
)
def test_preview_refuses_a_bad_github_api_url_before_it_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str, fragment: str
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken-value")
    monkeypatch.setenv("GITHUB_API_URL", value)
    result = cli(capsys, "preview", "--offline", "--post-github", "octo/cv#1")
    line = assert_refused(result, fragment)
    for secret in ("pw", "hunter2", "octo:", "t0ken-value"):
        assert secret not in line.replace("octo/cv", "")
    with pytest.raises(PipelineError):
        api_url_from_env({"GITHUB_API_URL": value})


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://admin:s3cret@ci.example/job/x/1/", "do not put credentials in the URL"),
        ("https://ci.example:70000/job/x/1/", "has an invalid port"),
        ("https://[fd00::1/job/x/1/", "must be written in brackets"),
    ],
)
def test_record_ci_refuses_a_bad_jenkins_url_in_one_line(
    capsys: pytest.CaptureFixture[str], url: str, fragment: str
) -> None:
    with pytest.raises(JenkinsError):
        normalize_build_url(url)
    result = cli(capsys, "--store", "/nonexistent/x.db", "record", "ci", "--from-jenkins", url)
    line = assert_refused(result, fragment)
    assert "s3cret" not in line
    assert "admin" not in line


def test_a_redirect_to_a_bad_port_is_one_line() -> None:
    head = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:123456/x\r\n"
    head += b"Content-Length: 0\r\n\r\n"
    refused = pytest.raises(HttpConnectionError, match=re.escape("'http://127.0.0.1:123456/x'"))
    with hostile_server(Plan(head=head, body=b"", trickle=False, interval=0)) as host, refused:
        Session().get(f"http://{host}/", timeout=2.0)


@pytest.mark.parametrize(
    "realm",
    ["http://[::1/token", "https://auth.example:99999/token", "gopher://auth.example/"],
)
def test_a_registry_sending_a_bad_token_realm_is_one_line(realm: str) -> None:
    auth = RegistryAuth(session=FakeTransport(lambda m, u, h: answer(200, u)), timeout=1.0)
    challenge = f'Bearer realm="{realm}",service="r",scope="repository:a:pull"'
    with pytest.raises(RegistryError, match="sent an invalid token realm"):
        auth.answer("registry.example", "repository:a:pull", challenge)


def test_a_realm_with_credentials_over_plain_http_is_refused_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(  # type: ignore[operator]
        '{"auths": {"registry.example": {"username": "u", "password": "p4ss"}}}'
    )
    auth = RegistryAuth(session=FakeTransport(lambda m, u, h: answer(200, u)), timeout=1.0)
    challenge = 'Bearer realm="http://leak:hunter2@auth.example/token"'
    with pytest.raises(RegistryError) as caught:
        auth.answer("registry.example", "repository:a:pull", challenge)
    assert "over plain HTTP; refused" in str(caught.value)
    assert "hunter2" not in str(caught.value)
