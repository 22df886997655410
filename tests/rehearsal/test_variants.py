"""The rehearsal's failure variants: what each does to the worktree, and what a run
of it must have left besides failing at its stage (``make rehearse-failures``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.project import find_project
from pipeline.records.model import Rollback
from pipeline.records.stores import open_store
from pipeline.stacks.config import load_stack_config
from pipeline.verification.settings import policy_from_config
from rehearsal.__main__ import (
    UNMEETABLE_P95_MS,
    VARIANTS,
    apply_variant,
    second_change,
    stage_names,
    variant_problem,
)
from rehearsal.flow import Rehearsal, Run, on_hold, rolled_back_to

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def _check(stack: str, result: str) -> dict[str, Any]:
    return {"stack": stack, "result": result, "requests": 400.0, "p95_ms": 4.8}


def _data(
    verifications: list[dict[str, Any]],
    held: Mapping[str, bool | None],
    variant: str,
    *,
    pushed: tuple[str, ...] = (),
    rolled_back: str | None = None,
    prod_runs: str | None = None,
) -> dict[str, Any]:
    """The parts of a run's report that ``variant_problem`` reads."""
    return {
        "variant": variant,
        "verifications": verifications,
        "held": held,
        "pushed": list(pushed),
        "rolled_back": {"staging": None, "prod": rolled_back},
        "environments": [{"stack": "prod", "digest": prod_runs}],
    }


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


def test_prod_latency_run_that_rolled_prod_back_is_a_problem() -> None:
    data = _data([_check("prod", "failed")], {"prod": True}, "prod-latency", rolled_back=DIGEST_A)
    assert variant_problem(data) == f"prod was rolled back to {DIGEST_A}: hold only expected"


def _rollback_run(**changes: Any) -> dict[str, Any]:
    """A prod-rollback run as it must end, with ``changes`` to what it left."""
    facts: dict[str, Any] = {
        "pushed": (DIGEST_A, DIGEST_B),
        "rolled_back": DIGEST_A,
        "prod_runs": DIGEST_A,
    }
    facts.update(changes)
    checks = [_check("prod", "passed"), _check("prod", "failed")]
    return _data(checks, {"prod": True}, "prod-rollback", **facts)


def test_prod_rollback_run_must_return_prod_to_the_first_release() -> None:
    assert variant_problem(_rollback_run()) is None


def test_prod_rollback_run_that_returned_elsewhere_is_a_problem() -> None:
    assert variant_problem(_rollback_run(rolled_back=DIGEST_B)) == (
        f"prod was rolled back to {DIGEST_B}, not to {DIGEST_A}"
    )


def test_prod_rollback_run_that_did_not_roll_back_is_a_problem() -> None:
    assert variant_problem(_rollback_run(rolled_back=None)) == (
        f"prod was rolled back to None, not to {DIGEST_A}"
    )


def test_prod_rollback_run_whose_prod_still_runs_the_second_release_is_a_problem() -> None:
    # The file was rolled back but the redeploy did not happen (or failed).
    assert variant_problem(_rollback_run(prod_runs=DIGEST_B)) == (
        f"prod runs {DIGEST_B} after the rollback, not {DIGEST_A}"
    )


def test_prod_rollback_run_needs_two_different_images() -> None:
    problem = variant_problem(_rollback_run(pushed=(DIGEST_A, DIGEST_A)))
    assert problem == f"the two releases did not push two images (pushed {[DIGEST_A, DIGEST_A]})"


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


def _recorded_run(tmp_path: Path, project_root: Path) -> Rehearsal:
    """A rehearsal whose worktree is a copy of the project and whose store exists."""
    run = Run(project_root, tmp_path / "rehearsal")
    run.worktree.mkdir(parents=True)
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        shutil.copy(project_root / name, run.worktree / name)
    return Rehearsal(run)


def _pipeline(rehearsal: Rehearsal, *args: str) -> None:
    store = str(rehearsal.run.root / "records.db")
    subprocess.run(
        [sys.executable, "-m", "pipeline", "--store", store, *args],
        cwd=rehearsal.run.worktree,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_hold_and_rollback_are_read_from_the_runs_history(
    tmp_path: Path, project_root: Path
) -> None:
    rehearsal = _recorded_run(tmp_path, project_root)
    _pipeline(rehearsal, "hold", "prod", "--reason", "drill")
    assert on_hold(rehearsal.events("prod")) is True
    assert on_hold(rehearsal.events("staging")) is False
    _pipeline(rehearsal, "hold", "prod", "--release")
    assert on_hold(rehearsal.events("prod")) is False
    store = open_store(str(rehearsal.run.root / "records.db"), None)
    at = datetime.now(UTC) - timedelta(minutes=1)
    store.add_many([Rollback("prod", DIGEST_B, DIGEST_A, f"r/m@{DIGEST_A}", at, "verify")])
    assert rolled_back_to(rehearsal.events("prod")) == DIGEST_A
    assert rolled_back_to(rehearsal.events("staging")) is None


def test_no_store_yet_is_no_hold_and_no_rollback(tmp_path: Path, project_root: Path) -> None:
    events = _recorded_run(tmp_path, project_root).events("prod")
    assert events == []
    assert on_hold(events) is False
    assert rolled_back_to(events) is None


def test_a_history_that_cannot_be_read_is_unknown(tmp_path: Path, project_root: Path) -> None:
    rehearsal = _recorded_run(tmp_path, project_root)
    (rehearsal.run.root / "records.db").write_text("not a database")
    assert rehearsal.events("prod") is None
    assert on_hold(None) is None
    assert rolled_back_to(None) is None


def test_every_variant_is_rehearsed_and_expected_to_fail_at_one_of_its_stages(
    project_root: Path,
) -> None:
    makefile = (project_root / "Makefile").read_text()
    expected = re.findall(r'-m rehearsal --variant (\S+) --expect-failure "([^"]+)"', makefile)
    assert sorted(variant for variant, _ in expected) == sorted(VARIANTS)
    for variant, stage in expected:
        assert stage in stage_names(variant), (variant, stage)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_the_second_change_is_one_commit_of_the_server_and_prods_limit(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(project_root, tmp_path / "rehearsal", variant="prod-rollback")
    worktree = run.worktree
    (worktree / "model" / "model_server").mkdir(parents=True)
    shutil.copy(
        project_root / "model" / "model_server" / "__init__.py",
        worktree / "model" / "model_server" / "__init__.py",
    )
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(project_root / name, worktree / name)
    _git(worktree, "init", "--quiet")
    _git(worktree, "add", ".")
    _git(worktree, "commit", "--quiet", "-m", "first")
    first = _git(worktree, "rev-parse", "HEAD")
    # A caller's git environment must not send the commit elsewhere.
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    said = second_change(Rehearsal(run))
    monkeypatch.delenv("GIT_DIR")
    second = _git(worktree, "rev-parse", "HEAD")
    assert said == f"commit {second[:12]}"
    assert _git(worktree, "rev-parse", "HEAD~1") == first
    changed = _git(worktree, "diff", "--name-only", "HEAD~1", "HEAD").splitlines()
    assert sorted(changed) == ["Pulumi.prod.yaml", "model/model_server/__init__.py"]
    assert _git(worktree, "status", "--porcelain") == ""
    cfg = load_stack_config(find_project(str(worktree)), "prod")
    assert policy_from_config(cfg.get("verification"), "prod").max_p95_ms == UNMEETABLE_P95_MS
