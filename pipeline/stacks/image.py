"""Where ``cv-platform:image`` is in a ``Pulumi.<stack>.yaml`` file, and what it says.

The file is composed with PyYAML (libyaml when built in), which gives every node
its position; ``locate`` finds the ``config:`` mapping and the image mapping in
it, and ``setting_of`` reads the image's ``repository``, ``tag`` and ``digest``.
Errors name the file and line (``Pulumi.prod.yaml:3: malformed YAML: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from pipeline.errors import ConfigError

IMAGE_KEY = "cv-platform:image"
FIELDS = ("repository", "tag", "digest")
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ImageSetting:
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
    try:
        # Marks are character offsets into ``text`` with either loader (libyaml
        # counts characters too); libyaml is only faster.
        return yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise ConfigError(f"{path.name}{line}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: malformed YAML: {exc}") from None


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
    return Located(config_key, config, image_key, image)


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
