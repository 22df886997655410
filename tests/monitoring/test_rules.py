"""The PrometheusRule's groups pass ``promtool check rules`` in both stacks, and its
hand-written unit tests (rules_test.yaml) pass ``promtool test rules``: every alert
firing and not firing. The unit tests can fail: a changed threshold fails them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.monitoring.rules import RATIONALE, Budgets, rule_groups
from tests.monitoring.conftest import STACKS

HERE = Path(__file__).resolve().parent
TESTS = HERE / "rules_test.yaml"


def promtool_run(promtool: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *argv], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def write_rules(directory: Path, groups: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    (directory / TESTS.name).write_text(TESTS.read_text())
    return path


@pytest.mark.parametrize("stack", STACKS)
def test_the_stacks_rules_pass_promtool_check_rules(
    promtool: str, stack_objects: dict[str, dict[str, dict[str, Any]]], stack: str, tmp_path: Path
) -> None:
    groups = stack_objects[stack]["PrometheusRule"]["spec"]["groups"]
    path = write_rules(tmp_path, groups)
    done = promtool_run(promtool, "check", "rules", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 16 rules found" in done.stdout


def staging_groups(error_ratio: float = 0.05) -> list[dict[str, Any]]:
    return rule_groups("cv-staging", "model-server", "/predict", Budgets(error_ratio, 0.25, 0.5))


def test_the_rules_unit_tests_pass(promtool: str, tmp_path: Path) -> None:
    write_rules(tmp_path, staging_groups())
    done = promtool_run(promtool, "test", "rules", TESTS.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_unit_tests_fail_when_a_threshold_changes(promtool: str, tmp_path: Path) -> None:
    write_rules(tmp_path, staging_groups(error_ratio=0.2))
    done = promtool_run(promtool, "test", "rules", TESTS.name, cwd=tmp_path)
    assert done.returncode == 1
    assert "ModelServerHighErrorRatio" in done.stdout + done.stderr


def alerts() -> list[str]:
    return [r["alert"] for g in staging_groups() for r in g["rules"] if "alert" in r]


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert set(alerts()) == firing == quiet


def test_every_alert_has_a_severity_a_runbook_and_a_reason_for_its_for() -> None:
    assert set(alerts()) == set(RATIONALE)
    for group in staging_groups():
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            why = RATIONALE[rule["alert"]]
            assert why.startswith(rule["labels"]["severity"] + ", ")
            assert f"for {rule['for']}" in why if "for" in rule else "no for" in why
            assert set(rule["annotations"]) == {"summary", "description", "runbook"}
