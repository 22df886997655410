"""JSON from outside (servers, the Pulumi CLI, report files, stored objects), read safely.

``json.loads`` raises ``RecursionError`` (not ``ValueError``) for a document nested a
few thousand levels deep, and a document nested just under that limit still crashes
every recursive walk over it later. ``loads`` turns both into ``JsonError`` (a
``ValueError``, which every caller already catches): deeper than ``MAX_DEPTH`` is
refused, measured without recursion. Integers longer than Python's digit limit
(4,300 digits) are a ``ValueError`` from ``json`` itself.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 200


class JsonError(ValueError):
    """Not JSON this program can use (``str()`` says why, in a few words)."""


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0); iterative."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        todo.extend((child, level) for child in children)
    return deepest


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, refusing documents nested more than ``max_depth`` levels."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonError(f"nested more than {max_depth} levels deep") from None
    if depth(value) > max_depth:
        raise JsonError(f"nested more than {max_depth} levels deep")
    return value


__all__ = ["MAX_DEPTH", "JsonError", "depth", "loads"]
