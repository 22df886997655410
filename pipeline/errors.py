"""Typed errors. Only the CLI turns them into exit codes and one stderr line."""

from __future__ import annotations

import errno
import re

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


# C0 and C1 controls (ESC starts a terminal escape) other than the whitespace folded below.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What str.splitlines() breaks at, besides \r and \n: VT, FF, FS, GS, RS, NEL, LS, PS.
_BREAKS = re.compile(r"\s*[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+\s*")


def os_reason(exc: OSError) -> str:
    """Why an operation on a file failed, in words; a full disk always says so."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device"
    return exc.strerror or str(exc) or type(exc).__name__


def one_line(text: str) -> str:
    """``text`` as one printable line: line breaks folded to a space, other controls escaped.

    The CLI's contract is one line on stderr; a message that quotes what a server,
    a file or a flag said must not turn into two lines or into terminal escapes.
    """
    text = _BREAKS.sub(" ", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text).strip()
