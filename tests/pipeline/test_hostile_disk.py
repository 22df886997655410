"""A full disk, a read-only store directory and a truncated store, for real: a small
tmpfs (tests/smallfs.py) makes SQLite and the stack-file writer hit ENOSPC and EROFS.
Each failure names the file and says what happened; nothing already stored is lost,
and no half-written file is left behind."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline.fake_registry import MANIFEST_DIGEST, Script, fake_registry
from tests.pipeline.hostile import STAGING, assert_refused, cli, make_project, snapshot
from tests.smallfs import fill, free, read_only, small_filesystem

IMAGE = "registry.example.internal/cv/model:v1@sha256:" + "ab" * 32
RECORD = ["record", "ci", "--image", IMAGE, "--build-seconds", "60", "--test-seconds", "30"]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "disk", "1m") as path:
        yield path


def _rows(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT count(*) FROM ci_runs").fetchone()[0])


def test_recording_on_a_full_disk_names_the_store_and_loses_nothing(
    disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = disk / "records.db"
    assert cli(capsys, "--store", str(store), *RECORD).code == 0
    fill(disk)
    results = [cli(capsys, "--store", str(store), *RECORD) for _ in range(3)]
    for result in results:
        line = assert_refused(result, f"record store {store}: no space left on device")
        assert "cannot rollback" not in line
        assert "nothing recorded" in line
    free(disk)
    assert _rows(store) == 1
    assert cli(capsys, "--store", str(store), *RECORD).code == 0
    assert _rows(store) == 2


def test_a_new_store_on_a_full_disk_leaves_no_empty_file_behind(
    disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(disk)
    store = disk / "new.db"
    assert_refused(cli(capsys, "--store", str(store), *RECORD), "no space left on device")
    assert sorted(p.name for p in disk.iterdir()) == [".fill"]


def test_set_image_on_a_full_disk_names_the_stack_file_and_changes_nothing(
    disk: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_registry(Script()) as host:
        root = make_project(
            disk / "project", {"staging": STAGING.replace("registry.example.internal", host)}
        )
        before = snapshot(root)
        monkeypatch.setenv("DOCKER_CONFIG", str(disk / "no-docker-config"))
        fill(disk)
        result = cli(capsys, "--project-dir", str(root), "set-image", "staging", "v2")
    stack = root / "Pulumi.staging.yaml"
    assert_refused(result, f"{stack}: cannot write: no space left on device; nothing written")
    assert snapshot(root) == before  # no temporary file either
    assert MANIFEST_DIGEST not in stack.read_text()


def test_history_and_metrics_read_a_store_in_a_read_only_directory(
    disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(disk / "project")
    store = disk / "records.db"
    assert cli(capsys, "--store", str(store), *RECORD).code == 0
    deploy = ["record", "deploy", "--stack", "staging", "--result", "succeeded"]
    deploy += ["--image", IMAGE, "--started", "2026-01-01T00:00:00Z"]
    deploy += ["--finished", "2026-01-01T00:05:00Z"]
    assert cli(capsys, "--project-dir", str(root), "--store", str(store), *deploy).code == 0
    read_only(disk)
    try:
        history = cli(
            capsys,
            "--project-dir",
            str(root),
            "--store",
            str(store),
            "history",
            "staging",
            "--json",
        )
        assert history.code == 0, history.err
        assert [event["event"] for event in json.loads(history.out)] == ["deployment"]
        metrics = cli(
            capsys, "--project-dir", str(root), "--store", str(store), "metrics", "--format", "json"
        )
        assert metrics.code == 0, metrics.err
        assert json.loads(metrics.out)["ci_runs"] == 1
        refused = cli(capsys, "--store", str(store), *RECORD)
        assert refused.code == 1
        assert len(refused.err.splitlines()) == 1
        assert str(store) in refused.err
    finally:
        read_only(disk, False)


@pytest.mark.parametrize(
    "argv",
    [["history", "staging"], ["metrics"], ["promote", "--from", "staging", "--to", "prod"]],
    ids=["history", "metrics", "promote"],
)
def test_a_zero_length_store_file_is_refused_not_read_as_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    root = make_project(tmp_path / "p", {"staging": STAGING, "prod": STAGING})
    store = tmp_path / "records.db"
    store.write_bytes(b"")
    result = cli(capsys, "--project-dir", str(root), "--store", str(store), *argv)
    assert_refused(result, f"record store {store} is an empty file (0 bytes), not a record store")
    assert store.read_bytes() == b""
