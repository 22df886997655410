"""The exact text edit of ``cv-platform:image``: pure, from old text to new text.

The new values replace the old scalars in place, and everything else -- comments,
key order, quoting, Pulumi's ``secretsprovider``/``encryptedkey``/``encryptionsalt``
and every ``secure:`` value -- stays byte for byte. Missing fields, a missing image
key or an empty ``config:`` get lines in the file's own indentation and line breaks.
The result is parsed again and must equal the old document with only the image
changed, or the edit is refused (nothing is written).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from pipeline.errors import ConfigError, PipelineError
from pipeline.images.refs import is_tag, parse_digest, parse_name
from pipeline.stacks import yamlfile
from pipeline.stacks.image import (
    FIELDS,
    IMAGE_KEY,
    LOADER,
    ImageSetting,
    Located,
    is_null,
    locate,
    pairs,
    setting_of,
    where,
)

# Plain scalars YAML 1.1 (PyYAML) or 1.2 (Pulumi's Go yaml.v3) may read as
# something other than a string are written double-quoted instead.
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@+-]*")
_YAML12_NUMBER = re.compile(
    r"[-+]?(?:[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)"
)
_YAML_WORDS = frozenset(
    {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "~"}
)


def _scalar(value: str, style: str | None) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    plain_ok = (
        bool(_PLAIN_SAFE.fullmatch(value))
        and value.lower() not in _YAML_WORDS
        and not _YAML12_NUMBER.fullmatch(value)
        and yaml.load(value, Loader=LOADER) == value  # noqa: S506 - a safe loader
    )
    if style == '"' or not plain_ok:
        return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar
    return value


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Index of the line break (``\n`` or ``\r\n``) ending the line at ``index``."""
    end = text.find("\n", index)
    if end < 0:
        return len(text)
    return end - 1 if end > index and text[end - 1] == "\r" else end


def _content_end(text: str, node: yaml.Node) -> int:
    """Index just past the last non-blank character of ``node``'s source."""
    end = node.end_mark.index
    while end > node.start_mark.index and text[end - 1] in " \t\r\n":
        end -= 1
    return end


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


class _Edit(NamedTuple):
    """Replace ``text[start:end]`` with ``text`` (``start == end``: an insert)."""

    start: int
    end: int
    text: str


def _apply(text: str, edits: list[_Edit]) -> str:
    out: list[str] = []
    pos = 0
    # An insert at an index sorts before a deletion starting there; inserts at
    # the same index keep the order they were planned in (a stable sort).
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < pos:
            raise PipelineError("internal error: overlapping stack file edits; nothing written")
        out.append(text[pos : edit.start])
        out.append(edit.text)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


def _values(new: ImageSetting) -> dict[str, str | None]:
    return {"repository": new.repository, "tag": new.tag, "digest": new.digest}


def _block_lines(new: ImageSetting, indent: str, nl: str) -> str:
    return "".join(
        f"{nl}{indent}{name}: {_scalar(value, None)}"
        for name, value in _values(new).items()
        if value is not None
    )


def _edit_block_image(
    path: Path, text: str, image: yaml.MappingNode, new: ImageSetting
) -> list[_Edit]:
    fields = pairs(path, image)
    nl = _newline(text)
    first_key = image.value[0][0]
    indent = " " * first_key.start_mark.column
    edits: list[_Edit] = []
    previous_end: int | None = None  # end of the line of the last existing field seen
    pending: list[str] = []  # fields to insert before the first existing one
    for name, value in _values(new).items():
        if name not in fields:
            if value is None:
                continue
            line = f"{indent}{name}: {_scalar(value, None)}"
            if previous_end is None:
                pending.append(line)
            else:
                edits.append(_Edit(previous_end, previous_end, nl + line))
            continue
        key, node = fields[name]
        if not isinstance(node, yaml.ScalarNode) or node.style in ("|", ">"):
            raise ConfigError(
                f"{where(path, node)}: {IMAGE_KEY}.{name} must be a one-line string to be edited"
            )
        node_end = node.end_mark.index
        if value is None:
            # Remove the line (with any comment on it) and the line break before it.
            start = _line_start(text, key.start_mark.index) - len(nl)
            edits.append(_Edit(start, _line_end(text, node_end), ""))
            continue
        if is_null(node):
            if node.start_mark.index == node_end:  # `tag:` with nothing after it
                if text.startswith(" ", node_end):
                    edits.append(_Edit(node_end + 1, node_end + 1, _scalar(value, None)))
                else:
                    edits.append(_Edit(node_end, node_end, " " + _scalar(value, None)))
            else:  # `tag: ~` or `tag: null`
                edits.append(_Edit(node.start_mark.index, node_end, _scalar(value, None)))
        elif node.value != value:
            edits.append(_Edit(node.start_mark.index, node_end, _scalar(value, node.style)))
        if pending:
            start = _line_start(text, key.start_mark.index)
            edits.append(_Edit(start, start, "".join(line + nl for line in pending)))
            pending = []
        previous_end = _line_end(text, node_end)
    if pending:  # every existing field is extra (not repository/tag/digest)
        end = _line_end(text, _content_end(text, image))
        edits.append(_Edit(end, end, "".join(nl + line for line in pending)))
    return edits


def _edit_flow_image(text: str, image: yaml.MappingNode, new: ImageSetting) -> list[_Edit]:
    # One line in practice: rebuild it, keeping any extra keys' source text.
    parts = [f"{name}: {_scalar(value, None)}" for name, value in _values(new).items() if value]
    for key, value in image.value:
        if isinstance(key, yaml.ScalarNode) and key.value in FIELDS:
            continue
        parts.append(
            f"{text[key.start_mark.index : key.end_mark.index]}: "
            f"{text[value.start_mark.index : value.end_mark.index]}"
        )
    return [_Edit(image.start_mark.index, image.end_mark.index, "{" + ", ".join(parts) + "}")]


def _plan(path: Path, text: str, located: Located, new: ImageSetting) -> list[_Edit]:
    nl = _newline(text)
    image = located.image
    if isinstance(image, yaml.MappingNode) and image.value:
        if image.flow_style:
            return _edit_flow_image(text, image, new)
        return _edit_block_image(path, text, image, new)
    if new.is_empty and image is None:
        return []
    if located.image_key is not None and image is not None:
        # `cv-platform:image:` with a null or `{}` value: write the fields under the key.
        indent = " " * (located.image_key.start_mark.column + 2)
        start = image.start_mark.index
        end = image.end_mark.index
        if start == end:
            start = end = _line_end(text, located.image_key.end_mark.index)
        else:
            while start > 0 and text[start - 1] in " \t":
                start -= 1
        return [_Edit(start, end, _block_lines(new, indent, nl))]
    config = located.config
    if isinstance(config, yaml.MappingNode) and config.value:
        if config.flow_style:
            raise ConfigError(
                f"{where(path, config)}: `config:` is written in flow style "
                "({...}); write it as a block mapping to let pipeline edit it"
            )
        indent = " " * config.value[0][0].start_mark.column
        at = _line_end(text, _content_end(text, config.value[-1][1]))
        body = f"{nl}{indent}{IMAGE_KEY}:" + _block_lines(new, indent + "  ", nl)
        return [_Edit(at, at, body)]
    # `config:` with nothing (or `{}`) under it.
    indent = " " * (located.config_key.start_mark.column + 2)
    body = f"{nl}{indent}{IMAGE_KEY}:" + _block_lines(new, indent + "  ", nl)
    start, end = config.start_mark.index, config.end_mark.index
    if start == end:
        start = end = _line_end(text, located.config_key.end_mark.index)
    else:
        while start > 0 and text[start - 1] in " \t":
            start -= 1
    return [_Edit(start, end, body)]


def _expected_data(old: Any, new: ImageSetting) -> Any:
    data = dict(old) if isinstance(old, dict) else {}
    config = dict(data.get("config") or {})
    image = config.get(IMAGE_KEY)
    image = dict(image) if isinstance(image, dict) else {}
    for name, value in _values(new).items():
        if value is None:
            image.pop(name, None)
        else:
            image[name] = value
    config[IMAGE_KEY] = image
    data["config"] = config
    return data


def _validate(new: ImageSetting) -> None:
    if new.repository is None or new.digest is None:
        raise ConfigError(f"{IMAGE_KEY} needs a repository and a digest to be written (got {new})")
    parse_name(new.repository)
    parse_digest(new.digest)
    if new.tag is not None and not is_tag(new.tag):
        raise ConfigError(f"invalid tag {new.tag!r} for {IMAGE_KEY}.tag")


def render_image_edit(path: Path, text: str, new: ImageSetting) -> tuple[ImageSetting, str]:
    """Pure core: ``(old setting, new text)`` for ``text`` with the image set to ``new``.

    A leading byte order mark is kept: the edit is planned on the text after it.
    """
    _validate(new)
    bom = yamlfile.BOM if text.startswith(yamlfile.BOM) else ""
    body = yamlfile.without_bom(text)
    located = locate(path, body)
    old = setting_of(path, located.image)
    if old == new:
        return old, text
    new_body = _apply(body, _plan(path, body, located, new))
    # Belt and braces: the new document must be the old one with only the image changed.
    try:
        before = yamlfile.load(path, body)
        after = yamlfile.load(path, new_body)
    except ConfigError as exc:
        raise PipelineError(
            f"editing {path.name} produced a file that does not read back ({exc}); nothing written"
        ) from None
    reread = setting_of(path, locate(path, new_body).image)
    if after != _expected_data(before, new) or reread != new:
        raise PipelineError(
            f"the edit of {path.name} would change more than {IMAGE_KEY}; nothing written "
            "(write the image as a plain block or flow mapping)"
        )
    return old, bom + new_body


def unified_diff(path: Path, old_text: str, new_text: str) -> str:
    import difflib  # only when a diff is shown

    return "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{path.name}",
            tofile=f"b/{path.name}",
        )
    )


__all__ = ["render_image_edit", "unified_diff"]
