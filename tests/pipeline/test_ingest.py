"""`record ci --junit/--from-jenkins` and `record deploy --from-pulumi` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.records.model import CiRun, Deployment
from pipeline.records.sources.git import commit_time
from pipeline.records.stores import open_store
from tests.pipeline.jenkins_fake import FakeJenkins, jenkins_server, server
from tests.pipeline.test_pulumi_history import fake_pulumi

__all__ = ["fake_pulumi", "jenkins_server", "server"]  # fixtures, imported

JUNIT = Path(__file__).parent / "fixtures" / "junit"
JENKINS = Path(__file__).parent / "fixtures" / "jenkins"
IMAGE = "registry.cv.example:5000/cv/model:9f8e7d6@sha256:" + "7" * 64


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "Pulumi.yaml").write_text("name: cv-platform\nruntime: python\n", encoding="utf-8")
    (root / "Pulumi.staging.yaml").write_text("config: {}\n", encoding="utf-8")
    return root


def ci_runs(store_path: Path) -> list[CiRun]:
    store = open_store(str(store_path), None)
    try:
        return store.ci_runs()
    finally:
        store.close()


def deployments(store_path: Path) -> list[Deployment]:
    store = open_store(str(store_path), None)
    try:
        return store.deployments()
    finally:
        store.close()


def test_junit_glob_records_counts_and_report_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "records.db"
    code = main(
        [
            "--store",
            str(db),
            "record",
            "ci",
            "--image",
            IMAGE,
            "--build-seconds",
            "300",
            "--junit",
            str(JUNIT / "py*.xml"),
            "--junit",
            str(JUNIT / "gradle.xml"),
        ]
    )
    assert code == 0
    (run,) = ci_runs(db)
    # pytest.xml (2, 1, 1, 1) + gradle.xml (2, 1, 0, 1)
    assert (run.passed, run.failed, run.errors, run.skipped) == (4, 2, 1, 2)
    assert run.test_seconds == pytest.approx(3.25 + 2.731)
    assert run.build_seconds == 300
    assert run.digest == "sha256:" + "7" * 64
    assert run.source == "junit"
    assert "taken from the JUnit reports" in capsys.readouterr().err


def test_several_files_after_one_junit_flag_as_an_unquoted_glob_expands(
    tmp_path: Path,
) -> None:
    # `--junit reports/*.xml` unquoted: the shell hands over every file after one flag.
    db = tmp_path / "records.db"
    files = [str(JUNIT / "pytest.xml"), str(JUNIT / "gradle.xml")]
    code = main(["--store", str(db), "record", "ci", "--image", IMAGE, "--junit", *files])
    assert code == 0
    (run,) = ci_runs(db)
    assert (run.passed, run.failed, run.errors, run.skipped) == (4, 2, 1, 2)


def test_billion_laughs_is_refused_in_one_line_and_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ten levels of ten: 10**9 "lol"s (3 GB) if anything expanded it.
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">' for i in range(1, 10)
    ]
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n'
        + "\n".join(levels)
        + ']>\n<testsuite tests="1"><testcase classname="x" name="&lol9;"/></testsuite>\n',
        encoding="utf-8",
    )
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
        '<testsuite tests="1"><testcase classname="x" name="&x;"/></testsuite>\n',
        encoding="utf-8",
    )
    db = tmp_path / "records.db"
    for path, entity in ((bomb, "'lol0'"), (xxe, "'x' pointing at file:///etc/hostname")):
        code = main(["--store", str(db), "record", "ci", "--image", IMAGE, "--junit", str(path)])
        err = capsys.readouterr().err
        assert code == 1
        assert err.count("\n") == 1
        assert f"{path}: refused: the report declares the entity {entity}" in err
    assert not db.exists()


def test_corrupt_junit_exits_1_with_one_line_and_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "records.db"
    code = main(
        [
            "--store",
            str(db),
            "record",
            "ci",
            "--image",
            IMAGE,
            "--junit",
            str(JUNIT / "corrupt.xml"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "corrupt.xml: not well-formed XML at line 5" in err
    assert not db.exists()


def test_junit_without_image_records_a_run_with_no_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the Jenkinsfile's post step does when the build failed before the push.
    db = tmp_path / "records.db"
    code = main(
        [
            "--store",
            str(db),
            "record",
            "ci",
            "--junit",
            str(JUNIT / "gradle.xml"),
            "--commit",
            "unknown",
        ]
    )
    assert code == 0
    out, err = capsys.readouterr()
    assert "recorded with no image" in err
    assert "CI run #1: no image (2/3 tests passed)" in out
    (run,) = ci_runs(db)
    assert (run.image, run.digest, run.commit_time) == ("", None, None)
    assert (run.passed, run.failed, run.skipped) == (2, 1, 1)


def test_junit_with_count_flags_is_a_usage_error(tmp_path: Path) -> None:
    code = main(
        [
            "--store",
            str(tmp_path / "r.db"),
            "record",
            "ci",
            "--image",
            IMAGE,
            "--junit",
            str(JUNIT / "gradle.xml"),
            "--passed",
            "3",
        ]
    )
    assert code == 2


def _jenkins_env(monkeypatch: pytest.MonkeyPatch, server: FakeJenkins) -> None:
    server.credentials = ("ci-reader", "tok-3141")
    monkeypatch.setenv("JENKINS_USER", "ci-reader")
    monkeypatch.setenv("JENKINS_TOKEN", "tok-3141")


def test_from_jenkins_records_once_per_build(
    tmp_path: Path,
    jenkins_server: FakeJenkins,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _jenkins_env(monkeypatch, jenkins_server)
    base = "/job/cv-platform/42/"
    jenkins_server.serve(
        base + "wfapi/describe", json.loads((JENKINS / "describe-success.json").read_text())
    )
    jenkins_server.serve(
        base + "testReport/api/json", json.loads((JENKINS / "testreport-counts.json").read_text())
    )
    db = tmp_path / "records.db"
    argv = [
        "--store",
        str(db),
        "record",
        "ci",
        "--image",
        IMAGE,
        "--from-jenkins",
        jenkins_server.url + base,
    ]
    assert main(argv) == 0
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "already recorded" in out.out
    assert "tok-3141" not in out.out + out.err
    (run,) = ci_runs(db)
    assert (run.build_seconds, run.test_seconds) == (300.0, 450.0)
    assert (run.passed, run.failed, run.skipped) == (40, 2, 3)
    assert run.started == datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    assert run.key == f"jenkins:{jenkins_server.url}{base}"


def test_from_jenkins_with_junit_takes_counts_from_the_files(
    tmp_path: Path, jenkins_server: FakeJenkins, monkeypatch: pytest.MonkeyPatch
) -> None:
    _jenkins_env(monkeypatch, jenkins_server)
    base = "/job/cv-platform/45/"
    jenkins_server.serve(
        base + "wfapi/describe", json.loads((JENKINS / "describe-unstable.json").read_text())
    )
    db = tmp_path / "records.db"
    code = main(
        [
            "--store",
            str(db),
            "record",
            "ci",
            "--image",
            IMAGE,
            "--from-jenkins",
            jenkins_server.url + base,
            "--junit",
            str(JUNIT / "jest-junit.xml"),
        ]
    )
    assert code == 0
    (run,) = ci_runs(db)
    assert (run.passed, run.failed, run.skipped) == (2, 2, 1)
    assert run.test_seconds == pytest.approx(400.0)


def test_in_progress_jenkins_build_records_nothing(
    tmp_path: Path,
    jenkins_server: FakeJenkins,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _jenkins_env(monkeypatch, jenkins_server)
    data = json.loads((JENKINS / "describe-paused.json").read_text())
    data["status"] = "IN_PROGRESS"
    jenkins_server.serve("/job/cv-platform/46/wfapi/describe", data)
    db = tmp_path / "records.db"
    code = main(
        [
            "--store",
            str(db),
            "record",
            "ci",
            "--image",
            IMAGE,
            "--from-jenkins",
            jenkins_server.url + "/job/cv-platform/46/",
        ]
    )
    assert code == 1
    assert "is still IN_PROGRESS" in capsys.readouterr().err
    assert not db.exists()


def test_stage_names_are_configurable_through_the_environment(
    tmp_path: Path, jenkins_server: FakeJenkins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_JENKINS_BUILD_STAGES", "Checkout,Build")
    monkeypatch.setenv("PIPELINE_JENKINS_TEST_STAGES", "Test*,Push")
    base = "/job/cv-platform/42/"
    jenkins_server.serve(
        base + "wfapi/describe", json.loads((JENKINS / "describe-success.json").read_text())
    )
    db = tmp_path / "records.db"
    assert (
        main(
            [
                "--store",
                str(db),
                "record",
                "ci",
                "--image",
                IMAGE,
                "--from-jenkins",
                jenkins_server.url + base,
            ]
        )
        == 0
    )
    (run,) = ci_runs(db)
    assert (run.build_seconds, run.test_seconds) == (304.0, 470.0)


def from_pulumi_argv(project: Path, db: Path) -> list[str]:
    return [
        *("--project-dir", str(project), "--store", str(db)),
        *("record", "deploy", "--stack", "staging", "--from-pulumi"),
    ]


def test_from_pulumi_records_each_update_once(
    project: Path, fake_pulumi: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = project / "records.db"
    argv = from_pulumi_argv(project, db)
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "recorded 5 of 5 records" in first.out
    assert "1 preview(s), 1 update(s) still in progress, 1 refresh/destroy/other" in first.err
    assert main(argv) == 0
    assert "recorded 0 of 5 records" in capsys.readouterr().out
    stored = deployments(db)
    assert [d.key for d in stored] == [f"pulumi:staging:{v}" for v in (1, 2, 3, 5, 7)]
    assert stored[-1].digest == "sha256:" + "7" * 64
    assert [d.result for d in stored].count("failed") == 1
    log = (fake_pulumi / "argv.log").read_text().splitlines()
    assert any("stack history --json --page-size 0 --stack staging" in line for line in log)


def test_from_pulumi_picks_up_an_update_that_has_finished_since(
    project: Path, fake_pulumi: Path
) -> None:
    db = project / "records.db"
    argv = from_pulumi_argv(project, db)
    assert main(argv) == 0
    history: list[dict[str, Any]] = json.loads((fake_pulumi / "staging-history.json").read_text())
    history[0]["result"] = "succeeded"
    history[0]["endTime"] = "2026-11-20T16:04:03.000Z"
    (fake_pulumi / "staging-history.json").write_text(json.dumps(history))
    assert main(argv) == 0
    assert [d.key for d in deployments(db)][-1] == "pulumi:staging:8"
    assert len(deployments(db)) == 6


def test_from_pulumi_without_the_cli_is_one_clear_error(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    db = project / "records.db"
    code = main(from_pulumi_argv(project, db))
    err = capsys.readouterr().err
    assert code == 1
    assert "the pulumi CLI is not installed or not on PATH" in err
    assert err.count("\n") == 1
    assert not db.exists()


def test_from_pulumi_refuses_plain_flags(project: Path) -> None:
    assert main([*from_pulumi_argv(project, project / "r.db"), "--result", "succeeded"]) == 2


def test_commit_time_comes_from_the_local_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@example",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@example",
        "GIT_COMMITTER_DATE": "2026-11-20T10:00:00+02:00",
        "GIT_AUTHOR_DATE": "2026-11-20T10:00:00+02:00",
    }
    for argv in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert commit_time(sha, repo) == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert commit_time("not-a-sha", repo) is None
    assert commit_time("0" * 40, repo) is None


def test_zone_less_times_are_read_as_utc_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "records.db"
    deploy = ["--store", str(db), "record", "deploy", "--stack", "prod", "--result", "succeeded"]
    times = ["--started", "2026-11-20T10:00:00", "--finished", "2026-11-20T10:05:00+00:00"]
    assert main([*deploy, "--image", IMAGE, *times]) == 0
    err = capsys.readouterr().err
    assert "note: --started 2026-11-20T10:00:00 has no time zone: read as UTC" in err
    assert "--finished" not in err
    (d,) = deployments(db)
    assert d.started == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    junit = ["--junit", str(JUNIT / "pytest.xml"), "--started", "2026-11-20T09:00"]
    assert main(["--store", str(db), "record", "ci", "--image", IMAGE, *junit]) == 0
    assert "--started 2026-11-20T09:00 has no time zone: read as UTC" in capsys.readouterr().err
    (run,) = ci_runs(db)
    assert run.started == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
