"""Create or update the preview comment on a pull request through GitHub's REST API.

The comment is found by its hidden marker on any page of the pull request's comments (the
listing is paginated through ``Link: rel="next"``), so a re-run edits it instead of posting
a duplicate. The token comes from ``GITHUB_TOKEN``; the API base from ``GITHUB_API_URL``
(default https://api.github.com, or a GitHub Enterprise ``https://host/api/v3``).
HTTP goes through ``pipeline.io.http`` (kept-alive connection, connect/read timeouts,
verified TLS, proxies from the environment, no ``~/.netrc``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.errors import PipelineError, UsageError, one_line
from pipeline.io.http import MIB, USER_AGENT, HttpError, Response, Session, Transport, failure
from pipeline.io.urls import BadUrl, has_userinfo, shown, split

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TIMEOUT = (5.0, 30.0)  # connect, read (seconds)
MAX_PAGES = 50  # 5,000 comments: far past any real pull request
# A page of 100 comments of at most 65,536 characters each (JSON-escaped), and one comment.
MAX_PAGE_BYTES = 64 * MIB
MAX_COMMENT_BYTES = 4 * MIB
_REF = re.compile(
    r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<repo>[A-Za-z0-9._-]+)#(?P<n>[1-9]\d*)\Z"
)


class GitHubError(PipelineError):
    """GitHub refused or failed a request; the message says what to do."""


@dataclass(frozen=True)
class PullRequest:
    owner: str
    repo: str
    number: int

    @classmethod
    def parse(cls, text: str) -> PullRequest:
        match = _REF.match(text.strip())
        # "." and ".." are no repository: in a URL path they would climb out of /repos/OWNER.
        if not match or match["repo"] in (".", ".."):
            raise UsageError(f"--post-github {text!r}: expected OWNER/REPO#NUMBER, e.g. acme/cv#42")
        return cls(match["owner"], match["repo"], int(match["n"]))

    def __str__(self) -> str:
        return f"{self.owner}/{self.repo}#{self.number}"


@dataclass(frozen=True)
class Posted:
    action: Literal["created", "updated", "unchanged"]
    comment_id: int
    url: str


def token_from_env(env: Mapping[str, str] | None = None) -> str:
    token = (env if env is not None else os.environ).get("GITHUB_TOKEN", "").strip()
    if not token:
        raise PipelineError(
            "GITHUB_TOKEN is not set: export a token that may write pull-request comments "
            "to use --post-github"
        )
    return token


def api_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """``GITHUB_API_URL`` (default https://api.github.com), checked; never with credentials.

    The token is ``GITHUB_TOKEN``'s, so a user name or password in the URL is refused
    (and never printed): it would be sent nowhere, and shown in error lines and logs.
    """
    url = (env if env is not None else os.environ).get("GITHUB_API_URL", "") or DEFAULT_API_URL
    if has_userinfo(url):
        raise PipelineError(
            "GITHUB_API_URL carries credentials (user:password@ before the host): remove "
            "them; the token comes from GITHUB_TOKEN"
        )
    try:
        split(url)
    except BadUrl as exc:
        raise PipelineError(f"GITHUB_API_URL {exc}") from None
    return url.rstrip("/")


class GitHubClient:
    def __init__(
        self,
        token: str,
        api_url: str = DEFAULT_API_URL,
        session: Transport | None = None,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        self._api = api_url.rstrip("/")
        self._timeout = timeout
        self._session = session or Session()
        self._headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }

    def _request(
        self,
        method: str,
        url: str,
        what: str,
        payload: dict[str, Any] | None = None,
        max_body: int = MAX_COMMENT_BYTES,
    ) -> Response:
        if not url.startswith(self._api + "/"):
            # Never send the token to a host the API did not come from.
            raise GitHubError(f"{what}: GitHub pointed to {shown(url)}, outside {shown(self._api)}")
        headers = dict(self._headers)
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        try:
            response = self._session.request(
                method, url, headers=headers, body=body, timeout=self._timeout, max_body=max_body
            )
        except HttpError as exc:
            where = f"GitHub API at {shown(self._api)}"
            raise GitHubError(f"{what}: {failure(exc, where)}") from None
        if response.status_code >= 400:
            raise GitHubError(_explain(response, what))
        return response

    def _comments(self, pr: PullRequest) -> Iterator[dict[str, Any]]:
        url: str | None = (
            f"{self._api}/repos/{pr.owner}/{pr.repo}/issues/{pr.number}/comments?per_page=100"
        )
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._request(
                "GET", url, f"listing comments of {pr}", max_body=MAX_PAGE_BYTES
            )
            page = _json(response, f"listing comments of {pr}")
            if not isinstance(page, list):
                raise GitHubError(f"listing comments of {pr}: GitHub returned no list")
            yield from (c for c in page if isinstance(c, dict))
            url = response.links.get("next")
        raise GitHubError(f"listing comments of {pr}: more than {MAX_PAGES} pages")

    def find_comment(self, pr: PullRequest, marker: str) -> dict[str, Any] | None:
        for comment in self._comments(pr):
            if str(comment.get("body") or "").lstrip().startswith(marker):
                return comment
        return None

    def upsert_comment(self, pr: PullRequest, body: str, marker: str) -> Posted:
        """Update the comment that starts with ``marker``, or create it."""
        existing = self.find_comment(pr, marker)
        if existing is not None:
            cid = _comment_id(existing, f"listing comments of {pr}")
            if existing.get("body") == body:
                return Posted("unchanged", cid, _html_url(existing))
            url = f"{self._api}/repos/{pr.owner}/{pr.repo}/issues/comments/{cid}"
            what = f"updating comment {cid} on {pr}"
            response = self._request("PATCH", url, what, {"body": body})
            data = _posted(response, what, "updated")
            return Posted("updated", cid, _html_url(data))
        url = f"{self._api}/repos/{pr.owner}/{pr.repo}/issues/{pr.number}/comments"
        what = f"commenting on {pr}"
        response = self._request("POST", url, what, {"body": body})
        data = _posted(response, what, "created")
        return Posted("created", _comment_id(data, what, posted=True), _html_url(data))


def _comment_id(comment: Mapping[str, Any], what: str, *, posted: bool = False) -> int:
    """A comment's ``id`` (a positive integer), or a refusal saying what GitHub sent."""
    cid = comment.get("id")
    if isinstance(cid, int) and not isinstance(cid, bool) and 0 < cid < 1 << 63:
        return cid
    done = "the comment was posted, but " if posted else ""
    raise GitHubError(
        f"{what}: {done}GitHub's answer has no usable comment id "
        f"({type(cid).__name__}); is GITHUB_API_URL a GitHub API?"
    )


def _posted(response: Response, what: str, action: str) -> Mapping[str, Any]:
    """The comment object GitHub answers a create or update with; checked."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        shape = "not JSON" if data is None else type(data).__name__
        raise GitHubError(
            f"{what}: the comment was {action}, but GitHub's answer is not a comment "
            f"({shape}); check the pull request"
        )
    return data


def _html_url(comment: Mapping[str, Any]) -> str:
    """The comment's ``html_url`` when it is one line of an http(s) URL, else ``""``."""
    url = comment.get("html_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return ""
    if one_line(url) != url or len(url) > 2000 or has_userinfo(url):
        return ""
    return url


def _json(response: Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GitHubError(f"{what}: GitHub returned a non-JSON response") from None


def _short(text: str, limit: int = 300) -> str:
    """A server's message as one line of at most ``limit`` characters."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _explain(response: Response, what: str) -> str:
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    message = str(payload.get("message", "")) if isinstance(payload, dict) else ""
    message = _short(message)
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list) and errors:
        detail = "; ".join(
            _short(str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e))
            for e in errors[:3]
        )
        message = f"{message}: {detail}" if message else detail
    status = response.status_code
    said = f" ({message})" if message else ""
    if status == 401:
        return f"{what}: GitHub rejected the token (401{said}): check GITHUB_TOKEN"
    if status == 403:
        return (
            f"{what}: forbidden (403{said}): the token needs write access to pull requests "
            "or issues, or the rate limit was hit"
        )
    if status == 404:
        return (
            f"{what}: not found (404{said}): check OWNER/REPO#NUMBER and that the token can see it"
        )
    if status == 422:
        return f"{what}: GitHub refused the request (422{said})"
    return f"{what}: GitHub answered {status}{said}"
