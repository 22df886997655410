"""The ServiceMonitor and PrometheusRule both stacks declare pass the Prometheus
Operator's CRD schemas (v0.93.0, ../shared/fixtures/crds) structurally, and the check
itself refuses what the API server would."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.conftest import STACKS
from tests.monitoring.crds import crd_for, problems


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PrometheusRule"])
@pytest.mark.parametrize("stack", STACKS)
def test_the_objects_pass_their_crds_schema(
    crds: Path, stack_objects: dict[str, dict[str, dict[str, Any]]], stack: str, kind: str
) -> None:
    manifest = stack_objects[stack][kind]
    name, _ = crd_for(manifest["apiVersion"], kind)
    assert name == f"monitoring.coreos.com_{kind.lower()}s.yaml"
    assert problems(manifest) == []


def test_the_check_refuses_a_misspelt_field_a_bad_duration_and_a_wrong_type(
    crds: Path, stack_objects: dict[str, dict[str, dict[str, Any]]]
) -> None:
    rule = copy.deepcopy(stack_objects["staging"]["PrometheusRule"])
    alert = rule["spec"]["groups"][1]["rules"][0]
    alert["for"] = "5 minutes"
    alert["severity"] = "critical"  # belongs under labels
    alert["labels"] = ["severity"]
    found = problems(rule)
    assert len(found) == 3, found
    assert any("'5 minutes' does not match" in p for p in found)
    assert any("'severity' was unexpected" in p for p in found)
    assert any("is not of type 'object'" in p for p in found)


def test_the_check_refuses_a_monitor_without_endpoints_port_types(
    crds: Path, stack_objects: dict[str, dict[str, dict[str, Any]]]
) -> None:
    monitor = copy.deepcopy(stack_objects["prod"]["ServiceMonitor"])
    endpoint = monitor["spec"]["endpoints"][0]
    endpoint["honorLabels"] = "false"
    endpoint["metricRelabelings"][0]["action"] = "rename"
    del monitor["spec"]["selector"]
    found = problems(monitor)
    assert any(p.startswith("spec: 'selector' is a required property") for p in found), found
    assert any("honorLabels: 'false' is not of type 'boolean'" in p for p in found), found
    assert any("action: 'rename' is not one of" in p for p in found), found
