"""The Pulumi CLI, as the pipeline uses it: the one adapter around ``pulumi``.

``PulumiCli`` runs ``pulumi stack history``, ``pulumi stack output``, ``pulumi
preview`` and ``pulumi config --show-secrets`` through the pipeline's process
runner (``pipeline.io.process``), always with ``--non-interactive``, in the
project directory. Tests hand it a runner that replays recorded output. What the
output means is read elsewhere: ``pipeline.records.sources.pulumi_history`` (the
history) and ``pipeline.preview.pulumi_json`` (a preview).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.io import jsontext
from pipeline.io.process import Completed, ProcessTimeout, Runner, error_line, run

HISTORY_TIMEOUT = 300.0
PREVIEW_TIMEOUT = 1800.0
_INSTALL = "https://www.pulumi.com/docs/install/"


class PulumiError(PipelineError):
    """The pulumi CLI is missing, failed, or printed something unreadable."""


class PulumiCli:
    """``pulumi`` in one project directory; ``runner`` is how processes are started."""

    def __init__(
        self,
        cwd: str | os.PathLike[str] | None = None,
        runner: Runner | None = None,
        executable: str = "pulumi",
    ) -> None:
        self._cwd = os.fspath(cwd) if cwd is not None else None
        self._runner: Runner = runner or run
        self._executable = executable

    def _json(self, args: Sequence[str]) -> Any:
        argv = [self._executable, *args, "--non-interactive"]
        shown = " ".join(argv[:3])
        try:
            done = self._runner(argv, self._cwd, timeout=HISTORY_TIMEOUT)
        except FileNotFoundError:
            raise PulumiError(
                f"the pulumi CLI is not installed or not on PATH (needed for `{shown}`); "
                f"see {_INSTALL}"
            ) from None
        except ProcessTimeout:
            raise PulumiError(f"`{shown}` did not finish in time") from None
        if done.returncode != 0:
            detail = error_line(done.stderr) or error_line(done.stdout) or "no message"
            raise PulumiError(f"`{shown}` failed (exit {done.returncode}): {detail}")
        try:
            return jsontext.loads(done.stdout or "null")
        except json.JSONDecodeError as exc:
            raise PulumiError(
                f"`{shown}` printed something that is not JSON "
                f"(line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except ValueError as exc:
            raise PulumiError(f"`{shown}` printed JSON this pipeline cannot use ({exc})") from None

    def history(self, stack: str) -> list[dict[str, Any]]:
        """``pulumi stack history --json``: every update of ``stack``, as Pulumi prints it."""
        # --page-size 0: every update, not the CLI's default of the last ten (the
        # backends paginate only when pageSize > 0: pulumi/pulumi
        # pkg/backend/httpstate/client GetStackUpdates).
        data = self._json(["stack", "history", "--json", "--page-size", "0", "--stack", stack])
        if data is None:
            return []
        if not isinstance(data, list):
            raise PulumiError("`pulumi stack history --json` did not print a JSON array")
        return data

    def outputs(self, stack: str) -> dict[str, Any]:
        """``pulumi stack output --json``: the stack's outputs now."""
        data = self._json(["stack", "output", "--json", "--stack", stack])
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise PulumiError("`pulumi stack output --json` did not print a JSON object")
        return data

    def _run(self, argv: list[str], timeout: float) -> Completed:
        try:
            return self._runner(argv, self._cwd, timeout=timeout)
        except FileNotFoundError:
            raise PulumiError(
                "the pulumi CLI is not installed or not on PATH: install it, or run "
                "`preview --offline` for a preview that needs no CLI or credentials"
            ) from None
        except ProcessTimeout:
            raise PulumiError(f"`{' '.join(argv[:3])}` timed out after {timeout:.0f} s") from None

    def preview(self, stack: str, policy_pack: Path | None = None) -> Completed:
        """``pulumi preview --json --diff``, finished: the caller reads its JSON and status.

        A failed preview still prints JSON (its diagnostics say why), so a
        non-zero exit is not an error here.
        """
        argv = [self._executable, "preview", "--json", "--diff", "--non-interactive"]
        argv += ["--stack", stack]
        if policy_pack is not None:
            argv += ["--policy-pack", str(policy_pack)]
        return self._run(argv, PREVIEW_TIMEOUT)

    def secret_config(self, stack: str) -> dict[str, Any]:
        """``pulumi config --show-secrets --json``; ``{}`` when it cannot be read."""
        argv = [self._executable, "config", "--show-secrets", "--json", "--stack", stack]
        try:
            done = self._run(argv, HISTORY_TIMEOUT)
            data = jsontext.loads(done.stdout) if done.returncode == 0 else {}
        except (PipelineError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


__all__ = ["PulumiCli", "PulumiError"]
