"""The vulnerabilities gate on ECR: ``describe_image_scan_findings`` against moto's server."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from pipeline.cli import main
from pipeline.project import Project
from pipeline.records.model import CiRun, Deployment
from pipeline.records.stores import open_store
from tests.moto_fixture import ACCOUNT, REGION

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def push_to_ecr(repository: str, *, scan: bool) -> str:
    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName=repository)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + uuid.uuid4().hex * 2,
        },
        "layers": [],
    }
    pushed = ecr.put_image(
        repositoryName=repository, imageManifest=json.dumps(manifest), imageTag="v1"
    )
    digest: str = pushed["image"]["imageId"]["imageDigest"]
    if scan:
        ecr.start_image_scan(repositoryName=repository, imageId={"imageDigest": digest})
    return digest


def project_with(tmp_path: Path, block_severity: str | None) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        (root / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    prod = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text()
    if block_severity is not None:
        prod = prod.replace(
            "config:\n", f"config:\n  cv-platform:promotionBlockSeverity: {block_severity}\n", 1
        )
    (root / "Pulumi.prod.yaml").write_text(prod)
    return root


def record(root: Path, repository: str, digest: str) -> None:
    image = f"{HOST}/{repository}:v1@{digest}"
    finished = datetime.now(UTC) - timedelta(hours=2)
    store = open_store(None, Project(root))
    store.add_many(
        [
            Deployment(
                "staging", "succeeded", image, digest, finished - timedelta(minutes=3), finished
            ),
            CiRun(image=image, digest=digest, build_seconds=200.0, test_seconds=50.0, passed=40),
        ]
    )
    store.close()


def promote(root: Path) -> int:
    # The registry API itself is not served by moto: that gate is covered elsewhere.
    return main(
        [
            "--project-dir",
            str(root),
            "promote",
            "--from",
            "staging",
            "--to",
            "prod",
            "--skip-gate",
            "digest-resolves",
            # The model gates have their own tests: prod here has never run a model.
            "--skip-gate",
            "model-quality",
            "--skip-gate",
            "model-compatible",
            # A verification needs Prometheus (tests/monitoring); this test is about scans.
            "--skip-gate",
            "verified",
        ]
    )


def vulnerabilities_row(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("vulnerabilities")]
    return line


@pytest.mark.parametrize(("severity", "code", "status"), [(None, 0, "pass"), ("high", 3, "FAIL")])
def test_ecr_scan_counts_decide_against_the_block_severity(
    aws_env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    severity: str | None,
    code: int,
    status: str,
) -> None:
    repository = f"cv/model-{uuid.uuid4().hex[:8]}"
    digest = push_to_ecr(repository, scan=True)
    root = project_with(tmp_path, severity)
    record(root, repository, digest)
    before = (root / "Pulumi.prod.yaml").read_bytes()
    assert promote(root) == code
    row = vulnerabilities_row(capsys.readouterr().out)
    assert row.split()[1] == status
    assert "ECR scan" in row
    assert "1 high" in row  # moto's scan reports one HIGH finding
    if code == 3:
        assert (root / "Pulumi.prod.yaml").read_bytes() == before


def test_an_unscanned_ecr_image_fails_the_gate(
    aws_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository = f"cv/model-{uuid.uuid4().hex[:8]}"
    digest = push_to_ecr(repository, scan=False)
    root = project_with(tmp_path, None)
    record(root, repository, digest)
    assert promote(root) == 3
    row = vulnerabilities_row(capsys.readouterr().out)
    assert row.split()[1] == "FAIL"
    assert "ScanNotFoundException" in row
