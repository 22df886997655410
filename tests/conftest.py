"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests: modest example counts, no per-example deadline (the suite runs
# on loaded machines), no example database written into the work tree, and the same
# examples on every run (derandomize): CI is deterministic, and a failure reproduces.
settings.register_profile(
    "project",
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# HYPOTHESIS_PROFILE=deep: many more examples, and new ones on each run, for a search by
# hand (it found the Unicode line breaks and escaped wraps the scrubber now handles).
settings.register_profile(
    "deep", parent=settings.get_profile("project"), max_examples=1000, derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "project"))

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _checkouts(root: Path) -> list[Path]:
    """``root``, and the main checkout when ``root`` is a git worktree of it (its .git
    file names the worktree's git dir, whose ``commondir`` leads to the main .git)."""
    found = [root]
    dot_git = root / ".git"
    if dot_git.is_file() and dot_git.read_text().startswith("gitdir: "):
        gitdir = Path(dot_git.read_text().removeprefix("gitdir: ").strip())
        common = gitdir / "commondir"
        if common.is_file():
            found.append((gitdir / common.read_text().strip()).resolve().parent)
    return found


# ../shared/fixtures beside the checkout (or beside the main checkout of a worktree).
SHARED_FIXTURES = next(
    (
        c.parent / "shared" / "fixtures"
        for c in _checkouts(PROJECT_ROOT)
        if (c.parent / "shared" / "fixtures" / "SOURCES.md").is_file()
    ),
    PROJECT_ROOT.parent / "shared" / "fixtures",
)


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
