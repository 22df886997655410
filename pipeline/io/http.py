"""A small HTTP/1.1 client on the standard library: the one HTTP stack of the
pipeline (the registry client, the Jenkins reader and the GitHub comment poster).

``requests`` costs about as much to import as the rest of a ``set-image``
run, and the clients need little of it; the wire protocol itself is
``pipeline.io.connection`` (sockets, ``ssl`` only for https, no ``http.client``).
This keeps what the clients do need:

- One kept-alive connection per origin (the 401 -> retry of the auth flow and
  the following calls reuse it). A pooled connection the server has closed is
  not used; one that fails before any answer is reopened and the request sent
  once more, for idempotent methods only (a POST or PATCH is never sent twice).
- Request bodies as bytes (``body=``; JSON callers set the Content-Type).
- A deadline for every request: ``timeout=T`` means the whole request (connect,
  send, answer, redirects) ends within T seconds; ``timeout=(C, R)`` means connect
  within C and finish within C + R, no wait for a byte longer than R. A server
  that trickles bytes or never stops sending cannot stretch it.
- TLS with certificate and host name verification: the system's CA store
  (OpenSSL honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``), or the bundle named
  by ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` as ``requests`` would.
- Proxies from ``https_proxy``/``http_proxy`` (either case), with
  ``no_proxy``; HTTPS goes through a ``CONNECT`` tunnel.
- Redirects (at most ``MAX_REDIRECTS``); ``Authorization`` is dropped when a
  redirect leaves the origin, as ``requests`` does; 303 (and 301/302 after a
  POST) turn into a GET without the body, 307/308 resend it.
- Bodies capped by what they can legitimately be (``max_body``, default
  ``DEFAULT_MAX_BODY``): a longer answer is ``HttpBodyTooLarge``, and no more of
  it than the cap is ever held in memory.
- ``Response.links``: the ``Link`` header by relation, for pagination.
- ``~/.netrc`` is never read (docker and skopeo ignore it too).

Failures are ``HttpError`` subclasses; ``failure`` makes one line of them.
"""

from __future__ import annotations

import re
import select
import socket
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, overload
from urllib.parse import urlencode, urljoin, urlsplit

from pipeline.io import jsontext
from pipeline.io.connection import Connection, TooLarge, host_header
from pipeline.io.netenv import basic_auth, is_loopback, proxy_auth, proxy_for, tls_context
from pipeline.io.urls import BadUrl, split

if TYPE_CHECKING:
    import ssl

MAX_REDIRECTS = 5
MIB = 1 << 20
DEFAULT_MAX_BODY = 16 * MIB
USER_AGENT = "cv-platform-pipeline"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r';\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))', re.IGNORECASE)
Timeout = float | tuple[float, float]


class HttpError(Exception):
    """A request that got no HTTP answer."""


class HttpTimeout(HttpError):
    """No connection or no answer within ``seconds`` (``total``: no complete answer)."""

    def __init__(self, seconds: float, *, total: bool = False) -> None:
        what = "no complete answer" if total else "no answer"
        super().__init__(f"{what} within {seconds:g} s")
        self.seconds = seconds
        self.total = total


class HttpConnectionError(HttpError):
    """The connection failed; ``cause`` says how, in a few words."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class HttpTlsError(HttpConnectionError):
    """The TLS handshake or certificate check failed."""


class HttpBodyTooLarge(HttpError):
    """The answer was longer than ``limit`` bytes, more than it can legitimately be."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"an answer larger than {size_text(limit)}")
        self.limit = limit


def size_text(size: int) -> str:
    """``4 MiB``, ``512 KiB`` or ``100 bytes``: a limit as a person reads it."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


class HeaderMap(Protocol):
    """Response headers as the clients read them (``Headers``, or ``http.client``'s)."""

    @overload
    def get(self, name: str, default: None = None, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    def get_all(self, name: str, /) -> list[str] | None: ...
    def __getitem__(self, name: str, /) -> Any: ...  # str, or None when absent


class Response(NamedTuple):
    """A complete answer (the body is read; the connection is free again)."""

    status_code: int
    reason: str
    headers: HeaderMap  # ``get`` is case-insensitive
    content: bytes
    url: str

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not (or nests absurdly deep)."""
        return jsontext.loads(self.content)

    @property
    def links(self) -> dict[str, str]:
        """``Link`` header targets by relation (``rel="next"`` -> URL as written)."""
        found: dict[str, str] = {}
        for target, params in _LINK.findall(",".join(self.headers.get_all("Link") or [])):
            for match in _REL.finditer(params):
                for rel in (match.group(1) or match.group(2)).lower().split():
                    found.setdefault(rel, target.strip())
        return found

    def close(self) -> None:
        """Nothing to release: kept for the ``requests``-like call sites."""


def _origin(url: str) -> tuple[str, str, int]:
    try:
        parts = split(url)
    except BadUrl as exc:  # a user's setting, or a Location or Link a server sent
        raise HttpConnectionError(f"invalid URL {exc}") from None
    scheme = parts.scheme.lower()
    assert parts.hostname is not None
    return scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80)


def failure(exc: HttpError, service: str) -> str:
    """One line for a request to ``service`` (e.g. "Jenkins at ci:443") that got no answer."""
    if isinstance(exc, HttpTimeout):
        if exc.total:
            return f"{service} did not finish answering within {exc.seconds:g} s"
        return f"{service} did not answer within {exc.seconds:g} s"
    if isinstance(exc, HttpBodyTooLarge):
        return f"{service} sent {exc}, more than such an answer can be; nothing was used"
    return f"cannot reach {service}: {exc}"


def _cause(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host (DNS lookup failed)"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return f"connection failed ({type(exc).__name__})"


def _tls_failure(exc: OSError) -> str | None:
    """The reason of a TLS failure, or None when ``exc`` is none (no ssl, no TLS)."""
    ssl = sys.modules.get("ssl")
    if ssl is None or not isinstance(exc, ssl.SSLError):
        return None
    return f"TLS failed: {exc.reason or exc}"


def timeouts(timeout: Timeout) -> tuple[float, float, float]:
    """(connect, per-wait, total) seconds of a ``timeout`` argument (see the module doc)."""
    if isinstance(timeout, tuple):
        connect, read = timeout
        return connect, read, connect + read
    return timeout, timeout, timeout


def _dropped(connection: Connection) -> bool:
    """Whether a pooled connection was closed by the server or holds stray bytes."""
    if connection.sock is None or connection.pending:
        return True
    try:
        readable, _, _ = select.select([connection.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Transport(Protocol):
    """What the clients need of a transport (tests pass fakes)."""

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
    ) -> Response: ...


class Session:
    """Kept-alive connections per origin; ``request`` returns a read ``Response``."""

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str, int], Connection] = {}
        self._context: ssl.SSLContext | None = None

    def _connection(self, scheme: str, host: str, port: int, proxy: str | None) -> Connection:
        connect_host, connect_port = host, port
        tunnel: tuple[str, int, Mapping[str, str]] | None = None
        if proxy is not None:
            try:
                proxy_parts = split(proxy)
            except BadUrl as exc:
                raise HttpConnectionError(f"the proxy from the environment: {exc}") from None
            connect_host = proxy_parts.hostname or ""
            connect_port = proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
            if scheme == "https":
                tunnel = (host, port, proxy_auth(proxy))
        if scheme == "http":
            return Connection(connect_host, connect_port)
        if self._context is None:
            self._context = tls_context()
        return Connection(connect_host, connect_port, tls=self._context, tunnel=tunnel)

    def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: Timeout,
        deadline: float,
        max_body: int,
    ) -> Response:
        connect_timeout, read_timeout, total = timeouts(timeout)
        scheme, host, port = key = _origin(url)
        origin_host = host_header(host, port, 443 if scheme == "https" else 80)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = proxy_for(scheme, host, port)
        sent = {"User-Agent": USER_AGENT, **headers}
        if proxy is not None and scheme == "http":
            # Plain HTTP through a proxy: the absolute URL, credentials per request.
            target = url
            sent.update(proxy_auth(proxy))
        for fresh in (False, True):
            connection = None if fresh else self._connections.pop(key, None)
            if connection is not None and _dropped(connection):
                connection.close()
                connection = None
            reused = connection is not None
            if connection is None:
                connection = self._connection(scheme, host, port, proxy)
            connection.deadline, connection.received = deadline, 0
            connection.max_body = max_body
            waited = read_timeout
            try:
                if connection.sock is None:
                    waited = connect_timeout
                    connection.connect(connect_timeout)
                    waited = read_timeout
                connection.wait_cap = read_timeout
                connection.request(method, target, origin_host, sent, body)
                status, reason, answer_headers, content, will_close = connection.response(method)
            except TooLarge:
                connection.close()
                raise HttpBodyTooLarge(max_body) from None
            except TimeoutError:
                connection.close()
                if connection.received and time.monotonic() >= deadline - 0.01:
                    # Bytes kept coming, too slowly or without end: the total ran out.
                    raise HttpTimeout(total, total=True) from None
                raise HttpTimeout(min(waited, total)) from None
            except OSError as exc:
                connection.close()
                tls = _tls_failure(exc)
                if tls is not None:
                    raise HttpTlsError(tls) from None
                stale = (ConnectionResetError, BrokenPipeError)
                if reused and isinstance(exc, stale) and method in _IDEMPOTENT:
                    continue  # the server closed an idle kept-alive connection: once more
                raise HttpConnectionError(_cause(exc)) from None
            finally:
                connection.deadline = connection.wait_cap = float("inf")
            connection.max_body = 1 << 62
            if will_close:
                connection.close()
            else:
                self._connections[key] = connection
            return Response(status, reason, answer_headers, content, url)
        raise AssertionError("unreachable")  # pragma: no cover

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
        """Send ``method`` with ``body`` to ``url``, following redirects; the answer's
        body may be at most ``max_body`` bytes."""
        if params:
            url += ("&" if urlsplit(url).query else "?") + urlencode(params)
        sent = dict(headers or {})
        origin = _origin(url)
        # One deadline for the request and every redirect it follows.
        deadline = time.monotonic() + timeouts(timeout)[2]
        for _ in range(MAX_REDIRECTS + 1):
            response = self._exchange(method, url, sent, body, timeout, deadline, max_body)
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            url = urljoin(url, location)
            if _origin(url) != origin:
                # Credentials were meant for the first origin only.
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
                origin = _origin(url)
            status = response.status_code
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                # As browsers and requests do: the target is fetched, the body not resent.
                method, body = "GET", None
                sent = {k: v for k, v in sent.items() if k.lower() != "content-type"}
        raise HttpConnectionError(f"more than {MAX_REDIRECTS} redirects")

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: Timeout,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> Response:
        return self.request(
            "GET", url, headers=headers, params=params, timeout=timeout, max_body=max_body
        )

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


__all__ = [
    "DEFAULT_MAX_BODY",
    "MIB",
    "HttpBodyTooLarge",
    "HttpConnectionError",
    "HttpError",
    "HttpTimeout",
    "HttpTlsError",
    "Response",
    "Session",
    "Transport",
    "basic_auth",
    "failure",
    "is_loopback",
    "proxy_for",
    "size_text",
    "timeouts",
]
