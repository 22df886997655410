"""A stack's configuration as Pulumi resolves it, without the Pulumi CLI.

Follows the Pulumi CLI (sdk/go/common/workspace/config.go, mergeConfig): a
project key of Pulumi.yaml is a declaration (a mapping of ``type``, ``default``,
``value``, ``description``, ``secret``, ``items``) or a plain value (shorthand for
``value:``); keys without a namespace belong to the project. A stack file's keys
are ``namespace:name`` (or the old ``namespace:config:name``) and override the
project's ``default``/``value`` key by key. A stack file's plain scalars reach
the program as written (``2.0`` stays ``2.0``, ``yes`` stays ``yes``), objects and
arrays as JSON.

Secrets (``secure:`` values, also nested in an object, and keys the project
declares ``secret: true`` in ``config:`` or in ``template.config:``) are never
decrypted here: they are listed in ``secret_keys`` and get placeholders in the
engine form handed to a program under mocks (an object keeps its shape, with a
placeholder in each ``secure:`` leaf).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from pipeline.errors import ConfigError
from pipeline.project import PROJECT_NAME, Project
from pipeline.secrets import SECRET_STAND_IN
from pipeline.stacks import yamlfile

# The fields of a declaration in Pulumi.yaml's config block (Pulumi's project schema).
_DECLARATION_FIELDS = ("type", "default", "value", "description", "secret", "items")


class StackConfig(NamedTuple):
    stack: str
    # Full key ("cv-platform:replicas") -> value as written in YAML. Secure values are absent.
    values: Mapping[str, Any]
    secret_keys: frozenset[str]
    # Keys the project declares, with their schema (type, description, ...).
    schema: Mapping[str, Mapping[str, Any]]
    # Engine strings of stack-file values that differ from the typed ``values``:
    # plain scalars as written, objects holding ``secure:`` leaves with placeholders.
    engine_overrides: Mapping[str, str] = MappingProxyType({})
    # Project keys the stack file sets that Pulumi.yaml does not declare: Pulumi
    # passes them on and the program ignores them, so they are most likely typos.
    undeclared: tuple[str, ...] = ()
    # Secret keys the stack file itself sets (``secure:`` values, encrypted).
    set_secret_keys: frozenset[str] = frozenset()

    def get(self, name: str, default: Any = None) -> Any:
        """A project key's value, given without the ``cv-platform:`` prefix."""
        return self.values.get(full_key(name), default)


def full_key(name: str) -> str:
    return name if ":" in name else f"{PROJECT_NAME}:{name}"


def parse_key(name: str, where: str) -> str:
    """``namespace:name`` as Pulumi's config.ParseKey reads it (``ns:config:name`` too)."""
    parts = name.split(":")
    if len(parts) == 3 and parts[1] == "config":
        parts = [parts[0], parts[2]]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"{where}: config key {name!r} must be namespace:name (e.g. {PROJECT_NAME}:replicas)"
        )
    return ":".join(parts)


def _load_yaml(path: Path, *, raw: bool = False) -> dict[str, Any]:
    """The document; with ``raw``, every scalar as the text written (YAML's base schema).

    Bounded (``pipeline.stacks.yamlfile``): a file of nested aliases is refused
    before its values are built, so the walks below never see an expansion.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    data = yamlfile.load(path, text, raw=raw)
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


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _contains_secure(value: Any) -> bool:
    if _is_secure(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False


def _with_placeholders(value: Any) -> Any:
    """``value`` with each ``secure:`` leaf replaced by the placeholder, its shape kept."""
    if _is_secure(value):
        return SECRET_STAND_IN
    if isinstance(value, dict):
        return {k: _with_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_placeholders(v) for v in value]
    return value


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
        name = str(name)
        key = parse_key(name, path.name) if ":" in name else full_key(name)
        if not isinstance(entry, dict):
            defaults[key] = entry  # shorthand for value:
            continue
        # A mapping is always a declaration: an object value goes under value:.
        unknown = sorted(set(entry) - set(_DECLARATION_FIELDS))
        if unknown:
            raise ConfigError(
                f"{path.name}: config.{name} has the unknown field {unknown[0]!r}: a declaration "
                f"takes {', '.join(_DECLARATION_FIELDS)} (write an object under value:)"
            )
        if "default" in entry and "value" in entry:
            raise ConfigError(
                f"{path.name}: config.{name} has both default and value: keep one "
                "(default with a type, value for an object or another namespace's key)"
            )
        if not key.startswith(f"{PROJECT_NAME}:") and (set(entry) & {"type", "default"}):
            raise ConfigError(
                f"{path.name}: config.{name} is not in the project's namespace, so it "
                "cannot declare a type or default (Pulumi refuses it): give it a value only"
            )
        if "type" in entry:
            schema[key] = dict(entry)
        if entry.get("secret"):
            secrets.add(key)
        if "default" in entry:
            defaults[key] = entry["default"]
        elif "value" in entry:
            defaults[key] = entry["value"]
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
    declared = {*defaults, *schema, *secrets}
    path = project.existing_stack_file(stack)
    values = dict(defaults)
    overrides: dict[str, str] = {}
    set_secrets: set[str] = set()
    block = _config_block(path, _load_yaml(path))
    written: dict[str, Any] = {}
    for name, value in block.items():
        key = parse_key(str(name), path.name)
        if _contains_secure(value):
            secrets.add(key)
            set_secrets.add(key)
            values.pop(key, None)
            if not _is_secure(value):
                overrides[key] = engine_string(_with_placeholders(value))
            continue
        values[key] = value
        if value is not None and not isinstance(value, dict | list):
            if not written:
                written = _config_block(path, _load_yaml(path, raw=True))
            text = written.get(name)
            if isinstance(text, str) and text != engine_string(value):
                overrides[key] = text  # Pulumi hands the program a scalar as written
    for key in secrets:
        values.pop(key, None)
    undeclared = tuple(
        sorted(
            key
            for key in (parse_key(str(name), path.name) for name in block)
            if key.startswith(f"{PROJECT_NAME}:") and key not in declared
        )
    )
    return StackConfig(
        stack,
        values,
        frozenset(secrets),
        schema,
        overrides,
        undeclared,
        frozenset(set_secrets),
    )


def engine_string(value: Any) -> str:
    """A config value as the engine hands it to a program: a string.

    Objects and arrays as JSON, booleans as true/false, numbers in their plain
    decimal form.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        # default=str: YAML dates and times inside an object, as their text.
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return str(value)  # numbers; dates (a stack file's own scalars come as written)


def engine_config(
    cfg: StackConfig, set_secrets: Iterable[str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys a program sees, with placeholders for secrets.

    ``set_secrets`` names the secrets to treat as set (each gets a placeholder);
    ``None`` treats every declared secret as set.
    """
    present = cfg.secret_keys if set_secrets is None else frozenset(set_secrets)
    config = {key: engine_string(value) for key, value in cfg.values.items() if value is not None}
    for key in present:
        config[key] = SECRET_STAND_IN
    config.update(cfg.engine_overrides)
    return config, sorted(cfg.secret_keys)
