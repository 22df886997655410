"""The record model: what was built, deployed, promoted and rolled back.

Plain frozen dataclasses shared by the record stores (``pipeline.records.stores``),
the promotion gates and the metrics. Every timestamp is an aware UTC ``datetime``.

Times are read in one place, ``read_time``, with one rule: ISO 8601, ``Z`` for UTC,
and a time without a zone is read as UTC and said to be (``zone_note``), whether it
came from a flag, ``pulumi stack history`` or a window's ``--since``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

# SQLite's INTEGER (and any sane count) stops at 2^63 - 1.
MAX_COUNT = (1 << 63) - 1


def number_text(value: int | float) -> str:
    """A number for a message: as written when short, else roughly (never raises)."""
    if isinstance(value, int) and -(10**15) < value < 10**15:
        return str(value)
    try:
        return f"{float(value):.3g}"
    except OverflowError:  # an integer of hundreds of digits
        return "a number of more than 300 digits"


DeployResult = Literal["succeeded", "failed"]
HoldAction = Literal["placed", "released"]
DEPLOY_RESULTS: tuple[DeployResult, ...] = ("succeeded", "failed")


def utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class TimeRangeError(ValueError):
    """An ISO 8601 time that exists in its own zone but not in UTC (the calendar's edge)."""


def read_time(text: str) -> tuple[datetime, bool]:
    """An ISO 8601 time (``Z`` allowed) as aware UTC, and whether it had no zone.

    A time without a zone is read as UTC; callers say so with ``zone_note``.
    Raises ``ValueError`` for text that is not an ISO 8601 time, and
    ``TimeRangeError`` (one) for a time that falls off the calendar in UTC
    (``0001-01-01T00:00:00+01:00``, ``9999-12-31T23:59:59-01:00``).
    """
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    parsed = datetime.fromisoformat(raw)
    try:
        return utc(parsed), parsed.tzinfo is None
    except OverflowError:
        raise TimeRangeError("falls outside the calendar in UTC (years 1 to 9999)") from None


def time_problem(flag: str, text: str, exc: ValueError) -> str:
    """The one line for a time flag that could not be read."""
    if isinstance(exc, TimeRangeError):
        return f"{flag} {text!r}: {exc}"
    return f"{flag} {text!r}: not an ISO 8601 time (e.g. 2026-01-31T14:05:00Z)"


def parse_time(text: str) -> datetime:
    """``read_time`` without the zone flag: for sources that always give a zone."""
    return read_time(text)[0]


def zone_note(what: str) -> str:
    """What to tell the user about a time without a zone (``what`` names it)."""
    return f"{what} has no time zone: read as UTC"


@dataclass(frozen=True)
class CiRun:
    """One CI build of an image: how long it took and how its tests went."""

    image: str
    digest: str | None = None
    commit: str | None = None
    commit_time: datetime | None = None
    started: datetime | None = None
    build_seconds: float | None = None
    test_seconds: float | None = None
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    scan_critical: int | None = None
    scan_high: int | None = None
    source: str = "cli"
    # Idempotency key (e.g. the Jenkins build URL): recording it twice is a no-op.
    key: str | None = None
    id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class Deployment:
    """One finished update of a stack (`pulumi up`)."""

    stack: str
    result: DeployResult
    image: str
    digest: str | None
    started: datetime
    finished: datetime
    commit: str | None = None
    commit_time: datetime | None = None
    source: str = "cli"
    # Idempotency key (e.g. "pulumi:<stack>:<update version>").
    key: str | None = None
    id: int | None = None
    recorded_at: datetime | None = None

    @property
    def duration_seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


@dataclass(frozen=True)
class Promotion:
    """A digest moved from one stack's file to another's by `pipeline promote`."""

    source_stack: str
    target_stack: str
    image: str
    digest: str
    at: datetime
    skipped_gates: tuple[str, ...] = ()
    id: int | None = None
    recorded_at: datetime | None = None
    # The target's digest before the promotion (None: the target had none).
    previous_digest: str | None = None
    # Who ran the command (PIPELINE_ACTOR, else the login name); for the audit trail.
    actor: str = ""


@dataclass(frozen=True)
class Rollback:
    """A stack's file set back to an earlier successfully deployed digest."""

    stack: str
    from_digest: str | None
    to_digest: str
    image: str
    at: datetime
    reason: str = ""
    id: int | None = None
    recorded_at: datetime | None = None
    actor: str = ""


@dataclass(frozen=True)
class Hold:
    """A hold placed on (or released from) a stack; a held stack refuses promotion."""

    stack: str
    action: HoldAction
    at: datetime
    reason: str = ""
    id: int | None = None
    recorded_at: datetime | None = None
    actor: str = ""


Record = CiRun | Deployment | Promotion | Rollback | Hold


@dataclass(frozen=True)
class Window:
    """A half-open time window [since, until); ``None`` means unbounded."""

    since: datetime | None = None
    until: datetime | None = None

    def contains(self, at: datetime) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


@dataclass(frozen=True)
class Records:
    """Everything a metrics or history query needs, as plain tuples."""

    ci_runs: tuple[CiRun, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    promotions: tuple[Promotion, ...] = ()
    rollbacks: tuple[Rollback, ...] = ()
    holds: tuple[Hold, ...] = field(default=())


class RecordStore(Protocol):
    """Append-only store of records (SQLite file or S3 prefix).

    ``add`` assigns ``id`` and ``recorded_at`` and returns the stored record;
    a record whose ``key`` is already stored is not added again (the stored
    one is returned), which makes re-ingesting a source idempotent.
    """

    def add(self, record: Record) -> Record: ...

    def ci_runs(self, window: Window = Window()) -> list[CiRun]: ...

    def deployments(
        self, stack: str | None = None, window: Window = Window()
    ) -> list[Deployment]: ...

    def promotions(self, stack: str | None = None) -> list[Promotion]: ...

    def rollbacks(self, stack: str | None = None) -> list[Rollback]: ...

    def holds(self, stack: str) -> list[Hold]: ...

    def close(self) -> None: ...
