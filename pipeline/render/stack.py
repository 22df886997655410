"""Offline render: what a stack declares, as Kubernetes manifests and a resource list.

The real program runs under Pulumi's mock runtime (``pipeline.render.mocks``) with the
stack's resolved config and placeholder secrets. Output is deterministic
(sorted, integers as integers, no timestamps) and redacted: every secret input
is written as ``[secret]``. A program that lets a secret reach a plain input
is refused, so a render can never leak one.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, PipelineError, os_reason
from pipeline.project import Project
from pipeline.secrets import SECRET_PLACEHOLDER, SECRET_STAND_IN
from pipeline.stacks.config import StackConfig, engine_config, load_stack_config

RESOURCES_FILE = "resources.json"
OUTPUTS_FILE = "stack-outputs.json"
# Written into every render; lists its files. Only a directory holding it, and nothing
# but those files, is ever replaced.
MARKER_FILE = ".cv-platform-render"
MARKER_KIND = "cv-platform render"
CLUSTER_SCOPE = "_cluster"  # namespace part of file names for cluster-scoped objects


def _base64_forms(text: str) -> tuple[str, ...]:
    """The base64 text of ``text`` at each of the three byte offsets it can start at.

    Inside a longer encoded value (``user:password`` of a docker config) the
    secret's bytes rarely start on a 3-byte boundary, so its plain encoding
    alone would not be found there.
    """
    raw = text.encode()
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        # Only the characters made of ``raw``'s bits alone.
        forms.append(encoded[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6])
    return tuple(forms)


_LEAK_MARKERS = (SECRET_STAND_IN, *_base64_forms(SECRET_STAND_IN))


@dataclass(frozen=True)
class RenderedObject:
    file_name: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Render:
    stack: str
    objects: tuple[RenderedObject, ...]
    resources: tuple[dict[str, Any], ...]
    outputs: dict[str, Any]
    # Things worth a look that do not stop a render (undeclared keys: typos?).
    warnings: tuple[str, ...] = ()
    # Secrets the stack needs that its file does not set (rendered as placeholders).
    required_secrets: tuple[str, ...] = ()


def _redact(value: Any) -> Any:
    """Every leaf ``[secret]``; mapping keys and list shapes are kept.

    Pulumi marks a whole mapping secret when any value in it is (it pushes
    secretness up a level), so keeping the keys keeps a Secret's ``data`` a
    valid object without showing any value.
    """
    if isinstance(value, dict):
        return {str(k): _redact(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return SECRET_PLACEHOLDER


def _normalize(value: Any) -> Any:
    """Redact secrets, turn integral floats back into ints, sort mapping keys."""
    from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

    if is_rpc_secret(value):
        return _redact(unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {str(k): _normalize(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _leaks(value: Any) -> bool:
    if isinstance(value, str):
        return any(marker in value for marker in _LEAK_MARKERS)
    if isinstance(value, dict):
        return any(_leaks(v) for v in value.values())
    if isinstance(value, list):
        return any(_leaks(v) for v in value)
    return False


def _manifest(inputs: dict[str, Any], fallback_name: str) -> dict[str, Any]:
    body = dict(inputs)
    metadata = dict(body.pop("metadata", {}) or {})
    metadata.setdefault("name", fallback_name)
    head = {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind"), "metadata": metadata}
    return {**head, **body}


def _file_name(manifest: dict[str, Any]) -> str:
    meta = manifest["metadata"]
    namespace = meta.get("namespace") or CLUSTER_SCOPE
    return f"{manifest['kind'].lower()}-{namespace}-{meta['name']}.yaml"


def _missing_secret(exc: Exception, cfg: StackConfig, present: set[str]) -> str | None:
    """The declared secret ``exc`` says is missing, if that is what it says."""
    key = getattr(exc, "key", None)
    if isinstance(key, str) and key in cfg.secret_keys and key not in present:
        return key
    return None


def _run(project: Project, cfg: StackConfig) -> tuple[Any, tuple[str, ...]]:
    """Run the program; returns the run and the secrets it needed that the file does not set.

    Only the secrets the stack file sets (``secure:``) get placeholders at first:
    an optional secret that is absent must stay absent (a registry without a
    TLS certificate is not a registry with one). When the program stops because
    a secret it requires is missing, that secret is given a placeholder and the
    program runs again (it validates its settings before declaring anything, so
    a run costs milliseconds); at most once per declared secret.
    """
    from pulumi.config import ConfigMissingError, ConfigTypeError

    from pipeline.render.mocks import run_program

    present = set(cfg.set_secret_keys)
    for _ in range(len(cfg.secret_keys) + 1):
        config, secret_keys = engine_config(cfg, present)
        try:
            run = run_program(project.root, cfg.stack, config, secret_keys)
            return run, tuple(sorted(present - cfg.set_secret_keys))
        except PipelineError:
            raise
        except (ConfigMissingError, ConfigTypeError) as exc:
            missing = _missing_secret(exc, cfg, present)
            if missing is None:
                # pulumi.Config's own errors (require/get_int ...) span lines: one line here.
                raise ConfigError(" ".join(str(exc).split())) from None
            present.add(missing)
        except Exception as exc:
            # The program's own validation error carries the one line to show.
            settings_error = getattr(sys.modules.get("infra.config"), "SettingsError", None)
            if settings_error is None or not isinstance(exc, settings_error):
                raise
            missing = _missing_secret(exc, cfg, present)
            if missing is None:
                raise ConfigError(str(exc)) from None
            present.add(missing)
    raise PipelineError("the program kept asking for more secrets than the project declares")


def render(project: Project, stack: str) -> Render:
    """Run the program for ``stack`` under mocks and collect redacted results."""
    cfg = load_stack_config(project, stack)
    run, required_secrets = _run(project, cfg)
    objects: dict[str, RenderedObject] = {}
    resources: list[dict[str, Any]] = []
    for res in run.resources:
        inputs = _normalize(res.inputs)
        if _leaks([res.name, inputs]):
            raise PipelineError(
                f"secret value reached a plain input of {res.type} {res.name!r}: "
                "keep it an Output secret (pulumi.Output.secret / require_secret)"
            )
        resources.append(
            {
                "type": res.type,
                "name": res.name,
                "inputs": inputs,
                "protect": bool(res.options.get("protect")),
                "retainOnDelete": bool(res.options.get("retainOnDelete")),
            }
        )
        if res.is_kubernetes_object:
            name = (res.outputs.get("metadata") or {}).get("name", res.name)
            manifest = _manifest(inputs, name)
            file_name = _file_name(manifest)
            if file_name in objects:
                raise PipelineError(f"two objects would both be written to {file_name}")
            objects[file_name] = RenderedObject(file_name, manifest)
    resources.sort(key=lambda r: (r["type"], r["name"], json.dumps(r["inputs"], sort_keys=True)))
    outputs = {
        key: SECRET_PLACEHOLDER if key in run.secret_outputs else _normalize(value)
        for key, value in sorted(run.outputs.items())
    }
    if _leaks(outputs):
        raise PipelineError("a secret value reached a plain stack output: export it as a secret")
    ordered = tuple(objects[name] for name in sorted(objects))
    warnings = tuple(
        f"{project.stack_file(stack).name} sets {key}, which Pulumi.yaml does not declare: "
        "the program ignores it (a typo?)"
        for key in cfg.undeclared
    )
    return Render(stack, ordered, tuple(resources), outputs, warnings, required_secrets)


# libyaml's emitter when PyYAML has it: the same bytes as the pure-Python one, ~4x faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump_yaml(manifest: dict[str, Any]) -> str:
    text: str = yaml.dump(
        manifest, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, width=1000
    )
    return text


def _marked_files(out_dir: Path) -> set[str] | None:
    """The files an earlier render says it wrote in ``out_dir`` (None: no render's marker)."""
    marker = out_dir / MARKER_FILE
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != MARKER_KIND:
        return None
    files = data.get("files")
    if not isinstance(files, list):
        return None
    return {name for name in files if isinstance(name, str)} | {MARKER_FILE}


def check_out_dir(out_dir: Path) -> Path:
    """``out_dir`` resolved, if a render may be written there.

    New or empty, or a directory an earlier render wrote: it holds the render's
    marker and nothing but the files the marker lists. Anything else is refused,
    so a render never replaces a directory holding someone's files.
    """
    out_dir = out_dir.resolve()
    if out_dir.exists():
        if not out_dir.is_dir():
            raise PipelineError(f"--out {out_dir} exists and is not a directory")
        entries = {entry.name for entry in out_dir.iterdir()}
        if entries:
            written = _marked_files(out_dir)
            if written is None:
                raise PipelineError(
                    f"--out {out_dir} is not empty and was not written by `pipeline render` "
                    f"(no {MARKER_FILE} marker): choose a new or empty directory"
                )
            others = sorted(entries - written)
            if others:
                shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                raise PipelineError(
                    f"--out {out_dir} holds files the render did not write ({shown}): move "
                    "them away or choose another directory; nothing written"
                )
    elif out_dir.parent.exists() and not out_dir.parent.is_dir():
        raise PipelineError(f"--out {out_dir}: {out_dir.parent} is not a directory")
    return out_dir


def write_render(result: Render, out_dir: Path) -> None:
    """Write ``result`` to ``out_dir``, replacing a previous render there atomically.

    The files are written into a sibling temporary directory that is renamed into
    place; an earlier render is moved aside first and removed last. A failure
    leaves the earlier render (or no directory) and no temporary directory.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for obj in result.objects:
            (staging / obj.file_name).write_text(_dump_yaml(obj.manifest), encoding="utf-8")
        (staging / RESOURCES_FILE).write_text(
            json.dumps(list(result.resources), indent=2) + "\n", encoding="utf-8"
        )
        (staging / OUTPUTS_FILE).write_text(
            json.dumps(result.outputs, indent=2) + "\n", encoding="utf-8"
        )
        files = sorted(p.name for p in staging.iterdir())
        marker = {"kind": MARKER_KIND, "stack": result.stack, "files": files}
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        staging.chmod(0o755)
        # Checked again just before the move: what the directory holds now is what goes.
        out_dir = check_out_dir(out_dir)
        previous = None
        if out_dir.exists():
            # A name as unique as the staging directory's: two renders never share it.
            previous = staging.with_name(f"{staging.name}.previous")
            out_dir.rename(previous)
        try:
            staging.rename(out_dir)
        except OSError:
            if previous is not None:
                previous.rename(out_dir)  # the earlier render stays as it was
            raise
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def render_stack(project: Project, stack: str, out_dir: Path) -> Render:
    """Render ``stack`` and write it to ``out_dir``; nothing is written on error."""
    check_out_dir(out_dir)  # before the program runs: a wrong --out fails at once
    result = render(project, stack)
    try:
        write_render(result, out_dir)
    except OSError as exc:
        # Not the temporary directory's name: the user named --out.
        raise PipelineError(f"--out {out_dir}: cannot write: {os_reason(exc)}") from None
    return result


def manifests_by_kind(result: Render) -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in result.objects:
        counts[obj.manifest["kind"]] = counts.get(obj.manifest["kind"], 0) + 1
    return counts


def summary(result: Render, out_dir: Path) -> str:
    kinds: Iterable[str] = (f"{n} {k}" for k, n in sorted(manifests_by_kind(result).items()))
    line = (
        f"rendered stack {result.stack}: {len(result.objects)} Kubernetes objects "
        f"({', '.join(kinds) or 'none'}), {len(result.resources)} resources -> {out_dir}"
    )
    if result.required_secrets:
        names = ", ".join(key.partition(":")[2] for key in result.required_secrets)
        line += (
            f"\nsecrets this stack needs, rendered as [secret] "
            f"(pulumi config set --secret KEY before pulumi up): {names}"
        )
    return line
