"""Where ``cv-platform:image`` is in a ``Pulumi.<stack>.yaml`` file, and what it says.

The file is composed with PyYAML (libyaml when built in), which gives every node
its position; ``locate`` finds the ``config:`` mapping and the image mapping in
it, and ``setting_of`` reads the image's ``repository``, ``tag`` and ``digest``.
Errors name the file and line (``Pulumi.prod.yaml:3: malformed YAML: ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml

from pipeline.errors import ConfigError
from pipeline.stacks import yamlfile

IMAGE_KEY = "cv-platform:image"
FIELDS = ("repository", "tag", "digest")
LOADER: Any = yamlfile.SAFE_LOADER


class ImageSetting(NamedTuple):
    """The ``cv-platform:image`` object of one stack; ``None`` for an absent key."""

    repository: str | None = None
    tag: str | None = None
    digest: str | None = None

    @property
    def is_empty(self) -> bool:
        return self.repository is None and self.tag is None and self.digest is None

    def __str__(self) -> str:
        if self.is_empty:
            return "(no image)"
        text = self.repository or "(no repository)"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


class Located(NamedTuple):
    """Where the mapping nodes are (a NamedTuple: this runs on every ``set-image``)."""

    config_key: yaml.ScalarNode
    config: yaml.Node
    image_key: yaml.ScalarNode | None
    image: yaml.Node | None


def where(path: Path, node: yaml.Node) -> str:
    return f"{path.name}:{node.start_mark.line + 1}"


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def pairs(path: Path, mapping: yaml.MappingNode) -> dict[str, tuple[yaml.ScalarNode, yaml.Node]]:
    found: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    for key, value in mapping.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        if key.value in found:
            raise ConfigError(
                f"{where(path, key)}: duplicate key {key.value!r} (Pulumi rejects the file)"
            )
        found[key.value] = (key, value)
    return found


def compose(path: Path, text: str) -> yaml.Node | None:
    """The node graph, bounded; marks index ``without_bom(text)`` (see ``yamlfile``)."""
    return yamlfile.compose(path, text)


def locate(path: Path, text: str) -> Located:
    root = compose(path, text)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path.name}: no `config:` mapping (the file is not a stack file)")
    top = pairs(path, root)
    if "config" not in top:
        raise ConfigError(f"{path.name}: no `config:` mapping (the file is not a stack file)")
    config_key, config = top["config"]
    if is_null(config):
        return Located(config_key, config, None, None)
    if not isinstance(config, yaml.MappingNode):
        raise ConfigError(f"{where(path, config)}: `config:` must be a mapping of keys to values")
    entries = pairs(path, config)
    if IMAGE_KEY not in entries:
        return Located(config_key, config, None, None)
    image_key, image = entries[IMAGE_KEY]
    if not (is_null(image) or isinstance(image, yaml.MappingNode)):
        raise ConfigError(
            f"{where(path, image)}: {IMAGE_KEY} must be an object with repository, tag and digest"
        )
    _refuse_shared(path, root, image_key, image)
    return Located(config_key, config, image_key, image)


def _refuse_shared(path: Path, root: yaml.Node, image_key: yaml.Node, image: yaml.Node) -> None:
    """Refuse an image that a YAML anchor shares with other keys (an edit would change both).

    In the composed graph an alias is one more reference to the anchored node, so the
    image (or a field of it) is shared when some node refers to it twice.
    """
    image_nodes = {id(image)}
    if isinstance(image, yaml.MappingNode):
        image_nodes.update(id(part) for pair in image.value for part in pair)
    incoming: dict[int, int] = {}
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        for child in children:
            incoming[id(child)] = incoming.get(id(child), 0) + 1
            todo.append(child)
    if any(incoming.get(key, 0) > 1 for key in image_nodes):
        how = (
            "is a YAML alias of a value written elsewhere"
            if image.start_mark.index < image_key.end_mark.index
            else "shares a YAML anchor with other keys"
        )
        raise ConfigError(
            f"{where(path, image_key)}: {IMAGE_KEY} (or one of its fields) {how}: write the "
            "object out without anchors or aliases, so that pipeline edits only the image"
        )


def setting_of(path: Path, image: yaml.Node | None) -> ImageSetting:
    if image is None or not isinstance(image, yaml.MappingNode):
        return ImageSetting()
    fields = pairs(path, image)
    values: dict[str, str | None] = {}
    for name in FIELDS:
        if name not in fields:
            values[name] = None
            continue
        node = fields[name][1]
        if is_null(node):
            values[name] = None
        elif isinstance(node, yaml.ScalarNode):
            values[name] = str(node.value) or None  # Pulumi.yaml's default uses "" for unset
        else:
            raise ConfigError(f"{where(path, node)}: {IMAGE_KEY}.{name} must be a string")
    return ImageSetting(values["repository"], values["tag"], values["digest"])


__all__ = ["FIELDS", "IMAGE_KEY", "ImageSetting", "Located", "locate", "setting_of"]
