"""Fixtures shared by every test package."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _shared_fixtures(root: Path) -> Path:
    """``../shared/fixtures`` beside the checkout; for a linked git worktree (its ``.git``
    is a file naming the main repository's), beside the main checkout when not here."""
    here = root.parent / "shared" / "fixtures"
    dot_git = root / ".git"
    if here.is_dir() or not dot_git.is_file():
        return here
    gitdir = Path(dot_git.read_text().removeprefix("gitdir:").strip())
    # <main checkout>/.git/worktrees/<name>
    main = gitdir.parent.parent.parent if gitdir.parent.name == "worktrees" else None
    return main.parent / "shared" / "fixtures" if main is not None else here


SHARED_FIXTURES = _shared_fixtures(PROJECT_ROOT)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """Third-party data in ../shared/fixtures (never copied into the project)."""
    if not (SHARED_FIXTURES / "SOURCES.md").is_file():
        pytest.skip(f"third-party fixtures not found at {SHARED_FIXTURES} (../shared is absent)")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def locked() -> dict[str, dict[str, Any]]:
    """uv.lock's packages by name: what every install of the project gets."""
    with (PROJECT_ROOT / "uv.lock").open("rb") as f:
        packages = tomllib.load(f)["package"]
    return {p["name"]: p for p in packages}
