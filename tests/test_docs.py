"""README.md and docs/*.md say what the code does: their commands, links and names.

Every `python -m pipeline ...` line in a shell block parses with the real
argument parser, every link inside the repository reaches an existing file and
heading, every `make` target named exists, and every PIPELINE_* variable named
is one the code reads.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pipeline.cli import build_parser
from tests.conftest import PROJECT_ROOT

DOCS = (PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md")))
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.M | re.S)
ANY_BLOCK = re.compile(r"^```.*?^```", re.M | re.S)


def _name(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def _first_choice(match: re.Match[str]) -> str:
    return match.group(1).split("|")[0]


def _commands(path: Path) -> list[str]:
    """The arguments after `python -m pipeline` in the file's shell blocks.

    An optional group written as a synopsis, `[--format table|json]`, is taken
    with its first choice, so it is checked too.
    """
    found = []
    for block in SHELL_BLOCK.findall(path.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            match = re.search(r"python -m pipeline (.*)", line)
            if not match:
                continue
            text = re.sub(r"\[([^\]]*)\]", _first_choice, match.group(1))
            found.append(re.split(r"\s+#|\s*>|\s*\|", text)[0])
    return found


CASES = [(_name(p), c) for p in DOCS for c in _commands(p)]


def test_the_docs_show_commands() -> None:
    # The extraction itself works (render is shown inline and as `make render`).
    shown = {shlex.split(c)[0] for _, c in CASES}
    assert shown == {"set-image", "promote", "rollback", "hold", "history", "record"} | {
        "verify",
        "metrics",
        "preview",
        "waive",
    }


@pytest.mark.parametrize(("doc", "command"), CASES, ids=[f"{d}: {c[:50]}" for d, c in CASES])
def test_every_documented_command_parses(doc: str, command: str) -> None:
    try:
        build_parser().parse_args(shlex.split(command))
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{doc}: `python -m pipeline {command}` is refused (exit {exc.code})")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces as '-'."""
    text = ANY_BLOCK.sub("", path.read_text())
    headings = re.findall(r"^#+ (.*)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_links_inside_the_repository_reach_a_file_and_heading(doc: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", ANY_BLOCK.sub("", doc.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path_text, _, anchor = target.partition("#")
        path = (doc.parent / path_text).resolve() if path_text else doc
        if not path.is_relative_to(PROJECT_ROOT):
            continue  # ../shared: beside the repository, not in a clone
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in _anchors(path):
            broken.append(f"{target}: no such heading in {_name(path)}")
    assert broken == []


def test_make_targets_named_in_the_docs_exist() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert phony is not None
    targets = set(phony.group(1).split())
    named = {t for doc in DOCS for t in re.findall(r"\bmake ([a-z]+)\b", doc.read_text())}
    assert named
    assert named <= targets, named - targets


def test_pipeline_variables_named_in_the_docs_are_read_by_the_code() -> None:
    code = "\n".join(
        p.read_text()
        for pattern in ("pipeline/**/*.py", "infra/**/*.py")
        for p in PROJECT_ROOT.glob(pattern)
    )
    named = {v for doc in DOCS for v in re.findall(r"\bPIPELINE_[A-Z_]+\b", doc.read_text())}
    assert named
    assert {v for v in named if v not in code} == set()
