"""Bounded readiness waits for the servers tests start (registry, Prometheus, ...).

A probe that raises one of ``errors`` (by default any OSError: a refused
connection, and also a read that timed out on a loaded machine) means "not yet",
like a probe that returns False. The wait is bounded in time and in attempts,
fails the test when the process it waits for has exited (with its log's tail),
and never returns a server that did not answer.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_until(
    probe: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    log: Path | None = None,
    interval: float = 0.05,
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            pytest.fail(f"{what} exited with {process.returncode} before it was ready: {tail}")
        try:
            if probe():
                return
        except errors:
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    pytest.fail(f"{what} was not ready within {timeout:.0f} s {tail}".rstrip())
