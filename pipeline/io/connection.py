"""One HTTP/1.1 connection on a socket: plain, TLS, or TLS through a proxy's CONNECT tunnel.

What ``pipeline.io.http.Session`` needs and no more: send one request (``Host``,
``Accept-Encoding: identity``, ``Content-Length``), read one complete answer
(interim 1xx skipped; the body by ``Content-Length``, chunked, or until the server
closes; none for HEAD, 204 and 304), and say whether the connection may be kept.
It stands in for ``http.client``, whose import (with the ``email`` package and
``ssl``) cost ``set-image`` more than its registry work; ``ssl`` is imported only
for an ``https`` connection. Failures are ``OSError`` subclasses as ``socket``
raises them; an answer that is not HTTP is ``BadResponse``.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, BinaryIO, overload

if TYPE_CHECKING:
    import ssl

_MAX_LINE = 65536
_MAX_HEADERS = 100
_NO_BODY = frozenset({204, 304})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BadResponse(OSError):
    """The server's answer is not HTTP/1.x (or ends before it is complete)."""


class Headers:
    """Header fields: names case-insensitive, repeated fields kept in order."""

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        self._fields = list(fields or [])

    @overload
    def get(self, name: str, default: None = None, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    def get(self, name: str, default: str | None = None, /) -> str | None:
        """The first field called ``name``, else ``default``."""
        wanted = name.lower()
        return next((value for key, value in self._fields if key.lower() == wanted), default)

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def get_all(self, name: str, /) -> list[str] | None:
        """Every field called ``name``, in order; None when there is none."""
        wanted = name.lower()
        found = [value for key, value in self._fields if key.lower() == wanted]
        return found or None


def _host_bytes(host: str) -> bytes:
    # A str host makes the socket module load the IDNA codec (and unicodedata) even for
    # "127.0.0.1"; ASCII names need no encoding.
    return host.encode("ascii") if host.isascii() else host.encode("idna")


def host_header(host: str, port: int, default_port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default_port else f"{shown}:{port}"


def _line(text: str) -> bytes:
    if "\r" in text or "\n" in text:
        raise ValueError(f"invalid header or request line {text!r}")
    return text.encode("latin-1") + b"\r\n"


class Connection:
    """A connection to ``host:port`` (a proxy's, when ``tunnel`` names the origin)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        tunnel: tuple[str, int, Mapping[str, str]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self._tls = tls
        self._tunnel = tunnel
        self._file: BinaryIO | None = None

    def connect(self, timeout: float) -> None:
        sock = socket.create_connection((_host_bytes(self.host), self.port), timeout)  # type: ignore[arg-type]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self._file = sock, sock.makefile("rb")
            server_name = self.host
            if self._tunnel is not None:
                server_name = self._open_tunnel(*self._tunnel)
            if self._tls is not None:
                self._file.close()
                self.sock = self._tls.wrap_socket(sock, server_hostname=server_name)
                self._file = self.sock.makefile("rb")
        except BaseException:
            self.close()
            raise

    def _open_tunnel(self, host: str, port: int, headers: Mapping[str, str]) -> str:
        target = host_header(host, port, -1)
        request = _line(f"CONNECT {target} HTTP/1.1") + _line(f"Host: {target}")
        request += b"".join(_line(f"{name}: {value}") for name, value in headers.items())
        self._send(request + b"\r\n")
        _, status, reason = self._status_line()
        self._headers()
        if status != 200:
            raise OSError(f"Tunnel connection failed: {status} {reason}")
        return host

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _send(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def request(
        self,
        method: str,
        target: str,
        host: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> None:
        """Send one request; ``host`` is the ``Host`` field (the origin's, never a proxy's)."""
        names = {name.lower() for name in headers}
        lines = [_line(f"{method} {target} HTTP/1.1")]
        if "host" not in names:
            lines.append(_line(f"Host: {host}"))
        if "accept-encoding" not in names:
            lines.append(_line("Accept-Encoding: identity"))
        lines.extend(_line(f"{name}: {value}") for name, value in headers.items())
        if "content-length" not in names and (body is not None or method in _BODY_METHODS):
            lines.append(_line(f"Content-Length: {len(body or b'')}"))
        self._send(b"".join(lines) + b"\r\n" + (body or b""))

    def _read_line(self) -> bytes:
        assert self._file is not None
        line = self._file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise BadResponse("a header line is too long")
        return line

    def _status_line(self) -> tuple[str, int, str]:
        line = self._read_line()
        if not line:
            # What http.client calls RemoteDisconnected: the peer hung up before answering.
            raise ConnectionResetError("the server closed the connection without an answer")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise BadResponse(f"not an HTTP answer: {line[:40]!r}")
        return version, int(code), reason.strip()

    def _headers(self) -> Headers:
        fields: list[tuple[str, str]] = []
        while True:
            line = self._read_line().decode("latin-1").rstrip("\r\n")
            if not line:
                return Headers(fields)
            if line[0] in " \t" and fields:  # an obsolete folded continuation
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}")
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise BadResponse(f"not a header field: {line[:40]!r}")
            fields.append((name.strip(), value.strip()))
            if len(fields) > _MAX_HEADERS:
                raise BadResponse(f"more than {_MAX_HEADERS} header fields")

    def _read_exactly(self, size: int) -> bytes:
        assert self._file is not None
        data = self._file.read(size)
        if len(data) < size:
            raise BadResponse(f"the answer ended after {len(data)} of {size} bytes")
        return data

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadResponse(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while self._read_line() not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields, not used
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._read_exactly(2)  # the CRLF after the chunk

    def response(self, method: str) -> tuple[int, str, Headers, bytes, bool]:
        """(status, reason, headers, body, whether the connection must be closed)."""
        while True:
            version, status, reason = self._status_line()
            headers = self._headers()
            if not 100 <= status < 200 or status == 101:
                break
        tokens = {t.strip().lower() for t in (headers.get("Connection") or "").split(",")}
        will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        encoding = (headers.get("Transfer-Encoding") or "").lower()
        length = headers.get("Content-Length")
        if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            body = b""
        elif "chunked" in encoding:
            body = self._read_chunked()
        elif length is not None and length.strip().isdigit():
            body = self._read_exactly(int(length))
        else:
            assert self._file is not None
            body = self._file.read()  # until the server closes
            will_close = True
        return status, reason, headers, body, will_close


__all__ = ["BadResponse", "Connection", "Headers", "host_header"]
