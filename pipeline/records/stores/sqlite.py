"""The record store in one SQLite file (the default: ``.pipeline/records.db``).

- One append-only table per record kind; triggers refuse UPDATE and DELETE.
- WAL journal and a busy timeout, so several processes (parallel Jenkins
  jobs) can append at once and readers never block writers.
- Versioned schema: ``schema_version`` lists the migrations applied; opening
  a store applies the missing ones in order, inside one write transaction, so
  two processes opening an old file at once migrate it exactly once.
- Timestamps are fixed-width UTC ISO text (see ``codec``), compared as text.
- ``key`` has a unique index: adding a keyed record that is already stored
  returns the stored record instead (idempotent re-ingest).

Lists come back oldest first (by the kind's sort time, then insertion order).

Failures say what happened to the file: a full disk is ``no space left`` with the
store's path (SQLite reports it as SQLITE_FULL, or as an I/O error when even its
``-shm`` file cannot grow), never the "cannot rollback - no transaction is active"
that an explicit ROLLBACK after SQLite's own automatic one used to print. A store
opened ``readonly`` (``history``, ``metrics``) writes nothing: ``mode=ro``, no
journal switch, no migration, and in a read-only directory (where SQLite cannot
create its ``-shm`` file) ``immutable=1``, refused when a ``-wal`` file holds
changes that could then not be read.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pipeline.errors import StoreError
from pipeline.records.model import CiRun, Deployment, Hold, Promotion, Record, Rollback, Window
from pipeline.records.stores.codec import (
    CI_RUNS,
    DEPLOYMENTS,
    HOLDS,
    KINDS,
    PROMOTIONS,
    ROLLBACKS,
    Kind,
    decoder,
    iso,
    make_encoder,
    refuse_future,
    with_identity,
)
from pipeline.records.stores.schema import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_SECONDS = 30.0
ALL_TIME = Window()
# Less free space than this in the store's directory, with an I/O error: a full disk.
_NEARLY_FULL = 256 << 10


def _quote(name: str) -> str:
    return f'"{name}"'


class _Statements:
    """The SQL of one kind, built once from its column table."""

    def __init__(self, kind: Kind) -> None:
        columns = [name for name, _ in kind.columns]
        self.kind = kind
        self.decode = decoder(kind)
        self.encode = make_encoder(kind)
        insert_cols = ", ".join(_quote(c) for c in [*columns, "recorded_at", "sort_at"])
        marks = ", ".join("?" for _ in range(len(columns) + 2))
        conflict = " ON CONFLICT (key) DO NOTHING" if kind.keyed else ""
        # Names come from codec.KINDS (constants); every value is a bound parameter.
        self.insert = f"INSERT INTO {kind.name} ({insert_cols}) VALUES ({marks}){conflict}"  # noqa: S608
        select_cols = ", ".join(_quote(c) for c in kind.field_names)
        self.select = f"SELECT {select_cols} FROM {kind.name}"  # noqa: S608
        self.order = " ORDER BY sort_at, id"
        self.by_key = f"{self.select} WHERE key = ?"


_STATEMENTS = {kind.cls: _Statements(kind) for kind in KINDS}


def _batch_of(record: Record) -> tuple[type[Any], bool]:
    return type(record), getattr(record, "key", None) is not None


def _where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


class SqliteStore:
    """``RecordStore`` on a SQLite file; see the module docstring."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.location = str(path)
        self.readonly = readonly
        if readonly:
            self._db = self._open_readonly()
            return
        existed = path.exists()
        try:
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error("cannot open", exc) from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL (journal mode {mode})")
            self._migrate()
        except (sqlite3.Error, StoreError) as exc:
            self._db.close()
            if not existed and self._disk_full(exc):
                # Our own empty file, which nobody could have written since: no store.
                self._remove_empty()
            if isinstance(exc, StoreError):
                raise
            raise self._error("not a readable record store", exc) from None

    def _connect_ro(self, immutable: bool) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro" + (
            "&immutable=1" if immutable else ""
        )
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        try:
            self._db = self._connect_ro(immutable=False)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_CANTOPEN:
                raise self._error("not a readable record store", exc) from None
            # A read-only directory: SQLite cannot make its -shm file to read a WAL store.
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise StoreError(
                    f"record store {self.path}: its latest changes are in {wal.name}, which "
                    "cannot be read in a read-only directory: run a command that records, "
                    "where the directory is writable, to fold them in"
                ) from None
            try:
                self._db = self._connect_ro(immutable=True)
            except sqlite3.Error as again:
                raise self._error("not a readable record store", again) from None
        except sqlite3.Error as exc:
            raise self._error("not a readable record store", exc) from None
        try:
            version = self.schema_version()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error("not a readable record store", exc) from None
        if version != SCHEMA_VERSION:
            self._db.close()
            newer = version > SCHEMA_VERSION
            raise StoreError(
                f"record store {self.path}: schema version {version}, "
                + (
                    f"newer than this pipeline understands ({SCHEMA_VERSION}); upgrade the pipeline"
                    if newer
                    else f"older than this pipeline's ({SCHEMA_VERSION}): a command that records "
                    "upgrades it; this one only reads"
                )
            )
        return self._db

    def _remove_empty(self) -> None:
        with contextlib.suppress(OSError):
            if self.path.stat().st_size == 0:
                self.path.unlink()
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                self.path.with_name(self.path.name + suffix).unlink()

    # -- errors -----------------------------------------------------------------

    def _disk_full(self, exc: BaseException) -> bool:
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return True
        if code is None or code & 0xFF != sqlite3.SQLITE_IOERR:
            return False
        try:
            info = os.statvfs(self.path.absolute().parent)
        except OSError:
            return False
        return info.f_bavail * info.f_frsize < _NEARLY_FULL

    def _error(self, what: str, exc: BaseException) -> StoreError:
        if self._disk_full(exc):
            return StoreError(
                f"record store {self.path}: no space left on device in "
                f"{self.path.absolute().parent}; nothing recorded: free some space and run "
                "the command again"
            )
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return StoreError(f"record store {self.path}: {what}: {detail}")

    def _rollback(self) -> None:
        """Undo an open transaction; SQLite has already undone it after SQLITE_FULL."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    # -- schema -----------------------------------------------------------------

    def schema_version(self) -> int:
        exists = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists is None:
            return 0
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        # Read without a lock first: the usual open is of an up-to-date file.
        current = self.schema_version()
        if current == SCHEMA_VERSION:
            return
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"record store {self.path}: schema version {current} is newer than this "
                f"pipeline understands ({SCHEMA_VERSION}); upgrade the pipeline"
            )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = self.schema_version()  # another process may have migrated meanwhile
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, iso(datetime.now(UTC))),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    # -- writing ----------------------------------------------------------------

    def add(self, record: Record) -> Record:
        return self.add_many([record])[0]

    def add_many(self, records: Iterable[Record]) -> list[Record]:
        """Append records in one transaction; returns the stored records in order.

        A keyed record already stored (or given twice) comes back as the stored one.
        """
        recorded_at = datetime.now(UTC)
        stamp = iso(recorded_at)
        out: list[Record] = []
        if self.readonly:
            raise StoreError(f"record store {self.path}: opened read-only; nothing recorded")
        records = list(records)
        refuse_future(records, recorded_at)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Runs of unkeyed records of one kind go in with one executemany.
                for (cls, keyed), group in groupby(records, _batch_of):
                    if keyed:
                        out.extend(self._insert_keyed(r, recorded_at, stamp) for r in group)
                    else:
                        out.extend(self._insert_batch(cls, list(group), recorded_at, stamp))
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            raise self._error("cannot append", exc) from None
        return out

    def _insert_keyed(self, record: Record, recorded_at: datetime, stamp: str) -> Record:
        sql = _STATEMENTS[type(record)]
        cursor = self._db.execute(sql.insert, sql.encode(record, stamp))
        if cursor.rowcount == 0:  # the key is already stored
            key = getattr(record, "key", None)
            stored: list[Record] = sql.decode(self._db.execute(sql.by_key, (key,)))
            return stored[0]
        return with_identity(record, cursor.lastrowid, recorded_at)  # type: ignore[no-any-return]

    def _insert_batch(
        self, cls: type[Any], group: list[Record], recorded_at: datetime, stamp: str
    ) -> list[Record]:
        sql = _STATEMENTS[cls]
        table = sql.kind.name
        last_id = f"SELECT coalesce(max(id), 0) FROM {table}"  # noqa: S608 - a KINDS table name
        before = self._db.execute(last_id).fetchone()[0]
        encode = sql.encode
        self._db.executemany(sql.insert, [encode(record, stamp) for record in group])
        # We hold the write lock, and SQLite gives each new row max(rowid) + 1,
        # so the batch got the ids after ``before``; checked, not assumed.
        check = f"SELECT max(id), count(*) FROM {table} WHERE id > ?"  # noqa: S608 - as above
        after = self._db.execute(check, (before,))
        last, count = after.fetchone()
        if count != len(group) or last != before + len(group):
            raise sqlite3.IntegrityError(f"{table}: rows were not assigned consecutive ids")
        return [
            with_identity(record, before + offset, recorded_at)
            for offset, record in enumerate(group, start=1)
        ]

    # -- reading ----------------------------------------------------------------

    def _read(
        self,
        cls: type[Any],
        stack: str | None = None,
        window: Window = ALL_TIME,
        extra: tuple[str, tuple[Any, ...]] | None = None,
    ) -> list[Any]:
        sql = _STATEMENTS[cls]
        clauses: list[str] = []
        params: list[Any] = []
        if stack is not None:
            clauses.append("(" + " OR ".join(f"{f} = ?" for f in sql.kind.stack_fields) + ")")
            params.extend(stack for _ in sql.kind.stack_fields)
        if window.since is not None:
            clauses.append("sort_at >= ?")
            params.append(iso(window.since))
        if window.until is not None:
            clauses.append("sort_at < ?")
            params.append(iso(window.until))
        if extra is not None:
            clauses.append(extra[0])
            params.extend(extra[1])
        query = sql.select + _where(clauses) + sql.order
        # A bulk read allocates several objects per row and keeps them all: the
        # cyclic GC would rescan the growing heap over and over for nothing
        # (records hold no cycles), which costs about a fifth of the read.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return sql.decode(self._db.execute(query, params))
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from None
        finally:
            if collecting:
                gc.enable()

    def ci_runs(self, window: Window = ALL_TIME) -> list[CiRun]:
        """CI runs oldest first, by start time (recording time when unknown)."""
        return self._read(CiRun, window=window)

    def ci_runs_for_digest(self, digest: str) -> list[CiRun]:
        """CI runs that produced ``digest``, oldest first (indexed)."""
        return self._read(CiRun, extra=("digest = ?", (digest,)))

    def deployments(self, stack: str | None = None, window: Window = ALL_TIME) -> list[Deployment]:
        """Deployments oldest first by finish time; the window applies to ``finished``."""
        return self._read(Deployment, stack=stack, window=window)

    def promotions(self, stack: str | None = None) -> list[Promotion]:
        """Promotions from or to ``stack``, oldest first."""
        return self._read(Promotion, stack=stack)

    def rollbacks(self, stack: str | None = None) -> list[Rollback]:
        return self._read(Rollback, stack=stack)

    def holds(self, stack: str) -> list[Hold]:
        return self._read(Hold, stack=stack)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "CI_RUNS",
    "DEPLOYMENTS",
    "HOLDS",
    "MIGRATIONS",
    "PROMOTIONS",
    "ROLLBACKS",
    "SCHEMA_VERSION",
    "SqliteStore",
]
