"""``record deploy`` and ``record ci`` with plain flags: validation and what is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.project import Project
from pipeline.records.stores import open_store

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "4d" * 32
IMAGE = f"registry.example.internal/cv/model:4e1d07c@{DIGEST}"
DEPLOY = [
    "record", "deploy", "--stack", "staging", "--result", "succeeded", "--image", IMAGE,
    "--started", "2026-03-02T09:00:00Z", "--finished", "2026-03-02T09:04:30Z",
]  # fmt: skip
CI = ["record", "ci", "--image", IMAGE, "--build-seconds", "312.5", "--test-seconds", "88"]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    return tmp_path


def cli(root: Path, *argv: str) -> int:
    return main(["--project-dir", str(root), *argv])


def test_record_deploy_stores_the_digest_from_the_reference(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, *DEPLOY, "--commit", "4e1d07c") == 0
    assert "recorded deployment #1: staging succeeded" in capsys.readouterr().out
    (deployment,) = open_store(None, Project(root)).deployments("staging")
    assert deployment.digest == DIGEST
    assert deployment.image == IMAGE
    assert deployment.commit == "4e1d07c"
    assert deployment.started == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert deployment.duration_seconds == 270


def test_without_image_the_deployment_is_the_image_the_stack_file_pins(root: Path) -> None:
    pinned = f"registry.example.internal/cv/model:9f3c2ab@{DIGEST}"
    (root / "Pulumi.staging.yaml").write_text(
        "config:\n  cv-platform:image:\n    repository: registry.example.internal/cv/model\n"
        f"    tag: 9f3c2ab\n    digest: {DIGEST}\n"
    )
    assert cli(root, *drop(DEPLOY, "--image")) == 0
    (deployment,) = open_store(None, Project(root)).deployments("staging")
    assert (deployment.image, deployment.digest) == (pinned, DIGEST)


def test_without_image_a_stack_that_pins_none_is_refused(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "Pulumi.staging.yaml").write_text("config:\n  cv-platform:replicas: 1\n")
    assert cli(root, *drop(DEPLOY, "--image")) == 2
    err = capsys.readouterr().err
    assert "Pulumi.staging.yaml pins no image (cv-platform:image); give --image" in err
    assert err.count("\n") == 1
    assert not (root / ".pipeline").exists()


def test_a_tag_only_reference_is_recorded_without_a_digest(root: Path) -> None:
    argv = [a if a != IMAGE else "registry.example.internal/cv/model:4e1d07c" for a in DEPLOY]
    assert cli(root, *argv) == 0
    (deployment,) = open_store(None, Project(root)).deployments()
    assert deployment.digest is None


def test_record_ci_stores_times_counts_and_scan_counts(root: Path) -> None:
    counts = ["--passed", "118", "--failed", "2", "--errors", "1", "--skipped", "4"]
    scan = ["--scan-critical", "0", "--scan-high", "3", "--started", "2026-03-02T08:40:00+01:00"]
    assert cli(root, *CI, *counts, *scan) == 0
    (run,) = open_store(None, Project(root)).ci_runs()
    assert (run.passed, run.failed, run.errors, run.skipped) == (118, 2, 1, 4)
    assert (run.scan_critical, run.scan_high) == (0, 3)
    assert (run.build_seconds, run.test_seconds) == (312.5, 88.0)
    assert run.started == datetime(2026, 3, 2, 7, 40, tzinfo=UTC)
    assert run.digest == DIGEST


def drop(argv: list[str], flag: str) -> list[str]:
    index = argv.index(flag)
    return argv[:index] + argv[index + 2 :]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (drop(DEPLOY, "--result"), "record deploy: --result is required"),
        (drop(DEPLOY, "--started"), "record deploy: --started is required"),
        (drop(DEPLOY, "--finished"), "record deploy: --finished is required"),
        (drop(CI, "--image"), "record ci: --image is required"),
        (drop(CI, "--build-seconds"), "record ci: --build-seconds is required"),
        (drop(CI, "--test-seconds"), "record ci: --test-seconds is required"),
        (
            [*DEPLOY[:-1], "2026-03-02T08:59:59Z"],
            "--finished 2026-03-02T08:59:59Z is before --started",
        ),
        ([*DEPLOY[:-1], "yesterday"], "--finished 'yesterday': not an ISO 8601 time"),
        ([*CI, "--started", "03/02/2026"], "--started '03/02/2026': not an ISO 8601 time"),
    ],
)
def test_bad_flags_exit_2_with_one_line_and_store_nothing(
    root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli(root, *argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (root / ".pipeline").exists()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("registry.example.internal/cv/Model:1", "must be lowercase"),
        (f"registry.example.internal/cv/model@{DIGEST[:-2]}", "has 62 hex digits"),
        ("4e1d07c", "has no tag or digest"),
    ],
)
def test_a_bad_image_reference_exits_1_and_stores_nothing(
    root: Path, capsys: pytest.CaptureFixture[str], image: str, message: str
) -> None:
    argv = [a if a != IMAGE else image for a in DEPLOY]
    assert cli(root, *argv) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (root / ".pipeline").exists()


def test_an_unknown_stack_is_refused(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a if a != "staging" else "stagin" for a in DEPLOY]
    assert cli(root, *argv) == 1
    assert "unknown stack 'stagin'" in capsys.readouterr().err
    assert not (root / ".pipeline").exists()


def test_an_explicit_store_works_outside_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = tmp_path / "team.db"
    assert main(["--store", str(store), *CI]) == 0
    assert len(open_store(str(store), None).ci_runs()) == 1


def test_the_store_comes_from_pipeline_store_env(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "env.db"
    monkeypatch.setenv("PIPELINE_STORE", str(store))
    assert cli(root, *CI) == 0
    assert len(open_store(str(store), None).ci_runs()) == 1
    assert not (root / ".pipeline").exists()


def commit(root: Path, message: str, when: str) -> str:
    """A commit in ``root`` (a git repository) at ``when``; its full sha."""
    import os
    import subprocess

    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.internal",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.internal",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=root, env=env, check=True, timeout=30)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", message], cwd=root, env=env, check=True,
        timeout=30,
    )  # fmt: skip
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True,
        timeout=30,
    )  # fmt: skip
    return done.stdout.strip()


def deploy_at(finished: str, sha: str) -> list[str]:
    return [
        *drop(drop(DEPLOY, "--started"), "--finished"),
        "--started", "2026-03-02T00:00:00Z", "--finished", finished, "--commit", sha[:10],
    ]  # fmt: skip


def test_record_deploy_reads_commit_times_and_every_new_commit_from_git(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = commit(root, "first", "2026-03-01T10:00:00Z")
    assert cli(root, *deploy_at("2026-03-02T09:00:00Z", first)) == 0
    second = commit(root, "a fix", "2026-03-02T10:00:00Z")
    # The deploy bot's stack-file commit is bookkeeping, not a change (ci/commit-stack).
    commit(root, "deploy(staging): ... [skip ci]\n\nBuilt-From: " + first, "2026-03-02T10:30:00Z")
    third = commit(root, "a feature", "2026-03-02T11:00:00Z")
    assert cli(root, *deploy_at("2026-03-02T12:00:00Z", third)) == 0
    capsys.readouterr()
    earlier, later = open_store(None, Project(root)).deployments("staging")
    assert earlier.commit_time == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert earlier.changes == (f"{first} 2026-03-01T10:00:00Z",)
    assert later.commit_time == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert later.changes == (f"{third} 2026-03-02T11:00:00Z", f"{second} 2026-03-02T10:00:00Z")


def test_record_deploy_of_a_commit_git_does_not_know_records_no_changes(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(root, "first", "2026-03-01T10:00:00Z")
    assert cli(root, *DEPLOY, "--commit", "0" * 40) == 0
    assert "is not in the local git checkout" in capsys.readouterr().err
    (deployment,) = open_store(None, Project(root)).deployments("staging")
    assert (deployment.commit_time, deployment.changes) == (None, ())


def test_record_ci_with_plain_flags_reads_the_commit_time_from_git(root: Path) -> None:
    sha = commit(root, "built", "2026-03-01T08:00:00+02:00")
    assert cli(root, *CI, "--commit", sha) == 0
    (run,) = open_store(None, Project(root)).ci_runs()
    assert run.commit_time == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
