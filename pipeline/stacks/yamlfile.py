"""Reading Pulumi's YAML files with bounds: what a pull request may put in a stack file.

A file of nested aliases (a "billion laughs": 17 lines, each alias nine times the
last) composes to a few dozen nodes but constructs to billions of values, and every
walk over the values (the secret detection, the engine strings) then runs for hours.
So a document is first composed to its node graph, where an alias is one more
reference to the node it names; the graph is measured without expanding it (each
node once, its size remembered) and refused when it would expand past
``MAX_NODES`` values, nests deeper than ``MAX_DEPTH``, refers to itself, or the file
is larger than ``MAX_BYTES``. Only then is it constructed. A stack file has dozens of
values, this project's Pulumi.yaml a few hundred, so the bounds refuse only what no
project file needs.

A UTF-8 byte order mark before the document is skipped (editors on Windows write
one; Pulumi reads such files): marks are then offsets into the text after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

MAX_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64
BOM = "\ufeff"

# libyaml's loaders when PyYAML has them: the same documents, about ten times faster.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
BASE_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


def without_bom(text: str) -> str:
    return text[1:] if text.startswith(BOM) else text


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_graph(path: Path, root: yaml.Node) -> None:
    """Refuse a node graph that expands too far, nests too deep or contains itself.

    Iterative, each node measured once (aliases share nodes), so the check costs
    what the file's size does, not what its expansion would.
    """
    measured: dict[int, tuple[int, int]] = {}  # id -> (expanded values, depth)
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            ancestors.discard(key)
            parts = [measured[id(child)] for child in _children(node)]
            size = 1 + sum(part[0] for part in parts)
            depth = 1 + max((part[1] for part in parts), default=0)
            if size > MAX_NODES:
                raise ConfigError(
                    f"{path.name}:{node.start_mark.line + 1}: its YAML aliases expand to more "
                    f"than {MAX_NODES:,} values (nested aliases, a 'billion laughs'?): "
                    "write the values out instead of repeating aliases"
                )
            if depth > MAX_DEPTH:
                raise ConfigError(
                    f"{path.name}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} "
                    "levels deep; no stack setting needs that"
                )
            measured[key] = (size, depth)
            continue
        if key in measured:
            continue
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            measured[key] = (1, 1)  # a scalar: one value, one level, no children to visit
            continue
        ancestors.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in ancestors:
                raise ConfigError(
                    f"{path.name}:{child.start_mark.line + 1}: a YAML alias refers to the "
                    "value that contains it (a recursive structure): write the value out"
                )
            if id(child) not in measured:
                stack.append((child, False))


def _check_size(path: Path, text: str) -> None:
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"{path.name}: {len(text):,} characters, more than a Pulumi YAML file can "
            f"reasonably be (limit {MAX_BYTES:,}); is it the right file?"
        )


def _malformed(path: Path, exc: yaml.YAMLError) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "not YAML"
        return ConfigError(f"{path.name}{line}: malformed YAML: {problem}")
    return ConfigError(f"{path.name}: malformed YAML: {' '.join(str(exc).split())}")


def _bounded(path: Path, text: str, loader_class: Any, construct: bool) -> Any:
    _check_size(path, text)
    loader = loader_class(without_bom(text))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_graph(path, node)
        return loader.construct_document(node) if construct else node
    except yaml.YAMLError as exc:
        raise _malformed(path, exc) from None
    except RecursionError:  # only the pure-Python composer recurses (libyaml stops at 1000)
        raise ConfigError(f"{path.name}: nested too deeply to read") from None
    finally:
        loader.dispose()


def compose(path: Path, text: str) -> yaml.Node | None:
    """The document's node graph (marks index ``without_bom(text)``), bounds checked."""
    node: yaml.Node | None = _bounded(path, text, SAFE_LOADER, construct=False)
    return node


def load(path: Path, text: str, *, raw: bool = False) -> Any:
    """The document's values; with ``raw``, every scalar as written (YAML's base schema)."""
    return _bounded(path, text, BASE_LOADER if raw else SAFE_LOADER, construct=True)


__all__ = ["BOM", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "compose", "load", "without_bom"]
