"""Times and spans at the edge of the calendar: a window of a trillion days, a time that
exists in its zone but not in UTC, epoch numbers no clock reaches. One line each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import StoreError
from pipeline.io.pulumi import PulumiError
from pipeline.records.model import CiRun, Deployment, TimeRangeError, read_time
from pipeline.records.sources.pulumi_history import parse_time_value
from pipeline.records.stores import open_store
from pipeline.records.stores import sqlite as sqlite_store
from tests.pipeline.hostile import DIGEST, STAGING, assert_refused, cli, make_project

IMAGE = "registry.example.internal/cv/model:v1@sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:59:59+01:00"]
)
def test_a_time_off_the_calendar_in_utc_is_a_range_error(text: str) -> None:
    with pytest.raises(TimeRangeError, match="falls outside the calendar in UTC"):
        read_time(text)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--window", "99999999999999d"], "longer than 100 years, the longest window"),
        (["--window", "999999999d"], "longer than 100 years"),
        (["--window", "5300w"], "longer than 100 years"),
        (["--window", "1" * 40 + "h"], "expected a number and h, d or w"),
        (["--since", "0001-01-01T00:00:00+01:00"], "falls outside the calendar in UTC"),
        (["--since", "9999-12-31T23:59:59-01:00"], "falls outside the calendar in UTC"),
    ],
)
def test_metrics_refuses_windows_off_the_calendar_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    store = tmp_path / "records.db"
    assert cli(capsys, "--store", str(store), "record", "ci", "--image", IMAGE,
               "--build-seconds", "1", "--test-seconds", "1").code == 0  # fmt: skip
    assert_refused(cli(capsys, "--store", str(store), "metrics", *argv), fragment, code=2)


def test_the_longest_window_and_the_first_year_still_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    store = tmp_path / "records.db"
    deploy = ["record", "deploy", "--stack", "staging", "--result", "succeeded", "--image", IMAGE]
    first = ["--started", "0001-01-01T00:00:00Z", "--finished", "0001-01-01T00:10:00Z"]
    assert cli(capsys, "--project-dir", str(root), "--store", str(store), *deploy, *first).code == 0
    for argv in (["metrics", "--window", "36500d"], ["metrics", "--since", "0001-01-01T00:00Z"]):
        assert cli(capsys, "--project-dir", str(root), "--store", str(store), *argv).code == 0
    history = cli(capsys, "--project-dir", str(root), "--store", str(store), "history", "staging")
    assert "0001-01-01 00:10:00" in history.out


@pytest.mark.parametrize(
    "flags",
    [
        ["--started", "0001-01-01T00:00:00+01:00", "--finished", "0001-01-01T00:10:00+01:00"],
        ["--started", "2026-01-01T00:00:00Z", "--finished", "9999-12-31T23:59:59-01:00"],
    ],
)
def test_record_deploy_refuses_a_time_off_the_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    root = make_project(tmp_path / "p")
    store = tmp_path / "records.db"
    deploy = ["record", "deploy", "--stack", "staging", "--result", "succeeded", "--image", IMAGE]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *deploy, *flags)
    assert_refused(result, "falls outside the calendar in UTC", code=2)
    assert not store.exists()


@pytest.mark.parametrize(
    "value", [1e30, -1e30, 10**40, "9" * 5000, "0001-01-01T00:00:00+05:00", float("nan")]
)
def test_a_history_time_no_clock_reaches_is_one_line(value: Any) -> None:
    with pytest.raises(PulumiError) as caught:
        parse_time_value(value, "endTime")
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


# --- Times from the future ------------------------------------------------------------------

DEPLOY = ["record", "deploy", "--stack", "staging", "--result", "succeeded", "--image", IMAGE]


@pytest.mark.parametrize(
    ("started", "finished", "field"),
    [
        ("9999-12-31T23:00:00Z", "9999-12-31T23:59:59Z", "deployment started 9999-12-31T23:00:00Z"),
        (
            "2026-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
            "deployment finished 2099-01-01T00:00:00Z",
        ),
    ],
)
def test_record_deploy_refuses_a_time_ahead_of_the_clock_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], started: str, finished: str, field: str
) -> None:
    root = make_project(tmp_path / "p")
    store = tmp_path / "records.db"
    flags = ["--started", started, "--finished", finished]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *DEPLOY, *flags)
    line = assert_refused(result, field)
    assert "ahead of this machine's clock" in line
    assert line.endswith(
        "by more than 5 minutes: check the time given (or the clock); nothing recorded"
    )
    assert not store.exists()


def test_a_time_within_the_clock_skew_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p")
    store = tmp_path / "records.db"
    soon = datetime.now(UTC) + timedelta(minutes=2)
    flags = ["--started", "2026-01-01T00:00:00Z", "--finished", soon.isoformat()]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *DEPLOY, *flags)
    assert result.code == 0, result.err


def test_every_source_is_refused_a_future_time_by_the_store(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "records.db"), None)
    try:
        future = datetime(2099, 1, 1, tzinfo=UTC)
        with pytest.raises(StoreError, match="ci run commit time 2099-01-01T00:00:00Z is ahead"):
            store.add_many([CiRun(IMAGE), CiRun(IMAGE, commit_time=future)])
        assert store.ci_runs() == []  # nothing of the batch
    finally:
        store.close()


def test_promote_judges_a_deployment_stored_as_finished_in_9999_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = STAGING.replace("environment: staging", "environment: prod")
    root = make_project(tmp_path / "p", {"staging": STAGING, "prod": prod})
    store = tmp_path / "records.db"
    # As a release without the check stored it.
    monkeypatch.setattr(sqlite_store, "refuse_future", lambda records, now: None)
    opened = open_store(str(store), None)
    end = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    image = f"registry.example.internal/cv-platform/model-server:v1@{DIGEST}"
    opened.add(Deployment("staging", "succeeded", image, DIGEST, end - timedelta(hours=1), end))
    opened.close()
    promote = ["promote", "--from", "staging", "--to", "prod", "--dry-run"]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *promote)
    assert result.code == 3, result
    assert "internal error" not in result.out + result.err
    assert "recorded as finished 9999-12-31 23:59 UTC, ahead of this machine's clock" in result.out
