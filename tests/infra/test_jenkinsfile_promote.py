"""The Jenkinsfile's Promote stage, run for real against a record store.

Branch builds deploy staging too, so while a main build waits for approval,
staging's last good deployment (what `pipeline promote` takes) may become a
different image. The stage's script must then refuse before promoting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.test_jenkinsfile_commit_back import _groovy_unescape

APPROVED = "sha256:" + "a" * 64
LATER = "sha256:" + "b" * 64
REPOSITORY = "registry.example.internal/cv-platform/model-server"


@pytest.fixture(scope="module")
def promote_script(project_root: Path) -> str:
    jenkinsfile = (project_root / "Jenkinsfile").read_text()
    stage = jenkinsfile[jenkinsfile.index("stage('Promote')") :]
    stage = stage[: stage.index("stage('Deploy prod')")]
    (script,) = re.findall(r"sh '''(.*?)'''", stage, re.S)
    return _groovy_unescape(script)


@pytest.fixture
def project(tmp_path: Path, project_root: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        shutil.copy(project_root / name, root / name)
    return root


def run(root: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def deployed(root: Path, env: dict[str, str], digest: str, at: str) -> None:
    done = run(
        root,
        sys.executable,
        "-m",
        "pipeline",
        "record",
        "deploy",
        "--stack",
        "staging",
        "--result",
        "succeeded",
        "--image",
        f"{REPOSITORY}@{digest}",
        "--started",
        f"2026-01-01T{at}:00Z",
        "--finished",
        f"2026-01-01T{at}:30Z",
        env=env,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def env(tmp_path: Path, project_root: Path) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(project_root),
        "PIPELINE_STORE": str(tmp_path / "records.db"),
        "IMAGE_DIGEST": APPROVED,
    }


def test_promote_refuses_when_staging_moved_on_since_approval(
    project: Path, env: dict[str, str], promote_script: str
) -> None:
    deployed(project, env, APPROVED, "10:00")
    deployed(project, env, LATER, "11:00")  # a branch build, during the approval wait
    before = (project / "Pulumi.prod.yaml").read_bytes()
    done = run(project, "bash", "-c", promote_script, env=env)
    assert done.returncode == 1
    assert f"staging's last good deployment is {LATER}, not {APPROVED}" in done.stderr
    assert (project / "Pulumi.prod.yaml").read_bytes() == before
    assert "promot" not in done.stdout  # promote never ran


def test_promote_proceeds_when_staging_runs_the_approved_image(
    project: Path, env: dict[str, str], promote_script: str
) -> None:
    deployed(project, env, LATER, "09:00")
    deployed(project, env, APPROVED, "10:00")
    done = run(project, "bash", "-c", promote_script, env=env)
    # The check let promote run; here its own gates refuse (no registry, no CI run).
    assert "not promoting" not in done.stderr
    assert done.returncode == 3, done.stderr
    assert "Pulumi.prod.yaml unchanged" in done.stderr
