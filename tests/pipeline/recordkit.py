"""Records for tests: realistic values, one place to change them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from pipeline.records.model import CiRun, Deployment, Finding, FindingSeverity, ModelCard, Scan

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def deployment(minutes: int, stack: str = "staging", **changes: object) -> Deployment:
    base = Deployment(
        stack=stack,
        result="succeeded",
        image=f"registry.example.internal/cv/model:v{minutes}@{DIGEST_A}",
        digest=DIGEST_A,
        started=T0 + timedelta(minutes=minutes),
        finished=T0 + timedelta(minutes=minutes, seconds=90),
        commit="4e1d07c",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def ci_run(minutes: int | None, **changes: object) -> CiRun:
    started = None if minutes is None else T0 + timedelta(minutes=minutes)
    base = CiRun(
        image=f"registry.example.internal/cv/model:v1@{DIGEST_A}",
        digest=DIGEST_A,
        commit="4e1d07c",
        commit_time=T0 - timedelta(hours=1),
        started=started,
        build_seconds=312.5,
        test_seconds=88.0,
        passed=120,
        failed=1,
        errors=0,
        skipped=3,
        scan_critical=0,
        scan_high=2,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# A tensor signature like the reference model's (64 pixels in, 10 probabilities out).
PIXELS_IN = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 64]}}]'
CLASSES_OUT = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 10]}}]'


def model_card(digest: str = DIGEST_A, **changes: object) -> ModelCard:
    base = ModelCard(
        image=f"registry.example.internal/cv/model:v1@{digest}",
        digest=digest,
        name="digits",
        version="1.0.0",
        accuracy=0.9733,
        inputs=PIXELS_IN,
        outputs=CLASSES_OUT,
        latency_p50_ms=0.03,
        latency_p95_ms=0.05,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def finding(
    id_: str, severity: FindingSeverity, package: str = "libidn2-0", **changes: object
) -> Finding:
    base = Finding(id_, severity, package, "2.0.5-1", "2.0.5-1+deb10u1")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def scan(digest: str = DIGEST_A, *findings: Finding, **changes: object) -> Scan:
    base = Scan(
        image=f"registry.example.internal/cv/model:v1@{digest}",
        digest=digest,
        format="trivy",
        scanner="Trivy",
        scanner_version="0.73.0",
        artifact=f"registry.example.internal/cv/model@{digest}",
        os="debian 12.5",
        findings=findings,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
