"""Posting the preview comment against a local server that behaves like GitHub's REST API."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import PipelineError, UsageError
from pipeline.preview.comment import MARKER
from pipeline.preview.github import GitHubClient, GitHubError, PullRequest, token_from_env
from tests.github_fake import TOKEN, FakeGitHub, github_api, github_server

__all__ = ["github_api", "github_server"]  # fixtures, imported

FIXTURES = Path(__file__).parent / "fixtures" / "preview"


@pytest.fixture
def api(github_api: FakeGitHub) -> FakeGitHub:
    return github_api


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
