"""The rehearsal's failure variants: what each does to the worktree, and what a run
of it must have left besides failing at its stage (``make rehearse-failures``)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pipeline.project import find_project
from pipeline.stacks.config import load_stack_config
from pipeline.verification.settings import policy_from_config
from rehearsal.__main__ import UNMEETABLE_P95_MS, apply_variant, variant_problem
from rehearsal.flow import Rehearsal, Run


def _check(stack: str, result: str) -> dict[str, Any]:
    return {"stack": stack, "result": result, "requests": 400.0, "p95_ms": 4.8}


def _data(
    verifications: list[dict[str, Any]], held: Mapping[str, bool | None], variant: str
) -> dict[str, Any]:
    return {"variant": variant, "verifications": verifications, "held": held}


def test_prod_latency_run_must_fail_prods_verification_and_hold_it() -> None:
    checks = [_check("staging", "passed"), _check("prod", "failed")]
    held = {"staging": False, "prod": True}
    assert variant_problem(_data(checks, held, "prod-latency")) is None


def test_prod_latency_run_whose_prod_verification_passed_is_a_problem() -> None:
    checks = [_check("staging", "passed"), _check("prod", "passed")]
    problem = variant_problem(_data(checks, {"prod": True}, "prod-latency"))
    assert problem == "prod's verification was passed"


def test_prod_latency_run_without_a_prod_verification_is_a_problem() -> None:
    problem = variant_problem(_data([_check("staging", "passed")], {}, "prod-latency"))
    assert problem == "prod's verification was not recorded"


@pytest.mark.parametrize("held", [False, None])
def test_prod_latency_run_that_left_prod_unheld_is_a_problem(held: bool | None) -> None:
    checks = [_check("prod", "failed")]
    problem = variant_problem(_data(checks, {"prod": held}, "prod-latency"))
    assert problem == "prod is not on hold after its failed verification"


def test_the_deploy_variants_need_nothing_beyond_their_failed_stage() -> None:
    for variant in ("rootfs-write", "readiness-path"):
        assert variant_problem(_data([], {}, variant)) is None


def test_prod_latency_edit_gives_prod_a_limit_its_settings_accept(
    tmp_path: Path, project_root: Path
) -> None:
    run = Run(project_root, tmp_path / "rehearsal", variant="prod-latency")
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        run.worktree.mkdir(parents=True, exist_ok=True)
        shutil.copy(project_root / name, run.worktree / name)
    apply_variant(Rehearsal(run))
    cfg = load_stack_config(find_project(str(run.worktree)), "prod")
    policy = policy_from_config(cfg.get("verification"), "prod")
    assert policy.max_p95_ms == UNMEETABLE_P95_MS
    # The rest of prod's verification settings stay as committed.
    committed = load_stack_config(find_project(str(project_root)), "prod").get("verification")
    assert {k: v for k, v in cfg.get("verification").items() if k != "maxP95LatencyMs"} == (
        committed
    )
