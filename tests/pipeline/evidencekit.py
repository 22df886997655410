"""Helpers for the evidence tests: third-party reports read in place, one-line errors."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_FIXTURES


def fixture_bytes(relative: str) -> bytes:
    """The bytes of ../shared/fixtures/<relative>; the test skips when it is not there."""
    path = SHARED_FIXTURES / relative
    if not path.is_file():
        pytest.skip(f"fixture {path} is not available (the shared fixtures folder is missing)")
    return path.read_bytes()


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    """The exception's message, asserting it is a single non-empty line."""
    message = str(exc.value)
    assert message
    assert "\n" not in message
    assert len(message) < 400
    return message
