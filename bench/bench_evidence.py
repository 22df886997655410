"""Evidence: each shared scan report and MLmodel file parsed (median of 200), a model
card, the vulnerabilities gate over many findings, and a 20 MiB synthetic report.

Figures are printed, never asserted. The shared fixtures are read in place from
../shared/fixtures; without them only the synthetic figures are printed.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pipeline.promotion.findings import judge_scans
from pipeline.records.model import Finding, Scan, Waiver
from pipeline.records.sources.mlmodel import parse_mlmodel
from pipeline.records.sources.model_card import load_model_card
from pipeline.records.sources.scans import parse_scan_report
from tests.conftest import SHARED_FIXTURES

REPORTS = (
    "scan/trivy/debian-buster.json.golden",
    "scan/trivy/alpine-310.json.golden",
    "scan/trivy/sl-micro-rancher5.4.json.golden",
    "scan/trivy/centos-7-ignore-unfixed.json.golden",
    "scan/trivy/alpine-310.sarif.golden",
    "scan/grype/TestJsonImgsPresenter.golden",
    "scan/grype/TestEmptyJsonPresenter.golden",
    "scan/grype/TestSarifPresenter_image.golden",
)
MLMODELS = ("lightgbm-iris", "nyc-taxi-regression", "openai-embeddings")
REPEAT = 200


def _median_ms(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def main() -> None:
    if (SHARED_FIXTURES / "SOURCES.md").is_file():
        for relative in REPORTS:
            data = (SHARED_FIXTURES / relative).read_bytes()
            found = parse_scan_report(data)
            counts = {s.value: n for s, n in found.counts().items() if n}
            ms = _median_ms(lambda d=data: parse_scan_report(d))  # type: ignore[misc]
            name = relative.rsplit("/", 1)[1]
            print(f"   {name:<36} {len(data):>7} B  {ms:6.3f} ms  {counts or 'no findings'}")
        for name in MLMODELS:
            data = (SHARED_FIXTURES / "mlmodel" / name / "MLmodel").read_bytes()
            ms = _median_ms(lambda d=data: parse_mlmodel(d))  # type: ignore[misc]
            print(f"   MLmodel {name:<28} {len(data):>7} B  {ms:6.3f} ms")
    else:
        print(f"   (no shared fixtures at {SHARED_FIXTURES}: their figures are left out)")
    inputs = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 64]}}]'
    card = json.dumps(
        {
            "model": {"name": "digits", "version": "1.0.0+7133bc483c86"},
            "metrics": {
                "accuracy": 0.9711,
                "per_class": {str(d): {"precision": 0.97, "recall": 0.97} for d in range(10)},
            },
            "signature": {"inputs": inputs, "outputs": inputs.replace("64", "10")},
            "latency_ms": {"p50": 0.05, "p95": 0.08},
        }
    ).encode()
    print(f"   model-card.json (10 classes)         {len(card):>7} B  "
          f"{_median_ms(lambda: load_model_card(card)):6.3f} ms")  # fmt: skip
    now = datetime(2026, 3, 2, tzinfo=UTC)
    findings = tuple(
        Finding(f"CVE-2026-{i:05d}", ("critical", "high", "medium", "low")[i % 4], f"pkg{i % 300}")
        for i in range(2_000)
    )
    scans = [Scan("r/m@sha256:" + "a" * 64, "sha256:" + "a" * 64, "trivy", "Trivy", "0.73.0",
                  None, "debian 12", findings) for _ in range(10)]  # fmt: skip
    waivers = [
        Waiver("sha256:" + "a" * 64, f"CVE-2026-{i:05d}", "r", now + timedelta(days=9), now)
        for i in range(0, 2_000, 4)
    ]
    ms = _median_ms(lambda: judge_scans(scans, waivers, "high", now), repeat=20)
    print(f"   gate over 10 scans x 2,000 findings, 500 waivers: {ms:7.1f} ms")
    vuln = {"VulnerabilityID": "CVE-2019-1549", "PkgName": "libssl1.1", "InstalledVersion": "1",
            "FixedVersion": "2", "Severity": "MEDIUM", "Title": "t" * 200}  # fmt: skip
    big = json.dumps(
        {"SchemaVersion": 2, "ArtifactName": "x", "Results": [{"Vulnerabilities": [vuln] * 60_000}]}
    ).encode()
    started = time.perf_counter()
    report = parse_scan_report(big)
    print(
        f"   synthetic Trivy report, {len(big) / 2**20:.1f} MiB, {len(report.findings)} findings: "
        f"{time.perf_counter() - started:.2f} s"
    )
