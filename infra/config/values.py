"""Reading the engine's config strings: typed access with the defaults, and
``SettingsError``, the one error a stack's settings raise (it names the key).

The engine hands a program every value as a string (objects and arrays as JSON);
``Reader`` turns them into integers, booleans, lists and objects, falling back to
``DEFAULTS``, and ``config_object`` checks an object field by field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from infra.config.defaults import DEFAULTS, PROJECT


class SettingsError(ValueError):
    """A config value is missing or invalid; the message names the key and the fix."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key if ":" in key else f"{PROJECT}:{key}"
        super().__init__(f"{self.key} {message}")


class Reader:
    """Typed access to the engine's string values, falling back to DEFAULTS."""

    def __init__(self, values: Mapping[str, str | None]) -> None:
        self._values = values

    def raw(self, name: str) -> str | None:
        return self._values.get(name)

    def string(self, name: str) -> str:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, str)
            return default
        return value

    def required_string(self, name: str, fix: str) -> str:
        value = self._values.get(name)
        if value is None or not value.strip():
            raise SettingsError(name, f"is required: {fix}")
        return value.strip()

    def integer(self, name: str, low: int, high: int | None = None) -> int:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, int)
            return default
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise SettingsError(name, f"must be an integer {bounds}, got {value!r}")
        number = int(text)
        if number < low or (high is not None and number > high):
            raise SettingsError(name, f"must be an integer {bounds}, got {value!r}")
        return number

    def boolean(self, name: str) -> bool:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, bool)
            return default
        if value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise SettingsError(name, f"must be true or false, got {value!r}")

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, list)
            return tuple(default)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise SettingsError(
                name, f"must be a list of strings (a YAML list in the stack file), got {value!r}"
            )
        return tuple(parsed)

    def obj(self, name: str) -> dict[str, Any]:
        default = DEFAULTS[name]
        assert isinstance(default, dict)
        value = self._values.get(name)
        if value is None:
            return dict(default)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        return config_object(parsed, default, name)


def config_object(value: Any, defaults: Mapping[str, Any], key: str) -> dict[str, Any]:
    """An object value checked field by field against ``defaults``: its types, no unknown field.

    Nested objects are checked the same way; missing or null fields keep their default.
    """
    if not isinstance(value, dict):
        raise SettingsError(
            key, f"must be an object with the fields {', '.join(defaults)}, got {value!r}"
        )
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise SettingsError(
            f"{key}.{unknown[0]}", f"is not a known field: {key} has only {', '.join(defaults)}"
        )
    result = dict(defaults)
    for field, item in value.items():
        if item is None:
            continue
        want = type(defaults[field])
        if want is dict:
            result[field] = config_object(item, defaults[field], f"{key}.{field}")
        elif want is bool:
            if not isinstance(item, bool):
                raise SettingsError(f"{key}.{field}", f"must be true or false, got {item!r}")
            result[field] = item
        elif want is int:
            if isinstance(item, bool) or not isinstance(item, int):
                raise SettingsError(f"{key}.{field}", f"must be an integer, got {item!r}")
            result[field] = item
        elif want is float:
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise SettingsError(f"{key}.{field}", f"must be a number, got {item!r}")
            result[field] = float(item)
        else:
            # An all-digit git sha written unquoted reaches us as a YAML integer.
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise SettingsError(f"{key}.{field}", f"must be a string, got {item!r}")
            result[field] = item.strip()
    return result
