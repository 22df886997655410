"""Pulumi property values as the pipeline shows them: scrubbed, and addressed by path.

``scrub`` turns Pulumi's wire encodings into what a reviewer may see: secrets as
``[secret]`` (also the signature form ``{"4dabf...": "1b470...", "value": ...}`` a
state written by another tool may hold), preview unknowns as ``[unknown]``, assets
and archives summarised, never expanded. ``parse_path`` and ``lookup`` read
Pulumi's property paths (``spec.template.spec.containers[0]["image"]``). Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pipeline.secrets import SECRET_PLACEHOLDER

UNKNOWN = "[unknown]"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - a type signature
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN_SENTINELS = frozenset(
    {
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # bool
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)


def scrub(value: Any) -> Any:
    """``value`` with secrets as ``[secret]``, unknowns as ``[unknown]``, assets summarised."""
    if isinstance(value, Mapping):
        sig = value.get(SIG_KEY)
        if sig is not None:
            return _scrub_signed(str(sig), value)
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        return UNKNOWN
    return value


def _scrub_signed(sig: str, value: Mapping[str, Any]) -> Any:
    if sig == SECRET_SIG:
        return SECRET_PLACEHOLDER
    if sig == ASSET_SIG:
        where = value.get("path") or value.get("uri")
        if where:
            return f"[asset {where}]"
        digest = str(value.get("hash") or "")
        return f"[asset sha256:{digest[:12]}]" if digest else "[asset]"
    if sig == ARCHIVE_SIG:
        where = value.get("path") or value.get("uri")
        if where:
            return f"[archive {where}]"
        assets = value.get("assets")
        names = sorted(assets) if isinstance(assets, Mapping) else []
        digest = str(value.get("hash") or "")
        label = f"{len(names)} assets" if names else "archive"
        return f"[archive {label}{' sha256:' + digest[:12] if digest else ''}]"
    if sig == RESOURCE_REF_SIG:
        return f"[resource {value.get('urn', '')}]"
    if sig == OUTPUT_VALUE_SIG:
        if value.get("secret"):
            return SECRET_PLACEHOLDER
        return scrub(value["value"]) if "value" in value else UNKNOWN
    # An encoding this parser does not know might wrap anything: never show it.
    return "[opaque]"


# --- property paths ------------------------------------------------------------------------

_IDENT = re.compile(r"[^.\[]+")


def parse_path(path: str) -> list[str | int]:
    """Pulumi property path syntax: ``a.b[0]["c.d"]`` -> ['a', 'b', 0, 'c.d']."""
    parts: list[str | int] = []
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == ".":
            i += 1
        elif ch == "[":
            if path.startswith('["', i):
                j = i + 2
                buf = []
                while j < len(path) and path[j] != '"':
                    if path[j] == "\\" and j + 1 < len(path):
                        j += 1
                    buf.append(path[j])
                    j += 1
                parts.append("".join(buf))
                i = path.find("]", j) + 1 or len(path)
            else:
                end = path.find("]", i)
                end = len(path) if end < 0 else end
                text = path[i + 1 : end]
                parts.append(int(text) if text.isdigit() else text)
                i = end + 1
        else:
            match = _IDENT.match(path, i)
            assert match is not None
            parts.append(match.group())
            i = match.end()
    return parts


ABSENT = object()


def lookup(value: Any, path: str) -> Any:
    """The value at ``path`` in ``value``, or ``ABSENT``."""
    for part in parse_path(path):
        if isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value):
            value = value[part]
        elif isinstance(value, Mapping) and str(part) in value:
            value = value[str(part)]
        else:
            return ABSENT
    return value


def compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)
