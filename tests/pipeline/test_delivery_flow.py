"""A day of delivery, through the CLI only: the commands a Jenkins job and an operator run.

Real stack files (copies), a real registry, the default SQLite record store.
set-image -> record ci -> record deploy -> promote -> (next image) -> a failed
prod deploy -> rollback (which holds prod) -> promote refused -> hold released
-> history and metrics over what happened.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.stacks.stackfile import read_image
from tests.registry_fixture import PushedImages

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


class Flow:
    def __init__(self, root: Path, images: PushedImages, capsys: pytest.CaptureFixture[str]):
        self.root = root
        self.images = images
        self.capsys = capsys

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--project-dir", str(self.root), *argv])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def ok(self, *argv: str) -> str:
        code, out, err = self.run(*argv)
        assert code == 0, (argv, err)
        return out

    def ref(self, tag: str) -> str:
        digest = getattr(self.images, tag).digest
        return f"{self.images.name}:{tag}@{digest}"

    def built(self, tag: str, commit: str, hours_ago: float) -> None:
        self.ok(
            "record", "ci", "--image", self.ref(tag), "--commit", commit,
            "--started", at(hours_ago), "--build-seconds", "1200", "--test-seconds", "1800",
            "--passed", "40", "--failed", "0", "--errors", "0", "--skipped", "2",
            "--scan-critical", "0", "--scan-high", "0",
        )  # fmt: skip

    def deployed(self, stack: str, tag: str, result: str, hours_ago: float) -> None:
        self.ok(
            "record", "deploy", "--stack", stack, "--result", result, "--image", self.ref(tag),
            "--started", at(hours_ago), "--finished", at(hours_ago - 1 / 6),
            "--commit", f"commit-{tag}",
        )  # fmt: skip

    def digest(self, stack: str) -> str | None:
        return read_image(self.root / f"Pulumi.{stack}.yaml").digest


@pytest.fixture
def flow(
    tmp_path: Path,
    registry_images: PushedImages,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Flow:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        (root / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    monkeypatch.setenv(
        "DOCKER_CONFIG", str(registry_images.server.docker_config(tmp_path / "docker"))
    )
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    monkeypatch.setenv("PIPELINE_ACTOR", "ci-bot")
    return Flow(root, registry_images, capsys)


UNVERIFIED = ("--skip-gate", "verified")


def test_a_day_of_delivery_through_the_cli(flow: Flow) -> None:
    v1, v2 = flow.images.v1.digest, flow.images.v2.digest

    # Build v1, pin staging to it by tag, deploy, promote to prod, deploy prod.
    flow.built("v1", "commit-v1", hours_ago=8)
    flow.ok("set-image", "staging", f"{flow.images.name}:v1")
    assert flow.digest("staging") == v1
    flow.deployed("staging", "v1", "succeeded", hours_ago=7)
    # Staging requires a verification, which needs a Prometheus: that stage runs end to end
    # in tests/monitoring/test_live.py; here the gate is skipped, and the skip recorded.
    flow.ok("promote", "--from", "staging", "--to", "prod", *UNVERIFIED)
    assert flow.digest("prod") == v1
    flow.deployed("prod", "v1", "succeeded", hours_ago=6)

    # v2 the same way, but its prod deployment fails.
    flow.built("v2", "commit-v2", hours_ago=5)
    flow.ok("set-image", "staging", "v2")  # a bare tag: the stack's repository
    assert flow.digest("staging") == v2
    flow.deployed("staging", "v2", "succeeded", hours_ago=4)
    flow.ok("promote", "--from", "staging", "--to", "prod", *UNVERIFIED)
    assert flow.digest("prod") == v2
    flow.deployed("prod", "v2", "failed", hours_ago=3)

    # Roll prod back to the last good digest; the hold keeps promote from undoing it.
    flow.ok("rollback", "prod")
    assert flow.digest("prod") == v1
    before = (flow.root / "Pulumi.prod.yaml").read_bytes()
    code, out, err = flow.run("promote", "--from", "staging", "--to", "prod", *UNVERIFIED)
    assert code == 3
    assert any(line.split()[:2] == ["not-on-hold", "FAIL"] for line in out.splitlines() if line)
    assert "refused by not-on-hold" in err
    assert (flow.root / "Pulumi.prod.yaml").read_bytes() == before
    flow.deployed("prod", "v1", "succeeded", hours_ago=2)
    flow.ok("hold", "prod", "--release")

    # History, newest first (deployments were recorded with past times, the rest now).
    history = json.loads(flow.ok("history", "prod", "--json", "--limit", "20"))
    events = [entry["event"] for entry in history]
    assert (events[0], history[0]["action"]) == ("hold", "released")
    assert sorted(events) == sorted(
        ["hold", "hold", "rollback", "promotion", "promotion", *["deployment"] * 3]
    )
    rollback = next(entry for entry in history if entry["event"] == "rollback")
    assert (rollback["from_digest"], rollback["to_digest"]) == (v2, v1)
    assert rollback["actor"] == "ci-bot"
    deployments = [entry for entry in history if entry["event"] == "deployment"]
    assert [d["digest"] for d in deployments] == [v1, v2, v1]  # newest first

    # Metrics over prod: builds 20 min, tests 30 min, deploys 10 min -> M_CI 20.
    metrics = json.loads(flow.ok("metrics", "--stack", "prod", "--format", "json"))
    assert metrics["t_c_minutes"] == pytest.approx(20)
    assert metrics["t_t_minutes"] == pytest.approx(30)
    assert metrics["t_d_minutes"] == pytest.approx(10)
    assert metrics["m_ci_minutes"] == pytest.approx(20)
    assert metrics["p_t"] == pytest.approx(1.0)
    assert metrics["p_d"] == pytest.approx(2 / 3)
    assert metrics["m_cd"] == pytest.approx(2 / 3)
    assert metrics["deployments"] == 3
