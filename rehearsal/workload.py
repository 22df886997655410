"""The rendered model-server Deployment, run as real containers on the engine.

``pod_from_render`` reads what ``pipeline render STACK`` wrote (the Deployment,
the ConfigMaps it takes its environment from, the autoscaler's minimum) into a
:class:`PodSpec`; ``docker_run_args`` turns one replica of it into ``docker run``
flags, applying the pod spec as rendered:

- securityContext: read-only root filesystem, the UID/GID, all capabilities
  dropped, no privilege escalation, never privileged, the runtime's default
  seccomp profile, fsGroup as a supplementary group;
- resources: the memory limit (and request as reservation), the CPU limit;
- volumes: each emptyDir as a tmpfs of its sizeLimit (a write past the limit
  fails, as an eviction would end the pod);
- the environment: every ConfigMap of ``envFrom`` and every literal ``env``;
- the probes: the startup and readiness probes are polled as the kubelet does
  (httpGet, period, timeout); a replica is ready after its first success and
  failed when its container exits or the budget runs out.

What a single engine cannot do is said, once, as a note: GPU requests (run on
the CPU), node selectors, tolerations and spreading (one host), a CPU limit
above this machine's cores (capped), the image pull secret (the engine logs in
to the registry itself), the Service (the smoke test calls a replica).
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$")
_BINARY = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    None: 1,
}


class WorkloadError(Exception):
    """The render holds no workload the rehearsal can run; one line."""


def quantity_bytes(text: str) -> int:
    match = _QUANTITY.match(str(text))
    if match is None or match.group(2) == "m":
        raise WorkloadError(f"not a memory quantity: {text!r}")
    return int(float(match.group(1)) * _BINARY[match.group(2)])


def quantity_cpus(text: str) -> float:
    raw = str(text)
    if raw.endswith("m"):
        return float(raw[:-1]) / 1000
    return float(raw)


@dataclass(frozen=True)
class Probe:
    kind: str  # startup | readiness | liveness
    path: str
    port: int
    period: float
    timeout: float
    failure_threshold: int

    @property
    def budget(self) -> float:
        return self.period * self.failure_threshold


@dataclass(frozen=True)
class PodSpec:
    stack: str
    name: str
    image: str
    replicas: int
    port: int
    env: Mapping[str, str]
    user: int | None
    group: int | None
    fs_group: int | None
    read_only: bool
    drop_all: bool
    no_new_privileges: bool
    memory_limit: int | None
    memory_request: int | None
    cpu_limit: float | None
    gpus: int
    tmpfs: tuple[tuple[str, int], ...]  # (mount path, size limit in bytes)
    probes: Mapping[str, Probe]
    notes: tuple[str, ...] = field(default=())
    # Where the Deployment runs and its pods' labels (what a ServiceMonitor labels them by).
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def _load_all(render_dir: Path) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in sorted(render_dir.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and "kind" in document:
            objects.append(document)
    return objects


def _port_number(port: Any, ports: Sequence[Mapping[str, Any]]) -> int:
    if isinstance(port, int):
        return port
    for entry in ports:
        if entry.get("name") == port:
            return int(entry["containerPort"])
    raise WorkloadError(f"probe port {port!r} is not a container port")


def _probe(
    kind: str, spec: Mapping[str, Any] | None, ports: Sequence[Mapping[str, Any]]
) -> Probe | None:
    if not spec:
        return None
    http = spec.get("httpGet")
    if not http:
        raise WorkloadError(f"the {kind} probe is not an httpGet probe")
    return Probe(
        kind=kind,
        path=str(http.get("path", "/")),
        port=_port_number(http.get("port"), ports),
        period=float(spec.get("periodSeconds", 10)),
        timeout=float(spec.get("timeoutSeconds", 1)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
    )


def pod_from_render(render_dir: Path, stack: str) -> PodSpec:
    """The one Deployment of a render, with what it refers to, as a PodSpec."""
    objects = _load_all(render_dir)
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    if len(deployments) != 1:
        raise WorkloadError(f"the render of {stack} holds {len(deployments)} Deployments, not 1")
    deployment = deployments[0]
    name = deployment["metadata"]["name"]
    template = deployment["spec"]["template"]["spec"]
    containers = template["containers"]
    if len(containers) != 1:
        raise WorkloadError(f"Deployment {name} has {len(containers)} containers, not 1")
    container = containers[0]
    config_maps = {
        o["metadata"]["name"]: o.get("data") or {} for o in objects if o["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    notes: list[str] = []
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref is None:
            notes.append("envFrom other than a ConfigMap is not applied")
            continue
        if ref["name"] not in config_maps:
            raise WorkloadError(f"ConfigMap {ref['name']} is not in the render of {stack}")
        env.update({str(k): str(v) for k, v in config_maps[ref["name"]].items()})
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        else:
            notes.append(f"env {entry['name']} comes from a reference: not applied")
    pod_security = template.get("securityContext") or {}
    security = {**pod_security, **(container.get("securityContext") or {})}
    if security.get("privileged"):
        raise WorkloadError(f"Deployment {name} asks for a privileged container")
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    gpus = int(limits.get("nvidia.com/gpu", 0))
    if gpus:
        notes.append(f"{gpus} nvidia.com/gpu per pod asked for: run on the CPU here")
    if template.get("tolerations") or len(template.get("nodeSelector") or {}) > 1:
        notes.append("node selectors and tolerations do not apply on one host")
    volumes = {v["name"]: v for v in template.get("volumes", [])}
    tmpfs: list[tuple[str, int]] = []
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        if volume is None or "emptyDir" not in volume:
            raise WorkloadError(f"volume {mount['name']} is not an emptyDir: cannot run it here")
        size = (volume["emptyDir"] or {}).get("sizeLimit")
        if size is None:
            raise WorkloadError(f"emptyDir {mount['name']} has no sizeLimit")
        tmpfs.append((mount["mountPath"], quantity_bytes(size)))
    ports = container.get("ports") or []
    if not ports:
        raise WorkloadError(f"Deployment {name} declares no container port")
    probes = {
        kind: probe
        for kind, probe in (
            (k, _probe(k, container.get(f"{k}Probe"), ports))
            for k in ("startup", "readiness", "liveness")
        )
        if probe is not None
    }
    if "readiness" not in probes:
        raise WorkloadError(f"Deployment {name} has no readiness probe")
    replicas = int(deployment["spec"].get("replicas") or 0)
    autoscalers = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    if not replicas:
        replicas = int(autoscalers[0]["spec"].get("minReplicas", 1)) if autoscalers else 1
    caps = (security.get("capabilities") or {}).get("drop") or []
    return PodSpec(
        stack=stack,
        name=name,
        image=container["image"],
        replicas=replicas,
        port=int(ports[0]["containerPort"]),
        env=env,
        user=security.get("runAsUser"),
        group=security.get("runAsGroup"),
        fs_group=pod_security.get("fsGroup"),
        read_only=bool(security.get("readOnlyRootFilesystem")),
        drop_all="ALL" in caps,
        no_new_privileges=security.get("allowPrivilegeEscalation") is False,
        memory_limit=quantity_bytes(limits["memory"]) if "memory" in limits else None,
        memory_request=quantity_bytes(requests["memory"]) if "memory" in requests else None,
        cpu_limit=quantity_cpus(limits["cpu"]) if "cpu" in limits else None,
        gpus=gpus,
        tmpfs=tuple(tmpfs),
        probes=probes,
        notes=tuple(notes),
        namespace=str(deployment["metadata"].get("namespace") or ""),
        labels=dict(deployment["spec"]["template"].get("metadata", {}).get("labels") or {}),
    )


def docker_run_args(
    pod: PodSpec, container: str, host_port: int, cpus: int
) -> tuple[list[str], list[str]]:
    """``docker run`` arguments for one replica, and the notes of what was adapted."""
    notes = []
    args = [
        "run",
        "-d",
        "--name",
        container,
        "--pull",
        "always",
        "--label",
        f"cv-platform.rehearsal/stack={pod.stack}",
    ]
    if pod.user is not None:
        args += ["--user", f"{pod.user}:{pod.group if pod.group is not None else pod.user}"]
    if pod.fs_group is not None:
        args += ["--group-add", str(pod.fs_group)]
    if pod.read_only:
        args.append("--read-only")
    if pod.drop_all:
        args += ["--cap-drop", "ALL"]
    if pod.no_new_privileges:
        args += ["--security-opt", "no-new-privileges"]
    if pod.memory_limit is not None:
        args += ["--memory", str(pod.memory_limit), "--memory-swap", str(pod.memory_limit)]
    if pod.memory_request is not None and (
        pod.memory_limit is None or pod.memory_request <= pod.memory_limit
    ):
        args += ["--memory-reservation", str(pod.memory_request)]
    if pod.cpu_limit is not None:
        limit = pod.cpu_limit
        if limit > cpus:
            notes.append(f"CPU limit {limit:g} capped at this machine's {cpus} cores")
            limit = float(cpus)
        args += ["--cpus", f"{limit:g}"]
    for path, size in pod.tmpfs:
        args += ["--tmpfs", f"{path}:rw,nosuid,nodev,size={size},mode=1777"]
    for key, value in sorted(pod.env.items()):
        args += ["--env", f"{key}={value}"]
    args += ["--publish", f"127.0.0.1:{host_port}:{pod.port}", pod.image]
    return args, notes


def http_status(url: str, timeout: float) -> str:
    """The answer's status code, or why there was none (never raises)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - loopback
            return str(answer.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer ({reason})"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    seconds: float
    reason: str  # why not ready (empty when ready)


def wait_ready(
    base_url: str,
    pod: PodSpec,
    *,
    running: Callable[[], tuple[bool, str]],
    cap_seconds: float,
    status: Callable[[str, float], str] = http_status,
) -> Readiness:
    """Poll the startup probe, then the readiness probe, as the kubelet would.

    The startup probe's budget (period x failureThreshold) bounds the wait, capped
    at ``cap_seconds``; a container that stops is a failure at once.
    """
    started = time.monotonic()
    readiness = pod.probes["readiness"]
    first = pod.probes.get("startup", readiness)
    budget = min(first.budget if "startup" in pod.probes else readiness.budget * 10, cap_seconds)
    seen: dict[str, int] = {}
    for probe in (first, readiness) if first is not readiness else (readiness,):
        url = f"{base_url}{probe.path}"
        interval = min(probe.period, 1.0)  # the first success counts; poll often
        for _ in range(int(budget / interval) + 2):
            alive, ended = running()
            if not alive:
                return Readiness(False, time.monotonic() - started, f"the container {ended}")
            answer = status(url, probe.timeout)
            if answer == "200":
                break
            seen[answer] = seen.get(answer, 0) + 1
            if time.monotonic() - started >= budget:
                answers = ", ".join(f"{k} x{v}" for k, v in sorted(seen.items()))
                return Readiness(
                    False,
                    time.monotonic() - started,
                    f"the {probe.kind} probe {probe.path} never passed within {budget:.0f} s "
                    f"(answers: {answers})",
                )
            time.sleep(interval)
    return Readiness(True, time.monotonic() - started, "")


def machine_cpus() -> int:
    return len(os.sched_getaffinity(0)) or 1
