"""How each record kind maps to columns (SQLite) and JSON objects (S3).

One table per kind describes every stored field and its storage type, so the
two stores and their tests share a single truth. Timestamps are stored as UTC
ISO 8601 text with a fixed width (``2026-01-02T03:04:05.000000+00:00``), which
sorts lexicographically in time order and reads back fast with
``datetime.fromisoformat``.

Reading builds records without the frozen dataclass ``__init__`` (which calls
``object.__setattr__`` once per field): a bulk read of 100,000 CI runs spends
most of its time there otherwise. The decoded dict has exactly the dataclass
fields, so equality, ``repr`` and ``dataclasses.replace`` behave as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pipeline.errors import StoreError
from pipeline.records.model import CiRun, Deployment, Hold, Promotion, Record, Rollback, utc

FieldType = Literal["text", "time", "int", "real", "tuple"]


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

KINDS: tuple[Kind, ...] = (CI_RUNS, DEPLOYMENTS, PROMOTIONS, ROLLBACKS, HOLDS)
KIND_OF: dict[type[Any], Kind] = {kind.cls: kind for kind in KINDS}


def kind_of(record: Record) -> Kind:
    try:
        return KIND_OF[type(record)]
    except KeyError:
        raise TypeError(f"not a record: {type(record).__name__}") from None


# How far ahead of this machine's clock a record's time may be: clocks of CI hosts
# and laptops disagree by seconds, not by minutes.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _short(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def refuse_future(records: Sequence[Record], now: datetime) -> None:
    """StoreError for the first time in ``records`` past ``now`` plus ``MAX_CLOCK_SKEW``.

    The store is append-only: a deployment that "finished" in 2099 would be the last
    one for good, and one in 9999 leaves no room to add a soak time to. Every source
    (flags, JUnit, Jenkins, Pulumi) passes through here.
    """
    latest = now + MAX_CLOCK_SKEW
    for record in records:
        kind = kind_of(record)
        for name, ftype in kind.columns:
            value = getattr(record, name)
            if ftype == "time" and value is not None and utc(value) > latest:
                raise StoreError(
                    f"{kind.name.removesuffix('s').replace('_', ' ')} {name.replace('_', ' ')} "
                    f"{_short(value)} is "
                    f"ahead of this machine's clock ({_short(now)}) by more than "
                    f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes: check the time "
                    "given (or the clock); nothing recorded"
                )


def iso(value: datetime) -> str:
    """Fixed-width UTC ISO text: sorts in time order as a plain string."""
    if value.tzinfo is not UTC:
        value = utc(value)
    return value.isoformat(timespec="microseconds")


def sort_time(kind: Kind, record: Record, recorded_at: datetime) -> datetime:
    value: datetime | None = getattr(record, kind.sort_field)
    return recorded_at if value is None else value


def encode_values(kind: Kind, record: Record) -> list[Any]:
    """The column values of ``record`` (without id and recorded_at), SQL-ready."""
    out: list[Any] = []
    for name, ftype in kind.columns:
        value = getattr(record, name)
        if value is None:
            out.append(None)
        elif ftype == "time":
            out.append(iso(value))
        elif ftype == "tuple":
            out.append(json.dumps(list(value)))
        else:
            out.append(value)
    return out


_new = object.__new__
_set = object.__setattr__

Row = Sequence[Any]


def _compile(name: str, source: str, env: dict[str, Any]) -> Any:
    # Generated per kind, as dataclasses and namedtuple do: one dict literal per
    # row instead of a loop over fields keeps bulk reads and writes cheap.
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<pipeline.records.stores.codec {name}>", "exec"), env, namespace)  # noqa: S102
    return namespace[name]


def make_encoder(kind: Kind) -> Callable[[Record, str], tuple[Any, ...]]:
    """``encode(record, stamp)``: the INSERT values (columns, recorded_at, sort_at)."""
    parts: list[str] = []
    for name, ftype in kind.columns:
        ref = f"d[{name!r}]"
        if ftype == "time":
            parts.append(f"(None if {ref} is None else iso({ref}))")
        elif ftype == "tuple":
            parts.append(f"dumps(list({ref}))")
        else:
            parts.append(ref)
    sort = f"d[{kind.sort_field!r}]"
    parts += ["stamp", f"(stamp if {sort} is None else iso({sort}))"]
    source = (
        f"def encode(record, stamp):\n    d = record.__dict__\n    return ({', '.join(parts)},)\n"
    )
    encode: Callable[[Record, str], tuple[Any, ...]] = _compile(
        "encode", source, {"iso": iso, "dumps": json.dumps}
    )
    return encode


def make_decoder(kind: Kind) -> Callable[[Iterable[Row]], list[Any]]:
    """``decode(rows)``: rows ``(id, *columns, recorded_at)`` into records."""
    types = {"id": "int", **dict(kind.columns), "recorded_at": "time"}
    names = kind.field_names
    variables = [f"v{i}" for i in range(len(names))]
    items: list[str] = []
    for name, var in zip(names, variables, strict=True):
        if types[name] == "time":
            value = f"(None if {var} is None else fromiso({var}))"
        elif types[name] == "tuple":
            value = f"(() if {var} is None else tuple(loads({var})))"
        elif types[name] == "real":
            # A row stored before times were checked may hold an infinity (or NaN, from
            # JSON): read as unknown, so no reader computes with it or prints it.
            value = f"({var} if {var} is None or -INF < {var} < INF else None)"
        else:
            value = var
        items.append(f"{name!r}: {value}")
    source = (
        "def decode(rows):\n"
        "    out = []\n"
        "    append = out.append\n"
        f"    for ({', '.join(variables)},) in rows:\n"
        "        record = new(cls)\n"
        f"        setattr(record, '__dict__', {{{', '.join(items)}}})\n"
        "        append(record)\n"
        "    return out\n"
    )
    env = {
        "new": _new,
        "setattr": _set,
        "cls": kind.cls,
        "fromiso": datetime.fromisoformat,
        "loads": json.loads,
        "INF": float("inf"),
    }
    decode: Callable[[Iterable[Row]], list[Any]] = _compile("decode", source, env)
    return decode


def with_identity(record: Record, record_id: int | None, recorded_at: datetime) -> Any:
    """A copy of ``record`` with ``id`` and ``recorded_at`` set (no __init__ cost)."""
    values = dict(record.__dict__)
    values["id"] = record_id
    values["recorded_at"] = recorded_at
    copy = _new(type(record))
    _set(copy, "__dict__", values)
    return copy


# JSON objects (S3) ------------------------------------------------------------

# Version of the JSON object layout; readers upgrade older objects in memory.
JSON_SCHEMA = 2


def to_json(kind: Kind, record: Record, recorded_at: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": JSON_SCHEMA, "kind": kind.name}
    for (name, ftype), value in zip(kind.columns, encode_values(kind, record), strict=True):
        body[name] = json.loads(value) if ftype == "tuple" and value is not None else value
    body["recorded_at"] = iso(recorded_at)
    return body


_DECODERS: dict[str, Callable[[Iterable[Row]], list[Any]]] = {}


def decoder(kind: Kind) -> Callable[[Iterable[Row]], list[Any]]:
    found = _DECODERS.get(kind.name)
    if found is None:
        found = _DECODERS[kind.name] = make_decoder(kind)
    return found


def from_json(kind: Kind, body: dict[str, Any], record_id: int) -> Any:
    """Build a record from a stored JSON object; unknown keys are ignored.

    Raises ValueError when a field without a default is missing.
    """
    defaults = {f.name: f.default for f in fields(kind.cls)}
    row: list[Any] = [record_id]
    for name, ftype in kind.columns:
        if name in body:
            value = body[name]
            row.append(json.dumps(value) if ftype == "tuple" and value is not None else value)
        elif defaults[name] is MISSING:
            raise ValueError(f"{kind.name} object lacks {name!r}")
        else:
            # An object written before this field existed: the model's default.
            row.append(None if ftype == "tuple" else defaults[name])
    if "recorded_at" not in body:
        raise ValueError(f"{kind.name} object lacks 'recorded_at'")
    row.append(body["recorded_at"])
    return decoder(kind)([row])[0]
