"""A private Docker Engine for the rehearsal, leaving nothing behind on the host.

Why Docker Engine (Debian's docker.io) and not Podman: both were measured here.
Docker's classic builder caches layers well (a warm model build takes under a
second, Podman's 8-12 s), and a private dockerd changes no global state when it
is given its own socket, data and exec roots, key file and bridge, with
iptables, IP forwarding and masquerading off. Podman's ``kube play`` would run
the Deployment YAML itself, but it ignores readiness and startup probes and
emptyDir size limits, which are exactly what the rehearsal must exercise; the
rehearsal applies the rendered pod spec to ``docker run`` itself instead
(rehearsal.workload).

Networking: containers sit on a private bridge without masquerading, so they
reach nothing outside; the host reaches them through ports published on
127.0.0.1. Builds that fetch from PyPI or Debian use the host's network
(``docker build --network host``). The 20.10 client (/usr/bin/docker) goes with
the 20.10 daemon (another client version keeps a build cache of its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from rehearsal.proc import StageFailed, pid_alive, run, start_background, stop_pid, wait_until

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
BRIDGE = "cvrh0"
BRIDGE_CIDR = "10.213.0.1/24"
START_TIMEOUT = 30.0


def _uplink_mtu() -> int:
    try:
        route = subprocess.run(
            ["ip", "route", "show", "default"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.split()
        device = route[route.index("dev") + 1]
        return int(Path(f"/sys/class/net/{device}/mtu").read_text().strip())
    except (ValueError, IndexError, OSError, subprocess.SubprocessError):
        return 1500


class DockerEngine:
    """dockerd on ``root``/docker.sock; keep ``root`` between runs to keep layers."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.socket = root / "docker.sock"
        self.env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(root / "client"),
            "DOCKER_BUILDKIT": "0",
        }
        self._made: list[Path] = []

    # --- lifecycle ---------------------------------------------------------------------

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            done = run(
                [DOCKER, "version", "--format", "{{.Server.Version}}"], timeout=5, env=self.env
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def _pid(self) -> int | None:
        for name in ("dockerd.pid", "dockerd.launch.pid"):
            try:
                return int((self.root / name).read_text().strip())
            except (OSError, ValueError):
                continue
        return None

    def start(self) -> None:
        for tool in (DOCKERD, DOCKER):
            if not os.access(tool, os.X_OK):
                raise StageFailed(
                    f"start the engine: {tool} is missing (Debian package docker.io; "
                    "make rehearse installs it)"
                )
        for sub in ("data", "exec", "client"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # Stale pid files (a crashed run) make dockerd and its containerd refuse to start.
        for stale in (self.root / "dockerd.pid", self.root / "exec/containerd/containerd.pid"):
            try:
                if not pid_alive(int(stale.read_text().strip())):
                    stale.unlink()
            except (OSError, ValueError):
                pass
        for shared in (Path("/run/docker"), Path("/run/containerd")):
            if not shared.exists():
                self._made.append(shared)
        if run(["ip", "link", "show", BRIDGE], timeout=5).returncode != 0:
            mtu = str(_uplink_mtu())
            run(
                ["ip", "link", "add", BRIDGE, "type", "bridge"],
                timeout=5,
                check="create the bridge",
            )
            run(
                ["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE],
                timeout=5,
                check="address the bridge",
            )
            run(
                ["ip", "link", "set", BRIDGE, "mtu", mtu, "up"],
                timeout=5,
                check="bring the bridge up",
            )
        config = {
            "hosts": [self.env["DOCKER_HOST"]],
            "data-root": str(self.root / "data"),
            "exec-root": str(self.root / "exec"),
            "pidfile": str(self.root / "dockerd.pid"),
            "deprecated-key-path": str(self.root / "key.json"),
            "bridge": BRIDGE,
            "iptables": False,
            "ip-forward": False,
            "ip-masq": False,
            "mtu": _uplink_mtu(),
            "storage-driver": "overlay2",
            "log-driver": "json-file",
            "log-opts": {"max-size": "10m"},
            "features": {"buildkit": False},
        }
        (self.root / "daemon.json").write_text(json.dumps(config, indent=2))
        pid = start_background(
            [DOCKERD, "--config-file", str(self.root / "daemon.json")], log=self.log
        )
        (self.root / "dockerd.launch.pid").write_text(str(pid))
        if not wait_until(self.answers, timeout=START_TIMEOUT, alive=lambda: pid_alive(pid)):
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] or ["no log"]
            raise StageFailed(f"start the engine: dockerd did not answer: {tail[0]}")

    def stop(self) -> None:
        """Remove every container, stop dockerd, and undo what it left on the host."""
        if self.answers():
            ids = self.docker("ps", "-aq", timeout=15).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=90)
        pid = self._pid()
        if pid is not None:
            stop_pid(pid, grace=20)
        # Shims of this engine's containerd outlive a SIGKILLed daemon.
        shims = run(["pgrep", "-f", f"containerd-shim.*{self.root}/exec"], timeout=5).stdout
        for shim in shims.split():
            stop_pid(int(shim), grace=2)
        mounts = run(["findmnt", "-rn", "-o", "TARGET"], timeout=10).stdout.splitlines()
        for mount in sorted((m for m in mounts if m.startswith(f"{self.root}/")), reverse=True):
            run(["umount", "-l", mount], timeout=10)
        if run(["ip", "link", "show", BRIDGE], timeout=5).returncode == 0:
            run(["ip", "link", "del", BRIDGE], timeout=5)
        self.socket.unlink(missing_ok=True)
        for name in ("dockerd.launch.pid", "dockerd.pid"):
            (self.root / name).unlink(missing_ok=True)
        for made in self._made:
            shutil.rmtree(made, ignore_errors=True)
        for cgroup in Path("/sys/fs/cgroup").glob("*/docker"):
            with contextlib.suppress(OSError):
                cgroup.rmdir()  # only an empty one goes

    # --- commands ----------------------------------------------------------------------

    def docker(
        self, *args: str, timeout: float = 60, check: str | None = None, log: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [DOCKER, *args],
            timeout=timeout,
            env=self.env,
            check=check,
            log=self.log if log else None,
        )

    def login(self, registry: str, user: str, password: str) -> None:
        run(
            [DOCKER, "login", "-u", user, "--password-stdin", registry],
            timeout=30,
            env=self.env,
            input_text=password,
            check=f"log in to {registry}",
        )

    def image_size(self, ref: str) -> int:
        done = self.docker("image", "inspect", "--format", "{{.Size}}", ref, timeout=30)
        return int(done.stdout.strip() or 0) if done.returncode == 0 else 0

    def running(self, name: str) -> tuple[bool, str]:
        """Whether container ``name`` runs, else how it ended (exit code, OOM)."""
        done = self.docker(
            "inspect",
            "--format",
            "{{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}",
            name,
            timeout=15,
            log=False,
        )
        if done.returncode != 0:
            return False, "the container is gone"
        running, code, oom = done.stdout.split()
        if running == "true":
            return True, ""
        return False, "killed: out of memory" if oom == "true" else f"exited with {code}"

    def logs_tail(self, name: str, lines: int = 5) -> list[str]:
        done = self.docker("logs", "--tail", str(lines), name, timeout=15, log=False)
        return [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
