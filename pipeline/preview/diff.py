"""Offline preview, the pure half: diff two renders of a stack, object by object.

A render (``pipeline render``) is a directory of manifests plus ``resources.json``;
``Snapshot.load`` reads one. ``diff_snapshots`` compares two: created, deleted and
changed objects, each with its changed fields (Pulumi-style property paths), a
field-by-field summary and a unified diff of the manifest, every value redacted.

Operations are estimated from the manifests: ``replace`` where a changed field is
immutable in Kubernetes (or a Docker resource is recreated on change); ``pulumi
preview`` decides.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import PipelineError
from pipeline.preview.pulumi_json import PropertyChange
from pipeline.preview.redact import redact_inputs
from pipeline.preview.values import ABSENT, compact, lookup

RESOURCES_FILE = "resources.json"
ObjectOp = Literal["create", "update", "replace", "delete"]

# Fields Kubernetes will not change in place: pulumi-kubernetes replaces the object.
# ConfigMap and Secret payloads are replaced too (so that pods roll), unless marked mutable.
_K8S_REPLACE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec.selector",),
    "ReplicaSet": ("spec.selector",),
    "DaemonSet": ("spec.selector",),
    "StatefulSet": (
        "spec.selector",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
        "spec.podManagementPolicy",
    ),
    "Job": ("spec.selector", "spec.template", "spec.completionMode"),
    "Service": ("spec.clusterIP", "spec.clusterIPs"),
    "PersistentVolumeClaim": (
        "spec.accessModes",
        "spec.storageClassName",
        "spec.volumeMode",
        "spec.volumeName",
        "spec.selector",
        "spec.dataSource",
    ),
    "ConfigMap": ("data", "binaryData"),
    "Secret": ("data", "stringData", "type"),
}
# Docker containers are recreated on any change except these; volumes, networks always.
_DOCKER_CONTAINER_IN_PLACE = frozenset(
    {"restart", "memory", "memorySwap", "cpuShares", "maxRetryCount", "mustRun", "wait"}
)
_DOCKER_ALWAYS_REPLACE = frozenset({"docker:index/volume:Volume", "docker:index/network:Network"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# Field lines shown above a changed object's manifest diff, and the longest value shown in one.
_MAX_FIELD_LINES = 20
_MAX_FIELD_VALUE = 200


@dataclass(frozen=True)
class Snapshot:
    """One stack rendered at one tree: manifests by file name, and every resource."""

    manifests: Mapping[str, Any] = field(default_factory=dict)
    resources: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def load(cls, directory: Path) -> Snapshot:
        manifests = {}
        for path in sorted(directory.glob("*.yaml")):
            manifests[path.name] = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw = json.loads((directory / RESOURCES_FILE).read_text(encoding="utf-8"))
        if not isinstance(raw, list):
            raise PipelineError(f"{directory / RESOURCES_FILE}: expected a list of resources")
        return cls(manifests, tuple(r for r in raw if isinstance(r, Mapping)))


@dataclass(frozen=True)
class ObjectChange:
    op: ObjectOp
    type: str
    name: str
    paths: tuple[str, ...]  # changed fields (replace-causing first)
    detail: str  # unified diff, or the manifest of a created object
    detail_lang: str


@dataclass(frozen=True)
class StackDiff:
    stack: str
    base_label: str
    changes: tuple[ObjectChange, ...]
    counts: Mapping[str, int]
    head: Snapshot
    base: Snapshot
    notes: tuple[str, ...] = ()


def is_kubernetes_object(resource: Mapping[str, Any]) -> bool:
    rtype = str(resource.get("type", ""))
    inputs = resource.get("inputs")
    return (
        rtype.startswith("kubernetes:")
        and isinstance(inputs, Mapping)
        and "apiVersion" in inputs
        and "kind" in inputs
        and not rtype.startswith(("kubernetes:helm", "kubernetes:yaml"))
    )


def kubernetes_type(manifest: Mapping[str, Any]) -> str:
    api = str(manifest.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{manifest.get('kind', '')}"


def _object_name(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata") if isinstance(manifest.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = str(meta.get("name", ""))
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if _IDENT.match(key):
        return f"{prefix}.{key}" if prefix else key
    return f'{prefix}["{key}"]'


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Pulumi-style property paths where ``old`` and ``new`` differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        paths: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = _join(prefix, str(key))
            if key not in old or key not in new:
                paths.append(path)
            else:
                paths.extend(changed_paths(old[key], new[key], path))
        return paths
    if isinstance(old, list) and isinstance(new, list):
        paths = []
        for i in range(max(len(old), len(new))):
            if i >= len(old) or i >= len(new):
                paths.append(_join(prefix, i))
            else:
                paths.extend(changed_paths(old[i], new[i], _join(prefix, i)))
        return paths
    return [] if old == new else [prefix or "(value)"]


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in prefixes)


def estimate_op(
    rtype: str, paths: Sequence[str], new: Mapping[str, Any]
) -> tuple[ObjectOp, list[str]]:
    """``(op, replace-causing paths)`` for a changed resource."""
    if rtype in _DOCKER_ALWAYS_REPLACE:
        return "replace", list(paths)
    if rtype == "docker:index/container:Container":
        forcing = [
            p for p in paths if p.split(".")[0].split("[")[0] not in _DOCKER_CONTAINER_IN_PLACE
        ]
        return ("replace", forcing) if forcing else ("update", [])
    kind = rtype.rsplit(":", 1)[-1] if rtype.startswith("kubernetes:") else ""
    immutable = list(_K8S_REPLACE_PATHS.get(kind, ()))
    if kind in ("ConfigMap", "Secret") and new.get("immutable") is True:
        immutable.append("")  # an immutable payload object: any change replaces it
    forcing = [p for p in paths if "" in immutable or _under(p, immutable)]
    return ("replace", forcing) if forcing else ("update", [])


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=1000)


def _unified(old: str, new: str, label: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"base/{label}",
        tofile=f"head/{label}",
        n=3,
    )
    return "".join(lines).rstrip("\n")


def _change(rtype: str, name: str, label: str, old: Any, new: Any) -> ObjectChange | None:
    if old is None and new is None:
        return None
    if old is None:
        shown = redact_inputs(new, rtype)
        return ObjectChange("create", rtype, name, (), _dump(shown).rstrip("\n"), "yaml")
    if new is None:
        return ObjectChange("delete", rtype, name, (), "", "diff")
    if old == new:
        return None
    paths = changed_paths(old, new)
    op, forcing = estimate_op(rtype, paths, new if isinstance(new, Mapping) else {})
    ordered = forcing + [p for p in paths if p not in forcing]
    shown_old, shown_new = redact_inputs(old, rtype), redact_inputs(new, rtype)
    # Field by field first (the path says which setting moved, e.g. an autoscaler's
    # spec.minReplicas), then the manifest's unified diff for context.
    fields = [
        line
        for path in ordered[:_MAX_FIELD_LINES]
        for line in _field_change(path, shown_old, shown_new, path in forcing).lines()
    ]
    if len(ordered) > _MAX_FIELD_LINES:
        fields.append(f"~ ... and {len(ordered) - _MAX_FIELD_LINES} more changed fields")
    diff = _unified(_dump(shown_old), _dump(shown_new), label)
    if not diff:
        diff = "(only values shown as [secret] changed)"
    return ObjectChange(op, rtype, name, tuple(ordered), "\n".join(fields) + "\n\n" + diff, "diff")


def _field_change(path: str, old: Any, new: Any, forces: bool) -> PropertyChange:
    def text(source: Any) -> str | None:
        found = lookup(source, path)
        if found is ABSENT:
            return None
        shown = compact(found)
        return shown if len(shown) <= _MAX_FIELD_VALUE else shown[: _MAX_FIELD_VALUE - 1] + "…"

    before, after = text(old), text(new)
    kind = "add" if before is None else "delete" if after is None else "update"
    return PropertyChange(path, kind + ("-replace" if forces else ""), True, before, after)


def diff_snapshots(base: Snapshot, head: Snapshot) -> tuple[list[ObjectChange], dict[str, int]]:
    """Object-by-object changes from ``base`` to ``head`` and the counts per operation."""
    changes: list[ObjectChange] = []
    same = 0
    for file_name in sorted(set(base.manifests) | set(head.manifests)):
        old, new = base.manifests.get(file_name), head.manifests.get(file_name)
        manifest = new if new is not None else old
        assert isinstance(manifest, Mapping)
        change = _change(kubernetes_type(manifest), _object_name(manifest), file_name, old, new)
        if change is None:
            same += 1
        else:
            changes.append(change)

    def others(snapshot: Snapshot) -> dict[tuple[str, str], Any]:
        return {
            (str(r.get("type", "")), str(r.get("name", ""))): r.get("inputs") or {}
            for r in snapshot.resources
            if not is_kubernetes_object(r)
        }

    old_res, new_res = others(base), others(head)
    for key in sorted(set(old_res) | set(new_res)):
        rtype, name = key
        label = f"{rtype}::{name}"
        old_in, new_in = old_res.get(key), new_res.get(key)
        change = _change(rtype, name, label, old_in, new_in)
        if change is None:
            same += 1
        else:
            changes.append(change)
    counts = {"create": 0, "update": 0, "replace": 0, "delete": 0, "same": same}
    for change in changes:
        counts[change.op] += 1
    order = {"replace": 0, "delete": 1, "create": 2, "update": 3}
    changes.sort(key=lambda c: (order[c.op], c.type, c.name))
    return changes, counts
