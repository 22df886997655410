"""SQLite specifics: schema migrations, corrupt files, append-only tables, many writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import StoreError
from pipeline.records.model import Hold, Promotion, Verification, Waiver
from pipeline.records.stores import open_store
from pipeline.records.stores.migrations import MIGRATIONS, SCHEMA_VERSION
from pipeline.records.stores.sqlite import SqliteStore
from tests.pipeline.recordkit import DIGEST_A, DIGEST_B, T0, ci_run, deployment

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write_v1_store(path: Path) -> None:
    """A store as the first release wrote it, holding one promotion and one hold."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for statement in MIGRATIONS[0][1]:
        db.execute(statement)
    db.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00.000000+00:00')")
    stamp = "2026-02-01T10:00:00.000000+00:00"
    db.execute(
        "INSERT INTO promotions (source_stack, target_stack, image, digest, at, skipped_gates,"
        " recorded_at, sort_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("staging", "prod", f"r/m:v1@{DIGEST_A}", DIGEST_A, stamp, '["soak"]', stamp, stamp),
    )
    db.execute(
        "INSERT INTO holds (stack, action, at, reason, recorded_at, sort_at)"
        " VALUES ('prod', 'placed', ?, 'freeze', ?, ?)",
        (stamp, stamp, stamp),
    )
    db.commit()
    db.close()


def test_a_v1_store_is_migrated_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    write_v1_store(path)
    store = SqliteStore(path)
    assert store.schema_version() == SCHEMA_VERSION == MIGRATIONS[-1][0]
    (old,) = store.promotions("prod")
    assert old.skipped_gates == ("soak",)
    assert old.previous_digest is None
    assert old.actor == ""
    new = store.add(
        Promotion(
            "staging",
            "prod",
            f"r/m:v2@{DIGEST_B}",
            DIGEST_B,
            T0,
            previous_digest=DIGEST_A,
            actor="ana",
        )
    )
    assert store.promotions("prod")[-1] == new
    assert store.holds("prod")[0].reason == "freeze"
    store.close()
    versions = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(version,) for version, _ in MIGRATIONS]


def _version_adding(table: str) -> int:
    """The migration that creates ``table`` (found, never hardcoded: versions are added)."""
    return next(v for v, sql in MIGRATIONS if any(f"CREATE TABLE {table} " in s for s in sql))


def test_a_store_from_before_the_evidence_tables_gains_them_and_keeps_its_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.db"
    write_v1_store(path)
    evidence = _version_adding("scans")
    db = sqlite3.connect(path)
    for version, statements in MIGRATIONS[1 : evidence - 1]:
        for statement in statements:
            db.execute(statement)
        db.execute("INSERT INTO schema_version VALUES (?, '2026-01-02T00:00:00+00:00')", (version,))
    db.commit()
    db.close()
    store = SqliteStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert [p.digest for p in store.promotions("prod")] == [DIGEST_A]
    assert (store.scans(DIGEST_A), store.model_cards(), store.waivers()) == ([], [], [])
    waiver = store.add(
        Waiver(DIGEST_A, "CVE-2019-18224", "no fix yet", T0 + timedelta(days=30), T0)
    )
    assert store.waivers(DIGEST_A) == [waiver]
    store.close()
    for table in ("scans", "model_cards", "waivers", "readmissions"):
        assert _version_adding(table) == evidence


def test_a_migrated_store_reads_old_deployments_without_changes_and_takes_verifications(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.db"
    write_v1_store(path)
    db = sqlite3.connect(path)
    stamp = "2026-02-01T10:00:00.000000+00:00"
    db.execute(
        "INSERT INTO deployments (stack, result, image, digest, started, finished, source,"
        " recorded_at, sort_at) VALUES ('prod', 'succeeded', ?, ?, ?, ?, 'cli', ?, ?)",
        (f"r/m:v1@{DIGEST_A}", DIGEST_A, stamp, stamp, stamp, stamp),
    )
    db.commit()
    db.close()
    store = SqliteStore(path)
    (old,) = store.deployments("prod")
    assert old.changes == ()
    verification = Verification(
        "prod", DIGEST_A, f"r/m:v1@{DIGEST_A}", "passed", T0, T0, requests=120.0
    )
    assert store.add(verification).id is not None
    assert [v.requests for v in store.verifications("prod")] == [120.0]
    store.close()


def test_a_store_from_a_newer_pipeline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    open_store(str(path), None).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00.000000+00:00')")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        open_store(str(path), None)


def test_every_kind_has_its_table_and_refuses_update_and_delete(tmp_path: Path) -> None:
    from pipeline.records.stores.kinds import KINDS

    path = tmp_path / "records.db"
    open_store(str(path), None).close()
    db = sqlite3.connect(path)
    triggers = {
        row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    db.close()
    for kind in KINDS:
        assert {f"{kind.name}_no_update", f"{kind.name}_no_delete"} <= triggers, kind.name


def test_records_cannot_be_changed_or_deleted(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    store = open_store(str(path), None)
    store.add(Hold("prod", "placed", T0))
    store.close()
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE holds SET reason = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM holds")


def test_the_store_uses_wal_so_readers_do_not_block_writers(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    open_store(str(path), None).close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_bulk_add_many_assigns_consecutive_ids_that_reads_agree_with(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "records.db"), None)
    store.add(deployment(0, key="k0"))
    batch = [deployment(m) for m in range(1, 2001)] + [ci_run(m) for m in range(500)]
    stored = store.add_many(batch)
    assert [r.id for r in stored[:2000]] == list(range(2, 2002))
    assert store.deployments()[1:] == stored[:2000]
    assert store.ci_runs() == stored[2000:]


def test_a_corrupt_file_is_one_line_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreError) as caught:
        open_store(str(path), None)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        open_store(str(tmp_path), None)


def test_a_missing_parent_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(tmp_path / "nope" / "records.db"), None)


STACK_FILES = ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml")
# Every command that opens the store, with arguments that get it that far.
STORE_COMMANDS = {
    "history": ["history", "prod"],
    "history-json": ["history", "prod", "--json"],
    "promote": ["promote", "--from", "staging", "--to", "prod"],
    "rollback": ["rollback", "prod"],
    "hold": ["hold", "prod", "--reason", "freeze"],
    "release": ["hold", "prod", "--release"],
    "metrics": ["metrics"],
    "record-deploy": [
        "record", "deploy", "--stack", "prod", "--result", "succeeded",
        "--image", f"r/m@{DIGEST_A}", "--started", "2026-01-01T00:00:00Z",
        "--finished", "2026-01-01T00:05:00Z",
    ],
    "record-ci": ["record", "ci", "--image", f"r/m@{DIGEST_A}", "--build-seconds", "1",
                  "--test-seconds", "1"],
}  # fmt: skip


def _project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in STACK_FILES:
        (project / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    return project


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", sorted(STORE_COMMANDS))
def test_cli_on_an_unreadable_store_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    project = _project_copy(tmp_path)
    bad = tmp_path / "records.db"
    bad.write_bytes(b"\x00garbage" * 1000)
    before = _snapshot(tmp_path)
    code = main(["--project-dir", str(project), "--store", str(bad), *STORE_COMMANDS[command]])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert f"record store {bad}: not a readable record store" in err
    assert _snapshot(tmp_path) == before


# Commands that need records already there refuse a store that does not exist.
READERS = ("history", "history-json", "promote", "rollback", "release", "metrics")


@pytest.mark.parametrize("command", READERS)
@pytest.mark.parametrize("from_env", [False, True], ids=["flag", "env"])
def test_a_store_path_that_names_no_file_is_an_error_for_readers(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    from_env: bool,
) -> None:
    project = _project_copy(tmp_path)
    typo = tmp_path / "recrods.db"
    before = _snapshot(tmp_path)
    store_args = ["--store", str(typo)]
    if from_env:
        monkeypatch.setenv("PIPELINE_STORE", str(typo))
        store_args = []
    code = main(["--project-dir", str(project), *store_args, *STORE_COMMANDS[command]])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.endswith(
        f"error: no record store at {typo}: no such file (check --store or PIPELINE_STORE)\n"
    )
    assert _snapshot(tmp_path) == before  # nothing created


@pytest.mark.parametrize("command", ["hold", "record-deploy", "record-ci"])
def test_writers_start_a_new_store_at_an_explicit_path(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_ACTOR", "ana")
    project = _project_copy(tmp_path)
    new = tmp_path / "team.db"
    assert main(["--project-dir", str(project), "--store", str(new), *STORE_COMMANDS[command]]) == 0
    assert SqliteStore(new).schema_version() == SCHEMA_VERSION


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from pipeline.records.model import CiRun
    from pipeline.records.stores import open_store
    store = open_store(sys.argv[1], None)
    for i in range(int(sys.argv[3])):
        store.add(CiRun(image="r/m:t", commit=f"{sys.argv[2]}-{i}", build_seconds=1.0,
                        started=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)))
    store.add_many([CiRun(image="r/m:t", key=f"shared-{i}") for i in range(20)])
    store.close()
    """
)


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    writers, each = 6, 40
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"w{n}", str(each)],
            cwd=PROJECT_ROOT,
            stderr=subprocess.PIPE,
        )
        for n in range(writers)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    runs = open_store(str(path), None).ci_runs()
    commits = [r.commit for r in runs if r.commit]
    assert sorted(commits) == sorted(f"w{n}-{i}" for n in range(writers) for i in range(each))
    # Every writer added the same 20 keyed runs: stored once each.
    assert sorted(r.key for r in runs if r.key) == sorted(f"shared-{i}" for i in range(20))
    assert len({r.id for r in runs}) == len(runs)


def test_opening_an_up_to_date_store_does_not_rewrite_it(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    open_store(str(path), None).close()
    before = sqlite3.connect(path).execute("SELECT * FROM schema_version").fetchall()
    open_store(str(path), None).close()
    after = sqlite3.connect(path).execute("SELECT * FROM schema_version").fetchall()
    assert before == after
    assert len(after) == SCHEMA_VERSION


def test_recording_time_is_now_in_utc(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "records.db"), None)
    before = datetime.now(UTC)
    stored = store.add(Hold("prod", "placed", T0))
    assert stored.recorded_at is not None
    assert before <= stored.recorded_at <= datetime.now(UTC)


OPENER = textwrap.dedent(
    """
    import sys
    from pipeline.records.model import Hold
    from pipeline.records.stores import open_store
    from datetime import UTC, datetime
    store = open_store(sys.argv[1], None)
    store.add(Hold("prod", "released", datetime.now(UTC), sys.argv[2]))
    store.close()
    """
)


def test_processes_opening_an_old_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    write_v1_store(path)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(path), f"p{n}"],
            cwd=PROJECT_ROOT,
            stderr=subprocess.PIPE,
        )
        for n in range(5)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    versions = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(version,) for version, _ in MIGRATIONS]
    holds = open_store(str(path), None).holds("prod")
    assert sorted(h.reason for h in holds) == ["freeze", "p0", "p1", "p2", "p3", "p4"]
