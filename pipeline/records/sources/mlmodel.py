"""The signature of an MLflow ``MLmodel`` file, as stored and as a comparable view.

MLflow writes ``signature.inputs``, ``signature.outputs`` and (MLflow >= 2.6)
``signature.params`` as JSON strings inside the YAML. ``Signature`` keeps those
strings exactly as read (``inputs_json``, ...) and parses them:

* column-based: ``[{"name": "x", "type": "double"}, ...]``; ``name`` may be
  absent (positional) or, in files from old MLflow, an integer; ``required``
  (MLflow >= 2.10; default true) is kept; ``type`` is a scalar name ("double",
  "long", "string", ...) or, MLflow >= 2.10, an array/object/map/any spec, kept
  as one canonical string ("array<object{content: string, role: string}>").
* tensor-based: ``[{"type": "tensor", "tensor-spec": {"dtype": "float64",
  "shape": [-1, 4]}}]``, optionally named.
* params: ``[{"name": "batch_size", "dtype": "long", "default": 16, "shape": null}]``.

A spec list mixing columns and tensors, or named and unnamed entries, or
repeating a name, is refused (MLflow refuses to build such a schema too).
``pipeline.promotion.signatures.signature_differences`` says how two differ.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from pipeline.errors import PipelineError
from pipeline.records.sources.strict_json import JsonInputError, json_type, load_json, one_line

MAX_MLMODEL_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32  # real files nest about 5 deep
# libyaml when PyYAML was built with it: the same results, about 5x faster.
_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)

Name = str | int | None


class MLmodelError(PipelineError):
    """An MLmodel file (or a signature string) that cannot be read; one line."""


@dataclass(frozen=True)
class ColumnSpec:
    name: Name
    type: str
    required: bool = True

    def describe(self) -> str:
        return self.type if self.required else f"{self.type} (optional)"


@dataclass(frozen=True)
class TensorSpec:
    name: Name
    dtype: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        return f"tensor {self.dtype} {list(self.shape)}"


Spec = ColumnSpec | TensorSpec


@dataclass(frozen=True)
class ParamSpec:
    name: str
    dtype: str
    default: object  # a JSON value
    shape: tuple[int, ...] | None

    def describe(self) -> str:
        shape = "" if self.shape is None else f" {list(self.shape)}"
        return f"{self.dtype}{shape} default {json.dumps(self.default)}"


@dataclass(frozen=True)
class Signature:
    inputs_json: str | None  # exactly as stored in the MLmodel file
    outputs_json: str | None
    params_json: str | None
    inputs: tuple[Spec, ...]
    outputs: tuple[Spec, ...]
    params: tuple[ParamSpec, ...]


@dataclass(frozen=True)
class MLmodel:
    signature: Signature | None  # None: the model was logged without one
    flavors: tuple[str, ...]
    mlflow_version: str | None
    model_uuid: str | None
    run_id: str | None
    utc_time_created: str | None


def parse_mlmodel(data: bytes | str, *, source: str = "MLmodel") -> MLmodel:
    """Read an MLmodel file (YAML); ``source`` names it in error messages."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_MLMODEL_BYTES:
        raise MLmodelError(f"{source}: {size} bytes is over the {MAX_MLMODEL_BYTES} limit")
    try:
        _check_depth(data, source)
        doc = yaml.load(data, Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise MLmodelError(f"{source}: not YAML: {exc.problem}{where}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MLmodelError(f"{source}: not YAML: {one_line(str(exc), 120)}") from None
    if not isinstance(doc, dict):
        raise MLmodelError(f"{source}: the top level must be a mapping, got {_yaml_type(doc)}")
    flavors = doc.get("flavors")
    if flavors is not None and not isinstance(flavors, dict):
        raise MLmodelError(f"{source}: flavors must be a mapping, got {_yaml_type(flavors)}")
    raw_signature = doc.get("signature")
    signature = None
    if raw_signature is not None:
        if not isinstance(raw_signature, dict):
            got = _yaml_type(raw_signature)
            raise MLmodelError(f"{source}: signature must be a mapping, got {got}")
        signature = parse_signature(raw_signature, source=source)
    return MLmodel(
        signature=signature,
        flavors=tuple(str(name) for name in flavors or {}),
        mlflow_version=_scalar(doc.get("mlflow_version")),
        model_uuid=_scalar(doc.get("model_uuid")),
        run_id=_scalar(doc.get("run_id")),
        utc_time_created=_scalar(doc.get("utc_time_created")),
    )


def _check_depth(data: bytes | str, source: str) -> None:
    """Refuse deep nesting from the event stream (iterative), before PyYAML's constructor
    recurses (it fails near 500 levels and takes seconds to)."""
    depth = 0
    for event in yaml.parse(data, Loader=_LOADER):
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise MLmodelError(f"{source}: nesting is deeper than {MAX_DEPTH} levels")
        elif isinstance(event, _CLOSE):
            depth -= 1


def parse_signature(raw: Mapping[str, object], *, source: str = "signature") -> Signature:
    """A signature from its stored form: {"inputs": str, "outputs": str, "params": str}."""
    texts: dict[str, str | None] = {}
    for key in ("inputs", "outputs", "params"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            got = _yaml_type(value)
            raise MLmodelError(f"{source}: signature.{key} must be a JSON string, got {got}")
        texts[key] = value
    return Signature(
        inputs_json=texts["inputs"],
        outputs_json=texts["outputs"],
        params_json=texts["params"],
        inputs=parse_specs(texts["inputs"], f"{source}: signature.inputs"),
        outputs=parse_specs(texts["outputs"], f"{source}: signature.outputs"),
        params=_params(texts["params"], f"{source}: signature.params"),
    )


def parse_specs(text: str | None, where: str) -> tuple[Spec, ...]:
    """A column- or tensor-based spec list from MLflow's JSON (None: no schema)."""
    specs = tuple(_spec(item, f"{where}[{i}]") for i, item in enumerate(_json_list(text, where)))
    kinds = {type(s) for s in specs}
    if len(kinds) > 1:
        raise MLmodelError(f"{where} mixes column and tensor specs")
    names = [s.name for s in specs]
    if None in names and any(n is not None for n in names):
        raise MLmodelError(f"{where} mixes named and unnamed specs")
    repeated = sorted(label(n) for n, seen in Counter(names).items() if n is not None and seen > 1)
    if repeated:
        raise MLmodelError(f"{where} repeats the name {repeated[0]}")
    return specs


def _json_list(text: str | None, where: str) -> list[object]:
    if text is None:
        return []
    try:
        value = load_json(text.encode(), max_bytes=MAX_MLMODEL_BYTES, max_depth=MAX_DEPTH)
    except JsonInputError as exc:
        text_ = str(exc)
        raise MLmodelError(
            f"{where} is {text_}" if text_.startswith("not ") else f"{where}: {text_}"
        ) from None
    if not isinstance(value, list):
        raise MLmodelError(f"{where} must be a JSON array, got {json_type(value)}")
    return value


def _spec(item: object, where: str) -> Spec:
    if not isinstance(item, dict):
        raise MLmodelError(f"{where} must be an object, got {json_type(item)}")
    name = item.get("name")
    if name is not None and (not isinstance(name, str | int) or isinstance(name, bool)):
        raise MLmodelError(f"{where}.name must be a string, got {json_type(name)}")
    if item.get("type") == "tensor":
        spec = item.get("tensor-spec")
        if not isinstance(spec, dict):
            raise MLmodelError(f"{where} is a tensor without a tensor-spec object")
        dtype = spec.get("dtype")
        if not isinstance(dtype, str) or not dtype:
            raise MLmodelError(f"{where}.tensor-spec.dtype must be a string")
        return TensorSpec(name, dtype, _shape(spec.get("shape"), f"{where}.tensor-spec.shape"))
    required = item.get("required", not item.get("optional", False))
    if not isinstance(required, bool):
        raise MLmodelError(f"{where}.required must be true or false, got {json_type(required)}")
    return ColumnSpec(name, _type_name(item, where), required)


def _type_name(item: Mapping[str, object], where: str) -> str:
    """A column type as one canonical string (scalar name, or array/object/map/any)."""
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        raise MLmodelError(f"{where} has no type (got {json_type(kind)})")
    if kind == "array":
        items = item.get("items")
        if not isinstance(items, dict):
            raise MLmodelError(f"{where} is an array without an items object")
        return f"array<{_type_name(items, f'{where}.items')}>"
    if kind == "map":
        values = item.get("values")
        if not isinstance(values, dict):
            raise MLmodelError(f"{where} is a map without a values object")
        return f"map<string, {_type_name(values, f'{where}.values')}>"
    if kind == "object":
        props = item.get("properties")
        if not isinstance(props, dict) or not props:
            raise MLmodelError(f"{where} is an object without properties")
        fields = []
        for key in sorted(props):
            prop = props[key]
            if not isinstance(prop, dict):
                raise MLmodelError(f"{where}.properties.{key} must be an object")
            mark = "" if prop.get("required", True) else "?"
            fields.append(f"{key}{mark}: {_type_name(prop, f'{where}.properties.{key}')}")
        return "object{" + ", ".join(fields) + "}"
    return kind


def _shape(value: object, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in value
    ):
        raise MLmodelError(f"{where} must be an array of integers >= -1")
    return tuple(value)


def _params(text: str | None, where: str) -> tuple[ParamSpec, ...]:
    params: list[ParamSpec] = []
    for i, item in enumerate(_json_list(text, where)):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise MLmodelError(f"{at} must be an object, got {json_type(item)}")
        name, dtype = item.get("name"), item.get("dtype")
        if not isinstance(name, str) or not name or not isinstance(dtype, str) or not dtype:
            raise MLmodelError(f"{at} needs a string name and dtype")
        shape = item.get("shape")
        params.append(
            ParamSpec(
                name,
                dtype,
                item.get("default"),
                None if shape is None else _shape(shape, f"{at}.shape"),
            )
        )
    if len({p.name for p in params}) != len(params):
        raise MLmodelError(f"{where} repeats a name")
    return tuple(params)


def _scalar(value: object) -> str | None:
    return None if value is None else str(value)


def _yaml_type(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else type(value).__name__


def label(name: Name) -> str:
    """A spec name as shown in messages: 'x' for a string, 0 for an integer."""
    return repr(name) if isinstance(name, str) else str(name)
