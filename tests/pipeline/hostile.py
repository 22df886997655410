"""Helpers for the hostile-input tests: a scratch project, the CLI run in-process, and
the contract every refusal keeps (exit 1 or 2, one stderr line, nothing changed)."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.commands.adapters import Adapters
from tests.conftest import PROJECT_ROOT

DIGEST = "sha256:" + "0123456789abcdef" * 4
REPOSITORY = "registry.example.internal/cv-platform/model-server"

STAGING = textwrap.dedent(
    f"""\
    config:
      cv-platform:environment: staging
      cv-platform:kubeContext: kind-cv-platform
      cv-platform:image:
        repository: {REPOSITORY}
        tag: v1
        digest: {DIGEST}
    """
)


@dataclass
class Result:
    code: int
    out: str
    err: str


def make_project(root: Path, stacks: dict[str, str | bytes] | None = None) -> Path:
    """A project at ``root``: the real Pulumi.yaml and the given stack files."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    for name, text in (stacks if stacks is not None else {"staging": STAGING}).items():
        path = root / f"Pulumi.{name}.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path: to show that nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def cli(capsys: pytest.CaptureFixture[str], *args: str, adapters: Adapters | None = None) -> Result:
    code = main(list(args), adapters)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_refused(result: Result, fragment: str, code: int = 1) -> str:
    """One stderr line holding ``fragment``, exit ``code``, nothing on stdout; the line."""
    assert result.code == code, result
    assert result.out == "", result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert "internal error" not in lines[0]
    assert "Traceback" not in result.err
    assert fragment in lines[0], lines[0]
    return lines[0]


__all__ = [
    "DIGEST",
    "REPOSITORY",
    "STAGING",
    "Result",
    "assert_refused",
    "cli",
    "make_project",
    "snapshot",
]
