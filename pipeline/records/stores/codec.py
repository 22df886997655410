"""How each record kind maps to columns (SQLite) and JSON objects (S3).

Each kind's table of stored fields and their storage types is in ``kinds``; this
module turns it into row and JSON encoders and decoders for the two stores.
Timestamps are stored as UTC ISO 8601 text with a fixed width
(``2026-01-02T03:04:05.000000+00:00``), which sorts lexicographically in time
order and reads back fast with ``datetime.fromisoformat``.

Reading builds records without the frozen dataclass ``__init__`` (which calls
``object.__setattr__`` once per field): a bulk read of 100,000 CI runs spends
most of its time there otherwise. The decoded dict has exactly the dataclass
fields, so equality, ``repr`` and ``dataclasses.replace`` behave as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from typing import Any

from pipeline.records.model import Finding, Record, utc
from pipeline.records.stores.kinds import JSON_TYPES, Kind


def iso(value: datetime) -> str:
    """Fixed-width UTC ISO text: sorts in time order as a plain string."""
    if value.tzinfo is not UTC:
        value = utc(value)
    return value.isoformat(timespec="microseconds")


def dump_findings(findings: Iterable[Finding]) -> str:
    return json.dumps([f.__dict__ for f in findings], separators=(",", ":"))


def load_findings(text: str) -> tuple[Finding, ...]:
    return tuple(Finding(**item) for item in json.loads(text))


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
        elif ftype == "findings":
            out.append(dump_findings(value))
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
        elif ftype == "findings":
            parts.append(f"dump_findings({ref})")
        else:
            parts.append(ref)
    sort = f"d[{kind.sort_field!r}]"
    parts += ["stamp", f"(stamp if {sort} is None else iso({sort}))"]
    source = (
        f"def encode(record, stamp):\n    d = record.__dict__\n    return ({', '.join(parts)},)\n"
    )
    encode: Callable[[Record, str], tuple[Any, ...]] = _compile(
        "encode", source, {"iso": iso, "dumps": json.dumps, "dump_findings": dump_findings}
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
        elif types[name] == "findings":
            value = f"(() if {var} is None else load_findings({var}))"
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
        "load_findings": load_findings,
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
# 3: deployments carry their changes; verifications are a kind of their own.
JSON_SCHEMA = 3


def to_json(kind: Kind, record: Record, recorded_at: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": JSON_SCHEMA, "kind": kind.name}
    for (name, ftype), value in zip(kind.columns, encode_values(kind, record), strict=True):
        body[name] = json.loads(value) if ftype in JSON_TYPES and value is not None else value
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
            row.append(json.dumps(value) if ftype in JSON_TYPES and value is not None else value)
        elif defaults[name] is MISSING:
            raise ValueError(f"{kind.name} object lacks {name!r}")
        else:
            # An object written before this field existed: the model's default.
            row.append(None if ftype in JSON_TYPES else defaults[name])
    if "recorded_at" not in body:
        raise ValueError(f"{kind.name} object lacks 'recorded_at'")
    row.append(body["recorded_at"])
    return decoder(kind)([row])[0]
