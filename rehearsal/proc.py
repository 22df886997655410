"""Processes for the rehearsal: bounded commands, background servers, bounded waits.

Every command has a timeout, every wait a deadline and a bounded number of
attempts. A failure is a :class:`StageFailed` carrying one line for the user
(the stage that failed and why); the orchestrator prints it and cleans up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class StageFailed(Exception):
    """A rehearsal stage failed; ``str()`` is the one line shown to the user."""


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    input_text: str | None = None,
    check: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion within ``timeout`` seconds.

    Output is captured (and appended to ``log`` when given). With ``check`` (a
    short description such as "push the image"), a non-zero exit or a timeout
    raises StageFailed naming it with the command's last stderr line.
    """
    try:
        done = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        if check is None:
            raise
        raise StageFailed(f"{check}: {argv[0]} did not finish within {timeout:.0f} s") from None
    except FileNotFoundError:
        if check is None:
            raise
        raise StageFailed(f"{check}: {argv[0]} is not installed") from None
    if log is not None:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}\n")
    if check is not None and done.returncode != 0:
        raise StageFailed(f"{check}: {last_line(done.stderr or done.stdout)}")
    return done


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and ln[:1] != "+"]
    return lines[-1] if lines else "(no output)"


def wait_until(
    probe: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """True once ``probe()`` is true; False at the deadline or when ``alive()`` turns false."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        if probe():
            return True
        if alive is not None and not alive():
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return False


def pid_alive(pid: int) -> bool:
    """True for a running process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def stop_pid(pid: int, *, grace: float = 10.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_until(lambda: not pid_alive(pid), timeout=grace, interval=0.1):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: not pid_alive(pid), timeout=5, interval=0.1)


def start_background(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start a server in its own session (a Ctrl-C reaches the orchestrator, not it)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    return process.pid
