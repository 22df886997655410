"""SQLite schema v3: the evidence an image carries (scans, model cards, waivers) and the
readmissions of rejected digests. Applied by ``sqlite.SqliteStore`` after v1 and v2;
kept here so the store module stays one reader long. Never edit a shipped migration.
"""

from __future__ import annotations


def append_only(table: str) -> tuple[str, str]:
    """Triggers that refuse UPDATE and DELETE on ``table`` (every migration's tables)."""
    return (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
    )


# v3: per-image evidence, judged as a whole by the promotion gates.
V3: tuple[str, ...] = (
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
    *append_only("scans"),
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
    *append_only("model_cards"),
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
    *append_only("waivers"),
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
    *append_only("readmissions"),
)

__all__ = ["V3", "append_only"]
