"""Where the Pulumi project and its stack files are."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from pipeline.errors import ConfigError

PROJECT_FILE = "Pulumi.yaml"
PROJECT_NAME = "cv-platform"
_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class Project(NamedTuple):
    root: Path

    @property
    def project_file(self) -> Path:
        return self.root / PROJECT_FILE

    def stack_file(self, stack: str) -> Path:
        """Path of ``Pulumi.<stack>.yaml``; the stack name is validated, the file need not exist."""
        if not _STACK_NAME.match(stack):
            raise ConfigError(f"invalid stack name {stack!r}: use letters, digits, '-', '_' or '.'")
        return self.root / f"Pulumi.{stack}.yaml"

    def existing_stack_file(self, stack: str) -> Path:
        path = self.stack_file(stack)
        if path.exists() and not path.is_file():
            raise ConfigError(f"stack {stack!r}: {path} is not a file")
        if not path.is_file():
            known = ", ".join(self.stacks()) or "none"
            raise ConfigError(
                f"unknown stack {stack!r}: no {path.name} in {self.root} (stacks: {known})"
            )
        return path

    def stacks(self) -> list[str]:
        """Every stack with a ``Pulumi.<stack>.yaml`` file, sorted."""
        names = []
        for path in self.root.glob("Pulumi.*.yaml"):
            name = path.name[len("Pulumi.") : -len(".yaml")]
            if _STACK_NAME.match(name):
                names.append(name)
        return sorted(names)

    @property
    def default_store(self) -> Path:
        return self.root / ".pipeline" / "records.db"


def find_project(start: str | Path | None = None) -> Project:
    """The nearest directory at or above ``start`` (default: cwd) holding Pulumi.yaml."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    if start is not None and not here.is_dir():
        raise ConfigError(f"--project-dir {start}: not a directory")
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return Project(candidate)
    raise ConfigError(
        f"no {PROJECT_FILE} in {here} or any parent: run inside the project or pass --project-dir"
    )


def locate_project(project_dir: str | None, location: str | None) -> Project | None:
    """The project (``--project-dir`` or the nearest one); optional with an explicit store.

    Commands that only append records (``record``) work outside the project
    when ``--store`` names the store; then there is no stack list to check.
    """
    try:
        return find_project(project_dir)
    except ConfigError:
        if location and project_dir is None:
            return None
        raise
