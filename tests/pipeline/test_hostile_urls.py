"""URLs with a bad port, an open IPv6 bracket or credentials in them, from a user or a
server: one line each, never an internal error, and never the credentials echoed."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.errors import PipelineError, RegistryError
from pipeline.images.auth import RegistryAuth
from pipeline.io.http import HttpConnectionError, Session
from pipeline.io.urls import BadUrl, has_userinfo, shown, split
from pipeline.preview.github import GitHubClient, GitHubError, PullRequest, api_url_from_env
from pipeline.records.sources.jenkins import JenkinsError, normalize_build_url
from tests.hostile_server import Plan, hostile_server, json_answer
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


# -- GitHub answers of the wrong shape, and messages that span lines ---------------------


@pytest.mark.parametrize(
    ("created", "fragment"),
    [
        (b"[1, 2]", "the comment was created, but GitHub's answer is not a comment (list)"),
        (b'"ok"', "the comment was created, but GitHub's answer is not a comment (str)"),
        (b"<html>", "the comment was created, but GitHub's answer is not a comment (not JSON)"),
        (b'{"id": "abc"}', "the comment was posted, but GitHub's answer has no usable comment id"),
        (b'{"id": true}', "no usable comment id (bool)"),
    ],
    ids=["list", "string", "html", "id-str", "id-bool"],
)
def test_a_wrong_shaped_answer_after_creating_the_comment_says_it_was_created(
    created: bytes, fragment: str
) -> None:
    plan = Plan(by_method={"GET": json_answer(b"[]"), "POST": json_answer(created, "201 Created")})
    with hostile_server(plan) as host:
        client = GitHubClient("t0ken", f"http://{host}/api/v3", timeout=(2, 2))
        with pytest.raises(GitHubError, match=re.escape(fragment)):
            client.upsert_comment(PullRequest("o", "r", 1), "body", "<!-- m -->")


def test_a_listed_comment_without_an_id_is_refused() -> None:
    listing = json_answer(b'[{"body": "<!-- m --> old", "id": null}]')
    with hostile_server(Plan(by_method={"GET": listing})) as host:
        client = GitHubClient("t0ken", f"http://{host}/api/v3", timeout=(2, 2))
        with pytest.raises(GitHubError, match="has no usable comment id"):
            client.upsert_comment(PullRequest("o", "r", 1), "body", "<!-- m -->")


def test_a_github_error_message_with_line_breaks_and_escapes_is_one_line() -> None:
    message = json.dumps(
        {"message": "Validation Failed\nsecond line\r\n\x1b[31mred", "errors": ["a\nb"]}
    )
    answer = json_answer(message.encode(), "422 Unprocessable Entity")
    with hostile_server(Plan(by_method={"GET": answer})) as host:
        client = GitHubClient("t0ken", f"http://{host}/api/v3", timeout=(2, 2))
        with pytest.raises(GitHubError) as caught:
            client.upsert_comment(PullRequest("o", "r", 1), "body", "<!-- m -->")
    text = str(caught.value)
    assert len(text.splitlines()) == 1
    assert "\x1b" not in text
    assert "Validation Failed second line \\x1b[31mred: a b" in text


def test_a_posted_comment_url_that_is_not_one_clean_line_is_not_shown() -> None:
    created = b'{"id": 5, "html_url": "https://gh.test/c\\n\\u001b[2Jinjected"}'
    plan = Plan(by_method={"GET": json_answer(b"[]"), "POST": json_answer(created, "201 Created")})
    with hostile_server(plan) as host:
        client = GitHubClient("t0ken", f"http://{host}/api/v3", timeout=(2, 2))
        posted = client.upsert_comment(PullRequest("o", "r", 1), "body", "<!-- m -->")
    assert (posted.action, posted.comment_id, posted.url) == ("created", 5, "")
