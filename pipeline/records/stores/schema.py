"""The SQLite record store's schema: one append-only table per record kind, versioned.

Migrations are applied in order by ``SqliteStore`` when a store is opened for
writing; never edit one that has shipped, add the next.
"""

from __future__ import annotations


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

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1), (2, _V2))
SCHEMA_VERSION = MIGRATIONS[-1][0]


__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]
