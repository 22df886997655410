"""``record ci --scan-report/--model-card/--mlmodel`` and ``record scan``: real reports and
MLmodel files read in place, every finding kept, and bad input refused with one line
and nothing stored."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.project import Project
from pipeline.records.model import ModelCard, Scan
from pipeline.records.sources.mlmodel import parse_mlmodel
from pipeline.records.stores import open_store
from tests.conftest import SHARED_FIXTURES
from tests.pipeline.evidencekit import fixture_bytes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "4d" * 32
IMAGE = f"registry.example.internal/cv/model:4e1d07c@{DIGEST}"
CI = ["record", "ci", "--image", IMAGE, "--build-seconds", "312", "--test-seconds", "88"]
TENSOR_IN = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 64]}}]'
TENSOR_OUT = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 10]}}]'

# SOURCES.md's counts per fixture (severity as the scanner labels it).
COUNTS = {
    "scan/trivy/debian-buster.json.golden": {"critical": 1, "low": 1},
    "scan/trivy/alpine-310.json.golden": {"medium": 4},
    "scan/trivy/sl-micro-rancher5.4.json.golden": {},
    "scan/trivy/centos-7-ignore-unfixed.json.golden": {"medium": 1, "low": 1},
    "scan/trivy/alpine-310.sarif.golden": {"medium": 4},  # 4 results, level warning, tag MEDIUM
    "scan/grype/TestJsonImgsPresenter.golden": {"critical": 1, "low": 1},
    "scan/grype/TestEmptyJsonPresenter.golden": {},
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    return tmp_path


def cli(root: Path, *argv: str) -> int:
    return main(["--project-dir", str(root), *argv])


def stored(root: Path) -> tuple[list[Scan], list[ModelCard], int]:
    if not (root / ".pipeline" / "records.db").exists():
        return [], [], 0
    store = open_store(None, Project(root))
    try:
        return store.scans(), store.model_cards(), len(store.ci_runs())
    finally:
        store.close()


def fixture(relative: str) -> str:
    fixture_bytes(relative)  # skips when ../shared/fixtures is absent
    return str(SHARED_FIXTURES / relative)


def card(tmp_path: Path, name: str = "model-card.json", **changes: Any) -> str:
    doc: dict[str, Any] = {
        "model": {"name": "digits", "version": "1.0.0+3f2a9c1b2d4e", "file_size_bytes": 7354},
        "metrics": {"accuracy": 0.9733, "per_class": {"0": {"precision": 1.0, "recall": 0.98}}},
        "signature": {"inputs": TENSOR_IN, "outputs": TENSOR_OUT},
        "latency_ms": {"p50": 0.031, "p95": 0.052, "batch": {"size": 64, "p50": 0.2, "p95": 0.3}},
        "owner": "cv-team",
    }
    doc.update(changes)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize("relative", sorted(COUNTS), ids=lambda r: r.rsplit("/", 1)[1])
def test_each_report_format_is_stored_with_sources_counts(root: Path, relative: str) -> None:
    assert cli(root, *CI, "--scan-report", fixture(relative)) == 0
    (scan,), _, runs = stored(root)
    assert runs == 1
    assert dict(Counter(f.severity for f in scan.findings)) == COUNTS[relative]
    assert scan.digest == DIGEST
    assert scan.image == IMAGE


def test_findings_keep_id_severity_package_and_fixed_version(root: Path) -> None:
    assert cli(root, *CI, "--scan-report", fixture("scan/trivy/debian-buster.json.golden")) == 0
    (scan,), _, _ = stored(root)
    bash, libidn = scan.findings
    assert (bash.id, bash.severity, bash.package, bash.fixed_version) == (
        "CVE-2019-18276",
        "low",
        "bash",
        None,  # Debian has no fix: the report has no FixedVersion
    )
    assert (libidn.id, libidn.severity, libidn.package, libidn.fixed_version) == (
        "CVE-2019-18224",
        "critical",
        "libidn2-0",
        "2.0.5-1+deb10u1",
    )
    assert (scan.format, scan.scanner, scan.os) == ("trivy", "Trivy", "debian 10.1")


def test_grype_sarif_is_refused_because_its_severities_are_cvss_scores(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = fixture("scan/grype/TestSarifPresenter_image.golden")
    assert cli(root, *CI, "--scan-report", report) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "gives CVSS scores or levels, not the scanner's own severities" in err
    assert "grype -o json" in err
    assert stored(root) == ([], [], 0)  # not even the CI run


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"SchemaVersion": 2, "Results": [', "scan report: not JSON: Expecting value"),
        (b'{"matches": {}, "source": {}}', "Grype report: matches must be an array, got object"),
        (b"{}", "not a scan report: expected Trivy JSON"),
    ],
)
def test_a_malformed_report_is_one_line_and_stores_nothing(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    assert cli(root, *CI, "--scan-report", str(path)) == 1
    err = capsys.readouterr().err
    assert err == f"python -m pipeline record: error: {path}: {message}" + err.split(message)[1]
    assert err.count("\n") == 1
    assert stored(root) == ([], [], 0)


def test_a_truncated_real_report_stores_nothing(root: Path, tmp_path: Path) -> None:
    data = fixture_bytes("scan/trivy/alpine-310.json.golden")
    path = tmp_path / "cut.json"
    path.write_bytes(data[: len(data) // 2])
    good = fixture("scan/trivy/debian-buster.json.golden")
    assert cli(root, *CI, "--scan-report", good, "--scan-report", str(path)) == 1
    assert stored(root) == ([], [], 0)  # the good report was not stored alone either


def test_a_forced_format_that_is_not_the_content_is_refused(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = fixture("scan/grype/TestJsonImgsPresenter.golden")
    assert cli(root, *CI, "--scan-report", report, "--scan-format", "trivy") == 1
    assert "expected a Trivy JSON report, but this is Grype JSON" in capsys.readouterr().err


def test_a_report_of_another_digest_is_refused(root: Path, tmp_path: Path) -> None:
    doc = json.loads(fixture_bytes("scan/trivy/alpine-310.json.golden"))
    doc["ArtifactName"] = "registry.example.internal/cv/model@sha256:" + "e" * 64
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    assert cli(root, *CI, "--scan-report", str(path)) == 1
    assert stored(root) == ([], [], 0)


def test_scan_counts_and_a_report_together_are_refused(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = fixture("scan/trivy/alpine-310.json.golden")
    assert cli(root, *CI, "--scan-report", report, "--scan-critical", "0") == 2
    assert "drop --scan-critical" in capsys.readouterr().err
    assert stored(root) == ([], [], 0)


def test_evidence_needs_an_image_with_a_digest(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["record", "ci", "--image", "registry.example.internal/cv/model:4e1d07c"]
    assert (
        cli(
            root,
            *args,
            "--build-seconds",
            "1",
            "--test-seconds",
            "1",
            "--model-card",
            card(tmp_path),
        )
        == 2
    )
    assert "evidence needs the digest" in capsys.readouterr().err
    assert stored(root) == ([], [], 0)


def test_record_scan_records_a_report_alone_and_once(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = fixture("scan/trivy/centos-7-ignore-unfixed.json.golden")
    args = ["record", "scan", "--image", IMAGE, "--scan-report", report]
    assert cli(root, *args) == 0
    assert (
        "recorded scan #1 of sha256:4d4d4d4d4d4d: Trivy dev, 2 finding(s)"
        in capsys.readouterr().out
    )
    assert cli(root, *args) == 0
    assert "already recorded scan #1" in capsys.readouterr().out
    scans, cards, runs = stored(root)
    assert (len(scans), cards, runs) == (1, [], 0)


def test_a_clean_report_later_is_added_beside_the_earlier_one(root: Path) -> None:
    base = ["record", "scan", "--image", IMAGE, "--scan-report"]
    assert cli(root, *base, fixture("scan/trivy/debian-buster.json.golden")) == 0
    assert cli(root, *base, fixture("scan/trivy/sl-micro-rancher5.4.json.golden")) == 0
    scans, _, _ = stored(root)
    assert [len(s.findings) for s in scans] == [2, 0]


def test_the_model_card_is_stored_with_its_fields_and_unknown_ones(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, *CI, "--model-card", card(tmp_path)) == 0
    assert (
        "recorded model card #1 of sha256:4d4d4d4d4d4d: digits 1.0.0+3f2a9c1b2d4e, accuracy 0.9733"
        in (capsys.readouterr().out)
    )
    _, (stored_card,), runs = stored(root)
    assert runs == 1
    assert (stored_card.name, stored_card.accuracy) == ("digits", 0.9733)
    assert (stored_card.inputs, stored_card.outputs) == (TENSOR_IN, TENSOR_OUT)
    assert (stored_card.latency_p50_ms, stored_card.latency_p95_ms) == (0.031, 0.052)
    whole = json.loads(stored_card.card)
    assert whole["owner"] == "cv-team"
    assert whole["metrics"]["per_class"]["0"] == {"precision": 1.0, "recall": 0.98}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metrics": {"accuracy": 1.3}}, "metrics.accuracy must be a number in 0..1, got 1.3"),
        ({"model": {"name": "digits"}}, "model.version is required"),
        ({"signature": {"inputs": "[{", "outputs": TENSOR_OUT}}, "signature.inputs is not JSON"),
    ],
)
def test_a_malformed_card_is_one_line_and_stores_nothing(
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, Any],
    message: str,
) -> None:
    path = card(tmp_path, **changes)
    assert cli(root, *CI, "--model-card", path) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"python -m pipeline record: error: {path}: {message}")
    assert err.count("\n") == 1
    assert stored(root) == ([], [], 0)


def test_the_signature_can_come_from_an_mlmodel_file(root: Path, tmp_path: Path) -> None:
    mlmodel = fixture("mlmodel/nyc-taxi-regression/MLmodel")
    doc = json.loads(Path(card(tmp_path)).read_text())
    del doc["signature"]
    path = tmp_path / "card.json"
    path.write_text(json.dumps(doc))
    assert cli(root, *CI, "--model-card", str(path), "--mlmodel", mlmodel) == 0
    _, (stored_card,), _ = stored(root)
    assert json.loads(stored_card.inputs)[0] == {"name": "distance", "type": "double"}
    assert len(json.loads(stored_card.inputs)) == 20
    ml = parse_mlmodel(fixture_bytes("mlmodel/nyc-taxi-regression/MLmodel"))
    assert ml.signature is not None
    assert stored_card.inputs == ml.signature.inputs_json  # verbatim, as the MLmodel wrote it
    assert json.loads(stored_card.outputs) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}
    ]
    assert stored_card.source == "cli+mlmodel"


def test_a_card_signature_that_disagrees_with_the_mlmodel_is_refused(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mlmodel = fixture("mlmodel/lightgbm-iris/MLmodel")
    assert cli(root, *CI, "--model-card", card(tmp_path), "--mlmodel", mlmodel) == 1
    assert "signature differs from the MLmodel's" in capsys.readouterr().err
    assert stored(root) == ([], [], 0)
