"""Records from the future and numbers off the scale: refused from every source, one line,
nothing stored; rows stored before the limits are ignored by readers, said once."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.records.limits import (
    MAX_CLOCK_SKEW,
    MAX_REAL,
    RecordRefused,
    check_records,
    problem,
)
from pipeline.records.model import CiRun, Deployment, ModelCard, Verification, Waiver
from pipeline.records.stores import open_store
from pipeline.records.stores.codec import JSON_SCHEMA
from pipeline.records.stores.kinds import kind_of
from tests.pipeline.hostile import assert_refused, cli, make_project
from tests.pipeline.test_record_cli import commit

IMAGE = "registry.example.internal/cv/model:v1@sha256:" + "ab" * 32
DIGEST = "sha256:" + "ab" * 32
NOW = datetime.now(UTC).replace(microsecond=0)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def deploy_argv(started: datetime, finished: datetime) -> list[str]:
    return ["record", "deploy", "--stack", "staging", "--result", "succeeded", "--image", IMAGE,
            "--started", iso(started), "--finished", iso(finished)]  # fmt: skip


def stored_deployments(store: Path) -> list[Deployment]:
    if not store.exists():
        return []
    opened = open_store(str(store), None)
    try:
        return opened.deployments(None)
    finally:
        opened.close()


@pytest.mark.parametrize(
    ("finished", "fragment"),
    [
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "7,973 year(s) past this machine's"),
        (datetime(2099, 1, 1, tzinfo=UTC), "year(s) past this machine's clock"),
        (NOW + timedelta(hours=2), "minute(s) past this machine's clock"),
    ],
)
def test_a_deployment_that_finishes_in_the_future_is_refused_and_nothing_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], finished: datetime, fragment: str
) -> None:
    root = make_project(tmp_path / "p")
    store = tmp_path / "records.db"
    argv = deploy_argv(NOW - timedelta(minutes=10), finished)
    line = assert_refused(
        cli(capsys, "--project-dir", str(root), "--store", str(store), *argv), fragment
    )
    assert "at most 5 minute(s) ahead" in line
    assert "nothing recorded" in line
    assert stored_deployments(store) == []


def test_a_clock_a_little_ahead_is_within_the_skew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    store = tmp_path / "records.db"
    argv = deploy_argv(NOW - timedelta(minutes=5), NOW + MAX_CLOCK_SKEW - timedelta(minutes=2))
    assert cli(capsys, "--project-dir", str(root), "--store", str(store), *argv).code == 0
    assert len(stored_deployments(store)) == 1


def fast_clock_commit(tmp_path: Path) -> tuple[datetime, Path, str, Path]:
    """(now, a project, the sha of a commit dated 20 minutes ahead of now, a store path)."""
    now = datetime.now(UTC).replace(microsecond=0)
    root = make_project(tmp_path / "p")
    sha = commit(root, "from a fast clock", iso(now + timedelta(minutes=20)))
    return now, root, sha, tmp_path / "records.db"


def test_a_commit_dated_ahead_is_taken_as_the_deployments_finish_and_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A committer's clock 20 minutes fast: the deployment is recorded (after `pulumi up`
    # succeeded), its commit time and change taken as its finish, a lead time of 0.
    now, root, sha, store = fast_clock_commit(tmp_path)
    finished = now - timedelta(minutes=1)
    argv = [*deploy_argv(now - timedelta(minutes=10), finished), "--commit", sha]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *argv)
    assert result.code == 0, result
    (line,) = result.err.splitlines()
    assert line.startswith(f"note: commit {sha[:12]} is dated {iso(now + timedelta(minutes=20))}")
    assert f"21 minute(s) after the deployment finished ({iso(finished)})" in line
    assert f"taken as {iso(finished)} (a lead time of 0)" in line
    (deployment,) = stored_deployments(store)
    assert deployment.commit_time == finished
    assert deployment.changes == (f"{sha} {iso(finished)}",)


@pytest.mark.parametrize("started", [None, timedelta(minutes=-3)])
def test_a_commit_dated_ahead_is_taken_as_the_ci_runs_start_or_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], started: timedelta | None
) -> None:
    now, root, sha, store = fast_clock_commit(tmp_path)
    argv = ["record", "ci", "--image", IMAGE, "--build-seconds", "60", "--test-seconds", "30",
            "--commit", sha]  # fmt: skip
    if started is not None:
        argv += ["--started", iso(now + started)]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *argv)
    after = datetime.now(UTC)
    assert result.code == 0, result
    (line,) = result.err.splitlines()
    assert line.startswith(f"note: commit {sha[:12]} is dated {iso(now + timedelta(minutes=20))}")
    opened = open_store(str(store), None)
    (run,) = opened.ci_runs()
    opened.close()
    assert run.commit_time is not None
    if started is None:
        assert "past this machine's clock" in line
        assert now <= run.commit_time <= after
    else:
        assert f"23 minute(s) after the CI run started ({iso(now + started)})" in line
        assert run.commit_time == now + started


def test_a_commit_dated_ahead_does_not_let_a_flag_time_ahead_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now, root, sha, store = fast_clock_commit(tmp_path)
    argv = [*deploy_argv(now, now + timedelta(hours=2)), "--commit", sha]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *argv)
    assert result.code == 1, result
    assert result.err.count("nothing recorded") == 1
    assert "error: deployment: finished" in result.err
    assert stored_deployments(store) == []


def test_junit_times_that_sum_to_infinity_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="a" tests="1" time="1e308"><testcase name="x" time="1"/>'
        '</testsuite><testsuite name="b" tests="1" time="1e308"><testcase name="y" time="1"/>'
        "</testsuite></testsuites>"
    )
    store = tmp_path / "records.db"
    result = cli(capsys, "--store", str(store), "record", "ci", "--image", IMAGE,
                 "--junit", str(report))  # fmt: skip
    assert_refused(
        result, "time='1e308' is not a finite number up to 1e+12 s, not a test time", code=1
    )
    assert not store.exists()


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-inf"])
def test_a_junit_time_that_is_not_finite_refuses_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        f'<testsuite name="a" tests="1"><testcase name="x" time="{value}"/></testsuite>'
    )
    result = cli(capsys, "--store", str(tmp_path / "r.db"), "record", "ci", "--image", IMAGE,
                 "--junit", str(report))  # fmt: skip
    assert_refused(result, "is not a finite number up to 1e+12 s, not a test time", code=1)


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (CiRun(IMAGE, DIGEST, build_seconds=float("inf")), "build_seconds is inf"),
        (CiRun(IMAGE, DIGEST, test_seconds=float("nan")), "test_seconds is nan"),
        (CiRun(IMAGE, DIGEST, build_seconds=-1.0), "build_seconds -1 is outside"),
        (CiRun(IMAGE, DIGEST, build_seconds=MAX_REAL * 10), "is outside 0 .. 1e+12"),
        (CiRun(IMAGE, DIGEST, passed=2**63), "passed 9223372036854775808 is outside"),
        (CiRun(IMAGE, DIGEST, failed=-3), "failed -3 is outside"),
        (
            Verification("prod", DIGEST, IMAGE, "passed", NOW, NOW, error_ratio=float("-inf")),
            "error_ratio is -inf",
        ),
        (
            ModelCard(IMAGE, DIGEST, "m", "1.0.0", float("nan"), "[]", "[]"),
            "accuracy is nan",
        ),
    ],
)
def test_numbers_off_the_scale_are_refused_whatever_the_kind(record: Any, fragment: str) -> None:
    with pytest.raises(RecordRefused, match="nothing recorded") as caught:
        check_records([record])
    assert fragment in str(caught.value)


def test_a_source_that_is_not_the_cli_is_named_with_its_clock() -> None:
    from_jenkins = Deployment(
        "prod", "succeeded", IMAGE, DIGEST, NOW, NOW + timedelta(days=3), source="jenkins"
    )
    with pytest.raises(RecordRefused) as caught:
        check_records([from_jenkins])
    assert "deployment (from jenkins): finished" in str(caught.value)
    assert "3 day(s) past this machine's clock" in str(caught.value)
    assert "check that source's clock" in str(caught.value)


def test_a_waiver_may_lie_ahead_but_not_for_ever() -> None:
    kind = kind_of(Waiver(DIGEST, "CVE-1", "why", NOW, NOW))
    assert problem(kind, Waiver(DIGEST, "CVE-1", "why", NOW + timedelta(days=90), NOW), NOW) is None
    far = Waiver(DIGEST, "CVE-1", "why", NOW + timedelta(days=4000), NOW)
    assert "expires" in (problem(kind, far, NOW) or "")


def test_waive_refuses_an_expiry_more_than_a_year_ahead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "records.db"
    result = cli(capsys, "--store", str(store), "waive", DIGEST, "--finding", "CVE-1",
                 "--reason", "not reachable", "--expires", "2099-01-01")  # fmt: skip
    assert_refused(result, "more than 366 days ahead; a waiver must expire", code=2)


def test_one_bad_record_in_a_batch_stores_none_of_it(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "records.db"), None)
    good = Deployment("prod", "succeeded", IMAGE, DIGEST, NOW - timedelta(hours=1), NOW)
    bad = replace(good, finished=NOW + timedelta(days=1))
    with pytest.raises(RecordRefused):
        store.add_many([good, bad])
    assert store.deployments(None) == []
    store.close()


def _insert_bad_rows(path: Path) -> None:
    """Rows as a pipeline before the limits could have stored them."""
    stamp = "2026-01-01T00:00:00.000000+00:00"
    future = "9999-12-31T23:59:59.000000+00:00"
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO deployments (stack, result, image, digest, started, finished, source,"
        " recorded_at, sort_at) VALUES ('staging', 'succeeded', ?, ?, ?, ?, 'cli', ?, ?)",
        (IMAGE, DIGEST, "9999-12-31T23:00:00.000000+00:00", future, stamp, future),
    )
    db.execute(
        "INSERT INTO ci_runs (image, digest, build_seconds, test_seconds, source, recorded_at,"
        " sort_at) VALUES (?, ?, 9e999, 1.0, 'cli', ?, ?)",
        (IMAGE, DIGEST, stamp, stamp),
    )
    db.commit()
    db.close()


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_rows_stored_before_the_limits_are_ignored_and_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    store = tmp_path / "records.db"
    base = ["--project-dir", str(root), "--store", str(store)]
    good = deploy_argv(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    assert cli(capsys, *base, *good).code == 0
    _insert_bad_rows(store)

    history = cli(capsys, *base, "history", "staging")
    assert history.code == 0
    assert "9999" not in history.out
    assert "succeeded in 3600 s" in history.out
    assert history.err.count("ignoring deployment #2: started 9999-12-31T23:00:00Z") == 1

    metrics = cli(capsys, *base, "metrics", "--format", "json")
    assert metrics.code == 0
    data = _strict_json(metrics.out)  # no Infinity, no NaN
    assert data["ci_runs"] == 0
    assert "ignoring ci run #1: build_seconds is inf" in metrics.err

    promote = cli(capsys, *base, "promote", "--from", "staging", "--to", "prod", "--dry-run")
    assert promote.code in (1, 3)  # refused by gates or prod's absence: never an overflow
    assert "internal error" not in promote.err
    assert "OverflowError" not in promote.err


def test_an_s3_object_from_before_the_limits_is_ignored(
    aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = "limits-records"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    body = {
        "schema": JSON_SCHEMA,
        "kind": "ci_runs",
        "image": IMAGE,
        "digest": DIGEST,
        "build_seconds": float("inf"),  # json.dumps writes Infinity, as an old writer did
        "test_seconds": 1.0,
        "passed": 1,
        "source": "cli",
        "recorded_at": "2026-01-01T00:00:00.000000+00:00",
    }
    s3.put_object(
        Bucket=bucket, Key="p/ci_runs/20260101T000000000000Z-0.json", Body=json.dumps(body)
    )
    store = open_store(f"s3://{bucket}/p", None)
    assert store.ci_runs() == []
    store.close()
    assert "ignoring ci run" in capsys.readouterr().err
