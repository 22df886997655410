"""S3 specifics (moto server): object layout, conditional writes, paging, bad objects."""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.cli import main
from pipeline.errors import StoreError
from pipeline.records.model import Hold
from pipeline.records.stores import open_store
from pipeline.records.stores import s3 as s3_store
from pipeline.records.stores.codec import JSON_SCHEMA
from tests.pipeline.recordkit import DIGEST_A, T0, ci_run, deployment

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bucket(aws_env: str) -> str:
    name = f"records-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def object_names(bucket: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_each_record_is_one_object_named_by_time_or_key(bucket: str) -> None:
    store = open_store(f"s3://{bucket}/team/cv/", None)
    store.add(deployment(0))
    store.add(deployment(5, key="pulumi:staging:12"))
    names = object_names(bucket)
    key_hash = hashlib.sha256(b"pulumi:staging:12").hexdigest()
    assert names[1] == f"team/cv/deployments/key-{key_hash}.json"
    assert names[0].startswith("team/cv/deployments/20260302T090130000000Z-")
    body = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=names[0])["Body"].read())
    assert body["schema"] == JSON_SCHEMA
    assert body["kind"] == "deployments"
    assert body["digest"] == DIGEST_A


def test_re_ingesting_a_keyed_record_never_overwrites_the_object(bucket: str) -> None:
    store = open_store(f"s3://{bucket}/p", None)
    first = store.add(ci_run(1, key="jenkins:job/7"))
    (name,) = object_names(bucket)
    etag = boto3.client("s3").head_object(Bucket=bucket, Key=name)["ETag"]
    again = store.add(ci_run(1, key="jenkins:job/7", failed=50))
    assert again == first
    assert boto3.client("s3").head_object(Bucket=bucket, Key=name)["ETag"] == etag


def test_concurrent_writers_of_one_key_store_it_once(bucket: str) -> None:
    store = open_store(f"s3://{bucket}/p", None)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: store.add(ci_run(1, key="k")), range(8)))
    assert len({r.id for r in results}) == 1
    assert len(store.ci_runs()) == 1


def test_listing_follows_pagination(bucket: str) -> None:
    store = s3_store.S3Store(bucket, "p", page_size=2)
    store.add_many([deployment(m) for m in range(7)])
    assert len(store.deployments()) == 7


def put_raw(bucket: str, name: str, body: Any) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    boto3.client("s3").put_object(Bucket=bucket, Key=name, Body=data)


def test_objects_from_the_first_layout_read_with_defaults(bucket: str) -> None:
    put_raw(
        bucket,
        "p/holds/20260101T000000000000Z-0.json",
        {
            "schema": 1,
            "kind": "holds",
            "stack": "prod",
            "action": "placed",
            "at": "2026-01-01T00:00:00.000000+00:00",
            "reason": "freeze",
            "recorded_at": "2026-01-01T00:00:01.000000+00:00",
        },
    )
    (hold,) = open_store(f"s3://{bucket}/p", None).holds("prod")
    assert hold.reason == "freeze"
    assert hold.actor == ""


def test_a_corrupt_object_is_one_line_naming_it(bucket: str) -> None:
    store = open_store(f"s3://{bucket}/p", None)
    store.add(Hold("prod", "placed", T0))
    put_raw(bucket, "p/holds/20260101T000000000000Z-bad.json", b"{not json")
    with pytest.raises(StoreError) as caught:
        store.holds("prod")
    assert "p/holds/20260101T000000000000Z-bad.json" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_object_from_a_newer_layout_is_refused(bucket: str) -> None:
    put_raw(bucket, "p/holds/20260101T000000000000Z-new.json", {"schema": 9, "stack": "prod"})
    with pytest.raises(StoreError, match="schema 9, newer"):
        open_store(f"s3://{bucket}/p", None).holds("prod")


def test_a_missing_bucket_is_an_unreadable_store(aws_env: str) -> None:
    with pytest.raises(StoreError, match=r"s3://no-such-bucket-zz/x: cannot open: .*404"):
        open_store("s3://no-such-bucket-zz/x", None)


def test_cli_records_and_reads_history_from_s3(
    bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    store = f"s3://{bucket}/cv"
    image = f"registry.example.internal/cv/model:abc@{DIGEST_A}"
    base = ["--project-dir", str(tmp_path), "--store", store]
    record = ["record", "deploy", "--stack", "staging", "--result", "succeeded"]
    times = ["--started", "2026-03-02T09:00:00Z", "--finished", "2026-03-02T09:04:00Z"]
    assert main([*base, *record, "--image", image, *times]) == 0
    capsys.readouterr()
    assert main([*base, "history", "staging", "--json"]) == 0
    (event,) = json.loads(capsys.readouterr().out)
    assert event["event"] == "deployment"
    assert event["digest"] == DIGEST_A
    assert not (tmp_path / ".pipeline").exists()


def test_cli_with_a_missing_bucket_exits_1_with_one_line(
    aws_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    code = main(
        ["--project-dir", str(tmp_path), "--store", "s3://no-such-bucket-zz/x", "history", "prod"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "s3://no-such-bucket-zz/x" in err


WRITER = """
import sys
from pipeline.records.model import CiRun
from pipeline.records.stores import open_store
store = open_store(sys.argv[1], None)
for i in range(10):
    store.add(CiRun(image="r/m:t", commit=f"{sys.argv[2]}-{i}"))
store.add_many([CiRun(image="r/m:t", key=f"shared-{i}") for i in range(5)])
"""


def test_concurrent_writer_processes_lose_nothing(bucket: str) -> None:
    import subprocess
    import sys

    location = f"s3://{bucket}/p"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, location, f"w{n}"],
            cwd=PROJECT_ROOT,
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    runs = open_store(location, None).ci_runs()
    commits = sorted(r.commit for r in runs if r.commit)
    assert commits == sorted(f"w{n}-{i}" for n in range(4) for i in range(10))
    assert sorted(r.key for r in runs if r.key) == [f"shared-{i}" for i in range(5)]
