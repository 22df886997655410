"""Typed errors. Only the CLI turns them into exit codes and one stderr line."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_GATE_REFUSED = 3


class PipelineError(Exception):
    """An error the user can act on; the message is the one line they see."""

    exit_code = EXIT_ERROR


class UsageError(PipelineError):
    """The command line itself is wrong (bad combination of options)."""

    exit_code = EXIT_USAGE


class ConfigError(PipelineError):
    """A stack or project file is missing, malformed or fails validation."""


class RegistryError(PipelineError):
    """The image registry refused, failed or could not be reached."""


class StoreError(PipelineError):
    """The record store could not be read or written."""


class GateRefused(PipelineError):
    """A promotion gate failed; nothing was changed."""

    exit_code = EXIT_GATE_REFUSED


class VerificationFailed(PipelineError):
    """A verification measured a broken limit (like a refused gate: exit 3)."""

    exit_code = EXIT_GATE_REFUSED
