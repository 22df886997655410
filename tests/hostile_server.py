"""Real loopback servers that misbehave on purpose: they trickle their answer one byte at
a time, never finish it, or send more than any client should read.

Each server is a thread of the test process on 127.0.0.1, started and stopped by a
context manager: on exit the listener closes, every handler sees the stop event within
one interval and returns, and the threads are joined. Every loop is bounded (at most
``limit`` bytes are ever sent), so nothing outlives the test that started it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Plan:
    """What the server sends after reading a request's head.

    ``head`` (status line and headers, CRLF-terminated) goes first, then ``body``: with
    ``trickle`` one byte at a time, else in pieces of up to 64 KiB, ``interval``
    seconds apart (0: as fast as the client reads). ``body`` is sent once; ``repeat``
    sends it again and again (an answer that never ends) up to ``limit`` bytes in all.
    """

    head: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    body: bytes = b"{}"
    interval: float = 0.05
    trickle: bool = True
    repeat: bool = False
    limit: int = 100_000
    # Whole answers by request method ("GET", "POST", ...), sent at once instead.
    by_method: dict[str, bytes] = field(default_factory=dict)
    requests: list[bytes] = field(default_factory=list)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        plan, stop = self.server.plan, self.server.stop
        self.request.settimeout(2.0)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                head += chunk
        except OSError:
            return
        plan.requests.append(head)
        method = head.split(b" ", 1)[0].decode("latin-1")
        if method in plan.by_method:
            self._whole(plan.by_method[method])
            return
        sent = 0
        data = plan.head + plan.body
        try:
            while sent < plan.limit and not stop.is_set():
                if not data:
                    if not plan.repeat:
                        break
                    data = plan.body
                if plan.trickle:
                    piece, data = data[:1], data[1:]
                else:
                    piece, data = data[:65536], data[65536:]
                self.request.sendall(piece)
                sent += len(piece)
                if plan.interval and stop.wait(plan.interval):
                    break
            # Hold the connection open until the client gives up or the test ends.
            stop.wait(30)
        except OSError:
            return  # the client hung up: what a client with a deadline does

    def _whole(self, answer: bytes) -> None:
        try:
            self.request.sendall(answer)
        except OSError:
            return


def json_answer(payload: bytes, status: str = "200 OK") -> bytes:
    """A whole HTTP answer with a JSON body that closes the connection."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
    return head.encode() + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload


class _Server(socketserver.ThreadingTCPServer):
    # server_close() joins every handler thread; each returns once ``stop`` is set.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, plan: Plan) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.plan = plan
        self.stop = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up mid-answer is what these tests provoke; never print it."""


@contextmanager
def hostile_server(plan: Plan) -> Iterator[str]:
    """``host:port`` of a server following ``plan``, stopped (threads joined) on exit."""
    server = _Server(plan)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def silent_listener() -> Iterator[str]:
    """``host:port`` that accepts connections in the kernel and never says anything."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


__all__ = ["Plan", "hostile_server", "json_answer", "silent_listener"]
