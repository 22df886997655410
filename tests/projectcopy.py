"""A copy of this project as a checkout holds it: no venv, caches, builds or records."""

from __future__ import annotations

import shutil
from pathlib import Path

TOP_LEVEL_IGNORED = frozenset({".git", ".venv", ".tools", "build", ".pipeline"})
IGNORED_ANYWHERE = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.pyc"
)


def copy_project(source: Path, destination: Path) -> Path:
    """Copy ``source`` to ``destination`` (which must not exist); returns it."""
    top = str(source)

    def ignored(directory: str, names: list[str]) -> set[str]:
        found = set(IGNORED_ANYWHERE(directory, names))
        return found | (TOP_LEVEL_IGNORED & set(names) if directory == top else set())

    shutil.copytree(source, destination, ignore=ignored, symlinks=True)
    return destination
