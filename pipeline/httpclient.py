"""A small HTTP/1.1 client on the standard library, for the registry client.

``requests`` costs about as much to import as the rest of a ``set-image``
run, and the registry client needs little of it. This keeps what it does need:

- One kept-alive connection per origin (the 401 -> retry of the auth flow and
  the following calls reuse it); a kept-alive connection the server closed
  meanwhile is reopened once (only idempotent methods are sent: GET, HEAD).
- Separate connect and read timeouts.
- TLS with certificate and host name verification: the system's CA store
  (OpenSSL honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``), or the bundle named
  by ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` as ``requests`` would.
- Proxies from ``https_proxy``/``http_proxy`` (either case), with
  ``no_proxy``; HTTPS goes through a ``CONNECT`` tunnel.
- Redirects (at most ``MAX_REDIRECTS``); ``Authorization`` is dropped when a
  redirect leaves the origin, as ``requests`` does.
- ``~/.netrc`` is never read (docker and skopeo ignore it too).

Failures are ``HttpError`` subclasses with a short cause for one-line messages.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlencode, urljoin, urlsplit

MAX_REDIRECTS = 5
USER_AGENT = "cv-platform-pipeline"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
Timeout = float | tuple[float, float]


class HttpError(Exception):
    """A request that got no HTTP answer."""


class HttpTimeout(HttpError):
    """No connection or no answer within the timeout."""


class HttpConnectionError(HttpError):
    """The connection failed; ``cause`` says how, in a few words."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class HttpTlsError(HttpConnectionError):
    """The TLS handshake or certificate check failed."""


@dataclass
class Response:
    """A complete answer (the body is read; the connection is free again)."""

    status_code: int
    reason: str
    headers: http.client.HTTPMessage  # ``get`` is case-insensitive
    content: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.content)

    def close(self) -> None:
        """Nothing to release: kept for the ``requests``-like call sites."""


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise HttpConnectionError(f"unsupported URL {url!r}")
    return scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80)


def _env(name: str) -> str:
    return os.environ.get(name.lower()) or os.environ.get(name.upper()) or ""


def _in_network(host: str, network: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _bypass_proxy(host: str, port: int) -> bool:
    """``no_proxy`` as requests reads it: ``*``, host suffixes, ``host:port``, CIDR."""
    for entry in (e.strip().lower() for e in _env("no_proxy").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            if _in_network(host, entry):
                return True
            continue
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.removeprefix("*").lstrip(".").strip("[]")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxy_for(scheme: str, host: str, port: int) -> str | None:
    """The proxy URL the environment gives for ``scheme://host:port``, if any."""
    proxy = _env(f"{scheme}_proxy")
    if not proxy or _bypass_proxy(host, port):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _proxy_auth(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(user_pass.encode()).decode()}


def _tls_context() -> ssl.SSLContext:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle or None)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host (DNS lookup failed)"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected):
        return "connection reset"
    return f"connection failed ({type(exc).__name__})"


class Transport(Protocol):
    """What the registry client needs of a transport (tests pass fakes)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: Timeout,
    ) -> Response: ...


class Session:
    """Kept-alive connections per origin; ``request`` returns a read ``Response``."""

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}
        self._context: ssl.SSLContext | None = None

    def _connect(
        self, scheme: str, host: str, port: int, proxy: str | None, timeout: float
    ) -> http.client.HTTPConnection:
        connect_host, connect_port = host, port
        tunnel_headers: dict[str, str] = {}
        if proxy is not None:
            proxy_parts = urlsplit(proxy)
            connect_host = proxy_parts.hostname or ""
            connect_port = proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
            tunnel_headers = _proxy_auth(proxy)
        if scheme == "http":
            return http.client.HTTPConnection(connect_host, connect_port, timeout=timeout)
        if self._context is None:
            self._context = _tls_context()
        connection = http.client.HTTPSConnection(
            connect_host, connect_port, timeout=timeout, context=self._context
        )
        if proxy is not None:
            connection.set_tunnel(host, port, headers=tunnel_headers)
        return connection

    def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], timeout: Timeout
    ) -> Response:
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout,) * 2
        scheme, host, port = key = _origin(url)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = proxy_for(scheme, host, port)
        sent = {"User-Agent": USER_AGENT, **headers}
        if proxy is not None and scheme == "http":
            # Plain HTTP through a proxy: the absolute URL, credentials per request.
            target = url
            sent.update(_proxy_auth(proxy))
        for fresh in (False, True):
            connection = None if fresh else self._connections.pop(key, None)
            reused = connection is not None
            if connection is None:
                connection = self._connect(scheme, host, port, proxy, connect_timeout)
            try:
                if connection.sock is None:
                    connection.connect()
                connection.sock.settimeout(read_timeout)
                connection.request(method, target, headers=sent)
                answer = connection.getresponse()
                body = answer.read()
            except TimeoutError:
                connection.close()
                raise HttpTimeout(f"no answer within {read_timeout:g} s") from None
            except ssl.SSLError as exc:
                connection.close()
                raise HttpTlsError(f"TLS failed: {exc.reason or exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                stale = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                if reused and isinstance(exc, stale):
                    continue  # the server closed an idle kept-alive connection: once more
                raise HttpConnectionError(_cause(exc)) from None
            if answer.will_close:
                connection.close()
            else:
                self._connections[key] = connection
            return Response(answer.status, answer.reason, answer.headers, body, url)
        raise AssertionError("unreachable")  # pragma: no cover

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: Timeout,
    ) -> Response:
        """Send ``method`` (GET or HEAD) to ``url``, following redirects."""
        if params:
            url += ("&" if urlsplit(url).query else "?") + urlencode(params)
        sent = dict(headers or {})
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._exchange(method, url, sent, timeout)
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            url = urljoin(url, location)
            if _origin(url) != origin:
                # Credentials were meant for the first origin only.
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
                origin = _origin(url)
            if response.status_code == 303:
                method = "GET"
        raise HttpConnectionError(f"more than {MAX_REDIRECTS} redirects")

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: Timeout,
    ) -> Response:
        return self.request("GET", url, headers=headers, params=params, timeout=timeout)

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


__all__ = [
    "HttpConnectionError",
    "HttpError",
    "HttpTimeout",
    "HttpTlsError",
    "Response",
    "Session",
    "Transport",
    "proxy_for",
]
