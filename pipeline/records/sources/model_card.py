"""Read and validate ``model-card.json``: what a model image says about its model.

``card_problems`` applies exactly the rules of ``docs/model-card.schema.json``
(tests/pipeline/test_model_card.py runs the real jsonschema package on the same
cards, so the two cannot drift); each problem is one line naming the JSON path.
``load_model_card`` also refuses what the schema cannot say: duplicate keys,
NaN/Infinity, signature strings that are not MLflow spec lists, and a p95 latency
below the p50. Unknown fields are allowed everywhere and kept (``ParsedCard.raw``).

With ``signature=`` (the signature of an MLflow ``MLmodel`` file, ``--mlmodel``)
the card may leave its own signature out; when it has one, it must be the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from pipeline.errors import PipelineError
from pipeline.records.sources.mlmodel import MLmodelError, Signature, parse_signature
from pipeline.records.sources.strict_json import JsonInputError, json_type, load_json

MAX_CARD_BYTES = 1024 * 1024
MAX_DEPTH = 32
# The same strings as the schema's "pattern"s (a test compares them).
VERSION_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(?![\s\S])"
)
FINGERPRINT_PATTERN = r"^sha256:[0-9a-f]{64}(?![\s\S])"

Path = tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    at: Path  # the failing value's location, as JSON Schema reports it (the parent, for required)
    message: str  # one line, naming the full path


class ModelCardError(PipelineError):
    """A card that cannot be used; ``str()`` is the first problem, ``problems`` all of them."""

    def __init__(self, source: str, problems: tuple[str, ...]) -> None:
        self.problems = tuple(f"{source}: {p}" for p in problems)
        super().__init__(self.problems[0])


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float


@dataclass(frozen=True)
class BatchLatency:
    size: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class ParsedCard:
    name: str
    version: str
    accuracy: float
    inputs: str  # MLflow's JSON spec strings, exactly as written (in the card or the MLmodel)
    outputs: str
    params: str | None = None
    per_class: tuple[ClassMetrics, ...] = ()
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    batch_latency: BatchLatency | None = None
    data_fingerprint: str | None = None
    file_size_bytes: int | None = None
    # The whole card with the signature in force: unknown fields kept.
    raw: Mapping[str, object] = field(default_factory=dict, repr=False, hash=False)

    def signature(self) -> Signature:
        """The card's signature parsed as MLflow's (comparable with an MLmodel's)."""
        raw = {"inputs": self.inputs, "outputs": self.outputs, "params": self.params}
        return parse_signature(raw, source="model-card.json")


def load_model_card(
    data: bytes, *, source: str = "model-card.json", signature: Signature | None = None
) -> ParsedCard:
    """Decode, validate and return the card, or raise ModelCardError (one line)."""
    try:
        doc = load_json(data, max_bytes=MAX_CARD_BYTES, max_depth=MAX_DEPTH, unique_keys=True)
    except JsonInputError as exc:
        raise ModelCardError(source, (str(exc),)) from None
    problems = card_problems(doc)
    if signature is not None:  # the MLmodel supplies it: the card may leave it out
        problems = tuple(p for p in problems if p.message != "signature is required")
    if problems:
        raise ModelCardError(source, tuple(p.message for p in problems))
    card = cast("dict[str, Any]", doc)  # card_problems has checked every field read below
    inputs, outputs, params = _signature(card, signature, source)
    sig = {"inputs": inputs, "outputs": outputs} | ({} if params is None else {"params": params})
    card = {**card, "signature": sig}
    model, metrics = card["model"], card["metrics"]
    latency = card.get("latency_ms") or {}
    batch = latency.get("batch")
    for where, lat in (("latency_ms", latency), ("latency_ms.batch", batch or {})):
        if lat and lat["p95"] < lat["p50"]:
            message = f"{where}.p95 ({lat['p95']}) is below {where}.p50 ({lat['p50']})"
            raise ModelCardError(source, (message,))
    size = model.get("file_size_bytes")
    return ParsedCard(
        name=model["name"],
        version=model["version"],
        accuracy=float(metrics["accuracy"]),
        inputs=inputs,
        outputs=outputs,
        params=params,
        per_class=tuple(
            ClassMetrics(label, float(m["precision"]), float(m["recall"]))
            for label, m in (metrics.get("per_class") or {}).items()
        ),
        latency_p50_ms=float(latency["p50"]) if latency else None,
        latency_p95_ms=float(latency["p95"]) if latency else None,
        batch_latency=BatchLatency(int(batch["size"]), float(batch["p50"]), float(batch["p95"]))
        if batch
        else None,
        data_fingerprint=(card.get("data") or {}).get("fingerprint"),
        file_size_bytes=None if size is None else int(size),
        raw=MappingProxyType(card),
    )


def _signature(
    card: Mapping[str, Any], mlmodel: Signature | None, source: str
) -> tuple[str, str, str | None]:
    """(inputs, outputs, params) in force: the MLmodel's when given (the card's must agree)."""
    own: Mapping[str, Any] | None = card.get("signature")
    parsed = None
    if own is not None:
        try:
            parsed = parse_signature(own, source=source)
        except MLmodelError as exc:
            raise ModelCardError(source, (str(exc).removeprefix(f"{source}: "),)) from None
    if mlmodel is None:
        assert own is not None  # card_problems requires it without an MLmodel
        return own["inputs"], own["outputs"], own.get("params")
    if mlmodel.inputs_json is None or mlmodel.outputs_json is None:
        raise ModelCardError(source, ("the MLmodel's signature has no inputs or no outputs",))
    if parsed is not None and (parsed.inputs, parsed.outputs, parsed.params) != (
        mlmodel.inputs,
        mlmodel.outputs,
        mlmodel.params,
    ):
        raise ModelCardError(
            source, ("signature differs from the MLmodel's; leave it out or make them equal",)
        )
    return mlmodel.inputs_json, mlmodel.outputs_json, mlmodel.params_json


# ---- the schema's rules, by hand ---------------------------------------------------------


def card_problems(doc: object) -> tuple[Problem, ...]:
    """Every way ``doc`` (decoded JSON) breaks model_card.schema.json, in document order."""
    if not isinstance(doc, dict):
        return (Problem((), f"the top level must be an object, got {json_type(doc)}"),)
    out: list[Problem] = []
    _required(doc, (), ("model", "metrics", "signature"), out)
    model = _member(doc, ("model",), "an object", out)
    if model is not None:
        _required(model, ("model",), ("name", "version"), out)
        _string(model, ("model", "name"), None, "a non-empty string", out)
        _string(model, ("model", "version"), VERSION_PATTERN, _VERSION_TEXT, out)
        _number(model, ("model", "file_size_bytes"), 0, None, out, integer=True)
    metrics = _member(doc, ("metrics",), "an object", out)
    if metrics is not None:
        _required(metrics, ("metrics",), ("accuracy",), out)
        _number(metrics, ("metrics", "accuracy"), 0, 1, out)
        per_class = _member(metrics, ("metrics", "per_class"), "an object", out)
        for label in per_class or {}:
            at: Path = ("metrics", "per_class", label)
            scores = _member(per_class or {}, at, "an object", out)
            if scores is not None:
                _required(scores, at, ("precision", "recall"), out)
                _number(scores, (*at, "precision"), 0, 1, out)
                _number(scores, (*at, "recall"), 0, 1, out)
    sig = _member(doc, ("signature",), "an object", out)
    if sig is not None:
        _required(sig, ("signature",), ("inputs", "outputs"), out)
        for key in ("inputs", "outputs", "params"):
            _string(sig, ("signature", key), None, "a non-empty string of MLflow JSON", out)
    latency = _member(doc, ("latency_ms",), "an object", out)
    if latency is not None:
        _required(latency, ("latency_ms",), ("p50", "p95"), out)
        _number(latency, ("latency_ms", "p50"), 0, None, out)
        _number(latency, ("latency_ms", "p95"), 0, None, out)
        batch = _member(latency, ("latency_ms", "batch"), "an object", out)
        if batch is not None:
            at = ("latency_ms", "batch")
            _required(batch, at, ("size", "p50", "p95"), out)
            _number(batch, (*at, "size"), 1, None, out, integer=True)
            _number(batch, (*at, "p50"), 0, None, out)
            _number(batch, (*at, "p95"), 0, None, out)
    data = _member(doc, ("data",), "an object", out)
    if data is not None:
        _string(data, ("data", "fingerprint"), FINGERPRINT_PATTERN, _FINGERPRINT_TEXT, out)
    return tuple(out)


_VERSION_TEXT = "a semantic version like 1.4.0 (MAJOR.MINOR.PATCH[-pre][+build])"
_FINGERPRINT_TEXT = "sha256:<64 lowercase hex digits>"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def dotted(at: Path) -> str:
    """A path as text: metrics.per_class["cat dog"].precision."""
    text = ""
    for part in at:
        if _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "the top level"


def _got(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):  # quoted and escaped, so "1.2.3\n" shows its newline
        shown = json.dumps(value)
        return shown if len(shown) <= 60 else shown[:56] + '..."'

    return json_type(value)


def _is_object(value: object, at: Path, expected: str, out: list[Problem]) -> bool:
    if isinstance(value, dict):
        return True
    out.append(Problem(at, f"{dotted(at)} must be {expected}, got {json_type(value)}"))
    return False


def _required(
    doc: Mapping[str, object], at: Path, keys: tuple[str, ...], out: list[Problem]
) -> None:
    out.extend(Problem(at, f"{dotted((*at, k))} is required") for k in keys if k not in doc)


def _member(
    parent: Mapping[str, object], at: Path, expected: str, out: list[Problem]
) -> Mapping[str, object] | None:
    """The object at ``at`` (a key of ``parent``), or None when absent or not an object."""
    if at[-1] not in parent:
        return None
    value = parent[at[-1]]
    return value if _is_object(value, at, expected, out) and isinstance(value, dict) else None


def _string(
    parent: Mapping[str, object], at: Path, pattern: str | None, expected: str, out: list[Problem]
) -> None:
    if at[-1] not in parent:
        return
    value = parent[at[-1]]
    if not isinstance(value, str):
        out.append(Problem(at, f"{dotted(at)} must be {expected}, got {json_type(value)}"))
    elif (pattern is None and not value) or (pattern and not re.search(pattern, value)):
        out.append(Problem(at, f"{dotted(at)} must be {expected}, got {_got(value)}"))


def _number(
    parent: Mapping[str, object],
    at: Path,
    low: float,
    high: float | None,
    out: list[Problem],
    *,
    integer: bool = False,
) -> None:
    """JSON Schema's number/integer with minimum/maximum (1.0 is an integer, true is not)."""
    if at[-1] not in parent:
        return
    value = parent[at[-1]]
    kind = "a whole number" if integer else "a number"
    bounds = f">= {low}" if high is None else f"in {low}..{high}"
    expected = f"{kind} {bounds}"
    if not isinstance(value, int | float) or isinstance(value, bool):
        out.append(Problem(at, f"{dotted(at)} must be {expected}, got {json_type(value)}"))
        return
    wrong_kind = integer and isinstance(value, float) and not value.is_integer()
    if wrong_kind or value < low or (high is not None and value > high):
        out.append(Problem(at, f"{dotted(at)} must be {expected}, got {_got(value)}"))
