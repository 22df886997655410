"""The record store on S3: one immutable JSON object per record.

Layout under ``s3://bucket/prefix``::

    <prefix>/<kind>/<sortable UTC time>-<uuid>.json   a record without a key
    <prefix>/<kind>/key-<sha256 of the key>.json      a keyed record (idempotent)

Every object is written once with ``If-None-Match: *``, so concurrent writers
never overwrite each other and a keyed record that is already there is read
back instead (re-ingesting a source adds nothing). There are no transactions:
``add_many`` writes objects one by one, and a failure midway leaves the ones
before it stored (re-running a keyed ingest is safe).

Each object carries ``"schema"``; objects written by an older layout are
upgraded in memory on read (missing fields take the model's defaults), and an
object from a newer layout is refused. Ids are derived from the object name
(stable, but not sequential). Lists come back oldest first, like SQLite's.
Credentials, region and endpoint come from the environment as boto3 reads
them (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL_S3``, ...).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.errors import StoreError
from pipeline.records.model import CiRun, Deployment, Hold, Promotion, Record, Rollback, Window, utc
from pipeline.records.stores.codec import (
    CI_RUNS,
    DEPLOYMENTS,
    HOLDS,
    JSON_SCHEMA,
    PROMOTIONS,
    ROLLBACKS,
    Kind,
    from_json,
    kind_of,
    refuse_future,
    sort_time,
    to_json,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ALL_TIME = Window()
# Parallel GETs: listing is paged, but each record is its own object.
READ_THREADS = 16
LIST_PAGE_SIZE = 1000
_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_KEYED = "key-"


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> ``(bucket, prefix)`` without surrounding slashes."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StoreError(f"record store {url}: no bucket name (expected s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def _object_time(value: datetime) -> str:
    return utc(value).strftime(_TIME_FORMAT)


def _id_of(name: str) -> int:
    # Stable per object, positive and below 2**60 so it fits every integer column.
    return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)


class S3Store:
    """``RecordStore`` on an S3 prefix; see the module docstring."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: S3Client | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._page_size = page_size
        self.location = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        if client is None:
            import boto3

            client = boto3.client("s3")
        self._s3 = client
        try:
            self._s3.head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds; all mean unreadable
            raise self._error("cannot open", exc) from None

    # -- errors -----------------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> StoreError:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            error = response["Error"]
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            code = error.get("Code", "")
            message = error.get("Message") or {"404": "Not Found", "403": "Forbidden"}.get(
                str(code), ""
            )
            detail = f"{code} {message}".strip() + (f" (HTTP {status})" if status else "")
        else:
            detail = " ".join(str(exc).split()) or type(exc).__name__
        return StoreError(f"record store {self.location}: {what}: {detail}")

    # -- names ------------------------------------------------------------------

    def _folder(self, kind: Kind) -> str:
        return f"{self.prefix}/{kind.name}/" if self.prefix else f"{kind.name}/"

    def _name(self, kind: Kind, record: Record, recorded_at: datetime) -> str:
        key = getattr(record, "key", None)
        if key is not None:
            return f"{self._folder(kind)}{_KEYED}{hashlib.sha256(key.encode()).hexdigest()}.json"
        when = _object_time(sort_time(kind, record, recorded_at))
        return f"{self._folder(kind)}{when}-{uuid.uuid4().hex}.json"

    # -- writing ----------------------------------------------------------------

    def add(self, record: Record) -> Record:
        return self.add_many([record])[0]

    def add_many(self, records: Iterable[Record]) -> list[Record]:
        """Write one object per record (in parallel); returns the stored records in order."""
        recorded_at = datetime.now(UTC)
        batch = list(records)
        refuse_future(batch, recorded_at)
        if len(batch) <= 1:
            return [self._put(record, recorded_at) for record in batch]
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            return list(pool.map(lambda record: self._put(record, recorded_at), batch))

    def _put(self, record: Record, recorded_at: datetime) -> Record:
        from botocore.exceptions import ClientError

        kind = kind_of(record)
        name = self._name(kind, record, recorded_at)
        body = json.dumps(to_json(kind, record, recorded_at), separators=(",", ":"))
        for _attempt in range(3):
            try:
                self._s3.put_object(
                    Bucket=self.bucket,
                    Key=name,
                    Body=body.encode("utf-8"),
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
                return from_json(kind, json.loads(body), _id_of(name))  # type: ignore[no-any-return]
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "PreconditionFailed":  # already stored: only keyed names repeat
                    return self._get(kind, name)  # type: ignore[no-any-return]
                if code == "ConditionalRequestConflict":  # a concurrent write of the same name
                    continue
                raise self._error(f"cannot write {name}", exc) from None
            except Exception as exc:  # noqa: BLE001 - connection and credential errors
                raise self._error(f"cannot write {name}", exc) from None
        raise StoreError(f"record store {self.location}: {name} kept changing while written")

    # -- reading ----------------------------------------------------------------

    def _get(self, kind: Kind, name: str) -> Any:
        try:
            raw = self._s3.get_object(Bucket=self.bucket, Key=name)["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise self._error(f"cannot read {name}", exc) from None
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            schema = body.get("schema", 1)
            if not isinstance(schema, int) or schema > JSON_SCHEMA:
                raise StoreError(
                    f"record store {self.location}: {name} has schema {schema}, newer than "
                    f"this pipeline understands ({JSON_SCHEMA}); upgrade the pipeline"
                )
            return from_json(kind, body, _id_of(name))
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(
                f"record store {self.location}: {name} is not a readable {kind.name} record: {exc}"
            ) from None

    def _names(self, kind: Kind) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=self._folder(kind),
                PaginationConfig={"PageSize": self._page_size},
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"]
        except Exception as exc:  # noqa: BLE001
            raise self._error(f"cannot list {kind.name}", exc) from None

    def _read(self, kind: Kind, stack: str | None = None, window: Window = ALL_TIME) -> list[Any]:
        names: list[str] = []
        for name in self._names(kind):
            base = name.rsplit("/", 1)[-1]
            if not base.endswith(".json"):
                continue
            if not base.startswith(_KEYED) and (window.since or window.until):
                # The name carries the record's sort time: skip the GET when outside.
                try:
                    when = datetime.strptime(base.split("-", 1)[0], _TIME_FORMAT).replace(
                        tzinfo=UTC
                    )
                except ValueError:
                    pass
                else:
                    if not window.contains(when):
                        continue
            names.append(name)
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            records = list(pool.map(lambda name: self._get(kind, name), names))
        out = []
        for record in records:
            if stack is not None and all(getattr(record, f) != stack for f in kind.stack_fields):
                continue
            if not window.contains(sort_time(kind, record, record.recorded_at)):
                continue
            out.append(record)
        out.sort(key=lambda r: (sort_time(kind, r, r.recorded_at), r.recorded_at, r.id))
        return out

    def ci_runs(self, window: Window = ALL_TIME) -> list[CiRun]:
        """CI runs oldest first, by start time (recording time when unknown)."""
        return self._read(CI_RUNS, window=window)

    def ci_runs_for_digest(self, digest: str) -> list[CiRun]:
        return [run for run in self._read(CI_RUNS) if run.digest == digest]

    def deployments(self, stack: str | None = None, window: Window = ALL_TIME) -> list[Deployment]:
        """Deployments oldest first by finish time; the window applies to ``finished``."""
        return self._read(DEPLOYMENTS, stack=stack, window=window)

    def promotions(self, stack: str | None = None) -> list[Promotion]:
        """Promotions from or to ``stack``, oldest first."""
        return self._read(PROMOTIONS, stack=stack)

    def rollbacks(self, stack: str | None = None) -> list[Rollback]:
        return self._read(ROLLBACKS, stack=stack)

    def holds(self, stack: str) -> list[Hold]:
        return self._read(HOLDS, stack=stack)

    def close(self) -> None:
        self._s3.close()


__all__ = ["S3Store", "parse_s3_url"]
