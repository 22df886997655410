"""An ``httpclient.Transport`` that answers from a function and records what it was sent,
for clients tested where no server can stand in (remote hosts, ECR's endpoint)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.client import HTTPMessage

from pipeline.io.http import DEFAULT_MAX_BODY, Response, Timeout

Answer = Callable[[str, str, Mapping[str, str]], Response]


def answer(
    status: int, url: str, headers: Mapping[str, str] | None = None, content: bytes = b""
) -> Response:
    """A ``Response`` as ``httpclient.Session`` returns it."""
    message = HTTPMessage()
    for name, value in (headers or {}).items():
        message[name] = value
    return Response(status, HTTPStatus(status).phrase, message, content, url)


class FakeTransport:
    def __init__(self, respond: Answer) -> None:
        self._respond = respond
        self.sent: list[tuple[str, str, dict[str, str]]] = []  # method, url, headers

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: Timeout,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> Response:
        sent = dict(headers or {})
        self.sent.append((method, url, sent))
        return self._respond(method, url, sent)
