"""One HTTP/1.1 connection on a socket: plain, TLS, or TLS through a proxy's CONNECT tunnel.

What ``pipeline.io.http.Session`` needs and no more: send one request (``Host``,
``Accept-Encoding: identity``, ``Content-Length``), read one complete answer
(interim 1xx skipped; the body by ``Content-Length``, chunked, or until the server
closes; none for HEAD, 204 and 304), and say whether the connection may be kept.
It stands in for ``http.client``, whose import (with the ``email`` package and
``ssl``) cost ``set-image`` more than its registry work; ``ssl`` is imported only
for an ``https`` connection. Failures are ``OSError`` subclasses as ``socket``
raises them; an answer that is not HTTP is ``BadResponse``, one whose body is
larger than ``Connection.max_body`` is ``TooLarge`` (read no further than that).

Every socket operation runs against a deadline (``Connection.deadline``, a
``time.monotonic()`` value the session sets per request): connecting to each
address, the TLS handshake (done non-blocking, so a peer trickling its certificate
cannot stretch it), each send and each receive take at most the time left, so a
server that answers one byte a second, or never stops answering, ends the request
on time. Per-operation timeouts alone (what ``socket.settimeout`` and
``http.client`` give) never fire while bytes keep arriving.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import ssl

_MAX_LINE = 65536
_MAX_HEADERS = 100
_NO_BODY = frozenset({204, 304})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_RECV = 65536


class DeadlineExceeded(TimeoutError):
    """The request's total time ran out (bytes may still have been arriving)."""


class BadResponse(OSError):
    """The server's answer is not HTTP/1.x (or ends before it is complete)."""


class TooLarge(BadResponse):
    """The answer's body is larger than the caller said it can legitimately be."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


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
        self._buffer = bytearray()
        # time.monotonic() by which the current request must be done; per-wait cap.
        self.deadline = float("inf")
        self.wait_cap = float("inf")
        self.received = 0  # bytes of answers read (the session resets it per request)
        self.max_body = 1 << 62  # the largest body the current request accepts

    # -- time -----------------------------------------------------------------------

    def _left(self) -> float:
        """Seconds the next socket operation may wait; DeadlineExceeded when none."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the request's deadline passed")
        return min(left, self.wait_cap)

    def connect(self, timeout: float) -> None:
        """Connect within ``timeout`` (and the deadline), then tunnel and TLS if asked."""
        self.wait_cap = timeout
        try:
            sock = self._open_socket()
            self.sock = sock
            server_name = self.host
            if self._tunnel is not None:
                server_name = self._open_tunnel(*self._tunnel)
                if self._buffer:
                    raise BadResponse("the proxy sent data after its CONNECT answer")
            if self._tls is not None:
                self.sock = self._handshake(sock, server_name)
        except BaseException:
            self.close()
            raise
        finally:
            self.wait_cap = float("inf")

    def _open_socket(self) -> socket.socket:
        # What socket.create_connection does, with the time left checked per address.
        infos = socket.getaddrinfo(_host_bytes(self.host), self.port, 0, socket.SOCK_STREAM)
        failed: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self._left())
                sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError as exc:
                sock.close()
                failed = exc
                if isinstance(exc, TimeoutError):
                    raise
        raise failed or OSError(f"no address for {self.host}")

    def _handshake(self, sock: socket.socket, server_name: str) -> socket.socket:
        import ssl  # only for https

        assert self._tls is not None
        tls = self._tls.wrap_socket(
            sock, server_hostname=server_name, do_handshake_on_connect=False
        )
        tls.setblocking(False)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                ready = select.select([tls], [], [], self._left())[0]
            except ssl.SSLWantWriteError:
                ready = select.select([], [tls], [], self._left())[1]
            if not ready:
                raise TimeoutError("the TLS handshake did not finish in time")
        tls.setblocking(True)
        return tls

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
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._buffer.clear()

    @property
    def pending(self) -> bool:
        """Whether bytes past the last answer are buffered (the connection is unusable)."""
        return bool(self._buffer)

    def _send(self, data: bytes) -> None:
        assert self.sock is not None
        view = memoryview(data)
        while view:
            self.sock.settimeout(self._left())
            sent = self.sock.send(view[:_RECV])
            view = view[sent:]

    def _fill(self) -> bool:
        """Receive more bytes into the buffer; False when the server closed."""
        assert self.sock is not None
        self.sock.settimeout(self._left())
        chunk = self.sock.recv(_RECV)
        self.received += len(chunk)
        self._buffer += chunk
        return bool(chunk)

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
        while True:
            end = self._buffer.find(b"\n", 0, _MAX_LINE + 1)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > _MAX_LINE:
                raise BadResponse("a header line is too long")
            if not self._fill():
                line = bytes(self._buffer)
                self._buffer.clear()
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
        if size > self.max_body:
            raise TooLarge(self.max_body)
        while len(self._buffer) < size:
            if not self._fill():
                got = len(self._buffer)
                self._buffer.clear()
                raise BadResponse(f"the answer ended after {got} of {size} bytes")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _read_to_close(self) -> bytes:
        while self._fill():
            if len(self._buffer) > self.max_body:
                raise TooLarge(self.max_body)
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        size_so_far = 0
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
            size_so_far += size
            if size_so_far > self.max_body:
                raise TooLarge(self.max_body)
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
            body = self._read_to_close()
            will_close = True
        return status, reason, headers, body, will_close


__all__ = ["BadResponse", "Connection", "DeadlineExceeded", "Headers", "TooLarge", "host_header"]
