"""Bounded, strict JSON decoding for the evidence readers (scan reports, model cards).

``load_json`` refuses, with one line each: input over a size limit, text that is
not UTF-8/16/32 (a PowerShell redirect writes UTF-16), nesting deeper than a
limit, ``NaN``/``Infinity`` (not JSON, though Python's ``json`` accepts them) and,
when asked, duplicate object keys (two readers could otherwise see two values).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import accumulate

# Every byte but the four brackets and the quote. JSON escapes are removed first, so
# the quotes left delimit strings: the pieces between the 1st and 2nd, 3rd and 4th,
# ... quote are inside strings and their brackets do not nest.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonInputError(ValueError):
    """The input is not acceptable JSON; the message is one line without a prefix."""


def nesting_depth(utf8: bytes) -> int:
    """The deepest array/object nesting of a JSON text (UTF-8), ignoring brackets in strings.

    Byte operations only (about a third of ``json.loads``' time): in UTF-8 no byte of
    a multi-byte character equals an ASCII bracket, quote or backslash.
    """
    unescaped = utf8.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _reject_constant(name: str) -> object:
    raise JsonInputError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise JsonInputError(f"duplicate key {key!r} in one object")
        result[key] = value
    return result


def load_json(data: bytes, *, max_bytes: int, max_depth: int, unique_keys: bool = False) -> object:
    """Decode ``data`` as one JSON document within the given bounds."""
    if len(data) > max_bytes:
        raise JsonInputError(f"input is {len(data)} bytes; the limit is {max_bytes}")
    if not data.strip():
        raise JsonInputError("input is empty")
    encoding = json.detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"not {encoding} text: {exc.reason} at byte {exc.start}") from None
    hook: Callable[[list[tuple[str, object]]], object] | None = (
        _unique_keys if unique_keys else None
    )
    too_deep = JsonInputError(f"nesting is deeper than {max_depth} levels")
    try:
        doc = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:  # the C decoder's own guard: far deeper than max_depth
        raise too_deep from None
    # Decoding first is safe (the decoder refuses absurd nesting itself, within a
    # millisecond) and cheaper for the usual input; this enforces the tighter bound.
    if nesting_depth(data if encoding.startswith("utf-8") else text.encode()) > max_depth:
        raise too_deep
    return doc


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, shortened to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


__all__ = ["JsonInputError", "json_type", "load_json", "nesting_depth", "one_line"]
