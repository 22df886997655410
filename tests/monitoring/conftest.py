"""Fixtures of the monitoring tests: the stacks' monitoring objects as the program
declares them, and the third-party CRDs (read in place, skipped when absent)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline.project import Project
from tests.infra.conftest import by_kind, run_stack_file, unwrap
from tests.registry_fixture import registry_images, registry_server

__all__ = ["registry_images", "registry_server"]  # fixtures, imported

STACKS = ("staging", "prod")


@pytest.fixture(scope="session")
def stack_objects(project_root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Per stack, the ServiceMonitor and PrometheusRule manifests the program declares."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for stack in STACKS:
        run = run_stack_file(Project(project_root), stack)
        found[stack] = {
            kind: unwrap(by_kind(run, kind)[0].inputs)
            for kind in ("ServiceMonitor", "PrometheusRule")
        }
    return found


@pytest.fixture(scope="session")
def crds(shared_fixtures: Path) -> Path:
    path = shared_fixtures / "crds"
    if not path.is_dir():
        pytest.skip(f"the Prometheus Operator CRDs are not at {path}")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make setup)")
    return found
