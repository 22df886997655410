"""Metrics over 100,000 CI runs and 100,000 deployments; a 7,500-case JUnit parse.

Prints, never asserts: the time to read the records from a SQLite store, the
time to compute every metric over them (aim: under twice the read), and the
time to count a 7,500-testcase JUnit file (the shared junit-plugin fixture when
../shared/fixtures is there, else a generated file of the same shape).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from pipeline.commands.metrics import load_records
from pipeline.metrics.compute import compute, weekly
from pipeline.records.model import CiRun, Deployment, Record, Rollback, Window
from pipeline.records.sources import junit
from pipeline.records.stores import open_store

CI_RUNS = 100_000
DEPLOYMENTS = 100_000
ROUNDS = 3
HUGE = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "junit"
HUGE_FILE = HUGE / "junit-plugin" / "junit-report-huge.xml"

T = TypeVar("T")


def _best(fn: Callable[[], T]) -> tuple[float, T]:
    times: list[float] = []
    result: T | None = None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    assert result is not None
    return min(times), result


def _records(now: datetime) -> list[Record]:
    rng = random.Random(7)
    span = timedelta(days=365).total_seconds()
    start = now - timedelta(days=365)
    out: list[Record] = []
    for i in range(CI_RUNS):
        at = start + timedelta(seconds=span * i / CI_RUNS)
        out.append(
            CiRun(
                image="registry.cv.example:5000/cv/model:bench",
                digest=f"sha256:{i:064x}",
                commit=f"{i:040x}",
                commit_time=at - timedelta(minutes=rng.randint(5, 600)),
                started=at,
                build_seconds=rng.uniform(120, 900),
                test_seconds=rng.uniform(60, 1800),
                passed=rng.randint(80, 120),
                failed=rng.randint(0, 3),
                errors=rng.randint(0, 1),
                skipped=rng.randint(0, 5),
                source="bench",
            )
        )
    for i in range(DEPLOYMENTS):
        finished = start + timedelta(seconds=span * (i + 0.5) / DEPLOYMENTS)
        out.append(
            Deployment(
                stack="prod" if i % 3 == 0 else "staging",
                result="failed" if rng.random() < 0.05 else "succeeded",
                image="registry.cv.example:5000/cv/model:bench",
                digest=f"sha256:{i:064x}",
                started=finished - timedelta(seconds=rng.uniform(60, 900)),
                finished=finished,
                source="bench",
            )
        )
    for i in range(200):
        out.append(
            Rollback(
                stack="prod",
                from_digest=None,
                to_digest=f"sha256:{i:064x}",
                image="registry.cv.example:5000/cv/model:bench",
                at=start + timedelta(days=1.8 * i),
            )
        )
    return out


def _big_junit(path: Path, cases: int) -> None:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="bench">\n']
    for i in range(cases):
        body = '<skipped message="off"/>' if i % 3 == 0 else ""
        if i % 400 == 0:
            body = '<failure message="x" type="AssertionError">trace line\nmore</failure>'
        lines.append(
            f'<testcase classname="p2.S{i}.SomeLongLongLongLongLongTestName_{i % 10}" '
            f'name="Run 0" time="0.0{i % 10}" assertions="1">{body}</testcase>\n'
        )
    lines.append("</testsuite>\n")
    path.write_text("".join(lines), encoding="utf-8")


def main() -> None:
    now = datetime.now(UTC)
    window = Window(now - timedelta(days=366), now + timedelta(seconds=1))
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        db = Path(tmp) / "records.db"
        records = _records(now)
        store = open_store(str(db), None)
        try:
            started = time.perf_counter()
            store.add_many(records)
            print(
                f"   store: wrote {len(records):,} records in {time.perf_counter() - started:.2f} s"
            )
            read_s, loaded = _best(lambda: load_records(store, window))
        finally:
            store.close()
        compute_s, metrics = _best(lambda: compute(loaded, window))
        prod_s, _ = _best(lambda: compute(loaded, window, stacks=("prod",)))
        assert window.since is not None
        assert window.until is not None
        since, until = window.since, window.until
        weekly_s, points = _best(lambda: weekly(loaded, since, until))
        print(
            f"   read {len(loaded.ci_runs):,} CI runs + {len(loaded.deployments):,} deployments "
            f"from SQLite: {read_s:.2f} s (best of {ROUNDS})"
        )
        print(
            f"   compute all metrics (all stacks): {compute_s:.2f} s = "
            f"{compute_s / read_s:.2f}x the read (aim < 2x); --stack prod: {prod_s:.2f} s"
        )
        print(f"   weekly series for the chart ({len(points)} weeks): {weekly_s:.2f} s")
        print(
            f"   result: M_CI {metrics.m_ci_minutes:.1f} min, M_CD {metrics.m_cd:.3f}, "
            f"DORA lead time {metrics.dora.lead_time_hours:.1f} h, "
            f"change failure rate {metrics.dora.change_failure_rate:.3f}"
        )

        if HUGE_FILE.is_file():
            source, path = "shared junit-report-huge.xml", HUGE_FILE
        else:
            source, path = "generated", Path(tmp) / "big.xml"
            _big_junit(path, 7_580)
        times = []
        counts = junit.TestCounts()
        for _ in range(5):
            started = time.perf_counter()
            counts = junit.count([str(path)])
            times.append(time.perf_counter() - started)
        print(
            f"   JUnit: {counts.cases:,} testcases ({source}, {path.stat().st_size / 1e6:.1f} MB) "
            f"in {min(times) * 1000:.0f} ms best, {statistics.median(times) * 1000:.0f} ms median"
        )
