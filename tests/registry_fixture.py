"""A real registry for tests: Debian's docker-registry (Distribution) on loopback.

``registry_server`` (session scope) starts ``docker-registry serve`` on a free
127.0.0.1 port with a temporary storage directory and htpasswd (bcrypt) auth,
waits (bounded) for ``/v2/`` to answer, yields a :class:`RegistryServer`, and
stops it. Images are built as tiny OCI layouts here (blobs, config, manifest,
index.json written by hand) and pushed with ``skopeo copy``.

Use it from any test package's conftest.py::

    from tests.registry_fixture import registry_server  # noqa: F401 (a fixture)
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
START_TIMEOUT = 15.0
PUSH_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RegistryServer:
    url: str  # http://127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT
    user: str
    password: str
    workdir: Path

    def __iter__(self) -> Iterator[str]:  # (url, user, password), as the brief names it
        return iter((self.url, self.user, self.password))

    def docker_config(self, directory: Path, *, password: str | None = None) -> Path:
        """Write a Docker config.json with this registry's credentials (or another
        ``password``, for a 401); returns the directory."""
        directory.mkdir(parents=True, exist_ok=True)
        secret = self.password if password is None else password
        auth = base64.b64encode(f"{self.user}:{secret}".encode()).decode()
        (directory / "config.json").write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
        return directory

    def push(self, layout: Path, repository: str, tag: str, *, docker_format: bool = False) -> None:
        """``skopeo copy`` an OCI layout's image to ``repository:tag`` here."""
        command = [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-creds",
            f"{self.user}:{self.password}",
            "--dest-tls-verify=false",
        ]
        command += ["--format", "v2s2"] if docker_format else ["--all", "--preserve-digests"]
        command += [f"oci:{layout}:{tag}", f"docker://{self.host}/{repository}:{tag}"]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PUSH_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"skopeo copy failed: {done.stderr.strip()}")

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> None:
        """Tag an existing manifest again (PUT /v2/<name>/manifests/<tag>)."""
        request = urllib.request.Request(
            f"{self.url}/v2/{repository}/manifests/{tag}",
            data=body,
            method="PUT",
            headers={"Content-Type": media_type, "Authorization": self._basic()},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201

    def skopeo_digest(self, repository: str, tag: str) -> str:
        done = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--creds",
                f"{self.user}:{self.password}",
                "--tls-verify=false",
                f"docker://{self.host}/{repository}:{tag}",
            ],
            capture_output=True,
            timeout=PUSH_TIMEOUT,
            check=True,
        )
        return _sha256(done.stdout)

    def _basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Layout:
    path: Path
    tag: str
    digest: str  # of the top object: the manifest, or the index for multi-arch
    media_type: str
    body: bytes


class OciLayoutBuilder:
    """Writes OCI image layouts (image-spec v1.1 ``image-layout.md``) by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self._refs: list[dict[str, object]] = []

    def blob(self, data: bytes) -> str:
        digest = _sha256(data)
        (self.path / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    def _descriptor(self, media_type: str, data: bytes) -> dict[str, object]:
        return {"mediaType": media_type, "digest": self.blob(data), "size": len(data)}

    def image(self, payload: bytes, os_name: str = "linux", arch: str = "amd64") -> bytes:
        """A one-layer image; returns the manifest bytes (written as a blob)."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo("payload.txt")
            info.size = len(payload)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(payload))
        tar_bytes = raw.getvalue()
        layer = gzip.compress(tar_bytes, mtime=0)
        config = json.dumps(
            {
                "architecture": arch,
                "os": os_name,
                "config": {"Cmd": ["/payload.txt"]},
                "rootfs": {"type": "layers", "diff_ids": [_sha256(tar_bytes)]},
            },
            sort_keys=True,
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": self._descriptor(OCI_CONFIG, config),
                "layers": [self._descriptor(OCI_LAYER, layer)],
            },
            sort_keys=True,
        ).encode()
        self.blob(manifest)
        return manifest

    def index(self, manifests: Sequence[tuple[bytes, str, str]]) -> bytes:
        """An image index over ``(manifest bytes, os, arch)``."""
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": _sha256(m),
                        "size": len(m),
                        "platform": {"os": os_name, "architecture": arch},
                    }
                    for m, os_name, arch in manifests
                ],
            },
            sort_keys=True,
        ).encode()
        self.blob(body)
        return body

    def tag(self, tag: str, body: bytes, media_type: str) -> Layout:
        self._refs = [r for r in self._refs if r["annotations"] != {_REF_NAME: tag}]
        self._refs.append(
            {
                "mediaType": media_type,
                "digest": _sha256(body),
                "size": len(body),
                "annotations": {_REF_NAME: tag},
            }
        )
        (self.path / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "manifests": self._refs}, sort_keys=True)
        )
        return Layout(self.path, tag, _sha256(body), media_type, body)


_REF_NAME = "org.opencontainers.image.ref.name"


def _missing_tools() -> list[str]:
    missing = [] if os.access(REGISTRY_BIN, os.X_OK) else [REGISTRY_BIN]
    missing += [tool for tool in ("skopeo", "htpasswd") if shutil.which(tool) is None]
    return missing


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v2/", timeout=1):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up, and asking for credentials as configured
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not answer on {url} within {START_TIMEOUT:.0f} s")


@contextlib.contextmanager
def run_registry(workdir: Path) -> Iterator[RegistryServer]:
    """Start docker-registry with htpasswd auth; stop it on exit."""
    missing = _missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make setup installs them)")
    user, password = "ci-pusher", secrets.token_urlsafe(12)
    htpasswd = subprocess.run(
        ["htpasswd", "-nbB", user, password], capture_output=True, text=True, check=True
    ).stdout.strip()
    (workdir / "htpasswd").write_text(htpasswd + "\n")
    (workdir / "storage").mkdir(exist_ok=True)
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        "auth": {"htpasswd": {"realm": "cv-platform-test", "path": str(workdir / "htpasswd")}},
    }
    (workdir / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = workdir / "registry.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(workdir / "config.yml")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield RegistryServer(url, f"127.0.0.1:{port}", user, password, workdir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A running docker-registry with htpasswd auth; iterate it for (url, user, password)."""
    with run_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


@dataclass(frozen=True)
class PushedImages:
    """What ``registry_images`` pushed to ``server`` (all in one repository)."""

    server: RegistryServer
    repository: str  # path in the registry, e.g. cv/model-server
    v1: Layout  # OCI manifest, tag v1
    v2: Layout  # OCI manifest, tag v2 (and latest)
    multi: Layout  # OCI index over linux/amd64 + linux/arm64, tag multi
    docker_v1_digest: str  # v1 converted to a Docker v2 schema 2 manifest, tag v1-docker

    @property
    def name(self) -> str:
        """``127.0.0.1:PORT/cv/model-server``: what a stack file's repository holds."""
        return f"{self.server.host}/{self.repository}"


@pytest.fixture(scope="session")
def registry_images(
    registry_server: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> PushedImages:
    """Push v1, v2 (= latest), a multi-arch index and a Docker-format image, once."""
    repository = "cv/model-server"
    builder = OciLayoutBuilder(tmp_path_factory.mktemp("oci-layout"))
    v1 = builder.tag("v1", builder.image(b"model v1\n"), OCI_MANIFEST)
    v2 = builder.tag("v2", builder.image(b"model v2\n"), OCI_MANIFEST)
    amd64 = builder.image(b"model v3 amd64\n")
    arm64 = builder.image(b"model v3 arm64\n", arch="arm64")
    multi = builder.tag(
        "multi", builder.index([(amd64, "linux", "amd64"), (arm64, "linux", "arm64")]), OCI_INDEX
    )
    for layout in (v1, v2, multi):
        registry_server.push(builder.path, repository, layout.tag)
    registry_server.put_manifest(repository, "latest", v2.body, OCI_MANIFEST)
    # skopeo converts on the way in: a Docker v2 schema 2 manifest of the same image.
    builder.tag("v1-docker", v1.body, OCI_MANIFEST)
    registry_server.push(builder.path, repository, "v1-docker", docker_format=True)
    docker_digest = registry_server.skopeo_digest(repository, "v1-docker")
    return PushedImages(registry_server, repository, v1, v2, multi, docker_digest)
