"""Times and spans at the edge of the calendar: a window of a trillion days, a time that
exists in its zone but not in UTC, epoch numbers no clock reaches. One line each."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pipeline.io.pulumi import PulumiError
from pipeline.records.model import TimeRangeError, read_time
from pipeline.records.sources.pulumi_history import parse_time_value
from pipeline.records.stores import open_store
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


# --- Times from the future (the rest: tests/pipeline/test_record_limits.py) ---------------


def test_promote_ignores_a_deployment_stored_as_finished_in_9999_in_one_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod = STAGING.replace("environment: staging", "environment: prod")
    root = make_project(tmp_path / "p", {"staging": STAGING, "prod": prod})
    store = tmp_path / "records.db"
    open_store(str(store), None).close()
    # As a release without the check stored it.
    image = f"registry.example.internal/cv-platform/model-server:v1@{DIGEST}"
    db = sqlite3.connect(store)
    db.execute(
        "INSERT INTO deployments (stack, result, image, digest, started, finished, source,"
        " recorded_at, sort_at) VALUES ('staging', 'succeeded', ?, ?, ?, ?, 'cli', ?, ?)",
        (image, DIGEST, "9999-12-31T22:59:00.000000+00:00", "9999-12-31T23:59:00.000000+00:00",
         "2026-01-01T00:00:00.000000+00:00", "9999-12-31T23:59:00.000000+00:00"),
    )  # fmt: skip
    db.commit()
    db.close()
    promote = ["promote", "--from", "staging", "--to", "prod", "--dry-run"]
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *promote)
    assert result.code == 3, result
    assert "internal error" not in result.out + result.err
    assert "source-succeeded" in result.err  # staging has no deployment left to promote
    notes = [line for line in result.err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1
    assert "ignoring deployment #1: started 9999-12-31T22:59:00Z" in notes[0]
