"""Fixtures for the Jenkinsfile and its stage scripts (ci/), run as Jenkins runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.ci.jenkins import Agent, Jenkinsfile, parse_groovy
from tests.registry_fixture import registry_images, registry_server  # noqa: F401 (fixtures)


@pytest.fixture(scope="session")
def groovy_files(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Groovy this project ships: the Jenkinsfiles, the seed job, the init script."""
    casc = yaml.safe_load((project_root / "infra/jenkins/casc.yaml").read_text())
    seed = tmp_path_factory.mktemp("seed") / "seed.groovy"
    seed.write_text(casc["jobs"][0]["script"])
    return {
        "jenkinsfile": project_root / "Jenkinsfile",
        "seed": seed,
        "init": project_root / "infra/jenkins/init.groovy.d/publish-agent-secret.groovy.override",
        "scanner-db": project_root / "Jenkinsfile.scanner-db",
    }


@pytest.fixture(scope="session")
def parsed(groovy_files: dict[str, Path]) -> dict[str, object]:
    # One JVM start for all files (each start costs seconds).
    try:
        return parse_groovy(*groovy_files.values())
    except LookupError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def jenkinsfile(
    project_root: Path, parsed: dict[str, object], groovy_files: dict[str, Path]
) -> Jenkinsfile:
    tree = parsed[str(groovy_files["jenkinsfile"])]
    assert isinstance(tree, dict)
    return Jenkinsfile((project_root / "Jenkinsfile").read_text(), tree)


@pytest.fixture
def make_agent(tmp_path: Path, project_root: Path, jenkinsfile: Jenkinsfile) -> Callable[[], Agent]:
    """A fresh agent with the project checked out from a local origin (one per call)."""
    count = 0

    def make() -> Agent:
        nonlocal count
        count += 1
        agent = Agent(tmp_path / f"agent{count}", project_root, jenkinsfile)
        agent.seed()
        return agent

    return make


@pytest.fixture
def agent(make_agent: Callable[[], Agent]) -> Agent:
    return make_agent()
