"""The delivery loop rewrites the stack files: the tests must hold for whatever it writes.

On main, the Jenkinsfile commits Pulumi.<stack>.yaml back after set-image,
promote and rollback, and CI then tests that commit. A test that pinned the
image committed today would fail on the first deploy-bot commit.

- ``test_no_test_pins_the_committed_images`` (every run, cheap): no test file
  names the digests or full-sha tags the stack files pin now;
- ``test_the_suite_passes_after_the_pipeline_rewrites_the_stack_files``
  (marker ``delivery_loop``, run by .ci/run after the suite): on a copy of the
  project, the real CLI pins a new image in staging (resolved in a real
  registry), records its deployment and CI run, promotes it to prod, and then
  the whole suite runs on that copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.stacks.stackfile import read_image
from tests.projectcopy import copy_project
from tests.registry_fixture import PushedImages, registry_images, registry_server

__all__ = ["registry_images", "registry_server"]  # fixtures, imported

STACKS = ("staging", "prod")


def committed_pins(project_root: Path) -> set[str]:
    """The values the pipeline rewrites that are specific enough to be a pin."""
    pins: set[str] = set()
    for stack in STACKS:
        image = read_image(project_root / f"Pulumi.{stack}.yaml")
        if image.digest:
            pins |= {image.digest, image.digest.split(":", 1)[1]}
        if image.tag and len(image.tag) >= 12:  # a full git sha, not an example tag
            pins.add(image.tag)
    return pins


def test_no_test_pins_the_committed_images(project_root: Path) -> None:
    pins = committed_pins(project_root)
    assert pins, "the stack files pin no digest: nothing to check"
    found = []
    for folder in ("tests", "model/tests"):
        for path in sorted((project_root / folder).rglob("*")):
            if path.suffix not in {".py", ".json", ".yaml", ".yml", ".txt"}:
                continue
            text = path.read_text(errors="replace")
            found += [f"{path.relative_to(project_root)}: {pin}" for pin in pins if pin in text]
    assert found == [], "tests must build their own stack values, not read the committed ones"


def cli(root: Path, env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *argv],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done.stdout


@pytest.mark.delivery_loop
def test_the_suite_passes_after_the_pipeline_rewrites_the_stack_files(
    tmp_path: Path, project_root: Path, registry_images: PushedImages
) -> None:
    repo = copy_project(project_root, tmp_path / "repo")
    shared = project_root.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PIPELINE_STORE": str(tmp_path / "records.db"),
        "DOCKER_CONFIG": str(registry_images.server.docker_config(tmp_path / "docker")),
        "PIPELINE_ACTOR": "deploy-bot",
    }
    before = {s: (repo / f"Pulumi.{s}.yaml").read_text() for s in STACKS}
    cli(repo, env, "set-image", "staging", f"{registry_images.name}:v2")
    staged = read_image(repo / "Pulumi.staging.yaml")
    assert staged.digest == registry_images.v2.digest
    finished = datetime.now(UTC) - timedelta(hours=2)
    started = finished - timedelta(minutes=5)
    cli(
        repo, env, "record", "deploy", "--stack", "staging", "--result", "succeeded",
        "--started", started.isoformat(), "--finished", finished.isoformat(),
    )  # fmt: skip
    cli(
        repo, env, "record", "ci", "--image", str(staged), "--build-seconds", "60",
        "--test-seconds", "30", "--passed", "12", "--scan-critical", "0", "--scan-high", "0",
    )  # fmt: skip
    # A first promotion into this fresh store: prod has run no model with a card, so the
    # model gates are skipped explicitly, as they must be then (and it is recorded). No
    # deployment runs here for Prometheus to measure (the rehearsal verifies a real one),
    # so the verified gate that staging requires is skipped the same way.
    cli(
        repo, env, "promote", "--from", "staging", "--to", "prod",
        "--skip-gate", "model-quality", "--skip-gate", "model-compatible",
        "--skip-gate", "verified",
    )  # fmt: skip
    assert read_image(repo / "Pulumi.prod.yaml").digest == registry_images.v2.digest
    for stack in STACKS:
        assert (repo / f"Pulumi.{stack}.yaml").read_text() != before[stack]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider"],
        cwd=repo,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
