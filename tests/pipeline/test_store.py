"""The record store's contract, run against both backends (SQLite file, S3 on moto)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.errors import StoreError
from pipeline.project import Project
from pipeline.records.model import (
    Deployment,
    Finding,
    Hold,
    ModelCard,
    Promotion,
    Readmission,
    Record,
    Rollback,
    Scan,
    Verification,
    Waiver,
    Window,
    change_entry,
)
from pipeline.records.stores import Store, open_store
from pipeline.records.stores.kinds import KINDS
from tests.pipeline.recordkit import DIGEST_A, DIGEST_B, T0, ci_run, deployment


@pytest.fixture(params=["sqlite", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = open_store(str(tmp_path / "records.db"), None)
    else:
        request.getfixturevalue("aws_env")
        import boto3

        bucket = f"records-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        opened = open_store(f"s3://{bucket}/team/cv", None)
    yield opened
    opened.close()


def without_identity(record: object) -> object:
    return dataclasses.replace(record, id=None, recorded_at=None)  # type: ignore[type-var]


def test_every_record_kind_round_trips_with_id_and_recording_time(store: Store) -> None:
    records: list[Record] = [
        ci_run(1),
        deployment(2, changes=(change_entry("4e1d07c", T0), change_entry("9f3c2ab", T0))),
        Promotion(
            "staging",
            "prod",
            "r/m:v1@" + DIGEST_A,
            DIGEST_A,
            T0,
            ("soak",),
            previous_digest=DIGEST_B,
            actor="ci",
        ),
        Rollback("prod", DIGEST_A, DIGEST_B, "r/m:v0@" + DIGEST_B, T0, "bad model", actor="ana"),
        Hold("prod", "placed", T0, "incident 7", actor="ana"),
        Verification(
            "prod",
            DIGEST_A,
            "r/m:v1@" + DIGEST_A,
            "failed",
            T0,
            T0 + timedelta(minutes=5),
            requests=2033.0,
            error_ratio=0.25,
            p95_seconds=None,
            min_requests=100,
            max_error_ratio=0.01,
            max_p95_ms=250.0,
            selector='{namespace="cv-prod",app="model-server",version="4e1d07c"}',
            reason="error ratio 25.00% > 1.00%",
            actor="ci",
        ),
    ]
    stored = [store.add(record) for record in records]
    for given, got in zip(records, stored, strict=True):
        assert got.id is not None
        assert got.recorded_at is not None
        assert got.recorded_at.tzinfo is not None
        assert without_identity(got) == given
    read_back = [
        *store.ci_runs(),
        *store.deployments(),
        *store.promotions(),
        *store.rollbacks(),
        *store.holds("prod"),
        *store.verifications("prod"),
    ]
    assert read_back == stored
    assert (store.scans(), store.model_cards(), store.waivers()) == ([], [], [])


INPUTS = '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 64]}}]'


def scan(digest: str = DIGEST_A, key: str | None = "scan:a:1", *findings: Finding) -> Scan:
    return Scan(
        image=f"r/m:v1@{digest}",
        digest=digest,
        format="trivy",
        scanner="Trivy",
        scanner_version="0.73.0",
        artifact=f"r/m@{digest}",
        os="debian 12.5",
        findings=findings
        or (
            Finding("CVE-2019-18224", "critical", "libidn2-0", "2.0.5-1", "2.0.5-1+deb10u1", "x"),
            Finding("CVE-2019-18276", "low", "bash", "5.0-4", None, "x"),
        ),
        key=key,
    )


def card(
    digest: str = DIGEST_A, accuracy: float = 0.9733, key: str | None = "card:a:1"
) -> ModelCard:
    return ModelCard(
        image=f"r/m:v1@{digest}",
        digest=digest,
        name="digits",
        version="1.0.0+3f2a9c1b2d4e",
        accuracy=accuracy,
        inputs=INPUTS,
        outputs='[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 10]}}]',
        latency_p50_ms=0.031,
        latency_p95_ms=0.052,
        card='{"model": {"name": "digits"}, "owner": "cv-team"}',
        key=key,
    )


def test_every_evidence_kind_round_trips_and_is_found_by_digest(store: Store) -> None:
    evidence: list[Record] = [
        scan(),
        scan(DIGEST_B, "scan:b:1", Finding("GHSA-x", "unknown", None)),
        card(),
        card(DIGEST_B, 0.95, "card:b:1"),
        Waiver(DIGEST_A, "CVE-2019-18224", "no fix upstream", T0 + timedelta(days=30), T0, "ana"),
        Readmission("prod", DIGEST_A, "fixed in config, INC-31", T0, "ana"),
    ]
    stored = store.add_many(evidence)
    for given, got in zip(evidence, stored, strict=True):
        assert got.id is not None
        assert without_identity(got) == given
    assert store.scans(DIGEST_A) == [stored[0]]
    assert sorted(s.digest for s in store.scans()) == [DIGEST_A, DIGEST_B]  # one batch
    assert store.scans(DIGEST_B)[0].findings == (Finding("GHSA-x", "unknown", None),)
    assert store.model_cards(DIGEST_B) == [stored[3]]
    assert store.model_cards(DIGEST_B)[0].accuracy == 0.95
    assert store.waivers(DIGEST_A) == [stored[4]]
    assert store.waivers(DIGEST_B) == []
    assert store.readmissions("prod") == [stored[5]]
    assert store.readmissions("staging") == []


def test_the_same_report_recorded_again_adds_nothing_and_a_new_one_adds_beside_it(
    store: Store,
) -> None:
    first = store.add(scan())
    assert store.add(scan()) == first
    clean = store.add(scan(DIGEST_A, "scan:a:2", Finding("CVE-0", "low", "zlib")))
    assert store.scans(DIGEST_A) == [first, clean]  # a later report never replaces one


def test_lists_come_back_oldest_first_whatever_the_insertion_order(store: Store) -> None:
    store.add_many([deployment(30), deployment(10), deployment(20)])
    store.add_many([ci_run(5), ci_run(1), ci_run(3)])
    assert [d.finished for d in store.deployments()] == sorted(
        d.finished for d in store.deployments()
    )
    assert [r.started for r in store.ci_runs()] == [T0 + timedelta(minutes=m) for m in (1, 3, 5)]


def test_windows_are_half_open_on_finish_time_and_start_time(store: Store) -> None:
    store.add_many([deployment(m) for m in (0, 10, 20, 30)])
    store.add_many([ci_run(m) for m in (0, 10, 20, 30)])
    window = Window(T0 + timedelta(minutes=10, seconds=90), T0 + timedelta(minutes=30, seconds=90))
    assert [d.started.minute for d in store.deployments(window=window)] == [10, 20]
    runs = store.ci_runs(Window(T0 + timedelta(minutes=10), T0 + timedelta(minutes=30)))
    assert [r.started.minute for r in runs if r.started] == [10, 20]


def test_stack_filters_deployments_and_matches_promotions_either_way(store: Store) -> None:
    store.add_many([deployment(1, "staging"), deployment(2, "prod"), deployment(3, "staging")])
    store.add(Promotion("staging", "prod", "r/m@" + DIGEST_A, DIGEST_A, T0))
    store.add(Promotion("dev", "staging", "r/m@" + DIGEST_B, DIGEST_B, T0 + timedelta(hours=1)))
    assert {d.stack for d in store.deployments("staging")} == {"staging"}
    assert len(store.deployments("staging")) == 2
    assert [p.digest for p in store.promotions("staging")] == [DIGEST_A, DIGEST_B]
    assert [p.digest for p in store.promotions("prod")] == [DIGEST_A]
    assert store.holds("prod") == []


def test_adding_a_keyed_record_again_returns_the_stored_one(store: Store) -> None:
    first = store.add(deployment(1, key="pulumi:staging:41"))
    again = store.add(deployment(1, key="pulumi:staging:41", result="failed"))
    assert again == first
    assert store.deployments() == [first]


def test_add_many_is_idempotent_for_keys_within_and_across_batches(store: Store) -> None:
    batch = [ci_run(1, key="jenkins:7"), ci_run(2, key="jenkins:8"), ci_run(1, key="jenkins:7")]
    stored = store.add_many(batch)
    assert stored[0] == stored[2]
    assert len(store.ci_runs()) == 2
    assert store.add_many(batch[:2]) == stored[:2]
    assert len(store.ci_runs()) == 2


def test_ci_runs_for_digest_finds_only_that_digest(store: Store) -> None:
    store.add_many([ci_run(1), ci_run(2, digest=DIGEST_B), ci_run(3)])
    assert [r.started.minute for r in store.ci_runs_for_digest(DIGEST_A) if r.started] == [1, 3]


def test_a_ci_run_without_start_time_is_ordered_by_when_it_was_recorded(store: Store) -> None:
    store.add(ci_run(None))
    (run,) = store.ci_runs(Window(since=datetime.now(UTC) - timedelta(minutes=5)))
    assert run.started is None


def test_naive_times_are_stored_as_utc(store: Store) -> None:
    naive = deployment(0, started=datetime(2026, 1, 1, 12), finished=datetime(2026, 1, 1, 12, 5))
    (got,) = [store.add(naive)]
    assert isinstance(got, Deployment)
    assert store.deployments()[0].finished == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)


def test_every_model_field_is_stored() -> None:
    # A field added to the record model without a column (and migration) fails here.
    for kind in KINDS:
        model = {f.name for f in dataclasses.fields(kind.cls)}
        assert set(kind.field_names) == model, kind.name


def test_default_location_is_created_inside_the_project(tmp_path: Path) -> None:
    project = Project(tmp_path)
    opened = open_store(None, project)
    opened.add(Hold("prod", "placed", T0))
    opened.close()
    assert (tmp_path / ".pipeline" / "records.db").is_file()


def test_the_default_store_is_git_ignored() -> None:
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("needs git and the project's repository")
    for name in (".pipeline/records.db", ".pipeline/records.db-wal", ".pipeline/records.db-shm"):
        ignored = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "-q", "--no-index", name], check=False
        )
        assert ignored.returncode == 0, f"{name} is not git-ignored"


@pytest.mark.parametrize("location", ["http://example.com/records", "ftp://x/y"])
def test_an_unsupported_location_is_refused(location: str) -> None:
    with pytest.raises(StoreError, match="unsupported location"):
        open_store(location, None)
