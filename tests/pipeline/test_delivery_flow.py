"""A day of delivery, through the CLI only: the commands a Jenkins job and an operator run.

Real stack files (copies), a real registry, the default SQLite record store.
set-image -> record ci (with the image's model card) -> record deploy -> promote ->
(next image, a better model) -> a failed prod deploy -> rollback (which holds prod)
-> promote refused -> hold released -> still refused: the rolled-back digest is
rejected -> history and metrics over what happened.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.stacks.stackfile import read_image
from tests.pipeline.recordkit import CLASSES_OUT, PIXELS_IN
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

    def built(self, tag: str, commit: str, hours_ago: float, accuracy: float) -> None:
        card = self.root / f"model-card-{tag}.json"
        card.write_text(json.dumps({
            "model": {"name": "digits", "version": f"1.{tag[1:]}.0"},
            "metrics": {"accuracy": accuracy},
            "signature": {"inputs": PIXELS_IN, "outputs": CLASSES_OUT},
        }))  # fmt: skip
        self.ok(
            "record", "ci", "--image", self.ref(tag), "--commit", commit,
            "--started", at(hours_ago), "--build-seconds", "1200", "--test-seconds", "1800",
            "--passed", "40", "--failed", "0", "--errors", "0", "--skipped", "2",
            "--scan-critical", "0", "--scan-high", "0", "--model-card", str(card),
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
    flow.built("v1", "commit-v1", hours_ago=8, accuracy=0.9711)
    flow.ok("set-image", "staging", f"{flow.images.name}:v1")
    assert flow.digest("staging") == v1
    flow.deployed("staging", "v1", "succeeded", hours_ago=7)
    # prod has never run a model: nothing to compare the card with, so the model gates
    # refuse until skipped (and the promotion records that they were). Staging requires a
    # verification, which needs a Prometheus: that stage runs end to end in
    # tests/monitoring/test_live.py; here the gate is skipped, and the skip recorded.
    code, out, err = flow.run("promote", "--from", "staging", "--to", "prod", *UNVERIFIED)
    assert code == 3
    assert "refused by model-quality, model-compatible" in err
    flow.ok("promote", "--from", "staging", "--to", "prod", *UNVERIFIED, "--skip-gate",
            "model-quality", "--skip-gate", "model-compatible")  # fmt: skip
    assert flow.digest("prod") == v1
    flow.deployed("prod", "v1", "succeeded", hours_ago=6)

    # v2 the same way, but its prod deployment fails.
    flow.built("v2", "commit-v2", hours_ago=5, accuracy=0.9733)
    flow.ok("set-image", "staging", "v2")  # a bare tag: the stack's repository
    assert flow.digest("staging") == v2
    flow.deployed("staging", "v2", "succeeded", hours_ago=4)
    # a better model, same inputs
    out = flow.ok("promote", "--from", "staging", "--to", "prod", *UNVERIFIED)
    assert "accuracy 0.9733 vs 0.9711 in prod (needs >= 0.9661)" in out
    assert flow.digest("prod") == v2
    flow.deployed("prod", "v2", "failed", hours_ago=3)

    # Roll prod back to the last good digest; the hold keeps promote from undoing it.
    flow.ok("rollback", "prod")
    assert flow.digest("prod") == v1
    before = (flow.root / "Pulumi.prod.yaml").read_bytes()
    code, out, err = flow.run("promote", "--from", "staging", "--to", "prod", *UNVERIFIED)
    assert code == 3
    assert any(line.split()[:2] == ["not-on-hold", "FAIL"] for line in out.splitlines() if line)
    assert "refused by not-rejected, not-on-hold" in err  # rolled back, and held
    assert (flow.root / "Pulumi.prod.yaml").read_bytes() == before
    flow.deployed("prod", "v1", "succeeded", hours_ago=2)
    flow.ok("hold", "prod", "--release")
    # Released, yet v2 was rolled back from prod: refused until someone re-admits it.
    code, out, err = flow.run("promote", "--from", "staging", "--to", "prod", *UNVERIFIED)
    assert (code, err.split("refused by ")[1].split(";")[0]) == (3, "not-rejected")
    assert (flow.root / "Pulumi.prod.yaml").read_bytes() == before

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
    # Each digest's model, from the card its CI run recorded.
    assert [d["model"]["version"] for d in deployments] == ["1.1.0", "1.2.0", "1.1.0"]
    assert deployments[1]["model"] == {"name": "digits", "version": "1.2.0", "accuracy": 0.9733}
    table = flow.ok("history", "prod").splitlines()
    assert table[0].split() == ["TIME", "(UTC)", "EVENT", "DIGEST", "MODEL", "DETAIL"]
    promoted = [line for line in table if " promote " in line]
    assert "digits 1.2.0 (0.9733)" in promoted[0]
    assert "digits 1.1.0 (0.9711)" in promoted[1]
    assert "skipped verified, model-quality, model-compatible" in promoted[1]

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

    # M_CD per model version: the model whose prod deployment failed shows it.
    args = ("metrics", "--stack", "prod", "--format", "json", "--by-model")
    by_model = json.loads(flow.ok(*args))["by_model"]
    assert [(m["model"], m["m_cd"], m["deployments"]) for m in by_model] == [
        ("digits 1.1.0", 1.0, 2),
        ("digits 1.2.0", 0.0, 1),
    ]
    table = flow.ok("metrics", "--stack", "prod", "--by-model").splitlines()
    start = table.index("M_CD by model version")
    assert table[start + 2].split() == ["digits", "1.1.0", "1.000", "1.000", "1.000", "1", "2"]
