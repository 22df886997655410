"""A small real filesystem for the disk-full and read-only tests: tmpfs, mounted as root.

``small_filesystem(path, size)`` mounts a tmpfs of ``size`` at ``path`` and unmounts it
afterwards (lazily if a file is still open), so SQLite and the stack-file writer hit a
real ENOSPC, and ``read_only`` remounts it read-only, which even root cannot write.
Tests skip when they cannot mount (not root, no mount(8), a container without the
capability).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "512k") -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) to make a small filesystem")
    path.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        undone = subprocess.run(
            ["umount", str(path)], capture_output=True, text=True, timeout=30, check=False
        )
        if undone.returncode != 0:
            subprocess.run(
                ["umount", "-l", str(path)], capture_output=True, timeout=30, check=False
            )


def fill(path: Path) -> None:
    """Write zeros into ``path`` until the filesystem holding it is full."""
    chunk = b"\0" * 4096
    with (path / ".fill").open("wb", buffering=0) as handle:
        for _ in range(1 << 20):  # bounded: 4 GiB at most
            try:
                if not handle.write(chunk):
                    return
            except OSError:  # ENOSPC: full
                return


def free(path: Path) -> None:
    """Undo ``fill``."""
    (path / ".fill").unlink(missing_ok=True)


def read_only(path: Path, readonly: bool = True) -> None:
    """Remount the small filesystem at ``path`` read-only (or writable again)."""
    done = _mount("-o", f"remount,{'ro' if readonly else 'rw'}", str(path))
    assert done.returncode == 0, done.stderr


__all__ = ["fill", "free", "read_only", "small_filesystem"]
