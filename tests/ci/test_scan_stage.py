"""The Scan stage (ci/scan) and the scheduled scanner-DB refresh (ci/scanner-db), run as
Jenkins runs them, with a stand-in ``trivy`` that behaves as Trivy 0.73 does (exit 0 on
findings, a fatal line and exit 1 without its DB, the registry asked for the manifest):
the stage fails closed only when no trustworthy scan happened, and records the report."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ci.jenkins import Agent
from tests.ci.test_stage_scripts import (
    begin,
    ci,
    clean,
    github_api,
    github_server,
    last_error,
    layout,
    through,
)
from tests.registry_fixture import RegistryServer

__all__ = ["ci", "github_api", "github_server", "layout"]  # fixtures, imported

CRITICAL = ["CVE-2019-18224", "CRITICAL", "libidn2-0", "2.0.5-1", "2.0.5-1+deb10u1"]
LOW = ["CVE-2019-18276", "LOW", "bash", "5.0-4", None]


@pytest.fixture
def scanner(ci: Agent) -> Agent:
    """The agent with its scanner-DB volume mounted (a path with a space, as volumes may be)."""
    ci.agent_env["TRIVY_CACHE_DIR"] = str(ci.root / "scanner db")
    return ci


def refresh(agent: Agent, **extra: str | None) -> subprocess.CompletedProcess[str]:
    agent.log.with_name("trivy-downloads").unlink(missing_ok=True)
    return agent.sh("ci/scanner-db", None, **extra)


def scans(agent: Agent) -> list[tuple[str, str]]:
    """(digest, findings JSON) of every scan in the agent's record store."""
    path = agent.root / "records.db"
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT digest, findings FROM scans").fetchall()
    finally:
        db.close()


def test_scan_without_the_db_fails_naming_the_job_that_downloads_it(scanner: Agent) -> None:
    through(scanner, "Build", "Push")
    done = scanner.stage("Scan")
    clean(done)
    assert done.returncode == 1
    assert last_error(done) == (
        f"ci/scan: no vulnerability DB in {scanner.agent_env['TRIVY_CACHE_DIR']}/db: the "
        "scheduled job cv-platform-scanner-db (ci/scanner-db) downloads it; run it once"
    )
    assert scanner.stub_calls("trivy") == []
    assert scans(scanner) == []


def test_the_db_is_refreshed_then_the_digest_scanned_and_recorded_with_its_findings(
    scanner: Agent, registry_server: RegistryServer
) -> None:
    done = refresh(scanner)
    assert done.returncode == 0, done.stderr
    through(scanner, "Build", "Push")
    findings = json.dumps([CRITICAL, LOW])
    done = scanner.stage("Scan", STUB_TRIVY_FINDINGS=findings)
    assert done.returncode == 0, done.stderr  # a critical finding is the gate's to judge
    assert "recorded scan #1 of sha256:" in done.stdout
    assert "Trivy 0.73.0, 2 finding(s) (1 critical, 1 low)" in done.stdout
    digest = scanner.state("image-digest")
    ((recorded, stored),) = scans(scanner)
    assert recorded == digest
    assert [(f["id"], f["severity"], f["fixed_version"]) for f in json.loads(stored)] == [
        ("CVE-2019-18224", "critical", "2.0.5-1+deb10u1"),
        ("CVE-2019-18276", "low", None),
    ]
    scan = scanner.stub_calls("trivy")[-1]
    argv = scan["argv"]
    cache = scanner.agent_env["TRIVY_CACHE_DIR"]
    assert argv[:3] == ["image", "--format", "json"]
    assert {"--skip-db-update", "--skip-java-db-update", "--no-progress"} <= set(argv)
    assert argv[argv.index("--cache-dir") + 1] == cache
    assert argv[argv.index("--scanners") + 1] == "vuln"
    assert "--exit-code" not in argv  # its exit code says nothing about findings
    assert argv[-1] == f"{scanner.agent_env['IMAGE_REPOSITORY']}@{digest}"  # by digest
    # The login reached trivy in its environment only.
    assert scan["env"] == {"TRIVY_USERNAME": True, "TRIVY_PASSWORD": True}
    assert registry_server.password not in json.dumps(scanner.stub_calls("trivy"))
    assert registry_server.password not in done.stdout + done.stderr
    report = json.loads((scanner.workspace / "build" / "scan" / "trivy.json").read_text())
    assert report["ArtifactName"] == argv[-1]
    assert scanner.state("scan-report") == "build/scan/trivy.json"


def test_a_scan_the_registry_refuses_fails_closed_and_records_nothing(scanner: Agent) -> None:
    assert refresh(scanner).returncode == 0
    through(scanner, "Build", "Push")
    scanner.credentials["registry-push"] = None
    done = scanner.stage("Scan")
    clean(done)
    assert done.returncode == 1
    assert last_error(done).startswith("ci/scan: trivy could not scan ")
    assert "(exit 1): " in last_error(done)
    assert "UNAUTHORIZED" in last_error(done)
    assert not (scanner.workspace / "build" / "scan" / "trivy.json").exists()
    assert scans(scanner) == []


def test_an_image_in_which_trivy_found_no_os_is_not_a_clean_scan(scanner: Agent) -> None:
    assert refresh(scanner).returncode == 0
    through(scanner, "Build", "Push")
    done = scanner.stage("Scan", STUB_TRIVY_NO_OS="1")
    assert done.returncode == 1
    assert last_error(done).endswith("so it checked no OS package: not scanned")
    assert scans(scanner) == []


def test_a_stale_db_is_not_trusted(scanner: Agent) -> None:
    assert refresh(scanner).returncode == 0
    meta_path = Path(scanner.agent_env["TRIVY_CACHE_DIR"] or "") / "db" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    old = (datetime.now(UTC) - timedelta(days=5)).isoformat().replace("+00:00", "Z")
    meta["DownloadedAt"] = old
    meta_path.write_text(json.dumps(meta))
    through(scanner, "Build", "Push")
    done = scanner.stage("Scan")
    assert done.returncode == 1
    assert "the vulnerability DB is 120 h old (limit 72 h, SCAN_DB_MAX_AGE_HOURS)" in last_error(
        done
    )
    assert scanner.stub_calls("trivy")[-1]["argv"][0:2] != ["image", "--format"]  # not run


def test_scan_before_push_says_what_to_run(scanner: Agent) -> None:
    begin(scanner)
    done = scanner.stage("Scan")
    clean(done)
    assert done.returncode == 1
    assert last_error(done) == "ci/scan: build/ci/image-ref is missing: run ci/push first"


def test_the_refresh_retries_a_rate_limit_and_keeps_the_old_db_when_it_gives_up(
    scanner: Agent,
) -> None:
    assert refresh(scanner).returncode == 0
    meta_path = Path(scanner.agent_env["TRIVY_CACHE_DIR"] or "") / "db" / "metadata.json"
    before = meta_path.read_bytes()
    done = refresh(
        scanner, STUB_TRIVY_DOWNLOAD_FAILS="9", SCANNER_DB_ATTEMPTS="3", CI_RETRY_SECONDS="0"
    )
    assert done.returncode == 1
    message = last_error(done)
    assert message.startswith("ci/scanner-db: could not download the db after 3 tries (exit 1): ")
    assert "TOOMANYREQUESTS" in message
    assert message.endswith("unchanged")
    assert meta_path.read_bytes() == before
    assert not [p for p in meta_path.parent.parent.iterdir() if p.name.startswith(".refresh")]
    # One rate-limited try, then it works.
    done = refresh(scanner, STUB_TRIVY_DOWNLOAD_FAILS="1", CI_RETRY_SECONDS="0")
    assert done.returncode == 0, done.stderr
    assert "the db download failed (try 1 of 4, exit 1); again in 0 s" in done.stderr
    assert meta_path.read_bytes() != before
    java = meta_path.parent.parent / "java-db" / "metadata.json"
    assert json.loads(java.read_text())["Version"] == 1


def test_the_refresh_needs_the_volume(scanner: Agent) -> None:
    scanner.agent_env["TRIVY_CACHE_DIR"] = None
    done = refresh(scanner)
    assert done.returncode == 1
    assert last_error(done).startswith("ci/scanner-db: TRIVY_CACHE_DIR is not set:")


def test_a_critical_finding_recorded_by_the_scan_refuses_promotion(scanner: Agent) -> None:
    assert refresh(scanner).returncode == 0
    through(scanner, "Build", "Push")
    assert scanner.stage("Scan", STUB_TRIVY_FINDINGS=json.dumps([CRITICAL])).returncode == 0
    through_rest = ("Set image (staging)", "Deploy staging")
    for stage in through_rest:
        assert scanner.stage(stage).returncode == 0
    done = scanner.stage("Promote")
    assert done.returncode == 3
    row = next(ln for ln in done.stdout.splitlines() if ln.startswith("vulnerabilities "))
    assert "1 at critical or above: CVE-2019-18224 critical (libidn2-0" in row
