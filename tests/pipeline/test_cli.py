"""pipeline.cli.main: what a command's failure becomes (exit code, one stderr line)."""

from __future__ import annotations

import argparse
import errno
import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.commands.adapters import Adapters
from pipeline.commands.promote import gate_table
from pipeline.errors import GateRefused
from pipeline.promotion.gates import GateResult
from tests.conftest import PROJECT_ROOT


def _failing(exc: BaseException) -> Adapters:
    """Adapters whose clock fails: the first thing `metrics` asks for."""

    def now() -> datetime:
        raise exc

    return Adapters(now=now)


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
        (GateRefused("said\r\nby a server\u2028"), 3, "error: said by a server"),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/a\nb"), 1, "/srv/a b:"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
    ids=["file", "socket", "gate", "bug", "server-text", "file-name-with-break", "ctrl-c"],
)
def test_a_failure_is_its_exit_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    code: int,
    line: str,
) -> None:
    monkeypatch.delenv("PIPELINE_DEBUG", raising=False)
    assert main(["metrics"], _failing(exc)) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("python -m pipeline metrics: ")
    assert line in captured.err
    assert captured.err.count("\n") == 1
    assert len(captured.err.splitlines()) == 1
    assert "Errno" not in captured.err


def test_terminal_escapes_in_a_message_are_shown_not_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["metrics"], _failing(GateRefused("held: \x1b[2J\x1b]0;pwned\x07"))) == 3
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "held: \\x1b[2J\\x1b]0;pwned\\x07" in err


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


def _commands(
    parser: argparse.ArgumentParser, path: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command and record kind, with its path (``record deploy``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{path} {name}".strip(), sub))
                found += _commands(sub, f"{path} {name}".strip())
    return found


COMMANDS = _commands(build_parser())


def test_the_commands_are_all_there() -> None:
    names = [path for path, _ in COMMANDS]
    assert names == [
        "render",
        "set-image",
        "promote",
        "rollback",
        "verify",
        "hold",
        "waive",
        "history",
        "record",
        "record deploy",
        "record ci",
        "record scan",
        "metrics",
        "preview",
    ]


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_has_a_description_and_an_example_of_itself(
    path: str, parser: argparse.ArgumentParser
) -> None:
    assert parser.description
    assert parser.epilog is not None
    assert f"examples:\n  python -m pipeline {path} " in parser.epilog


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
def test_help_prints_the_examples_as_written(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*path.split(), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert f"\nexamples:\n  python -m pipeline {path} " in out
    assert "--store PATH_OR_URL" in out  # the global options are accepted here too


def test_every_documented_example_parses() -> None:
    import shlex

    for _, parser in COMMANDS:
        assert parser.epilog is not None
        for line in parser.epilog.splitlines()[1:]:
            command = line.strip().removeprefix("python -m pipeline ").split(" > ")[0]
            build_parser().parse_args(shlex.split(command))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    from pipeline.project import Project
    from pipeline.records.model import Hold
    from pipeline.records.stores import open_store

    root = tmp_path / "project"
    (root / "infra").mkdir(parents=True)
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        (root / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    path = tmp_path / "records.db"
    opened = open_store(str(path), Project(root))
    opened.add(Hold("prod", "placed", datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "incident 42"))
    opened.close()
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["--store", "{store}", "history", "prod"],
        ["history", "prod", "--store", "{store}"],
        ["history", "--store={store}", "prod"],
        ["--store", "elsewhere.db", "history", "prod", "--store", "{store}"],
    ],
    ids=["before", "after", "between", "after-wins"],
)
def test_global_options_go_before_or_after_the_command(
    store: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    root = store.parent / "project"
    argv = [arg.replace("{store}", str(store)) for arg in argv]
    assert main(["--project-dir", str(root), *argv]) == 0
    assert "incident 42" in capsys.readouterr().out


def test_project_dir_after_the_record_kind(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = store.parent / "project"
    argv = ["record", "deploy", "--stack", "prod", "--result", "succeeded"]
    argv += ["--started", "2026-03-02T09:00:00Z", "--finished", "2026-03-02T09:04:00Z"]
    assert main([*argv, "--project-dir", str(root), "--store", str(store)]) == 0
    assert "recorded deployment #" in capsys.readouterr().out


def test_works_from_any_directory_inside_the_project(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(store.parent / "project" / "infra")
    assert main(["history", "prod", "--store", str(store)]) == 0
    assert "incident 42" in capsys.readouterr().out


def test_python_m_pipeline_runs_from_a_subdirectory(store: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "history", "prod", "--store", str(store)],
        cwd=store.parent / "project" / "infra",
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "incident 42" in done.stdout


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


GATES = [
    GateResult("soak", True, "ran 3 h"),
    GateResult("tests-passed", False, "no CI run"),
    GateResult("not-on-hold", False, "skipped (--skip-gate)", skipped=True),
]


def test_gate_table_is_coloured_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    table = gate_table(GATES)
    assert "\033[32mpass\033[0m" in table
    assert "\033[31mFAIL\033[0m" in table
    assert "\033[33mskipped\033[0m" in table
    plain = re.sub(r"\033\[[0-9;]*m", "", table)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert plain == gate_table(GATES)  # the same columns, to the character


@pytest.mark.parametrize(("no_color", "coloured"), [("1", False), ("", True), ("false", False)])
def test_no_color_set_to_anything_but_empty_turns_colour_off(
    monkeypatch: pytest.MonkeyPatch, no_color: str, coloured: bool
) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert ("\033[" in gate_table(GATES)) is coloured


def test_no_colour_when_stdout_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert "\033[" not in gate_table(GATES)
