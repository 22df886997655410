"""The record kinds: for each, its table (and S3 folder), class and stored fields.

One table per kind describes every stored field and its storage type, so the two
stores (``sqlite``, ``s3``), the codec that maps fields to columns and JSON
(``codec``), the record limits and their tests share a single truth. A new kind is
added here (and to the SQLite migrations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pipeline.records.model import (
    CiRun,
    Deployment,
    Hold,
    ModelCard,
    Promotion,
    Readmission,
    Record,
    Rollback,
    Scan,
    Verification,
    Waiver,
)

# "tuple": a tuple of strings, stored as a JSON array; "findings": a scan's findings,
# stored as a JSON array of objects (one per Finding, its fields by name).
FieldType = Literal["text", "time", "int", "real", "tuple", "findings"]
JSON_TYPES = ("tuple", "findings")


@dataclass(frozen=True)
class Kind:
    """A record kind: its table (and S3 folder), class and stored fields."""

    name: str
    cls: type[Any]
    # Every dataclass field except ``id`` and ``recorded_at``, in column order.
    columns: tuple[tuple[str, FieldType], ...]
    # The time that orders (oldest first) and windows the records of this kind.
    sort_field: str
    # Fields a ``stack=`` filter matches (any of them).
    stack_fields: tuple[str, ...] = ()
    keyed: bool = False

    @property
    def field_names(self) -> tuple[str, ...]:
        """Stored field names in read order: ``id``, the columns, ``recorded_at``."""
        return ("id", *(name for name, _ in self.columns), "recorded_at")


CI_RUNS = Kind(
    name="ci_runs",
    cls=CiRun,
    columns=(
        ("image", "text"),
        ("digest", "text"),
        ("commit", "text"),
        ("commit_time", "time"),
        ("started", "time"),
        ("build_seconds", "real"),
        ("test_seconds", "real"),
        ("passed", "int"),
        ("failed", "int"),
        ("errors", "int"),
        ("skipped", "int"),
        ("scan_critical", "int"),
        ("scan_high", "int"),
        ("source", "text"),
        ("key", "text"),
    ),
    # A CI run without a start time is ordered by when it was recorded.
    sort_field="started",
    keyed=True,
)

DEPLOYMENTS = Kind(
    name="deployments",
    cls=Deployment,
    columns=(
        ("stack", "text"),
        ("result", "text"),
        ("image", "text"),
        ("digest", "text"),
        ("started", "time"),
        ("finished", "time"),
        ("commit", "text"),
        ("commit_time", "time"),
        ("source", "text"),
        ("key", "text"),
        ("changes", "tuple"),
    ),
    sort_field="finished",
    stack_fields=("stack",),
    keyed=True,
)

PROMOTIONS = Kind(
    name="promotions",
    cls=Promotion,
    columns=(
        ("source_stack", "text"),
        ("target_stack", "text"),
        ("image", "text"),
        ("digest", "text"),
        ("at", "time"),
        ("skipped_gates", "tuple"),
        ("previous_digest", "text"),
        ("actor", "text"),
    ),
    sort_field="at",
    stack_fields=("source_stack", "target_stack"),
)

ROLLBACKS = Kind(
    name="rollbacks",
    cls=Rollback,
    columns=(
        ("stack", "text"),
        ("from_digest", "text"),
        ("to_digest", "text"),
        ("image", "text"),
        ("at", "time"),
        ("reason", "text"),
        ("actor", "text"),
    ),
    sort_field="at",
    stack_fields=("stack",),
)

HOLDS = Kind(
    name="holds",
    cls=Hold,
    columns=(
        ("stack", "text"),
        ("action", "text"),
        ("at", "time"),
        ("reason", "text"),
        ("actor", "text"),
    ),
    sort_field="at",
    stack_fields=("stack",),
)

SCANS = Kind(
    name="scans",
    cls=Scan,
    columns=(
        ("image", "text"),
        ("digest", "text"),
        ("format", "text"),
        ("scanner", "text"),
        ("scanner_version", "text"),
        ("artifact", "text"),
        ("os", "text"),
        ("findings", "findings"),
        ("source", "text"),
        ("key", "text"),
    ),
    # Evidence is ordered by when it was recorded.
    sort_field="recorded_at",
    keyed=True,
)

MODEL_CARDS = Kind(
    name="model_cards",
    cls=ModelCard,
    columns=(
        ("image", "text"),
        ("digest", "text"),
        ("name", "text"),
        ("version", "text"),
        ("accuracy", "real"),
        ("inputs", "text"),
        ("outputs", "text"),
        ("params", "text"),
        ("latency_p50_ms", "real"),
        ("latency_p95_ms", "real"),
        ("card", "text"),
        ("source", "text"),
        ("key", "text"),
    ),
    sort_field="recorded_at",
    keyed=True,
)

WAIVERS = Kind(
    name="waivers",
    cls=Waiver,
    columns=(
        ("digest", "text"),
        ("finding", "text"),
        ("reason", "text"),
        ("expires", "time"),
        ("at", "time"),
        ("actor", "text"),
    ),
    sort_field="at",
)

READMISSIONS = Kind(
    name="readmissions",
    cls=Readmission,
    columns=(
        ("stack", "text"),
        ("digest", "text"),
        ("reason", "text"),
        ("at", "time"),
        ("actor", "text"),
    ),
    sort_field="at",
    stack_fields=("stack",),
)

VERIFICATIONS = Kind(
    name="verifications",
    cls=Verification,
    columns=(
        ("stack", "text"),
        ("digest", "text"),
        ("image", "text"),
        ("result", "text"),
        ("since", "time"),
        ("until", "time"),
        ("requests", "real"),
        ("error_ratio", "real"),
        ("p95_seconds", "real"),
        ("min_requests", "int"),
        ("max_error_ratio", "real"),
        ("max_p95_ms", "real"),
        ("selector", "text"),
        ("reason", "text"),
        ("actor", "text"),
    ),
    # Judged at the window's end.
    sort_field="until",
    stack_fields=("stack",),
)

KINDS: tuple[Kind, ...] = (
    CI_RUNS,
    DEPLOYMENTS,
    PROMOTIONS,
    ROLLBACKS,
    HOLDS,
    VERIFICATIONS,
    SCANS,
    MODEL_CARDS,
    WAIVERS,
    READMISSIONS,
)

KIND_OF: dict[type[Any], Kind] = {kind.cls: kind for kind in KINDS}


def kind_of(record: Record) -> Kind:
    try:
        return KIND_OF[type(record)]
    except KeyError:
        raise TypeError(f"not a record: {type(record).__name__}") from None


__all__ = [
    "CI_RUNS",
    "DEPLOYMENTS",
    "HOLDS",
    "JSON_TYPES",
    "KINDS",
    "KIND_OF",
    "MODEL_CARDS",
    "PROMOTIONS",
    "READMISSIONS",
    "ROLLBACKS",
    "SCANS",
    "VERIFICATIONS",
    "WAIVERS",
    "FieldType",
    "Kind",
    "kind_of",
]
