"""model_card: the hand validator, checked against the real jsonschema package on the same cards."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from pipeline.promotion.signatures import signature_differences
from pipeline.records.sources.mlmodel import parse_mlmodel
from pipeline.records.sources.model_card import (
    FINGERPRINT_PATTERN,
    VERSION_PATTERN,
    BatchLatency,
    ClassMetrics,
    ModelCardError,
    card_problems,
    load_model_card,
)
from tests.conftest import PROJECT_ROOT
from tests.pipeline.evidencekit import fixture_bytes, one_line

SCHEMA_PATH = PROJECT_ROOT / "docs" / "model-card.schema.json"
SHA = "sha256:" + "0123456789abcdef" * 4
INPUTS = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 64]}}]'


def _card(**changes: Any) -> dict[str, Any]:
    """The minimal good card with ``changes`` applied; a key "a.b" sets a nested field and
    the value DELETE removes it."""
    card: dict[str, Any] = {
        "model": {"name": "digits", "version": "1.4.0"},
        "metrics": {"accuracy": 0.97},
        "signature": {"inputs": INPUTS, "outputs": '[{"type": "long"}]'},
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = card
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return card


DELETE = object()
FULL = _card(
    **{
        "model.file_size_bytes": 30_412,
        "model.framework": "numpy",  # unknown fields are allowed and kept
        "metrics.per_class": {
            "0": {"precision": 1.0, "recall": 0.98, "support": 45},
            "cat dog": {"precision": 0.0, "recall": 1},
        },
        "metrics.f1": 0.96,
        "latency_ms": {"p50": 1.2, "p95": 3.4, "batch": {"size": 64, "p50": 5, "p95": 9.5}},
        "data.fingerprint": SHA,
        "data.rows": 1797,
        "signature.params": '[{"name": "k", "dtype": "long", "default": 1, "shape": null}]',
        "owner": "cv-team",
    }
)
GOOD = [
    _card(),
    FULL,
    _card(**{"metrics.accuracy": 0, "model.version": "0.0.0"}),
    _card(**{"metrics.accuracy": 1, "model.version": "10.20.30-rc.1+build.5"}),
    _card(**{"model.file_size_bytes": 1.0}),  # 1.0 is an integer in JSON Schema
    _card(**{"latency_ms": {"p50": 0, "p95": 0}}),
]

# (card, the first problem's message, how many problems)
BAD: list[tuple[Any, str, int]] = [
    ([], "the top level must be an object, got array", 1),
    (_card(metrics=DELETE), "metrics is required", 1),
    (_card(**{"model.version": DELETE}), "model.version is required", 1),
    (_card(model="digits"), "model must be an object, got string", 1),
    (_card(**{"metrics.accuracy": 1.3}), "metrics.accuracy must be a number in 0..1, got 1.3", 1),
    (_card(**{"metrics.accuracy": -0.1}), "metrics.accuracy must be a number in 0..1, got -0.1", 1),
    (
        _card(**{"metrics.accuracy": "0.9"}),
        "metrics.accuracy must be a number in 0..1, got string",
        1,
    ),
    (
        _card(**{"metrics.accuracy": True}),
        "metrics.accuracy must be a number in 0..1, got boolean",
        1,
    ),
    (_card(**{"metrics.accuracy": None}), "metrics.accuracy must be a number in 0..1, got null", 1),
    (_card(**{"model.name": ""}), 'model.name must be a non-empty string, got ""', 1),
    (_card(**{"model.name": 7}), "model.name must be a non-empty string, got number", 1),
    *(
        (
            _card(**{"model.version": v}),
            "model.version must be a semantic version like 1.4.0 "
            f"(MAJOR.MINOR.PATCH[-pre][+build]), got {json.dumps(v)}",
            1,
        )
        for v in ("v1.2.3", "1.2", "01.2.3", "1.2.3\n", "1.2.3-", "1.٣.3")
    ),
    (
        _card(**{"model.file_size_bytes": -1}),
        "model.file_size_bytes must be a whole number >= 0, got -1",
        1,
    ),
    (
        _card(**{"model.file_size_bytes": 1.5}),
        "model.file_size_bytes must be a whole number >= 0, got 1.5",
        1,
    ),
    (_card(**{"model.file_size_bytes": -1.5}), "model.file_size_bytes must be a whole number", 1),
    (_card(**{"model.file_size_bytes": "10"}), "model.file_size_bytes must be a whole number", 1),
    (
        _card(**{"metrics.per_class": {"cat": {"precision": 1.2, "recall": 0.5}}}),
        "metrics.per_class.cat.precision must be a number in 0..1, got 1.2",
        1,
    ),
    (
        _card(**{"metrics.per_class": {"cat": 0.9}}),
        "metrics.per_class.cat must be an object, got number",
        1,
    ),
    (
        _card(**{"metrics.per_class": {"cat dog": {"precision": 0.9}}}),
        'metrics.per_class["cat dog"].recall is required',
        1,
    ),
    (_card(**{"metrics.per_class": []}), "metrics.per_class must be an object, got array", 1),
    (_card(**{"signature.inputs": DELETE}), "signature.inputs is required", 1),
    (
        _card(**{"signature.inputs": 3}),
        "signature.inputs must be a non-empty string of MLflow JSON, got number",
        1,
    ),
    (
        _card(**{"signature.outputs": ""}),
        'signature.outputs must be a non-empty string of MLflow JSON, got ""',
        1,
    ),
    (
        _card(**{"signature.params": []}),
        "signature.params must be a non-empty string of MLflow JSON",
        1,
    ),
    (_card(latency_ms={"p50": 3}), "latency_ms.p95 is required", 1),
    (_card(latency_ms={"p50": -1, "p95": 2}), "latency_ms.p50 must be a number >= 0, got -1", 1),
    (
        _card(latency_ms={"p50": 1, "p95": 2, "batch": {"size": 0, "p50": 1, "p95": 2}}),
        "latency_ms.batch.size must be a whole number >= 1, got 0",
        1,
    ),
    (
        _card(latency_ms={"p50": 1, "p95": 2, "batch": {"p50": 1}}),
        "latency_ms.batch.size is required",
        2,
    ),
    (
        _card(**{"data.fingerprint": "abc"}),
        'data.fingerprint must be sha256:<64 lowercase hex digits>, got "abc"',
        1,
    ),
    (
        _card(**{"data.fingerprint": SHA.upper()}),
        "data.fingerprint must be sha256:<64 lowercase",
        1,
    ),
    (_card(**{"data.fingerprint": SHA + "\n"}), "data.fingerprint must be sha256:<64 lowercase", 1),
    (_card(data=[SHA]), "data must be an object, got array", 1),
    (
        _card(**{"model.name": DELETE, "metrics.accuracy": 2, "signature": "x"}),
        "model.name is required",
        3,
    ),
]


def _as_bytes(card: Any) -> bytes:
    return json.dumps(card).encode()


@pytest.mark.parametrize("card", GOOD)
def test_good_cards_load(card: dict[str, Any]) -> None:
    assert card_problems(card) == ()
    loaded = load_model_card(_as_bytes(card))
    assert loaded.name == card["model"]["name"]
    assert loaded.accuracy == card["metrics"]["accuracy"]
    assert loaded.raw == card


def test_the_full_card_fields_and_unknown_fields_are_kept() -> None:
    card = load_model_card(_as_bytes(FULL))
    assert (card.name, card.version, card.accuracy) == ("digits", "1.4.0", 0.97)
    assert card.per_class == (ClassMetrics("0", 1.0, 0.98), ClassMetrics("cat dog", 0.0, 1.0))
    assert (card.latency_p50_ms, card.latency_p95_ms) == (1.2, 3.4)
    assert card.batch_latency == BatchLatency(64, 5.0, 9.5)
    assert (card.data_fingerprint, card.file_size_bytes) == (SHA, 30_412)
    assert card.params is not None
    assert card.raw["owner"] == "cv-team"
    assert card.raw["model"]["framework"] == "numpy"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.accuracy = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        card.raw["owner"] = "someone"  # type: ignore[index]


@pytest.mark.parametrize(("card", "message", "count"), BAD, ids=[b[1][:50] for b in BAD])
def test_bad_cards_give_one_line_naming_the_path(card: Any, message: str, count: int) -> None:
    problems = card_problems(card)
    assert len(problems) == count
    assert problems[0].message.startswith(message)
    with pytest.raises(ModelCardError) as exc:
        load_model_card(_as_bytes(card))
    assert one_line(exc).startswith(f"model-card.json: {message}")
    assert len(exc.value.problems) == count


BEYOND_SCHEMA = [
    (b'{"model": {}, "model": {}}', "model-card.json: duplicate key 'model' in one object"),
    (b'{"metrics": {"accuracy": NaN}}', "model-card.json: NaN is not a JSON value"),
    (b'{"model": ', "model-card.json: not JSON: Expecting value at line 1 column 11"),
    (b"", "model-card.json: input is empty"),
    (
        _as_bytes(_card(**{"signature.inputs": "[{"})),
        "model-card.json: signature.inputs is not JSON: ",
    ),
    (
        _as_bytes(_card(**{"signature.outputs": '{"type": "long"}'})),
        "model-card.json: signature.outputs must be a JSON array, got object",
    ),
    (
        _as_bytes(_card(latency_ms={"p50": 4.0, "p95": 3.1})),
        "model-card.json: latency_ms.p95 (3.1) is below latency_ms.p50 (4.0)",
    ),
    (
        _as_bytes(_card(latency_ms={"p50": 1, "p95": 2, "batch": {"size": 8, "p50": 9, "p95": 2}})),
        "model-card.json: latency_ms.batch.p95 (2) is below latency_ms.batch.p50 (9)",
    ),
    (b"[" * 40 + b"]" * 40, "model-card.json: nesting is deeper than 32 levels"),
]


@pytest.mark.parametrize(("data", "start"), BEYOND_SCHEMA, ids=[b[1][17:60] for b in BEYOND_SCHEMA])
def test_what_the_schema_cannot_say_is_refused_on_load(data: bytes, start: str) -> None:
    with pytest.raises(ModelCardError) as exc:
        load_model_card(data)
    assert one_line(exc).startswith(start)


def test_the_card_signature_compares_with_the_mlmodel_one() -> None:
    model = parse_mlmodel(fixture_bytes("mlmodel/openai-embeddings/MLmodel"))
    assert model.signature is not None
    card = _card(
        **{
            "signature.inputs": model.signature.inputs_json,
            "signature.outputs": model.signature.outputs_json,
            "signature.params": model.signature.params_json,
        }
    )
    loaded = load_model_card(_as_bytes(card))
    assert signature_differences(loaded.signature(), model.signature) == ()
    other = load_model_card(_as_bytes(_card(**{"signature.inputs": '[{"type": "double"}]'})))
    assert "input #1: double -> string" in signature_differences(other.signature(), model.signature)


# ---- the hand validator and the schema file cannot drift ---------------------------------


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def test_the_pattern_constants_are_the_schema_patterns() -> None:
    schema = _schema()["properties"]
    assert schema["model"]["properties"]["version"]["pattern"] == VERSION_PATTERN
    assert schema["data"]["properties"]["fingerprint"]["pattern"] == FINGERPRINT_PATTERN


@pytest.mark.parametrize(
    "card",
    [*GOOD, *(b[0] for b in BAD)],
    ids=[f"good{i}" for i in range(len(GOOD))] + [f"bad{i}" for i in range(len(BAD))],
)
def test_jsonschema_agrees_on_the_same_cards(card: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="the jsonschema package is not installed")
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    theirs = {tuple(str(p) for p in e.absolute_path) for e in validator.iter_errors(card)}
    ours = {p.at for p in card_problems(copy.deepcopy(card))}
    assert ours == theirs


# ---- the reference model's own card -------------------------------------------------------


@pytest.fixture(scope="module")
def reference_card(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """model-card.json as the image build writes it (model/model_server/train.py --card)."""
    import sys

    model_dir = str(PROJECT_ROOT / "model")
    sys.path.insert(0, model_dir)
    try:
        from model_server.train import main as train_main
    finally:
        sys.path.remove(model_dir)
    out = tmp_path_factory.mktemp("card")
    assert (
        train_main(["--out", str(out / "digits.npz"), "--card", str(out / "model-card.json")]) == 0
    )
    return (out / "model-card.json").read_bytes()


def test_the_reference_models_card_is_valid_by_the_schema_and_the_reader(
    reference_card: bytes,
) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="the jsonschema package is not installed")
    doc = json.loads(reference_card)
    jsonschema.Draft202012Validator(_schema()).validate(doc)
    assert card_problems(doc) == ()
    card = load_model_card(reference_card)
    assert card.name == "digits"
    assert card.version.startswith("1.0.0+")
    assert 0.95 <= card.accuracy <= 1
    assert len(card.per_class) == 10
    assert card.latency_p95_ms is not None
    assert card.batch_latency is not None
    assert card.batch_latency.size == 64
    assert card.data_fingerprint is not None
    assert card.file_size_bytes is not None
    assert card.file_size_bytes > 0
    (inputs,) = card.signature().inputs
    assert inputs.describe() == "tensor float64 [-1, 64]"
    assert card.raw["data"]["dataset"] == "sklearn.datasets.load_digits"  # type: ignore[index]
