"""The rehearsal's image registry: Debian's Distribution 2.8 on 127.0.0.1, htpasswd auth.

Plain HTTP on loopback (Docker, skopeo and the pipeline treat 127.0.0.0/8 as
insecure by default). The password is made for the run, kept only in files of
mode 0600 under the run directory: the htpasswd line, and a Docker config.json
that the pipeline and skopeo read (DOCKER_CONFIG), as on the Jenkins agent.
Storage persists between runs, so a warm run pushes only new layers.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rehearsal.proc import StageFailed, pid_alive, run, start_background, stop_pid, wait_until

BINARY = "/usr/bin/docker-registry"
USER = "rehearsal"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Login:
    host: str  # 127.0.0.1:PORT
    user: str
    password: str
    docker_config: Path  # a directory holding config.json with this login


class LocalRegistry:
    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.pid: int | None = None

    def start(self) -> Login:
        if run(["test", "-x", BINARY], timeout=5).returncode != 0:
            raise StageFailed(
                f"start the registry: {BINARY} is missing (Debian package docker-registry)"
            )
        (self.root / "storage").mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(18)
        line = run(
            ["htpasswd", "-niB", USER],
            timeout=30,
            input_text=password,
            check="make the registry's htpasswd (Debian package apache2-utils)",
        ).stdout.strip()
        htpasswd = self.root / "htpasswd"
        htpasswd.write_text(line + "\n")
        htpasswd.chmod(0o600)
        host = f"127.0.0.1:{free_port()}"
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "storage")},
                "delete": {"enabled": True},
            },
            "http": {"addr": host, "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "cv-platform-rehearsal", "path": str(htpasswd)}},
        }
        (self.root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        self.pid = start_background([BINARY, "serve", str(self.root / "config.yml")], log=self.log)
        pid = self.pid

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1)
            except urllib.error.HTTPError as exc:
                return exc.code == 401  # up, asking for the login as configured
            except OSError:
                return False
            return False

        if not wait_until(answers, timeout=15, alive=lambda: pid_alive(pid)):
            raise StageFailed(f"start the registry: no answer on http://{host}/v2/ within 15 s")
        docker_config = self.root / "docker"
        docker_config.mkdir(mode=0o700, exist_ok=True)
        auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
        config_file = docker_config / "config.json"
        config_file.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
        config_file.chmod(0o600)
        return Login(host, USER, password, docker_config)

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid, grace=10)
            self.pid = None
        (self.root / "docker" / "config.json").unlink(missing_ok=True)
        (self.root / "htpasswd").unlink(missing_ok=True)
