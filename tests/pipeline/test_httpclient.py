"""The registry client's HTTP transport: TLS rules, proxies, redirects, kept-alive
connections, against real servers on 127.0.0.1 (threads of this process)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.io.http import (
    HttpConnectionError,
    HttpTimeout,
    HttpTlsError,
    Response,
    Session,
    basic_auth,
    failure,
    proxy_for,
)
from tests.quiet_server import QuietHTTPServer


@dataclass
class Seen:
    """What a server received: (request line target, headers), (method, target, body)
    and connections."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    calls: list[tuple[str, str, bytes]] = field(default_factory=list)
    connections: set[tuple[str, int]] = field(default_factory=set)


Answer = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


@contextmanager
def serve(answer: Answer, *, tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, Seen]]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.requests.append((self.path, dict(self.headers.items())))
            length = int(self.headers.get("Content-Length") or 0)
            seen.calls.append((self.command, self.path, self.rfile.read(length)))
            seen.connections.add(self.client_address)
            status, headers, body = answer(self)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    with running(server) as host:
        yield host, seen


@contextmanager
def running(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve on a thread; yields ``127.0.0.1:port``; stops and joins (bounded) after."""
    server.daemon_threads = True
    # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def ok(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/plain"}, b"hello"


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_a_session_reuses_one_connection_per_origin() -> None:
    with serve(ok) as (host, seen):
        session = Session()
        for _ in range(3):
            response = session.get(f"http://{host}/v2/", timeout=5.0)
            assert (response.status_code, response.content) == (200, b"hello")
        assert len(seen.connections) == 1
        session.close()


def test_a_kept_alive_connection_the_server_closed_is_reopened_once() -> None:
    def close_after(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        handler.close_connection = True  # the server drops the connection after answering
        return 200, {}, b"x"

    with serve(close_after) as (host, seen):
        session = Session()
        assert session.get(f"http://{host}/a", timeout=5.0).status_code == 200
        assert session.get(f"http://{host}/b", timeout=5.0).status_code == 200
        assert [path for path, _ in seen.requests] == ["/a", "/b"]


def test_a_body_is_sent_with_its_length_and_post_reuses_the_connection() -> None:
    with serve(ok) as (host, seen):
        session = Session()
        session.get(f"http://{host}/list", timeout=5.0)
        for method in ("POST", "PATCH"):
            response = session.request(
                method,
                f"http://{host}/comments",
                headers={"Content-Type": "application/json"},
                body=b'{"body": "hi"}',
                timeout=5.0,
            )
            assert response.status_code == 200
    assert seen.calls[1:] == [
        ("POST", "/comments", b'{"body": "hi"}'),
        ("PATCH", "/comments", b'{"body": "hi"}'),
    ]
    assert seen.requests[1][1]["Content-Length"] == "14"
    assert len(seen.connections) == 1


def test_a_post_on_a_connection_the_server_closed_is_sent_once_on_a_new_one() -> None:
    # A server that answers one request per connection and then closes it without
    # saying "Connection: close": the pooled connection must not carry the POST.
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    closed = threading.Event()

    def run() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data or (data.startswith(b"POST") and b"once" not in data):
                    data += conn.recv(4096)
                received.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
            closed.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        session = Session()
        assert session.get(f"http://{host}/a", timeout=5.0).status_code == 200
        assert closed.wait(5)
        answer = session.request("POST", f"http://{host}/b", body=b"once", timeout=5.0)
        assert answer.status_code == 200
        thread.join(timeout=5)
    finally:
        listener.close()
    assert [r.split(b"\r\n")[0] for r in received] == [b"GET /a HTTP/1.1", b"POST /b HTTP/1.1"]


@pytest.mark.parametrize(
    ("status", "method", "body"), [(303, "GET", b""), (302, "GET", b""), (307, "POST", b"data")]
)
def test_a_redirected_post_becomes_a_get_except_after_307(
    status: int, method: str, body: bytes
) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if handler.path == "/target":
            return 200, {}, b""
        return status, {"Location": "/target"}, b""

    with serve(redirect) as (host, seen):
        response = Session().request("POST", f"http://{host}/new", body=b"data", timeout=5.0)
    assert response.status_code == 200
    assert seen.calls[1] == (method, "/target", body)


def test_link_header_targets_by_relation() -> None:
    headers = HTTPMessage()
    headers["Link"] = (
        '<https://api.example/repositories/7/issues/1/comments?page=1>; rel="prev", '
        '<https://api.example/repositories/7/issues/1/comments?page=3>; rel="next", '
        "</v2/x/tags/list?n=2&last=b>; rel=last"
    )
    links = Response(200, "OK", headers, b"", "https://api.example/").links
    assert links == {
        "prev": "https://api.example/repositories/7/issues/1/comments?page=1",
        "next": "https://api.example/repositories/7/issues/1/comments?page=3",
        "last": "/v2/x/tags/list?n=2&last=b",
    }
    assert Response(200, "OK", HTTPMessage(), b"", "https://api.example/").links == {}


def test_failures_read_as_one_line_naming_the_service() -> None:
    assert failure(HttpTimeout(0.3), "Jenkins at ci:443") == (
        "Jenkins at ci:443 did not answer within 0.3 s"
    )
    assert failure(HttpConnectionError("connection refused"), "GitHub API at x") == (
        "cannot reach GitHub API at x: connection refused"
    )
    assert basic_auth("ci", "pw") == "Basic Y2k6cHc="


def test_a_redirect_to_another_origin_drops_the_authorization_header() -> None:
    with serve(ok) as (elsewhere, theirs):

        def redirect(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
            return 307, {"Location": f"http://{elsewhere}/blob"}, b""

        with serve(redirect) as (host, ours):
            response = Session().get(
                f"http://{host}/v2/x", headers={"Authorization": "Basic c2VjcmV0"}, timeout=5.0
            )
    assert response.status_code == 200
    assert ours.requests[0][1]["Authorization"] == "Basic c2VjcmV0"
    assert "Authorization" not in theirs.requests[0][1]


def test_endless_redirects_stop() -> None:
    def loop(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        return 302, {"Location": handler.path}, b""

    with serve(loop) as (host, _), pytest.raises(HttpConnectionError, match="redirects"):
        Session().get(f"http://{host}/again", timeout=5.0)


def test_no_answer_is_a_timeout() -> None:
    release = threading.Event()

    def hang(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        release.wait(5)
        return 200, {}, b""

    with serve(hang) as (host, _):
        try:
            with pytest.raises(HttpTimeout, match=r"^no answer within 0\.2 s$"):
                Session().get(f"http://{host}/", timeout=(1.0, 0.2))
        finally:
            release.set()


# -- TLS: verified against the system store or REQUESTS_CA_BUNDLE ----------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_an_unknown_certificate_authority_is_refused(certificate: tuple[Path, Path]) -> None:
    with serve(ok, tls=_server_tls(certificate)) as (host, seen):
        with pytest.raises(HttpTlsError, match="CERTIFICATE_VERIFY_FAILED"):
            Session().get(f"https://{host}/v2/", timeout=5.0)
        assert seen.requests == []


def test_a_ca_bundle_from_requests_ca_bundle_is_trusted(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    with serve(ok, tls=_server_tls(certificate)) as (host, seen):
        session = Session()
        for _ in range(2):
            assert session.get(f"https://{host}/v2/", timeout=5.0).content == b"hello"
    assert len(seen.connections) == 1  # TLS connections are kept alive too


# -- proxies from the environment --------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "host", "proxied"),
    [
        ("", "registry.example.com", True),
        ("example.com", "registry.example.com", False),
        (".example.com", "registry.example.com", False),
        ("example.com", "notexample.com", True),
        ("registry.example.com:5000", "registry.example.com", True),  # another port
        ("*", "registry.example.com", False),
        ("*.example.com", "registry.example.com", False),
        ("10.0.0.0/8, localhost", "10.1.2.3", False),
        ("10.0.0.0/8", "192.168.1.1", True),
        ("127.0.0.1,::1", "::1", False),
    ],
)
def test_proxy_comes_from_the_environment_unless_no_proxy_matches(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str, proxied: bool
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    expected = "http://proxy.internal:3128" if proxied else None
    assert proxy_for("https", host, 443) == expected
    assert proxy_for("http", host, 80) is None  # only https_proxy is set


def test_plain_http_goes_through_the_proxy_with_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve(ok) as (proxy, seen):
        monkeypatch.setenv("http_proxy", f"http://ci:p%40ss@{proxy}")
        response = Session().get("http://registry.ci.internal:5000/v2/", timeout=5.0)
    assert response.content == b"hello"
    ((target, headers),) = seen.requests
    assert target == "http://registry.ci.internal:5000/v2/"  # the absolute form
    assert headers["Proxy-Authorization"] == "Basic Y2k6cEBzcw=="  # ci:p@ss


@contextmanager
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """A CONNECT-only proxy that pipes bytes both ways; yields (host, targets)."""
    import selectors
    import socket

    targets: list[str] = []

    class Tunnel(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_CONNECT(self) -> None:
            targets.append(self.path)
            name, _, port = self.path.rpartition(":")
            upstream = socket.create_connection((name, int(port)), timeout=5)
            self.send_response(200)
            self.end_headers()
            with selectors.DefaultSelector() as selector, upstream:
                selector.register(self.connection, selectors.EVENT_READ, upstream)
                selector.register(upstream, selectors.EVENT_READ, self.connection)
                while True:
                    for key, _ in selector.select(timeout=5):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)

    with running(QuietHTTPServer(("127.0.0.1", 0), Tunnel)) as host:
        yield host, targets


def test_https_goes_through_a_connect_tunnel_and_is_still_verified(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    with serve(ok, tls=_server_tls(certificate)) as (host, seen), connect_proxy() as (proxy, via):
        monkeypatch.setenv("HTTPS_PROXY", f"http://{proxy}")
        assert Session().get(f"https://{host}/v2/", timeout=5.0).content == b"hello"
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
        with pytest.raises(HttpTlsError):  # the tunnel does not weaken verification
            Session().get(f"https://{host}/v2/", timeout=5.0)
    assert via == [host, host]
    assert [path for path, _ in seen.requests] == ["/v2/"]


def test_the_three_clients_need_no_requests() -> None:
    # requirements.txt no longer lists requests: none of the clients may import it.
    probe = (
        "import sys, pipeline.images.client, pipeline.records.sources.jenkins, "
        "pipeline.preview.github; "
        "print('requests' in sys.modules, 'urllib3' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["False", "False"]
