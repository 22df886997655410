"""rehearsal.workload: the rendered Deployment as ``docker run`` flags and probes.

Renders the real stack files with the real CLI (Pulumi's mocks), so the
translation is checked against what the program declares today. The probe
loop runs against a local HTTP server; the engine itself runs in ``make
rehearse`` (CI), not here.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rehearsal.deploy import telling_line
from rehearsal.flow import jenkins_env
from rehearsal.workload import (
    PodSpec,
    Probe,
    WorkloadError,
    docker_run_args,
    pod_from_render,
    quantity_bytes,
    quantity_cpus,
    wait_ready,
)
from tests.quiet_server import QuietHTTPServer


@pytest.fixture(scope="module")
def renders(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("renders")
    found = {}
    for stack in ("staging", "prod"):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "render", stack, "--out", str(out / stack)],
            cwd=project_root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found[stack] = out / stack
    return found


def test_staging_pod_is_the_rendered_one(renders: dict[str, Path]) -> None:
    pod = pod_from_render(renders["staging"], "staging")
    assert (pod.name, pod.replicas, pod.port) == ("model-server", 1, 8080)
    assert "@sha256:" in pod.image
    assert (pod.user, pod.group, pod.fs_group) == (10001, 10001, 10001)
    assert (pod.read_only, pod.drop_all, pod.no_new_privileges) == (True, True, True)
    assert dict(pod.tmpfs) == {"/tmp": 256 * 2**20, "/var/cache/model": 2**30}
    assert (pod.memory_limit, pod.memory_request, pod.cpu_limit) == (2**30, 512 * 2**20, 1.0)
    assert pod.env["TMPDIR"] == "/tmp"
    assert pod.env["MODEL_NAME"] == "digits"
    assert {k: p.path for k, p in pod.probes.items()} == {
        "startup": "/readyz",
        "readiness": "/readyz",
        "liveness": "/healthz",
    }
    assert pod.probes["startup"].budget == 300
    assert pod.notes == ()


def test_prod_pod_runs_its_replica_count_and_says_what_one_host_cannot_do(
    renders: dict[str, Path],
) -> None:
    pod = pod_from_render(renders["prod"], "prod")
    assert pod.replicas == 3  # the autoscaler's minimum: the Deployment sets no count
    assert pod.gpus == 1
    assert "1 nvidia.com/gpu per pod asked for: run on the CPU here" in pod.notes
    args, notes = docker_run_args(pod, "prod-1", 18080, cpus=2)
    assert notes == ["CPU limit 4 capped at this machine's 2 cores"]
    assert args[args.index("--cpus") + 1] == "2"
    assert not any("gpu" in a for a in args)


def test_run_flags_apply_the_pod_security_context_and_limits(renders: dict[str, Path]) -> None:
    pod = pod_from_render(renders["staging"], "staging")
    args, notes = docker_run_args(pod, "staging-1", 18080, cpus=8)
    assert notes == []
    joined = " ".join(args)
    for flag in (
        "--user 10001:10001",
        "--group-add 10001",
        "--read-only",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        f"--memory {2**30} --memory-swap {2**30}",
        "--cpus 1",
        f"--tmpfs /tmp:rw,nosuid,nodev,size={256 * 2**20},mode=1777",
        "--env TMPDIR=/tmp",
        "--publish 127.0.0.1:18080:8080",
        "--pull always",
    ):
        assert flag in joined, flag
    assert args[-1] == pod.image
    assert "--privileged" not in args


def _write(render: Path, objects: list[dict[str, object]]) -> Path:
    render.mkdir(parents=True, exist_ok=True)
    for index, obj in enumerate(objects):
        (render / f"{index}.yaml").write_text(yaml.safe_dump(obj))
    return render


def _deployment(container: dict[str, object], **spec: object) -> dict[str, object]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "m"},
        "spec": {"template": {"spec": {"containers": [container], **spec}}},
    }


BASE = {
    "name": "m",
    "image": "r/m@sha256:" + "a" * 64,
    "ports": [{"containerPort": 8080, "name": "http"}],
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
}


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([], "holds 0 Deployments, not 1"),
        (
            [_deployment({**BASE, "securityContext": {"privileged": True}})],
            "asks for a privileged container",
        ),
        (
            [
                _deployment(
                    {**BASE, "volumeMounts": [{"name": "h", "mountPath": "/h"}]},
                    volumes=[{"name": "h", "hostPath": {"path": "/"}}],
                )
            ],
            "volume h is not an emptyDir",
        ),
        ([_deployment({k: v for k, v in BASE.items() if k != "readinessProbe"})], "no readiness"),
        (
            [_deployment({**BASE, "envFrom": [{"configMapRef": {"name": "absent"}}]})],
            "ConfigMap absent is not in the render",
        ),
    ],
)
def test_what_cannot_run_here_is_refused_in_one_line(
    tmp_path: Path, objects: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(WorkloadError, match=message):
        pod_from_render(_write(tmp_path / "render", objects), "staging")


def test_quantities() -> None:
    assert quantity_bytes("256Mi") == 256 * 2**20
    assert quantity_bytes("1G") == 10**9
    assert quantity_cpus("250m") == 0.25
    assert quantity_cpus("2") == 2.0
    with pytest.raises(WorkloadError):
        quantity_bytes("100m")


# --- the probe loop -----------------------------------------------------------------------


class Answers:
    """A server that answers each path from a script: a list of status codes, then 200."""

    def __init__(self) -> None:
        self.script: dict[str, list[int]] = {}


@pytest.fixture
def server() -> Iterator[tuple[str, Answers]]:
    answers = Answers()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            queue = answers.script.get(self.path, [])
            code = queue.pop(0) if queue else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", answers
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _pod(path: str = "/readyz", period: float = 0.05, failures: int = 20) -> PodSpec:
    probe = Probe("readiness", path, 8080, period, 1.0, failures)
    startup = Probe("startup", path, 8080, period, 1.0, failures)
    return PodSpec(
        stack="staging", name="m", image="i", replicas=1, port=8080, env={}, user=None,
        group=None, fs_group=None, read_only=True, drop_all=True, no_new_privileges=True,
        memory_limit=None, memory_request=None, cpu_limit=None, gpus=0, tmpfs=(),
        probes={"startup": startup, "readiness": probe},
    )  # fmt: skip


def test_ready_after_the_first_success(server: tuple[str, Answers]) -> None:
    url, answers = server
    answers.script["/readyz"] = [503, 503]
    ready = wait_ready(url, _pod(), running=lambda: (True, ""), cap_seconds=10)
    assert ready.ready, ready.reason


def test_a_path_never_served_fails_within_the_probe_budget(server: tuple[str, Answers]) -> None:
    url, answers = server
    answers.script["/not-served"] = [404] * 1000
    ready = wait_ready(
        url, _pod("/not-served", failures=6), running=lambda: (True, ""), cap_seconds=10
    )
    assert not ready.ready
    assert ready.reason.startswith("the startup probe /not-served never passed within 0 s")
    assert "404 x" in ready.reason
    assert ready.seconds < 5


def test_a_container_that_stops_fails_at_once(server: tuple[str, Answers]) -> None:
    url, answers = server
    answers.script["/readyz"] = [503] * 1000
    ready = wait_ready(url, _pod(), running=lambda: (False, "exited with 3"), cap_seconds=60)
    assert (ready.ready, ready.reason) == (False, "the container exited with 3")
    assert ready.seconds < 1


def test_the_telling_log_line_is_the_os_error() -> None:
    lines = [
        "[INFO] Booting worker",
        "OSError: [Errno 30] Read-only file system: '/app/x'",
        "[ERROR] Reason: Worker failed to boot.",
    ]
    assert telling_line(lines) == ": OSError: [Errno 30] Read-only file system: '/app/x'"
    assert telling_line([]) == ""


def test_scripts_get_jenkins_environment_semantics() -> None:
    env = jenkins_env({"A": "1", "B": "2"}, {"B": "", "C": None, "D": "4"})
    assert env == {"A": "1", "D": "4"}
