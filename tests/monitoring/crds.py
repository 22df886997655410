"""Structural validation of custom resources against their CRD's openAPIV3Schema.

The CRDs are the Prometheus Operator's (v0.93.0), read in place from
``../shared/fixtures/crds``. The schema is checked with ``jsonschema`` (Draft 7,
which covers the OpenAPI v3 subset a structural schema uses), after turning the
Kubernetes extensions into their JSON-schema meaning: an object with
``properties`` admits no other field (the API server, with strict field
validation, refuses unknown fields) unless ``x-kubernetes-preserve-unknown-fields``;
``x-kubernetes-int-or-string`` is an integer or a string; ``nullable`` admits null.
CEL rules (``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.conftest import SHARED_FIXTURES

CRDS = SHARED_FIXTURES / "crds"


def _structural(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _structural(value) for key, value in schema.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_for(api_version: str, kind: str) -> tuple[str, Mapping[str, Any]]:
    """The CRD file name and the (structural) schema of ``kind`` at ``api_version``."""
    group, _, version = api_version.partition("/")
    for path in sorted(Path(CRDS).glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            spec = crd["spec"]
            if spec["group"] != group or spec["names"]["kind"] != kind:
                continue
            for served in spec["versions"]:
                if served["name"] == version:
                    return path.name, _structural(served["schema"]["openAPIV3Schema"])
    raise LookupError(f"no CRD for {kind} {api_version} in {CRDS}")


def problems(manifest: Mapping[str, Any]) -> list[str]:
    """Every way ``manifest`` breaks its CRD's schema, as "path: message"."""
    _, schema = crd_for(manifest["apiVersion"], manifest["kind"])
    validator = jsonschema.Draft7Validator(schema)
    found: Iterator[jsonschema.ValidationError] = validator.iter_errors(dict(manifest))
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in found
    )


__all__ = ["CRDS", "crd_for", "problems"]
