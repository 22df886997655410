"""Record store: bulk append and read of 100,000 CI runs + 100,000 deployments (SQLite).

Figures are printed, never asserted. The read figures are the floor under
``pipeline metrics`` (it reads the same lists).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.records.model import CiRun, Deployment, Hold, Window
from pipeline.records.stores import open_store

COUNT = 100_000
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _records() -> tuple[list[CiRun], list[Deployment]]:
    runs = []
    deployments = []
    for i in range(COUNT):
        digest = f"sha256:{i:064x}"
        image = f"registry.example.internal/cv/model:{i:07x}@{digest}"
        at = T0 + timedelta(minutes=5 * i)
        runs.append(
            CiRun(image=image, digest=digest, commit=f"{i:040x}",
                  commit_time=at - timedelta(minutes=9), started=at, build_seconds=300.0,
                  test_seconds=90.0, passed=200, failed=i % 3, scan_critical=0, scan_high=i % 4)
        )  # fmt: skip
        deployments.append(
            Deployment(stack="staging" if i % 4 else "prod",
                       result="failed" if i % 17 == 0 else "succeeded", image=image,
                       digest=digest, started=at + timedelta(minutes=20),
                       finished=at + timedelta(minutes=24), commit=f"{i:040x}",
                       commit_time=at - timedelta(minutes=9), key=f"pulumi:{i}" if i % 2 else None)
        )  # fmt: skip
    return runs, deployments


def _timed(label: str, action: object) -> object:
    started = time.perf_counter()
    result = action()  # type: ignore[operator]
    print(f"   {label:<52} {time.perf_counter() - started:7.3f} s")
    return result


def main() -> None:
    runs, deployments = _records()
    print(f"   (load average {os.getloadavg()[0]:.1f}: figures are noisy on a busy machine)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.db"
        store = open_store(str(path), None)
        _timed(f"add_many {COUNT:,} CI runs (one transaction)", lambda: store.add_many(runs))
        _timed(f"add_many {COUNT:,} deployments (half keyed)", lambda: store.add_many(deployments))
        print(f"   store size {path.stat().st_size / 1e6:.1f} MB")
        _timed(f"ci_runs() -> {COUNT:,} records", store.ci_runs)
        _timed(f"deployments() -> {COUNT:,} records", store.deployments)
        last_30 = Window(T0 + timedelta(minutes=5 * COUNT) - timedelta(days=30), None)
        _timed("deployments('prod', last 30 days)", lambda: store.deployments("prod", last_30))
        _timed(
            "ci_runs_for_digest (indexed)", lambda: store.ci_runs_for_digest(runs[-1].digest or "")
        )
        _timed(
            "200 single add() calls (one commit each)",
            lambda: [store.add(Hold("prod", "placed", T0)) for _ in range(200)],
        )
        store.close()
        reopened = _timed("open an existing store", lambda: open_store(str(path), None))
        reopened.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
