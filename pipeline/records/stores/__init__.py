"""The record store: where CI runs, deployments, promotions, rollbacks and holds live,
and the evidence each image carries (scans, model cards, waivers, readmissions).

``open_store(location, project)`` picks the backend from the location:

- ``None``: the project's ``.pipeline/records.db`` (SQLite; created with parents).
- ``s3://bucket/prefix``: one immutable JSON object per record (team-wide; boto3
  reads credentials, region and ``AWS_ENDPOINT_URL_S3`` from the environment).
- anything else: a SQLite file path (its directory must exist).

Commands that only read, or need records already there (``history``,
``metrics``, ``promote``, ``rollback``, ``hold --release``), pass ``create=False``: an explicit
path that names no file is then an error, so a typo in ``--store`` or
``PIPELINE_STORE`` is not mistaken for an empty store. The project's default
store is created on first use either way. Commands that only read (``history``,
``metrics``) also pass ``readonly=True``: an existing SQLite store is then opened
without writing anything, so they work in a read-only directory. A zero-length
file where records must exist (``create=False``) is refused, not read as an
empty store: it is a truncated copy or a crash before the schema was written.

Both stores implement ``pipeline.records.model.RecordStore`` and add ``add_many``
(bulk append) and ``ci_runs_for_digest``. Every list comes back sorted oldest
first: CI runs by start time (recording time when unknown), deployments by
finish time, promotions, rollbacks, holds, waivers and readmissions by ``at``,
scans and model cards by when they were recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from pipeline.errors import StoreError
from pipeline.project import Project
from pipeline.records.model import CiRun, Record, RecordStore


class Store(RecordStore, Protocol):
    """``RecordStore`` plus what both backends offer besides."""

    location: str

    def add_many(self, records: Iterable[Record]) -> list[Record]: ...

    def ci_runs_for_digest(self, digest: str) -> list[CiRun]: ...


def open_store(
    location: str | None, project: Project | None, *, create: bool = True, readonly: bool = False
) -> Store:
    """Open the store at ``location`` (creating it unless ``create=False``); see above."""
    if location is None or location == "":
        if project is None:
            raise StoreError("no record store: pass --store or run inside the project")
        path = project.default_store
        if readonly and path.exists():
            return _sqlite(path, readonly=True, existing=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"record store {path}: cannot create its directory: {exc.strerror or exc}"
            ) from None
        return _sqlite(path)
    if location.startswith("s3://"):
        from pipeline.records.stores.s3 import S3Store, parse_s3_url

        bucket, prefix = parse_s3_url(location)
        return S3Store(bucket, prefix)
    if "://" in location:
        raise StoreError(
            f"record store {location}: unsupported location (a file path or s3://bucket/prefix)"
        )
    path = Path(location).expanduser()
    if not create and not path.exists():
        raise StoreError(
            f"no record store at {path}: no such file (check --store or PIPELINE_STORE)"
        )
    if not path.parent.is_dir():
        raise StoreError(f"record store {path}: directory {path.parent} does not exist")
    return _sqlite(path, readonly=readonly and path.exists(), existing=not create)


def _sqlite(path: Path, *, readonly: bool = False, existing: bool = False) -> Store:
    """The SQLite store at ``path``; ``existing``: it must hold records already.

    A zero-length file is refused then. A writer may meet one legitimately: another
    process creating the same new store has not written its schema yet.
    """
    from pipeline.records.stores.sqlite import SqliteStore

    if path.is_dir():
        raise StoreError(f"record store {path}: is a directory, not a SQLite file")
    try:
        empty = path.is_file() and path.stat().st_size == 0
    except OSError:
        empty = False
    if empty and (existing or readonly):
        raise StoreError(
            f"record store {path} is an empty file (0 bytes), not a record store: restore it "
            "from a backup, or delete it to start a new store"
        )
    return SqliteStore(path, readonly=readonly)


__all__ = ["Store", "open_store"]
