"""Child processes: the one way the pipeline runs another program.

Every tool the pipeline calls (pulumi, git, docker credential helpers, a render
in a fresh interpreter) goes through a ``Runner``: ``(argv, cwd, timeout,
stdin) -> Completed``. ``run`` is the real one; tests pass a function that
replays recorded output. A missing executable raises ``FileNotFoundError`` (as
``subprocess`` does) and a run past its timeout ``ProcessTimeout``, so callers
say what went wrong in their own words without importing ``subprocess``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class Completed(NamedTuple):
    """A finished process: its exit status and its output as text."""

    returncode: int
    stdout: str
    stderr: str


class ProcessTimeout(Exception):
    """The process did not finish within ``seconds`` and was killed."""

    def __init__(self, argv: Sequence[str], seconds: float) -> None:
        super().__init__(f"`{' '.join(argv)}` did not finish within {seconds:g} s")
        self.argv = list(argv)
        self.seconds = seconds


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        cwd: str | None = None,
        /,
        *,
        timeout: float,
        stdin: str | None = None,
    ) -> Completed: ...


def run(
    argv: Sequence[str],
    cwd: str | None = None,
    *,
    timeout: float,
    stdin: str | None = None,
) -> Completed:
    """Run ``argv`` in ``cwd`` with ``stdin`` as its input; output captured as text."""
    import subprocess  # not needed by the commands that never start a process

    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProcessTimeout(argv, timeout) from None
    return Completed(done.returncode, done.stdout, done.stderr)


def last_line(text: str) -> str:
    """The last non-blank line of a tool's output (``""`` when there is none)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def error_line(text: str) -> str:
    """The first ``error:`` line of a tool's output, else its last non-blank line.

    The Pulumi CLI prints the cause first (``error: no stack named 'prod' found``)
    and hints, diagnostics or a summary after it; the last line alone (what was
    shown before) was often ``If you want to create a new stack...`` or a blank
    summary rather than what went wrong.
    """
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped.lower().startswith("error:"):
            return stripped
    return last_line(text)


__all__ = ["Completed", "ProcessTimeout", "Runner", "error_line", "last_line", "run"]
