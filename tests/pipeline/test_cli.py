"""pipeline.cli.main: what a command's failure becomes (exit code, one stderr line)."""

from __future__ import annotations

import argparse
import errno

import pytest

import pipeline.commands.metrics
from pipeline.cli import build_parser, main
from pipeline.errors import GateRefused


def _failing(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def run(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(pipeline.commands.metrics, "run", run)


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/srv/records.db"),
            1,
            "error: /srv/records.db: Permission denied",
        ),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), 1, "Connection refused"),
        (GateRefused("refused by soak"), 3, "error: refused by soak"),
        (RuntimeError("two\nlines"), 1, "internal error: RuntimeError: two lines (set PIPELINE"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
    ids=["file", "socket", "gate", "bug", "ctrl-c"],
)
def test_a_failure_is_its_exit_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    code: int,
    line: str,
) -> None:
    monkeypatch.delenv("PIPELINE_DEBUG", raising=False)
    _failing(monkeypatch, exc)
    assert main(["metrics"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("python -m pipeline metrics: ")
    assert line in captured.err
    assert captured.err.count("\n") == 1
    assert "Errno" not in captured.err


def _options(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _options(sub, f"{path} {name}".strip())
        elif action.option_strings:
            found.append((path, action))
    return found


def test_every_option_of_every_command_says_what_it_does() -> None:
    options = _options(build_parser())
    assert len(options) > 40
    silent = [f"{path} {a.option_strings[0]}" for path, a in options if not a.help]
    assert silent == []
