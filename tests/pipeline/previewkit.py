"""A `pulumi preview --json` document of any size, for the size-limit tests and the benchmark."""

from __future__ import annotations

from typing import Any


def huge_preview(
    resources: int, props: int, width: int, stack: str = "prod", same: int = 4
) -> dict[str, Any]:
    """``resources`` ConfigMap updates of ``props`` keys each, values ``width`` characters long."""
    steps = []
    for i in range(resources):
        urn = f"urn:pulumi:{stack}::cv-platform::kubernetes:core/v1:ConfigMap::settings-{i:04d}"
        old = {f"k{j}": "o" * width for j in range(props)}
        new = {f"k{j}": "n" * width for j in range(props)}
        steps.append(
            {
                "op": "update",
                "urn": urn,
                "oldState": {
                    "urn": urn,
                    "type": "kubernetes:core/v1:ConfigMap",
                    "inputs": {"data": old},
                },
                "newState": {
                    "urn": urn,
                    "type": "kubernetes:core/v1:ConfigMap",
                    "inputs": {"data": new},
                },
                "diffReasons": ["data"],
                "detailedDiff": {
                    f"data.k{j}": {"kind": "update", "inputDiff": True} for j in range(props)
                },
            }
        )
    return {"steps": steps, "changeSummary": {"update": resources, "same": same}}
