"""What the issue asks of promotion, through the CLI on real files, a real registry and real
scan reports: findings refuse until waived (a later clean report erases nothing), a worse
or incompatible model is refused and a better one promoted, and a rolled-back digest
stays out until re-admitted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.cli import main
from pipeline.commands.adapters import Adapters
from pipeline.project import Project
from pipeline.records.model import Hold, Rollback
from pipeline.records.stores import open_store
from pipeline.stacks.stackfile import read_image
from tests.conftest import SHARED_FIXTURES
from tests.pipeline.evidencekit import fixture_bytes
from tests.pipeline.test_promote_cli import (
    Setup,
    gate_rows,
    model_card,
    promote,
    setup,
)

__all__ = ["setup"]  # the fixture, imported

CRITICAL_TRIVY = "scan/trivy/debian-buster.json.golden"  # CVE-2019-18224 critical
CLEAN_TRIVY = "scan/trivy/sl-micro-rancher5.4.json.golden"
CRITICAL_GRYPE = "scan/grype/TestJsonImgsPresenter.golden"  # CVE-1999-0002 critical


def report(relative: str) -> str:
    fixture_bytes(relative)  # skips when ../shared/fixtures is absent
    return str(SHARED_FIXTURES / relative)


def cli(setup: Setup, *argv: str, adapters: Adapters | None = None) -> int:
    return main(["--project-dir", str(setup.root), *argv], adapters)


def scanned(setup: Setup, relative: str) -> None:
    assert (
        cli(setup, "record", "scan", "--image", setup.image, "--scan-report", report(relative)) == 0
    )


def candidate(setup: Setup) -> None:
    """staging ran v1 two hours ago; its CI run passed and recorded its model card."""
    setup.add(setup.deployed(), setup.built(scan_critical=None, scan_high=None))


def row(out: str, gate: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"{gate} "))


@pytest.mark.parametrize("relative", [CRITICAL_TRIVY, CRITICAL_GRYPE], ids=["trivy", "grype"])
def test_a_critical_finding_refuses_and_a_later_clean_report_does_not_erase_it(
    setup: Setup, capsys: pytest.CaptureFixture[str], relative: str
) -> None:
    candidate(setup)
    scanned(setup, relative)
    before = setup.prod.read_bytes()
    capsys.readouterr()
    assert promote(setup) == 3
    captured = capsys.readouterr()
    assert [g for g, s in gate_rows(captured.out).items() if s == "FAIL"] == ["vulnerabilities"]
    assert "refused by vulnerabilities" in captured.err
    scanned(setup, CLEAN_TRIVY)  # a rescan that finds nothing
    capsys.readouterr()
    assert promote(setup) == 3
    out = capsys.readouterr().out
    assert "2 scan(s)" in row(out, "vulnerabilities")
    assert "1 at critical or above" in row(out, "vulnerabilities")
    assert setup.prod.read_bytes() == before
    assert setup.promotions() == []


def test_a_waiver_with_a_reason_lets_the_finding_through_until_it_expires(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate(setup)
    scanned(setup, CRITICAL_TRIVY)
    expires = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    digest = setup.images.v1.digest
    waive = ["waive", digest, "--finding", "CVE-2019-18224", "--reason", "libidn2 not reachable"]
    assert cli(setup, *waive, "--expires", expires) == 0
    assert "waived CVE-2019-18224 for sha256:" in capsys.readouterr().out
    # After it expires, the same evidence refuses again.
    later = Adapters(now=lambda: datetime.now(UTC) + timedelta(days=3))
    assert (
        cli(setup, "promote", "--from", "staging", "--to", "prod", "--dry-run", adapters=later) == 3
    )
    assert "expired: waiver of CVE-2019-18224" in row(capsys.readouterr().out, "vulnerabilities")
    assert promote(setup) == 0
    out = capsys.readouterr().out
    assert "waived: CVE-2019-18224 until" in row(out, "vulnerabilities")
    assert "(libidn2 not reachable)" in row(out, "vulnerabilities")
    assert read_image(setup.prod).digest == digest
    assert cli(setup, "history", "prod") == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if " waive " in ln]
    assert f"CVE-2019-18224 until {expires} 00:00: libidn2 not reachable" in line


def test_a_waiver_needs_the_finding_in_a_scan_of_that_digest(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate(setup)
    scanned(setup, CRITICAL_TRIVY)
    other = "sha256:" + "e" * 64
    soon = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    args = ["--finding", "CVE-2019-18224", "--reason", "r", "--expires", soon]
    assert cli(setup, "waive", other, *args) == 1
    assert "in no recorded scan of sha256:eeeeeeeeeeee" in capsys.readouterr().err
    assert cli(setup, "waive", setup.images.v1.digest, *args[:2], "--reason", " ", *args[4:]) == 2


def test_a_candidate_less_accurate_than_the_model_in_prod_is_refused(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.add(setup.deployed(), setup.built(), cards=False)
    setup.add(model_card(setup.images.v1.digest, accuracy=0.9601, version="1.1.0"))
    assert promote(setup) == 3
    out = capsys.readouterr().out
    assert row(out, "model-quality").split()[1] == "FAIL"
    assert "accuracy 0.9601 vs 0.9733 in prod (needs >= 0.9683)" in row(out, "model-quality")
    # The two models side by side.
    assert "MODEL            CANDIDATE (staging)      CURRENT (prod)" in out
    assert "accuracy         0.9601                   0.9733" in out


def test_a_candidate_with_another_signature_is_refused_showing_what_differs(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.add(setup.deployed(), setup.built(), cards=False)
    inputs = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 256]}}]'
    setup.add(model_card(setup.images.v1.digest, inputs=inputs, version="1.1.0"))
    assert promote(setup) == 3
    out = capsys.readouterr().out
    assert row(out, "model-compatible").split()[1] == "FAIL"
    assert "input #1: tensor float64 [-1, 64] -> tensor float64 [-1, 256]" in out
    assert "tensor float64 [-1, 256]  tensor float64 [-1, 64]" in out  # inputs, side by side


def test_a_better_compatible_model_is_promoted(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.add(setup.deployed(), setup.built(), cards=False)
    setup.add(model_card(setup.images.v1.digest, accuracy=0.9801, version="1.1.0"))
    assert promote(setup) == 0
    out = capsys.readouterr().out
    assert "accuracy 0.9801 vs 0.9733 in prod" in row(out, "model-quality")
    assert "signature unchanged" in row(out, "model-compatible")
    assert read_image(setup.prod).digest == setup.images.v1.digest


def test_a_skipped_model_gate_is_recorded(setup: Setup) -> None:
    setup.add(setup.deployed(), setup.built(), cards=False)  # no card at all
    assert promote(setup) == 3
    assert promote(setup, "--skip-gate", "model-quality", "--skip-gate", "model-compatible") == 0
    (promotion,) = setup.promotions()
    assert promotion.skipped_gates == ("model-quality", "model-compatible")  # type: ignore[attr-defined]


def test_a_rolled_back_digest_is_refused_until_readmitted_and_the_readmission_recorded(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    v1 = setup.images.v1.digest
    setup.add(
        setup.deployed(),
        setup.built(),
        Rollback(
            "prod", v1, "sha256:" + "9" * 64, setup.image, now - timedelta(hours=1), actor="ana"
        ),
        Hold("prod", "placed", now - timedelta(hours=1), "rolled back"),
        Hold("prod", "released", now - timedelta(minutes=30)),
    )
    assert promote(setup) == 3
    out = capsys.readouterr().out
    assert "rolled back from prod" in row(out, "not-rejected")
    assert promote(setup, "--readmit", "OOM fixed by the new memoryLimit") == 0
    out = capsys.readouterr().out
    assert "re-admitted now (OOM fixed by the new memoryLimit)" in row(out, "not-rejected")
    assert "re-admitted (OOM fixed by the new memoryLimit)" in out
    store = open_store(None, Project(setup.root))
    try:
        (readmission,) = store.readmissions("prod")
    finally:
        store.close()
    assert (readmission.digest, readmission.reason) == (v1, "OOM fixed by the new memoryLimit")
    assert cli(setup, "history", "prod") == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if " readmit " in ln]
    assert "digits 1.0.0 (0.9733)  OOM fixed by the new memoryLimit" in line


def test_the_model_table_shows_what_the_gates_judge() -> None:
    from pipeline.commands.promote_evidence import model_table
    from pipeline.promotion.gates import PromotionFacts, policy_from_config
    from tests.pipeline.recordkit import DIGEST_A, DIGEST_B, model_card

    facts = PromotionFacts(
        source_stack="staging",
        target_stack="prod",
        now=datetime.now(UTC),
        policy=policy_from_config({}, "prod"),
        source_deployments=(),
        # The candidate by its worst card, the current model by its newest.
        candidate_cards=(
            model_card(DIGEST_A, accuracy=0.95, latency_p95_ms=9.0),
            model_card(DIGEST_A, accuracy=0.96, latency_p95_ms=0.05),
        ),
        current_digest=DIGEST_B,
        current_cards=(model_card(DIGEST_B, accuracy=0.80), model_card(DIGEST_B, accuracy=0.97)),
    )
    table = model_table(facts, DIGEST_A) or ""
    accuracy = next(line for line in table.splitlines() if line.startswith("accuracy"))
    assert "0.9500 (lowest of 2)" in accuracy
    assert "0.9700" in accuracy
    assert "0.8000" not in accuracy
    latency = next(line for line in table.splitlines() if line.startswith("latency"))
    assert "/ 9 ms" in latency
