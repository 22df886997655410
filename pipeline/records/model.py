"""The record model: what was built, deployed, verified, promoted and rolled back,
and the evidence each image carries (its model card, its vulnerability scans, waivers).

Plain frozen dataclasses shared by the record stores (``pipeline.records.stores``),
the promotion gates and the metrics. Every timestamp is an aware UTC ``datetime``.
Evidence is append-only and judged as a whole: a later scan or card never
replaces an earlier one, it is added beside it.

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
# A verification that could not judge (too few requests) is "inconclusive": never a pass.
VerifyResult = Literal["passed", "failed", "inconclusive"]
DEPLOY_RESULTS: tuple[DeployResult, ...] = ("succeeded", "failed")
# A finding's severity, as the scanner labelled it; most severe first. "negligible"
# (Grype) ranks below low; "unknown" means the scanner did not settle it.
FindingSeverity = Literal["critical", "high", "medium", "low", "negligible", "unknown"]
FINDING_SEVERITIES: tuple[FindingSeverity, ...] = (
    "critical",
    "high",
    "medium",
    "low",
    "negligible",
    "unknown",
)
VERIFY_RESULTS: tuple[VerifyResult, ...] = ("passed", "failed", "inconclusive")


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
    # The commits this deployment brought to the stack, as "SHA TIME" (committer time,
    # ISO 8601 UTC), read from git when it was recorded; empty when unknown.
    changes: tuple[str, ...] = ()

    @property
    def duration_seconds(self) -> float:
        return (self.finished - self.started).total_seconds()


def change_entry(sha: str, committed: datetime) -> str:
    """One ``Deployment.changes`` entry: the commit and its committer time."""
    return f"{sha} {utc(committed).isoformat().replace('+00:00', 'Z')}"


def read_change(entry: str) -> tuple[str, datetime] | None:
    """``(sha, committed)`` of a ``Deployment.changes`` entry, or None when unreadable."""
    sha, _, when = entry.partition(" ")
    try:
        return sha, parse_time(when)
    except ValueError:
        return None


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


@dataclass(frozen=True)
class Finding:
    """One vulnerability a scanner found in an image (one package, one place)."""

    id: str  # CVE-2019-18224, GHSA-..., as the scanner names it
    severity: FindingSeverity
    package: str | None
    installed_version: str | None = None
    fixed_version: str | None = None  # None: no fix known; several joined with ", "
    target: str | None = None  # where in the image (Trivy's Target, Grype's path)


@dataclass(frozen=True)
class Scan:
    """One vulnerability report of an image, every finding kept."""

    image: str
    digest: str
    format: str  # trivy | grype | sarif
    scanner: str | None
    scanner_version: str | None
    artifact: str | None  # what the report says was scanned
    os: str | None  # the OS the scanner detected ("debian 12.5")
    findings: tuple[Finding, ...] = ()
    source: str = "cli"
    # The digest and a hash of the report: recording the same report twice adds nothing.
    key: str | None = None
    id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class ModelCard:
    """What an image's model card says: the model, its quality and its signature."""

    image: str
    digest: str
    name: str
    version: str  # semantic version; a new major version declares a breaking change
    accuracy: float  # held-out, 0..1
    inputs: str  # MLflow's JSON-encoded signature strings, as in an MLmodel file
    outputs: str
    params: str | None = None
    latency_p50_ms: float | None = None  # one image
    latency_p95_ms: float | None = None
    card: str = "{}"  # the whole card (JSON), unknown fields kept
    source: str = "cli"
    # The digest and a hash of the card: recording the same card twice adds nothing.
    key: str | None = None
    id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class Waiver:
    """A finding accepted for one digest until it expires, with the reason why."""

    digest: str
    finding: str  # the finding's id (every package it was found in)
    reason: str
    expires: datetime
    at: datetime
    actor: str = ""
    id: int | None = None
    recorded_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.at <= now < self.expires


@dataclass(frozen=True)
class Readmission:
    """A digest rejected from a stack (rolled back, failed verification) admitted again."""

    stack: str
    digest: str
    reason: str
    at: datetime
    actor: str = ""
    id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class Verification:
    """A deployed digest judged against its metrics (``pipeline verify``).

    ``since``/``until`` is the window measured; the measured values are None when
    Prometheus had no data for them. The thresholds are the ones it was judged by.
    """

    stack: str
    digest: str
    image: str
    result: VerifyResult
    since: datetime
    until: datetime
    requests: float | None = None
    error_ratio: float | None = None
    p95_seconds: float | None = None
    min_requests: int = 0
    max_error_ratio: float | None = None
    max_p95_ms: float | None = None
    selector: str = ""
    reason: str = ""
    actor: str = ""
    id: int | None = None
    recorded_at: datetime | None = None


Record = (
    CiRun
    | Deployment
    | Promotion
    | Rollback
    | Hold
    | Verification
    | Scan
    | ModelCard
    | Waiver
    | Readmission
)


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
    model_cards: tuple[ModelCard, ...] = ()
    verifications: tuple[Verification, ...] = ()


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

    def scans(self, digest: str | None = None) -> list[Scan]: ...

    def model_cards(self, digest: str | None = None) -> list[ModelCard]: ...

    def waivers(self, digest: str | None = None) -> list[Waiver]: ...

    def readmissions(self, stack: str | None = None) -> list[Readmission]: ...
    def verifications(self, stack: str | None = None) -> list[Verification]: ...

    def close(self) -> None: ...
