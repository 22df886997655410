"""mlmodel.parse_mlmodel and signature_diff: the Azure ML example MLmodel files and bad ones."""

from __future__ import annotations

import json

import pytest

from pipeline.promotion.signatures import signature_differences
from pipeline.records.sources.mlmodel import (
    ColumnSpec,
    MLmodel,
    MLmodelError,
    ParamSpec,
    Signature,
    TensorSpec,
    parse_mlmodel,
    parse_signature,
)
from tests.pipeline.evidencekit import fixture_bytes, one_line


def _model(name: str) -> MLmodel:
    return parse_mlmodel(fixture_bytes(f"mlmodel/{name}/MLmodel"), source=f"{name}/MLmodel")


def _signature(model: MLmodel) -> Signature:
    assert model.signature is not None
    return model.signature


def test_lightgbm_iris() -> None:
    model = _model("lightgbm-iris")
    sig = _signature(model)
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert sig.inputs == tuple(ColumnSpec(n, "double") for n in names)
    assert sig.outputs == tuple(ColumnSpec(i, "double") for i in (0, 1, 2))  # integer names
    assert sig.params == ()
    assert sig.params_json is None
    assert model.flavors == ("lightgbm", "python_function")
    assert model.mlflow_version is None
    assert model.utc_time_created == "2022-03-17 07:18:56.394958"
    # The stored strings, exactly (YAML folded them over several lines in the file):
    assert sig.outputs_json == (
        '[{"name": 0, "type": "double"}, {"name": 1, "type": "double"}, '
        '{"name": 2, "type": "double"}]'
    )
    assert json.loads(sig.inputs_json or "")[0] == {"name": "sepal_length", "type": "double"}


def test_nyc_taxi_regression() -> None:
    model = _model("nyc-taxi-regression")
    sig = _signature(model)
    assert len(sig.inputs) == 20
    types = {s.name: s.type for s in sig.inputs if isinstance(s, ColumnSpec)}
    doubles = {n for n, t in types.items() if t == "double"}
    longs = {n for n, t in types.items() if t == "long"}
    assert doubles == {
        "distance",
        "dropoff_latitude",
        "dropoff_longitude",
        "pickup_latitude",
        "pickup_longitude",
    }
    times = ("weekday", "month", "monthday", "hour", "minute", "second")
    expected_longs = {"passengers", "store_forward", "vendor"}
    expected_longs |= {f"{end}_{t}" for end in ("pickup", "dropoff") for t in times}
    assert longs == expected_longs
    assert sig.outputs == (TensorSpec(None, "float64", (-1,)),)
    assert (
        sig.outputs_json
        == '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
    )
    assert model.mlflow_version == "1.28.0"
    assert model.flavors == ("python_function", "sklearn")


def test_openai_embeddings() -> None:
    model = _model("openai-embeddings")
    sig = _signature(model)
    assert sig.inputs_json == '[{"type": "string"}]'
    assert sig.inputs == (ColumnSpec(None, "string"),)
    assert sig.outputs == (TensorSpec(None, "float64", (-1,)),)
    assert sig.params == (ParamSpec("batch_size", "long", 16, None),)
    assert (
        sig.params_json == '[{"name": "batch_size", "dtype": "long", "default": 16, "shape": null}]'
    )
    assert model.run_id is None
    assert model.model_uuid == "b9a39a71f54e41efbd83b8307294b4d8"


def test_differences_between_the_fixtures() -> None:
    iris = _signature(_model("lightgbm-iris"))
    taxi = _signature(_model("nyc-taxi-regression"))
    lines = signature_differences(iris, taxi)
    assert lines[0] == "input count 4 -> 20"
    assert "input 'sepal_length' removed (was double)" in lines
    assert "input 'passengers' added (long)" in lines
    assert lines[-2:] == ("output count 3 -> 1", "outputs: column-based -> tensor-based")
    assert len(lines) == 1 + 4 + 20 + 2
    assert signature_differences(taxi, taxi) == ()


def test_differences_with_params_and_unnamed_inputs() -> None:
    taxi = _signature(_model("nyc-taxi-regression"))
    openai = _signature(_model("openai-embeddings"))
    lines = signature_differences(openai, taxi)
    assert lines[:3] == (
        "input count 1 -> 20",
        "inputs: unnamed -> named",
        "input #1: string -> double",
    )
    assert lines[-1] == "param 'batch_size' removed (was long default 16)"
    assert "output" not in " ".join(lines)  # the same tensor output


def _sig(inputs: object, outputs: object = None, params: object = None) -> Signature:
    raw = {
        key: None if value is None else json.dumps(value)
        for key, value in (("inputs", inputs), ("outputs", outputs), ("params", params))
    }
    return parse_signature(raw)


def test_named_differences() -> None:
    old = _sig(
        [
            {"name": "x", "type": "double"},
            {"name": "y", "type": "long"},
            {"name": "z", "type": "string"},
        ],
        [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}],
        [{"name": "k", "dtype": "long", "default": 16, "shape": None}],
    )
    new = _sig(
        [
            {"name": "y", "type": "long", "required": False},
            {"name": "x", "type": "float"},
            {"name": "w", "type": "string"},
        ],
        [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}],
        [{"name": "k", "dtype": "long", "default": 32, "shape": None}],
    )
    assert signature_differences(old, new) == (
        "input 'x': double -> float",
        "input 'y': long -> long (optional)",
        "input 'z' removed (was string)",
        "input 'w' added (string)",
        "input order changed: 'x', 'y' -> 'y', 'x'",
        "output #1: tensor float64 [-1, 3] -> tensor float32 [-1, 3]",
        "param 'k': long default 16 -> long default 32",
    )
    assert signature_differences(None, new) == ("signature: none -> present",)
    assert signature_differences(old, None) == ("signature: present -> none",)
    assert signature_differences(None, None) == ()


def test_complex_column_types_are_one_canonical_string() -> None:
    sig = _sig(
        [
            {
                "name": "messages",
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "required": True},
                        "content": {"type": "string", "required": False},
                    },
                },
            },
            {"name": "meta", "type": "map", "values": {"type": "double"}},
        ]
    )
    assert [s.type for s in sig.inputs if isinstance(s, ColumnSpec)] == [
        "array<object{content?: string, role: string}>",
        "map<string, double>",
    ]


BAD_FILES = [
    (b"signature: [unclosed", "m/MLmodel: not YAML: "),
    (b"- a\n- b\n", "m/MLmodel: the top level must be a mapping, got a list"),
    (b"flavors: 3\n", "m/MLmodel: flavors must be a mapping, got int"),
    (b"signature: 'x'\n", "m/MLmodel: signature must be a mapping, got str"),
    (
        b"signature:\n  inputs: [1]\n",
        "m/MLmodel: signature.inputs must be a JSON string, got a list",
    ),
    (b"signature:\n  inputs: '[{'\n", "m/MLmodel: signature.inputs is not JSON: "),
    (
        b"signature:\n  inputs: '{}'\n",
        "m/MLmodel: signature.inputs must be a JSON array, got object",
    ),
    (
        b"signature:\n  outputs: '[3]'\n",
        "m/MLmodel: signature.outputs[0] must be an object, got number",
    ),
    (b'signature:\n  inputs: \'[{"name": "a"}]\'\n', "m/MLmodel: signature.inputs[0] has no type"),
    (
        b'signature:\n  inputs: \'[{"type": "tensor"}]\'\n',
        "m/MLmodel: signature.inputs[0] is a tensor without a tensor-spec object",
    ),
    (
        b'signature:\n  inputs: \'[{"type": "tensor", '
        b'"tensor-spec": {"dtype": "f", "shape": "x"}}]\'\n',
        "m/MLmodel: signature.inputs[0].tensor-spec.shape must be an array of integers >= -1",
    ),
    (
        b'signature:\n  inputs: \'[{"type": "double", "name": "a"}, {"type": "tensor", '
        b'"tensor-spec": {"dtype": "f", "shape": [1]}}]\'\n',
        "m/MLmodel: signature.inputs mixes column and tensor specs",
    ),
    (
        b'signature:\n  inputs: \'[{"type": "double", "name": "a"}, {"type": "long"}]\'\n',
        "m/MLmodel: signature.inputs mixes named and unnamed specs",
    ),
    (
        b'signature:\n  inputs: \'[{"type": "double", "name": "a"}, '
        b'{"type": "long", "name": "a"}]\'\n',
        "m/MLmodel: signature.inputs repeats the name 'a'",
    ),
    (
        b'signature:\n  params: \'[{"name": "k"}]\'\n',
        "m/MLmodel: signature.params[0] needs a string name and dtype",
    ),
]


@pytest.mark.parametrize(("data", "start"), BAD_FILES, ids=[b[1][11:60] for b in BAD_FILES])
def test_malformed_mlmodel_gives_one_line(data: bytes, start: str) -> None:
    with pytest.raises(MLmodelError) as exc:
        parse_mlmodel(data, source="m/MLmodel")
    assert one_line(exc).startswith(start)


def test_yaml_error_names_the_line() -> None:
    with pytest.raises(MLmodelError) as exc:
        parse_mlmodel(b"flavors:\n  a: 1\n b: 2\n", source="m/MLmodel")
    assert " at line 3 column 2" in one_line(exc)


@pytest.mark.parametrize("depth", [33, 5000, 1_000_000])
def test_deep_yaml_nesting_is_refused_quickly(depth: int) -> None:
    with pytest.raises(MLmodelError) as exc:
        parse_mlmodel(b"flavors: " + b"[" * depth + b"]" * depth)
    message = one_line(exc)
    # ours at 33; libyaml stops at 1000 with its own words ("exceeded maximum nesting depth")
    assert message.startswith("MLmodel: ")
    assert "nesting" in message
    if depth == 33:
        assert message == "MLmodel: nesting is deeper than 32 levels"


def test_a_model_without_signature() -> None:
    model = parse_mlmodel(b"flavors:\n  sklearn: {}\nrun_id: abc\n")
    assert model.signature is None
    assert model.run_id == "abc"


def test_an_oversized_file_is_refused() -> None:
    with pytest.raises(MLmodelError) as exc:
        parse_mlmodel(b"#" * (4 * 1024 * 1024 + 1))
    assert one_line(exc) == "MLmodel: 4194305 bytes is over the 4194304 limit"
