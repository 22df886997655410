"""The rehearsal's stand-in for ``pulumi up``: render the stack, run its workload.

``ci/deploy STACK`` runs this (``CI_DEPLOY_COMMAND``) where no Pulumi CLI and
kube context are at hand, then records the deployment with its real start and
finish, as it does after a real ``pulumi up``. It renders the stack from the
stack file in the working tree (``pipeline render``, Pulumi's mocks), runs every
replica of the Deployment on the rehearsal's engine pulling the rendered image
by digest, waits for the rendered probes, and then (a rollout that surges, never
going below what was running) removes the replicas of the previous deployment.
A replica that never gets ready fails the deploy, and the previous ones keep
running. Where the stack's replicas answer is written to RUN/STACK.json, and, for
the rehearsal's Prometheus, to RUN/prometheus/targets-STACK.json with the labels
the ServiceMonitor would give them.

    python -m rehearsal.deploy STACK       (environment: REHEARSAL_RUN, DOCKER_HOST)
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

from infra.monitoring.monitor import Target
from pipeline.verification.labels import POD_NAME_LABEL, POD_VERSION_LABEL
from rehearsal.engine import DockerEngine
from rehearsal.proc import StageFailed, run
from rehearsal.prometheus import write_targets
from rehearsal.registry import free_port
from rehearsal.workload import (
    PodSpec,
    WorkloadError,
    docker_run_args,
    http_status,
    machine_cpus,
    pod_from_render,
    wait_ready,
)

READY_CAP_SECONDS = 120.0


def render(stack: str, out: Path, log: Path) -> PodSpec:
    run(
        [sys.executable, "-m", "pipeline", "render", stack, "--out", str(out)],
        timeout=300,
        log=log,
        check=f"render {stack}",
    )
    try:
        return pod_from_render(out, stack)
    except WorkloadError as exc:
        raise StageFailed(f"render {stack}: {exc}") from None


def telling_line(lines: list[str]) -> str:
    """The log line that says most about why a container ended (an OS error first)."""
    for marker in ("Errno", "Error:", "error:", "Exception"):
        found = [ln for ln in lines if marker in ln]
        if found:
            return f": {found[-1].strip()[:240]}"
    return f": {lines[-1].strip()[:240]}" if lines else ""


def rollout(engine: DockerEngine, pod: PodSpec, cap: float) -> list[str]:
    """Start every replica, wait for them, remove the old ones; the replicas' URLs."""
    old = engine.docker(
        "ps", "-aq", "--filter", f"label=cv-platform.rehearsal/stack={pod.stack}", timeout=30
    ).stdout.split()
    stamp = time.strftime("%H%M%S")
    started: list[str] = []
    urls: list[str] = []
    notes = list(pod.notes)
    try:
        for index in range(pod.replicas):
            name = f"rehearsal-{pod.stack}-{stamp}-{index + 1}"
            port = free_port()
            args, adapted = docker_run_args(pod, name, port, machine_cpus())
            notes += [n for n in adapted if n not in notes]
            engine.docker(*args, timeout=600, check=f"run {pod.stack} replica {index + 1}")
            started.append(name)
            urls.append(f"http://127.0.0.1:{port}")
        for note in notes:
            print(f"rehearsal: {pod.stack}: {note}", flush=True)
        for name, url in zip(started, urls, strict=True):
            ready = wait_ready(
                url, pod, running=functools.partial(engine.running, name), cap_seconds=cap
            )
            if not ready.ready:
                why = ""
                if ready.reason.startswith("the container"):
                    why = telling_line(engine.logs_tail(name, 40))
                raise StageFailed(f"{pod.stack} replica {name}: {ready.reason}{why}")
            liveness = pod.probes.get("liveness")
            if liveness is not None:
                answer = http_status(f"{url}{liveness.path}", liveness.timeout)
                if answer != "200":
                    raise StageFailed(
                        f"{pod.stack} replica {name}: the liveness probe {liveness.path} "
                        f"answered {answer}"
                    )
            print(
                f"rehearsal: {pod.stack}: {name} ready in {ready.seconds:.1f} s on {url}",
                flush=True,
            )
    except BaseException:
        if started:
            engine.docker("rm", "-f", *started, timeout=60)
        raise
    if old:
        engine.docker("rm", "-f", *old, timeout=60)
    return urls


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m rehearsal.deploy STACK", file=sys.stderr)
        return 2
    stack = argv[0]
    run_dir = Path(os.environ["REHEARSAL_RUN"])
    engine = DockerEngine(run_dir / "engine", run_dir / "logs" / "engine.log")
    try:
        pod = render(stack, run_dir / "render" / stack, run_dir / "logs" / "render.log")
        cap = float(os.environ.get("REHEARSAL_READY_SECONDS", READY_CAP_SECONDS))
        urls = rollout(engine, pod, cap)
    except StageFailed as exc:
        print(f"deploy {stack}: {exc}", file=sys.stderr)
        return 1
    (run_dir / f"{stack}.json").write_text(
        json.dumps(
            {"stack": stack, "image": pod.image, "replicas": urls, "namespace": pod.namespace},
            indent=2,
        )
    )
    # What the ServiceMonitor would have Prometheus scrape: these replicas, so labelled.
    app = pod.labels.get(POD_NAME_LABEL, pod.name)
    version = pod.labels.get(POD_VERSION_LABEL, "")
    targets = [
        Target(url.removeprefix("http://"), pod.namespace, app, f"{pod.name}-{i}", version)
        for i, url in enumerate(urls)
    ]
    write_targets(run_dir / "prometheus", stack, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
