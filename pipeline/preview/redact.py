"""Keep credentials out of a pull-request comment, whatever the program did with them.

Pulumi secrets are already ``[secret]`` by the time data reaches here (``preview_json.scrub``,
the render's redaction). This catches what is not marked secret but is one: literal env values
with credential names, Kubernetes Secret payloads, values shaped like keys or tokens, and any
known secret config value that turns up in the final text, in any form it takes there
(``pipeline.preview.secret_forms``: escaped, encoded, line by line). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.preview.secret_forms import Scrubber
from pipeline.secrets import SECRET_PLACEHOLDER
from policy.plaintext import is_plaintext_secret, is_secret_name

_SECRET_PAYLOAD_KINDS = frozenset({"Secret"})
_PAYLOAD_FIELDS = frozenset({"data", "stringData"})
# Known secret values shorter than this are not replaced in free text: "1" or "ok" would
# blank out unrelated parts of the comment and say nothing about the secret anyway.
MIN_SECRET_LENGTH = 4


def redact_inputs(value: Any, resource_type: str = "") -> Any:
    """A copy of resource inputs (or a manifest) with plaintext credentials as ``[secret]``."""
    kind = resource_type.rsplit(":", 1)[-1] if resource_type.startswith("kubernetes:") else ""
    if isinstance(value, Mapping) and not kind:
        kind = str(value.get("kind", "")) if "apiVersion" in value else ""
    return _redact(value, secret_payload=kind in _SECRET_PAYLOAD_KINDS)


def _redact(value: Any, secret_payload: bool = False) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        named = value.get("name")
        for key, item in value.items():
            key = str(key)
            if secret_payload and key in _PAYLOAD_FIELDS and isinstance(item, Mapping):
                out[key] = {str(k): SECRET_PLACEHOLDER for k in item}
            elif _is_secret_field(key, item, named):
                out[key] = SECRET_PLACEHOLDER
            elif key == "envs" and isinstance(item, list):
                out[key] = [_redact_env_entry(e) for e in item]
            else:
                out[key] = _redact(item)
        return out
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str) and is_plaintext_secret("", value):
        return SECRET_PLACEHOLDER
    return value


def _is_secret_field(key: str, item: Any, named: Any) -> bool:
    # {"name": "DB_PASSWORD", "value": "..."}: a Kubernetes env var with a literal value.
    if key == "value" and isinstance(named, str) and is_plaintext_secret(named, item):
        return True
    # {"password": "..."}: a field named for a credential holding a literal string.
    return isinstance(item, str) and item != "" and is_secret_name(key)


def _redact_env_entry(entry: Any) -> Any:
    if not isinstance(entry, str):
        return _redact(entry)
    name, sep, value = entry.partition("=")
    if sep and is_plaintext_secret(name, value):
        return f"{name}={SECRET_PLACEHOLDER}"
    return entry


# In free text (diagnostics a program logged): "password: x", "token=x", "password x".
_KEYED_VALUE = re.compile(
    r"\b((?:[A-Za-z0-9_.-]*?)(?:password|passwd|passphrase|secret|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key|credentials?)\b\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s,;]+)"
    r"|\b((?:password|passwd|passphrase)\s+)(?!is\b|for\b|of\b|from\b|to\b)"
    r"([^\s,;]{4,})",
    re.IGNORECASE,
)
_SECRETISH_WORD = re.compile(r"\S+")


def redact_free_text(text: str) -> str:
    """Log-like text with values next to credential words, and credential-shaped words, hidden."""

    def keyed(match: re.Match[str]) -> str:
        prefix = match.group(1) if match.group(1) is not None else match.group(3)
        return f"{prefix}{SECRET_PLACEHOLDER}"

    text = _KEYED_VALUE.sub(keyed, text)
    return _SECRETISH_WORD.sub(
        lambda m: SECRET_PLACEHOLDER if is_plaintext_secret("", m.group()) else m.group(), text
    )


def redact_text(text: str, secret_values: Iterable[str]) -> str:
    """``text`` with every known secret value, in every form it can take, as ``[secret]``.

    For many texts and the same values, build one ``Scrubber`` and call it on each."""
    return Scrubber(secret_values, MIN_SECRET_LENGTH)(text)
