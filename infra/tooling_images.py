"""What the Jenkins images (controller and agent) are built from: their build contexts,
and a content digest of them that tags each image, so an image is rebuilt, pushed and
its container replaced exactly when one of its input files changes (JenkinsServer).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

ASSETS: Final = Path(__file__).resolve().parent / "jenkins"  # infra/jenkins/
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
# Relative to the project root: Pulumi runs the program there, and a checkout
# elsewhere must declare the same inputs.
CONTROLLER_CONTEXT: Final = "infra/jenkins"
AGENT_DOCKERFILE: Final = "infra/jenkins/agent/Dockerfile"
# The agent's context is the repository root, filtered to what `uv sync --locked`
# reads by infra/jenkins/agent/Dockerfile.dockerignore (and /.dockerignore).
AGENT_CONTEXT_FILES: Final = (
    "infra/jenkins/agent/Dockerfile",
    "pyproject.toml",
    "uv.lock",
)


def context_digest(paths: list[Path], root: Path) -> str:
    """A short content hash of build-context files: the image tag changes with them only."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def controller_context_files() -> list[Path]:
    ignore = {".dockerignore"}
    return [
        p
        for p in ASSETS.rglob("*")
        if p.is_file() and "agent" not in p.relative_to(ASSETS).parts and p.name not in ignore
    ]


def agent_context_files() -> list[Path]:
    return [PROJECT_ROOT / rel for rel in AGENT_CONTEXT_FILES]


__all__ = [
    "AGENT_CONTEXT_FILES",
    "AGENT_DOCKERFILE",
    "ASSETS",
    "CONTROLLER_CONTEXT",
    "PROJECT_ROOT",
    "agent_context_files",
    "context_digest",
    "controller_context_files",
]
