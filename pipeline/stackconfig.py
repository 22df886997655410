"""A stack's configuration as Pulumi resolves it, without the Pulumi CLI.

Project defaults come from the ``config:`` block of Pulumi.yaml (typed schema
entries with ``default``, ``value:`` declarations, or plain values); the stack
file's ``config:`` block overrides them key by key. Secrets (``secure:``
values, and keys the project declares ``secret: true`` in ``config:`` or in
``template.config:``) are never decrypted
here: they are listed in ``secret_keys`` and get placeholders in the engine
form handed to a program under mocks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.project import PROJECT_NAME, Project

SECRET_PLACEHOLDER = "placeholder-secret-value"  # noqa: S105 - not a secret: stands in for one
_SCHEMA_FIELDS = {"type", "default", "description", "secret", "items"}


@dataclass(frozen=True)
class StackConfig:
    stack: str
    # Full key ("cv-platform:replicas") -> value as written in YAML. Secure values are absent.
    values: Mapping[str, Any]
    secret_keys: frozenset[str]
    # Keys the project declares, with their schema (type, description, ...).
    schema: Mapping[str, Mapping[str, Any]]

    def get(self, name: str, default: Any = None) -> Any:
        """A project key's value, given without the ``cv-platform:`` prefix."""
        return self.values.get(full_key(name), default)


def full_key(name: str) -> str:
    return name if ":" in name else f"{PROJECT_NAME}:{name}"


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        # libyaml's safe loader when built in: the same documents, ~10x faster.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path.name}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected a mapping at the top level")
    return data


def _config_block(path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    block = data.get("config") or {}
    if not isinstance(block, dict):
        raise ConfigError(f"{path.name}: 'config' must be a mapping of keys to values")
    return block


def _contains_secure(value: Any) -> bool:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return True
        return any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False


def project_defaults(
    project: Project,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], set[str]]:
    """(defaults by full key, schema by full key, secret keys) from Pulumi.yaml."""
    path = project.project_file
    document = _load_yaml(path)
    block = _config_block(path, document)
    defaults: dict[str, Any] = {}
    schema: dict[str, dict[str, Any]] = {}
    secrets: set[str] = set()
    for name, entry in block.items():
        key = full_key(str(name))
        if isinstance(entry, dict) and "type" in entry and set(entry) <= _SCHEMA_FIELDS:
            schema[key] = dict(entry)
            if entry.get("secret"):
                secrets.add(key)
            if "default" in entry:
                defaults[key] = entry["default"]
        elif isinstance(entry, dict) and set(entry) == {"value"}:
            defaults[key] = entry["value"]
        else:
            defaults[key] = entry
    # Optional secrets are declared under template.config (see Pulumi.yaml): the
    # typed schema would make the CLI demand them in every stack.
    template = document.get("template") or {}
    template_config = template.get("config") if isinstance(template, dict) else None
    for name, entry in (template_config or {}).items():
        if isinstance(entry, dict) and entry.get("secret"):
            secrets.add(full_key(str(name)))
    return defaults, schema, secrets


def load_stack_config(project: Project, stack: str) -> StackConfig:
    """The merged configuration of ``stack`` (its file must exist)."""
    defaults, schema, secrets = project_defaults(project)
    path = project.existing_stack_file(stack)
    values = dict(defaults)
    for name, value in _config_block(path, _load_yaml(path)).items():
        key = full_key(str(name))
        if _contains_secure(value):
            secrets.add(key)
            values.pop(key, None)
        else:
            values[key] = value
    for key in secrets:
        values.pop(key, None)
    return StackConfig(stack, values, frozenset(secrets), schema)


def _engine_string(value: Any) -> str:
    # The engine hands a program every value as a string: objects and arrays as
    # JSON, booleans as true/false, numbers in their plain decimal form.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def engine_config(cfg: StackConfig) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys a program sees, with placeholders for secrets."""
    config = {key: _engine_string(value) for key, value in cfg.values.items() if value is not None}
    for key in cfg.secret_keys:
        config[key] = SECRET_PLACEHOLDER
    return config, sorted(cfg.secret_keys)
