"""The image recipe and the real server process (gunicorn with the image's config)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

DIGEST_PINNED = re.compile(r"^[\w./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")


def _dockerfile(model_dir: Path) -> list[str]:
    # Join continuation lines so each instruction is one string.
    text = (model_dir / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def test_every_base_image_is_pinned_by_digest(model_dir: Path) -> None:
    lines = _dockerfile(model_dir)
    args = dict(
        ln.removeprefix("ARG ").split("=", 1) for ln in lines if ln.startswith("ARG ") and "=" in ln
    )
    stages: set[str] = set()
    for ln in lines:
        if ln.startswith("FROM "):
            parts = ln.split()
            ref = parts[1]
            if ref.startswith("${"):
                ref = args[ref[2:-1]]
            # scratch is the empty image, nothing to pin.
            assert ref in stages or ref == "scratch" or DIGEST_PINNED.match(ref), ln
            if len(parts) == 4 and parts[2].upper() == "AS":
                stages.add(parts[3])


def test_final_stage_runs_as_uid_10001_and_probes_healthz(model_dir: Path) -> None:
    lines = _dockerfile(model_dir)
    final = lines[max(i for i, ln in enumerate(lines) if ln.startswith("FROM ")) :]
    users = [ln for ln in final if ln.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    assert "EXPOSE 8080" in final
    assert any(ln.startswith("HEALTHCHECK") and "/healthz" in ln for ln in final)
    # Nothing after USER writes to the image (it must work read-only).
    after_user = final[final.index(users[0]) :]
    assert not any(ln.startswith(("RUN ", "COPY ", "ADD ")) for ln in after_user)


def test_the_served_image_carries_the_card_and_labels_its_figures(model_dir: Path) -> None:
    lines = _dockerfile(model_dir)
    final = lines[max(i for i, ln in enumerate(lines) if ln.startswith("FROM ")) :]
    assert any("/out/model-card.json" in ln and "/opt/model/" in ln for ln in final)
    (label,) = [ln for ln in final if ln.startswith("LABEL ")]
    for field in ("name", "version", "accuracy", "card-sha256"):
        assert f"io.cv-platform.model.{field}=" in label
    args = {ln.split()[1].split("=")[0] for ln in final if ln.startswith("ARG ")}
    assert args == {
        "MODEL_CARD_NAME",
        "MODEL_CARD_VERSION",
        "MODEL_CARD_ACCURACY",
        "MODEL_CARD_SHA256",
    }
    card = lines[lines.index("FROM scratch AS card") + 1]
    assert card == "COPY --from=train /out/model-card.json /model-card.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(
    model_dir: Path, model_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """gunicorn with the image's gunicorn.conf.py, as the image starts it, on loopback."""
    port = _free_port()
    tmp = tmp_path_factory.mktemp("server-tmp")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(model_dir),
        "MODEL_PATH": str(model_file),
        "TMPDIR": str(tmp),
        "HOME": str(tmp),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(model_dir / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=model_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Bounded in count and in time. Any OSError is "not yet": a refused connection,
        # and also a read that timed out on a loaded machine (socket TimeoutError).
        deadline = time.monotonic() + 30
        ready = False
        for _ in range(300):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as res:
                    ready = res.status == 200
            except OSError:
                pass
            if ready:
                break
            time.sleep(0.1)
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"gunicorn exited with {proc.returncode}: {err[-2000:]}")
        if not ready:
            pytest.fail(f"gunicorn did not answer /readyz with 200 within 30 s on {base}")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_gunicorn_serves_predict_and_metrics_over_http(server: str, digits) -> None:  # type: ignore[no-untyped-def]
    req = urllib.request.Request(
        f"{server}/predict",
        data=json.dumps({"pixels": digits.data[3].tolist()}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as res:
        assert json.load(res)["digit"] == int(digits.target[3])
    with urllib.request.urlopen(f"{server}/metrics", timeout=5) as res:
        text = res.read().decode()
    assert 'model_http_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in text


def test_smoke_test_passes_against_the_real_server(
    server: str, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(model_dir))
    try:
        import smoke_test
    finally:
        sys.path.remove(str(model_dir))
    assert smoke_test.main([server]) == 0
    out = capsys.readouterr().out
    assert "ok   POST /predict (zero) -> 200, digit 0" in out
    assert out.endswith("smoke test passed\n")


def test_smoke_test_fails_with_one_line_when_nothing_listens(model_dir: Path) -> None:
    port = _free_port()
    proc = subprocess.run(
        [sys.executable, str(model_dir / "smoke_test.py"), f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("FAIL /healthz:")
    assert proc.stderr.count("\n") == 1


def test_smoke_test_fails_with_one_line_on_a_non_json_answer(model_dir: Path) -> None:
    # Something that is not the model server (a proxy's error page, another app) on the URL.
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def _page(self) -> None:
            body = b"<html>maintenance</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _page

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                str(model_dir / "smoke_test.py"),
                f"http://127.0.0.1:{httpd.server_port}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode == 1
    assert proc.stderr == "FAIL POST /predict (zero): the answer is not JSON\n"
