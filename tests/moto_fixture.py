"""AWS for tests: moto's server mode (S3, ECR, ...) on a free loopback port.

``moto_endpoint`` (session scope) starts ``moto.server.ThreadedMotoServer`` on
127.0.0.1 with port 0 (the OS picks a free one), waits a bounded time for it,
yields ``http://127.0.0.1:PORT`` and stops it. ``aws_env`` (function scope)
points boto3 at it through the environment, as a user's shell would
(``AWS_ENDPOINT_URL``, dummy credentials, a region), so code under test
creates its own clients exactly as in production.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

START_TIMEOUT = 15.0
ACCOUNT = "123456789012"  # moto's default account id
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits without a timeout for the server thread; bound it here.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(timeout=START_TIMEOUT)
    if starter.is_alive():
        pytest.fail(f"moto server did not start within {START_TIMEOUT:.0f} s")
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=5):
            pass
    except urllib.error.HTTPError:
        pass  # answering at all is enough
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 in this test talks to the moto server; returns its URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_ECR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return moto_endpoint
