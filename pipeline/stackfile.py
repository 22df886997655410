"""Read and rewrite ``cv-platform:image`` in a ``Pulumi.<stack>.yaml`` file.

The edit is an exact text edit: the file is parsed (PyYAML's composer gives
every node's position) only to find the image mapping, the new values replace
the old scalars in place, and everything else -- comments, key order, quoting,
Pulumi's ``secretsprovider``/``encryptedkey``/``encryptionsalt`` and every
``secure:`` value -- stays byte for byte. The result is parsed again and must
equal the old document with only the image changed, or nothing is written.

Writes happen under an exclusive ``flock`` on the stack file itself (re-taken
if another writer replaced the file meanwhile), through a temporary file in
the same directory that is fsynced and atomically renamed over the original,
then the directory is fsynced. A reader therefore always sees the old or the
new file, never a mix, and ``expect_digest`` turns the write into a
compare-and-swap (``NO_DIGEST`` expects a stack that has no digest yet).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, PipelineError
from pipeline.refs import parse_digest, parse_name

IMAGE_KEY = "cv-platform:image"
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FIELDS = ("repository", "tag", "digest")
LOCK_TIMEOUT_SECONDS = 30.0


class _NoDigest:
    """``expect_digest=NO_DIGEST``: the write happens only if the stack has no digest."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DIGEST"


NO_DIGEST = _NoDigest()
Expected = str | _NoDigest | None

# Plain scalars YAML 1.1 (PyYAML) or 1.2 (Pulumi's Go yaml.v3) may read as
# something other than a string are written double-quoted instead.
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@+-]*")
_YAML12_NUMBER = re.compile(
    r"[-+]?(?:[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)"
)
_YAML_WORDS = frozenset(
    {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "~"}
)


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


@dataclass(frozen=True)
class StackEdit:
    """What ``write_image`` did (or, with ``dry_run``, would do)."""

    old: ImageSetting
    new: ImageSetting
    diff: str
    written: bool
    path: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.diff)


# --------------------------------------------------------------------------
# Parsing: where the image mapping is.


@dataclass(frozen=True)
class _Located:
    config_key: yaml.ScalarNode
    config: yaml.Node
    image_key: yaml.ScalarNode | None
    image: yaml.Node | None


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path.name}:{node.start_mark.line + 1}"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _pairs(path: Path, mapping: yaml.MappingNode) -> dict[str, tuple[yaml.ScalarNode, yaml.Node]]:
    found: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    for key, value in mapping.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        if key.value in found:
            raise ConfigError(
                f"{_where(path, key)}: duplicate key {key.value!r} (Pulumi rejects the file)"
            )
        found[key.value] = (key, value)
    return found


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        # Marks are character offsets into ``text`` with either loader (libyaml
        # counts characters too); libyaml is only faster.
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise ConfigError(f"{path.name}{line}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: malformed YAML: {exc}") from None


def _locate(path: Path, text: str) -> _Located:
    root = _compose(path, text)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path.name}: no `config:` mapping (the file is not a stack file)")
    top = _pairs(path, root)
    if "config" not in top:
        raise ConfigError(f"{path.name}: no `config:` mapping (the file is not a stack file)")
    config_key, config = top["config"]
    if _is_null(config):
        return _Located(config_key, config, None, None)
    if not isinstance(config, yaml.MappingNode):
        raise ConfigError(f"{_where(path, config)}: `config:` must be a mapping of keys to values")
    entries = _pairs(path, config)
    if IMAGE_KEY not in entries:
        return _Located(config_key, config, None, None)
    image_key, image = entries[IMAGE_KEY]
    if not (_is_null(image) or isinstance(image, yaml.MappingNode)):
        raise ConfigError(
            f"{_where(path, image)}: {IMAGE_KEY} must be an object with repository, tag and digest"
        )
    return _Located(config_key, config, image_key, image)


def _setting(path: Path, image: yaml.Node | None) -> ImageSetting:
    if image is None or not isinstance(image, yaml.MappingNode):
        return ImageSetting()
    pairs = _pairs(path, image)
    values: dict[str, str | None] = {}
    for name in FIELDS:
        if name not in pairs:
            values[name] = None
            continue
        node = pairs[name][1]
        if _is_null(node):
            values[name] = None
        elif isinstance(node, yaml.ScalarNode):
            values[name] = str(node.value) or None  # Pulumi.yaml's default uses "" for unset
        else:
            raise ConfigError(f"{_where(path, node)}: {IMAGE_KEY}.{name} must be a string")
    return ImageSetting(values["repository"], values["tag"], values["digest"])


def _read_text(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None


def _missing(path: Path) -> ConfigError:
    return ConfigError(f"{path.name}: no such stack file in {path.parent}")


def _unreadable(path: Path, exc: OSError) -> ConfigError:
    # The same words as stackconfig's, whichever module reads the file first.
    return ConfigError(f"cannot read {path}: {exc.strerror or exc}")


def _read_file(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    return _read_text(path, raw)


def read_image(path: str | Path) -> ImageSetting:
    """The stack's ``cv-platform:image``; every field ``None`` when it is not set."""
    path = Path(path)
    text = _read_file(path)
    return _setting(path, _locate(path, text).image)


# --------------------------------------------------------------------------
# Rendering: the exact text edit.


def _scalar(value: str, style: str | None) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    plain_ok = (
        bool(_PLAIN_SAFE.fullmatch(value))
        and value.lower() not in _YAML_WORDS
        and not _YAML12_NUMBER.fullmatch(value)
        and yaml.load(value, Loader=_LOADER) == value  # noqa: S506 - a safe loader
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


@dataclass(frozen=True)
class _Edit:
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
    pairs = _pairs(path, image)
    nl = _newline(text)
    first_key = image.value[0][0]
    indent = " " * first_key.start_mark.column
    edits: list[_Edit] = []
    previous_end: int | None = None  # end of the line of the last existing field seen
    pending: list[str] = []  # fields to insert before the first existing one
    for name, value in _values(new).items():
        if name not in pairs:
            if value is None:
                continue
            line = f"{indent}{name}: {_scalar(value, None)}"
            if previous_end is None:
                pending.append(line)
            else:
                edits.append(_Edit(previous_end, previous_end, nl + line))
            continue
        key, node = pairs[name]
        if not isinstance(node, yaml.ScalarNode) or node.style in ("|", ">"):
            raise ConfigError(
                f"{_where(path, node)}: {IMAGE_KEY}.{name} must be a one-line string to be edited"
            )
        node_end = node.end_mark.index
        if value is None:
            # Remove the line (with any comment on it) and the line break before it.
            start = _line_start(text, key.start_mark.index) - len(nl)
            edits.append(_Edit(start, _line_end(text, node_end), ""))
            continue
        if _is_null(node):
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


def _plan(path: Path, text: str, located: _Located, new: ImageSetting) -> list[_Edit]:
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
                f"{_where(path, config)}: `config:` is written in flow style "
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
    if new.tag is not None and not re.fullmatch(r"[\w][\w.-]{0,127}", new.tag, re.ASCII):
        raise ConfigError(f"invalid tag {new.tag!r} for {IMAGE_KEY}.tag")


def render_image_edit(path: Path, text: str, new: ImageSetting) -> tuple[ImageSetting, str]:
    """Pure core: ``(old setting, new text)`` for ``text`` with the image set to ``new``."""
    _validate(new)
    located = _locate(path, text)
    old = _setting(path, located.image)
    if old == new:
        return old, text
    new_text = _apply(text, _plan(path, text, located, new))
    # Belt and braces: the new document must be the old one with only the image changed.
    try:
        before = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
        after = yaml.load(new_text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise PipelineError(
            f"internal error: editing {path.name} produced invalid YAML ({exc}); nothing written"
        ) from None
    if after != _expected_data(before, new) or _setting(path, _locate(path, new_text).image) != new:
        raise PipelineError(
            f"internal error: the edit of {path.name} would change more than {IMAGE_KEY}; "
            "nothing written"
        )
    return old, new_text


def unified_diff(path: Path, old_text: str, new_text: str) -> str:
    return "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{path.name}",
            tofile=f"b/{path.name}",
        )
    )


# --------------------------------------------------------------------------
# The imperative shell: lock, compare-and-swap, atomic replace.


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[int]:
    """Hold an exclusive flock on ``path``; yields a read-only fd of the current file.

    Writers replace the file, so after the lock is granted the path must still
    name the inode that was locked; if not, lock the new file instead.
    """
    import fcntl  # POSIX only; imported here so the module imports anywhere

    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _missing(path) from None
        except OSError as exc:
            raise _unreadable(path, exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"{path} is not a file")
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise PipelineError(
                            f"{path.name} is locked by another pipeline process "
                            f"(waited {timeout:.0f} s); nothing written"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                yield fd
                return
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _read_fd(fd: int) -> bytes:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _remove_stale_temps(path: Path) -> None:
    # Only writers holding the lock create temp files, so any left now belong
    # to a writer that died between creating and renaming its file.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _replace_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _check_expected(path: Path, old: ImageSetting, expect_digest: Expected) -> None:
    if expect_digest is None:
        return
    wanted = None if isinstance(expect_digest, _NoDigest) else expect_digest
    if old.digest == wanted:
        return
    raise PipelineError(
        f"{path.name}: expected {f'digest {wanted}' if wanted else 'no digest'} but the stack "
        f"has {old.digest or 'no digest'}; nothing written (another change landed first?)"
    )


def write_image(
    path: str | Path,
    new: ImageSetting,
    *,
    expect_digest: Expected = None,
    dry_run: bool = False,
) -> StackEdit:
    """Set the stack's ``cv-platform:image`` to ``new`` (``None`` fields are removed).

    With ``expect_digest`` the write happens only if the current digest equals
    it, or with ``NO_DIGEST`` only if there is none (compare-and-swap under the
    lock); otherwise PipelineError and the file is untouched. ``None`` checks
    nothing. ``dry_run`` computes the diff and writes (and locks) nothing.
    """
    path = Path(path)
    if isinstance(expect_digest, str):
        parse_digest(expect_digest)
    if dry_run:
        text = _read_file(path)
        old, new_text = render_image_edit(path, text, new)
        _check_expected(path, old, expect_digest)
        return StackEdit(old, new, unified_diff(path, text, new_text), False, path)

    # Replace what a symlinked stack file points to, not the link itself.
    path = path.parent.resolve() / path.name if not path.is_symlink() else path.resolve()
    with locked(path) as fd:
        raw = _read_fd(fd)
        text = _read_text(path, raw)
        old, new_text = render_image_edit(path, text, new)
        _check_expected(path, old, expect_digest)
        diff = unified_diff(path, text, new_text)
        if new_text == text:
            return StackEdit(old, new, diff, False, path)
        _remove_stale_temps(path)
        mode = os.fstat(fd).st_mode & 0o7777
        _replace_atomically(path, new_text.encode("utf-8"), mode)
        return StackEdit(old, new, diff, True, path)


__all__ = [
    "IMAGE_KEY",
    "NO_DIGEST",
    "Expected",
    "ImageSetting",
    "StackEdit",
    "locked",
    "read_image",
    "render_image_edit",
    "unified_diff",
    "write_image",
]
