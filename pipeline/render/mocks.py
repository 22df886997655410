"""Run the real Pulumi program under Pulumi's mock runtime and record what it declares.

Used by ``pipeline render`` and by the infra tests. The mocks return realistic
computed outputs (ids, uids, cluster IPs, image digests, rollout status) that
are derived from a hash of the resource's type and name, so a run is
deterministic: the same config gives byte-identical results.
"""

from __future__ import annotations

import copy
import hashlib
import runpy
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import is_rpc_secret
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

# Fixed so that renders are reproducible; a real cluster sets the time of creation.
CREATED_AT = "2026-01-01T00:00:00Z"


def _hex(*parts: str, length: int = 64) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def _uid(*parts: str) -> str:
    h = _hex(*parts, length=32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _cluster_ip(*parts: str) -> str:
    # Inside the default service CIDR 10.96.0.0/12.
    n = int(_hex(*parts, length=8), 16) % (1 << 20)
    return f"10.{96 + (n >> 16)}.{(n >> 8) & 0xFF}.{max(n & 0xFF, 2)}"


def _unwrap(value: Any) -> Any:
    """Inputs with secrets unwrapped: what the engine would send a provider."""
    if is_rpc_secret(value):
        return _unwrap(value["value"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


@dataclass(frozen=True)
class DeclaredResource:
    """One resource the program registered: its inputs keep secrets wrapped."""

    type: str
    name: str
    inputs: dict[str, Any]
    id: str
    outputs: dict[str, Any]
    # Resource options the engine acts on (protect, retainOnDelete, ...), as registered.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_kubernetes_object(self) -> bool:
        return (
            self.type.startswith("kubernetes:")
            and "apiVersion" in self.inputs
            and "kind" in self.inputs
            and not self.type.startswith("kubernetes:helm")
            and not self.type.startswith("kubernetes:yaml")
        )


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that return realistic provider outputs and remember every call."""

    def __init__(self) -> None:
        self.resources: list[DeclaredResource] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # Set by OptionRecordingMonitor just before it calls new_resource on the same thread.
        self.pending_options = threading.local()

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        plain = _unwrap(inputs)
        rid, outputs = self._provider_outputs(args.typ, args.name, plain)
        options = dict(getattr(self.pending_options, "value", None) or {})
        self.resources.append(DeclaredResource(args.typ, args.name, inputs, rid, outputs, options))
        # Components have no provider id.
        return (rid if args.custom else None), outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        plain = _unwrap(dict(args.args))
        self.calls.append((args.token, plain))
        if args.token == "docker:index/getRegistryImage:getRegistryImage":  # noqa: S105
            return {
                **plain,
                "sha256Digest": "sha256:" + _hex(args.token, str(plain.get("name"))),
            }, None
        return plain, None

    @staticmethod
    def _provider_outputs(
        typ: str, name: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        state = copy.deepcopy(inputs)
        if typ.startswith("pulumi:providers:"):
            return _uid(typ, name), state
        if typ.startswith("kubernetes:"):
            return _kubernetes_outputs(typ, name, state)
        if typ.startswith("docker:"):
            return _docker_outputs(typ, name, state)
        return f"{name}-{_hex(typ, name, length=8)}", state


class OptionRecordingMonitor(MockMonitor):
    """Pulumi's mock monitor, also keeping the resource options mocks are not given.

    ``protect`` and ``retainOnDelete`` matter to reviewers and to policy (tooling
    volumes must survive a destroy), so a render records them.
    """

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self._recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method it overrides
        options: dict[str, Any] = {
            "protect": request.protect if request.HasField("protect") else False,
            "retainOnDelete": (
                request.retainOnDelete if request.HasField("retainOnDelete") else False
            ),
        }
        if request.ignoreChanges:
            options["ignoreChanges"] = sorted(request.ignoreChanges)
        if request.replaceOnChanges:
            options["replaceOnChanges"] = sorted(request.replaceOnChanges)
        if request.deleteBeforeReplace:
            options["deleteBeforeReplace"] = True
        self._recording.pending_options.value = options
        try:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        finally:
            self._recording.pending_options.value = None


def _kubernetes_outputs(typ: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    meta = state.setdefault("metadata", {})
    if not meta.get("name"):
        # Pulumi's auto-naming: logical name plus a random suffix (here: a stable one).
        meta["name"] = f"{name}-{_hex(typ, name, length=8)}"
    meta.setdefault("uid", _uid(typ, name))
    meta.setdefault("resourceVersion", str(int(_hex(typ, name, length=6), 16)))
    meta.setdefault("creationTimestamp", CREATED_AT)
    meta.setdefault("generation", 1)
    kind = state.get("kind", "")
    spec = state.get("spec") or {}
    if kind == "Namespace":
        state["status"] = {"phase": "Active"}
    elif kind == "Service":
        if spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None":
            ip = _cluster_ip(typ, name)
            spec.setdefault("clusterIP", ip)
            spec.setdefault("clusterIPs", [ip])
        state["status"] = {"loadBalancer": {}}
    elif kind in ("Deployment", "StatefulSet"):
        replicas = spec.get("replicas", 1)
        state["status"] = {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }
    ns = meta.get("namespace")
    rid = f"{ns}/{meta['name']}" if ns else meta["name"]
    return rid, state


def _docker_outputs(typ: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    digest = "sha256:" + _hex(typ, name, "digest")
    if typ == "docker:index/image:Image":
        image_name = state.get("imageName", name)
        repo = image_name.rsplit(":", 1)[0] if ":" in image_name.rsplit("/", 1)[-1] else image_name
        state["repoDigest"] = f"{repo}@{digest}"
        state["baseImageName"] = image_name
        return f"{image_name}-{digest}", state
    if typ == "docker:index/remoteImage:RemoteImage":
        ref = state.get("name", name)
        state["imageId"] = "sha256:" + _hex(typ, name, "image-id")
        state.setdefault(
            "repoDigest", ref if "@sha256:" in ref else f"{ref.split(':')[0]}@{digest}"
        )
        return state["imageId"] + ref, state
    if typ == "docker:index/volume:Volume":
        vol = state.get("name") or f"{name}-{_hex(typ, name, length=7)}"
        state["name"] = vol
        state.setdefault("driver", "local")
        state["mountpoint"] = f"/var/lib/docker/volumes/{vol}/_data"
        return vol, state
    if typ == "docker:index/network:Network":
        state.setdefault("driver", "bridge")
        return _hex(typ, name), state
    if typ == "docker:index/container:Container":
        state["exitCode"] = None
        state["hostname"] = _hex(typ, name, length=12)
        return _hex(typ, name), state
    return _hex(typ, name), state


def forget_shadowed_modules(root: Path) -> None:
    """Drop cached modules that ``root`` provides itself but were imported from elsewhere.

    ``runpy`` re-runs ``__main__.py`` each time, but the packages it imports
    (``infra.*``) stay cached in ``sys.modules``: without this, rendering a
    second tree (a git worktree of the base, a test project) would silently
    run the first tree's components.
    """
    prefix = str(root) + "/"
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        origin = getattr(module, "__file__", None) or ""
        if not origin or origin.startswith(prefix):
            continue
        # The tool running the program (pipeline) is never the program's own code.
        provided = (root / top).is_dir() or (root / f"{top}.py").is_file()
        if provided and top != "pipeline":
            del sys.modules[name]


@dataclass(frozen=True)
class ProgramRun:
    """What one run of the program declared and exported."""

    resources: tuple[DeclaredResource, ...]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str] = field(default_factory=frozenset)


def run_program(
    root: Path,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Iterable[str] = (),
    project: str = "cv-platform",
) -> ProgramRun:
    """Run ``root/__main__.py`` for ``stack`` under mocks, with ``config`` as Pulumi passes it.

    ``config`` maps full keys (``cv-platform:replicas``) to the string values the
    engine hands a program (objects and arrays as JSON). Exceptions raised by the
    program (config validation errors among them) propagate unchanged.
    """
    root = root.resolve()
    forget_shadowed_modules(root)
    mocks = RecordingMocks()
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack=stack,
        preview=False,
        monitor=OptionRecordingMonitor(mocks),
    )
    main = root / "__main__.py"
    exported: dict[str, Any] = {}
    secret: set[str] = set()

    async def collect() -> None:
        stack_resource = pulumi_settings.get_root_resource()
        outputs: dict[str, Any] = getattr(stack_resource, "outputs", {})
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            exported[key] = await out.future()
            if await out.is_secret():
                secret.add(key)

    def program() -> Any:
        root_str = str(root)
        added = root_str not in sys.path
        if added:
            sys.path.insert(0, root_str)
        try:
            runpy.run_path(str(main), run_name="__main__")
        finally:
            if added:
                sys.path.remove(root_str)
        return collect()

    _sync_await(run_pulumi_func(program))
    return ProgramRun(tuple(mocks.resources), exported, frozenset(secret))
