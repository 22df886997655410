"""Records for tests: realistic values, one place to change them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from pipeline.records.model import CiRun, Deployment

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
