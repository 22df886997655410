"""The SQLite store's schema, as the migrations that build it, applied in order.

Each migration is a tuple of statements; a store records the versions applied in
``schema_version``. Never edit a migration that has shipped: add the next one.
Every table is append-only (triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime


def _append_only(table: str) -> tuple[str, str]:
    return (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
    )


# Migrations, applied in order; never edit one that has shipped, add the next.
_V1: tuple[str, ...] = (
    """CREATE TABLE ci_runs (
        id INTEGER PRIMARY KEY,
        image TEXT NOT NULL,
        digest TEXT,
        "commit" TEXT,
        commit_time TEXT,
        started TEXT,
        build_seconds REAL,
        test_seconds REAL,
        passed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        scan_critical INTEGER,
        scan_high INTEGER,
        source TEXT NOT NULL,
        key TEXT,
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX ci_runs_key ON ci_runs (key)",
    "CREATE INDEX ci_runs_sort ON ci_runs (sort_at)",
    "CREATE INDEX ci_runs_digest ON ci_runs (digest)",
    *_append_only("ci_runs"),
    """CREATE TABLE deployments (
        id INTEGER PRIMARY KEY,
        stack TEXT NOT NULL,
        result TEXT NOT NULL CHECK (result IN ('succeeded', 'failed')),
        image TEXT NOT NULL,
        digest TEXT,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        "commit" TEXT,
        commit_time TEXT,
        source TEXT NOT NULL,
        key TEXT,
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX deployments_key ON deployments (key)",
    "CREATE INDEX deployments_stack_sort ON deployments (stack, sort_at)",
    "CREATE INDEX deployments_sort ON deployments (sort_at)",
    *_append_only("deployments"),
    """CREATE TABLE promotions (
        id INTEGER PRIMARY KEY,
        source_stack TEXT NOT NULL,
        target_stack TEXT NOT NULL,
        image TEXT NOT NULL,
        digest TEXT NOT NULL,
        at TEXT NOT NULL,
        skipped_gates TEXT NOT NULL DEFAULT '[]',
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE INDEX promotions_target_sort ON promotions (target_stack, sort_at)",
    "CREATE INDEX promotions_source_sort ON promotions (source_stack, sort_at)",
    *_append_only("promotions"),
    """CREATE TABLE rollbacks (
        id INTEGER PRIMARY KEY,
        stack TEXT NOT NULL,
        from_digest TEXT,
        to_digest TEXT NOT NULL,
        image TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE INDEX rollbacks_stack_sort ON rollbacks (stack, sort_at)",
    *_append_only("rollbacks"),
    """CREATE TABLE holds (
        id INTEGER PRIMARY KEY,
        stack TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('placed', 'released')),
        at TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE INDEX holds_stack_sort ON holds (stack, sort_at)",
    *_append_only("holds"),
)

# v2: the audit trail says who acted, and a promotion keeps the digest it replaced.
_V2: tuple[str, ...] = (
    "ALTER TABLE promotions ADD COLUMN previous_digest TEXT",
    "ALTER TABLE promotions ADD COLUMN actor TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE rollbacks ADD COLUMN actor TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE holds ADD COLUMN actor TEXT NOT NULL DEFAULT ''",
)

# v3: a deployment keeps the commits it brought (lead time per change),
# verifications (`pipeline verify`) are recorded, and so is the evidence each image
# carries (scans, model cards, waivers), judged as a whole by the promotion gates,
# with the readmissions of rejected digests.
_V3: tuple[str, ...] = (
    "ALTER TABLE deployments ADD COLUMN changes TEXT NOT NULL DEFAULT '[]'",
    """CREATE TABLE verifications (
        id INTEGER PRIMARY KEY,
        stack TEXT NOT NULL,
        digest TEXT NOT NULL,
        image TEXT NOT NULL,
        result TEXT NOT NULL CHECK (result IN ('passed', 'failed', 'inconclusive')),
        since TEXT NOT NULL,
        until TEXT NOT NULL,
        requests REAL,
        error_ratio REAL,
        p95_seconds REAL,
        min_requests INTEGER NOT NULL DEFAULT 0,
        max_error_ratio REAL,
        max_p95_ms REAL,
        selector TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        actor TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE INDEX verifications_stack_sort ON verifications (stack, sort_at)",
    *_append_only("verifications"),
    """CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        image TEXT NOT NULL,
        digest TEXT NOT NULL,
        format TEXT NOT NULL CHECK (format IN ('trivy', 'grype', 'sarif')),
        scanner TEXT,
        scanner_version TEXT,
        artifact TEXT,
        os TEXT,
        findings TEXT NOT NULL DEFAULT '[]',
        source TEXT NOT NULL,
        key TEXT,
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX scans_key ON scans (key)",
    "CREATE INDEX scans_digest ON scans (digest, sort_at)",
    *_append_only("scans"),
    """CREATE TABLE model_cards (
        id INTEGER PRIMARY KEY,
        image TEXT NOT NULL,
        digest TEXT NOT NULL,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        accuracy REAL NOT NULL CHECK (accuracy >= 0 AND accuracy <= 1),
        inputs TEXT NOT NULL,
        outputs TEXT NOT NULL,
        params TEXT,
        latency_p50_ms REAL,
        latency_p95_ms REAL,
        card TEXT NOT NULL,
        source TEXT NOT NULL,
        key TEXT,
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX model_cards_key ON model_cards (key)",
    "CREATE INDEX model_cards_digest ON model_cards (digest, sort_at)",
    *_append_only("model_cards"),
    """CREATE TABLE waivers (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL,
        finding TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason <> ''),
        expires TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE INDEX waivers_digest ON waivers (digest, sort_at)",
    *_append_only("waivers"),
    """CREATE TABLE readmissions (
        id INTEGER PRIMARY KEY,
        stack TEXT NOT NULL,
        digest TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason <> ''),
        at TEXT NOT NULL,
        actor TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL,
        sort_at TEXT NOT NULL
    )""",
    "CREATE INDEX readmissions_stack_sort ON readmissions (stack, sort_at)",
    *_append_only("readmissions"),
)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1), (2, _V2), (3, _V3))
SCHEMA_VERSION = MIGRATIONS[-1][0]


def schema_version(db: sqlite3.Connection) -> int:
    """The newest migration applied to ``db`` (0: a new, empty file)."""
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection, where: str) -> None:
    """Apply the missing migrations in one write transaction (two processes opening an
    old file at once migrate it exactly once); refuse a file from a newer pipeline."""
    # Read without a lock first: the usual open is of an up-to-date file.
    current = schema_version(db)
    if current == SCHEMA_VERSION:
        return
    if current > SCHEMA_VERSION:
        from pipeline.errors import StoreError

        raise StoreError(
            f"record store {where}: schema version {current} is newer than this "
            f"pipeline understands ({SCHEMA_VERSION}); upgrade the pipeline"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = schema_version(db)  # another process may have migrated meanwhile
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, datetime.now(UTC).isoformat(timespec="microseconds")),
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite has already undone it after SQLITE_FULL
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]
