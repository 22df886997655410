"""Read and write ``cv-platform:image`` in a stack file: locked, atomic, compare-and-swap.

Writes happen under an exclusive ``flock`` on the stack file itself (re-taken
if another writer replaced the file meanwhile), through a temporary file in
the same directory that is fsynced and atomically renamed over the original,
then the directory is fsynced. A reader therefore always sees the old or the
new file, never a mix, and ``expect_digest`` turns the write into a
compare-and-swap (``NO_DIGEST`` expects a stack that has no digest yet). The
text edit itself is ``pipeline.stacks.edit`` (pure).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from pipeline.errors import ConfigError, PipelineError, os_reason
from pipeline.images.refs import parse_digest
from pipeline.stacks.edit import render_image_edit, unified_diff
from pipeline.stacks.image import ImageSetting, locate, setting_of

LOCK_TIMEOUT_SECONDS = 30.0


class _NoDigest:
    """``expect_digest=NO_DIGEST``: the write happens only if the stack has no digest."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DIGEST"


NO_DIGEST = _NoDigest()
Expected = str | _NoDigest | None


class StackEdit(NamedTuple):
    """What ``write_image`` did (or, with ``dry_run``, would do)."""

    old: ImageSetting
    new: ImageSetting
    old_text: str
    new_text: str
    written: bool
    path: Path

    def __repr__(self) -> str:  # without the two texts
        return (
            f"StackEdit(old={self.old!r}, new={self.new!r}, written={self.written!r}, "
            f"path={self.path!r})"
        )

    @property
    def changed(self) -> bool:
        return self.new_text != self.old_text

    @property
    def diff(self) -> str:
        """The unified diff of the file (empty when nothing changes)."""
        return unified_diff(self.path, self.old_text, self.new_text)


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
    return setting_of(path, locate(path, text).image)


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


def _temporary(path: Path) -> tuple[int, str]:
    """A new private file ``.<name>.<random>.tmp`` beside ``path``: its fd and name.

    What ``tempfile.mkstemp`` does, without importing ``tempfile`` (and ``random``,
    ``shutil``) into every ``set-image`` run.
    """
    while True:
        name = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue


def _replace_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, tmp_name = _temporary(path)
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
    # The rename is done (and visible); a directory that cannot be fsynced (some
    # filesystems refuse it) must not turn the written file into an error.
    with contextlib.suppress(OSError):
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


class LockedStack:
    """A stack file held under its lock: read it, and write its image once.

    What a caller does between ``read`` and ``write`` (placing a hold, checking
    one) cannot interleave with another pipeline process writing the same file.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._written = False

    def _text(self) -> str:
        return _read_text(self.path, _read_fd(self._fd))

    def read(self) -> ImageSetting:
        """The stack's ``cv-platform:image`` as the locked file holds it."""
        return setting_of(self.path, locate(self.path, self._text()).image)

    def check(self, expect_digest: Expected) -> ImageSetting:
        """The current image, after the compare-and-swap check (PipelineError on a mismatch)."""
        current = self.read()
        _check_expected(self.path, current, expect_digest)
        return current

    def write(self, new: ImageSetting, *, expect_digest: Expected = None) -> StackEdit:
        """Set the image (compare-and-swap with ``expect_digest``); once per lock."""
        if self._written:
            raise PipelineError(f"{self.path.name}: written once already under this lock")
        text = self._text()
        old, new_text = render_image_edit(self.path, text, new)
        _check_expected(self.path, old, expect_digest)
        if new_text == text:
            return StackEdit(old, new, text, new_text, False, self.path)
        _remove_stale_temps(self.path)
        mode = os.fstat(self._fd).st_mode & 0o7777
        try:
            _replace_atomically(self.path, new_text.encode("utf-8"), mode)
        except OSError as exc:  # the temporary file is gone, the stack file untouched
            raise PipelineError(
                f"{self.path}: cannot write: {os_reason(exc)}; nothing written (the stack "
                "file is unchanged)"
            ) from None
        self._written = True
        return StackEdit(old, new, text, new_text, True, self.path)


@contextlib.contextmanager
def locked_stack(path: str | Path) -> Iterator[LockedStack]:
    """The stack file under its exclusive lock, for a read-check-write sequence."""
    path = Path(path)
    # Replace what a symlinked stack file points to, not the link itself.
    path = path.parent.resolve() / path.name if not path.is_symlink() else path.resolve()
    with locked(path) as fd:
        yield LockedStack(path, fd)


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
        return StackEdit(old, new, text, new_text, False, path)
    with locked_stack(path) as stack:
        return stack.write(new, expect_digest=expect_digest)


__all__ = [
    "NO_DIGEST",
    "Expected",
    "LockedStack",
    "StackEdit",
    "locked",
    "locked_stack",
    "read_image",
    "write_image",
]
