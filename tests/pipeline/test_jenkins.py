"""Jenkins reader against a real HTTP server on 127.0.0.1 serving real REST shapes.

The server serves our own fixtures (tests/pipeline/fixtures/jenkins, shaped like
our Jenkinsfile's runs) and, when ../shared/fixtures exists, every run of the
Pipeline Stage View plugin's own test data, read in place.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.io.http import basic_auth
from pipeline.records.sources import jenkins
from pipeline.records.sources.jenkins import JenkinsClient, JenkinsError, StageMap
from tests.pipeline.fake_transport import FakeTransport, answer
from tests.pipeline.jenkins_fake import FakeJenkins, jenkins_server, server

FIXTURES = Path(__file__).parent / "fixtures" / "jenkins"
USER, TOKEN = "ci-reader", "11d5e2c0ffee0ddba11"

__all__ = ["jenkins_server", "server"]  # fixtures, imported


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def publish(server: FakeJenkins, job: str, number: int, describe: Any, report: Any = None) -> str:
    base = f"/job/{job}/{number}/"
    server.serve(base + "wfapi/describe", describe)
    if report is not None:
        server.serve(base + "testReport/api/json", report)
    return server.url + base


def client(**kwargs: Any) -> JenkinsClient:
    return JenkinsClient(timeout=5, **kwargs)


def test_successful_build_maps_stages_and_sends_basic_auth(jenkins_server: FakeJenkins) -> None:
    jenkins_server.credentials = (USER, TOKEN)
    url = publish(
        jenkins_server,
        "cv-platform",
        42,
        load("describe-success.json"),
        load("testreport-counts.json"),
    )
    build = client(auth=(USER, TOKEN)).read_build(url, StageMap())
    assert build.status == "SUCCESS"
    assert build.build_seconds == pytest.approx(300.0)
    assert build.test_seconds == pytest.approx(450.0)
    assert build.deploy_seconds == pytest.approx(300.0)  # Deploy staging + Deploy prod
    assert build.queue_seconds == pytest.approx(65.0)
    assert build.started == datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    assert build.tests is not None
    assert (build.tests.passed, build.tests.failed, build.tests.skipped) == (40, 2, 3)
    assert any("Checkout" in n and "Approve prod" in n for n in build.notes)
    assert len(jenkins_server.requests) == 2


def test_queue_time_is_not_build_time(jenkins_server: FakeJenkins) -> None:
    data = load("describe-success.json")
    data["queueDurationMillis"] = 3_600_000
    url = publish(jenkins_server, "cv-platform", 42, data)
    build = client().read_build(url, StageMap())
    assert build.queue_seconds == pytest.approx(3600.0)
    assert build.build_seconds == pytest.approx(300.0)


def test_failed_build_times_the_failed_stage_and_not_the_skipped_ones(
    jenkins_server: FakeJenkins,
) -> None:
    url = publish(jenkins_server, "cv-platform", 43, load("describe-failed.json"))
    build = client().read_build(url, StageMap())
    assert build.status == "FAILED"
    assert build.build_seconds == pytest.approx(240.0)
    assert build.test_seconds == pytest.approx(90.0)
    assert build.deploy_seconds is None  # NOT_EXECUTED: no time, not zero
    assert build.tests is None
    assert "the build published no JUnit test report" in build.notes


def test_aborted_stage_has_no_time(jenkins_server: FakeJenkins) -> None:
    url = publish(jenkins_server, "cv-platform", 44, load("describe-aborted.json"))
    build = client().read_build(url, StageMap())
    assert build.status == "ABORTED"
    assert build.build_seconds == pytest.approx(250.0)
    assert build.test_seconds is None
    assert any("Test (ABORTED)" in n for n in build.notes)


def test_unstable_stage_is_timed(jenkins_server: FakeJenkins) -> None:
    url = publish(
        jenkins_server,
        "cv-platform",
        45,
        load("describe-unstable.json"),
        load("testreport-cases.json"),
    )
    build = client().read_build(url, StageMap())
    assert build.status == "UNSTABLE"
    assert build.test_seconds == pytest.approx(400.0)
    assert build.tests is not None
    # PASSED, FIXED, PASSED -> 3 passed; REGRESSION, FAILED -> 2 failed; 1 skipped.
    assert (build.tests.passed, build.tests.failed, build.tests.skipped) == (3, 2, 1)


@pytest.mark.parametrize("status", ["IN_PROGRESS", "PAUSED_PENDING_INPUT"])
def test_unfinished_build_is_refused(jenkins_server: FakeJenkins, status: str) -> None:
    data = load("describe-paused.json")
    data["status"] = status
    url = publish(jenkins_server, "cv-platform", 46, data)
    with pytest.raises(JenkinsError, match=rf"#46 .* is still {status}: record it when"):
        client().read_build(url, StageMap())


def test_wrong_token_is_one_clear_error_without_the_token(jenkins_server: FakeJenkins) -> None:
    jenkins_server.credentials = (USER, TOKEN)
    url = publish(jenkins_server, "cv-platform", 42, load("describe-success.json"))
    with pytest.raises(JenkinsError) as caught:
        client(auth=(USER, "wrong-token-value")).read_build(url, StageMap())
    assert "HTTP 401" in str(caught.value)
    assert "wrong-token-value" not in str(caught.value)


def test_unknown_build_is_a_clear_error(jenkins_server: FakeJenkins) -> None:
    with pytest.raises(JenkinsError, match=r"HTTP 404"):
        client().read_build(jenkins_server.url + "/job/nope/1/", StageMap())


def test_non_json_answer_is_a_clear_error(jenkins_server: FakeJenkins) -> None:
    jenkins_server.serve("/job/x/1/wfapi/describe", b"<html>login</html>")
    with pytest.raises(JenkinsError, match=r"not JSON"):
        client().read_build(jenkins_server.url + "/job/x/1", StageMap())


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts connections in the kernel, never answers
        port = listener.getsockname()[1]
        slow = JenkinsClient(timeout=0.3)
        with pytest.raises(JenkinsError, match=r"did not answer within 0\.3 s"):
            slow.read_build(f"http://127.0.0.1:{port}/job/x/1/", StageMap())


def test_closed_port_is_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(JenkinsError, match=r"cannot reach Jenkins at 127.0.0.1"):
        JenkinsClient(timeout=2).read_build(f"http://127.0.0.1:{port}/job/x/1/", StageMap())


def finished_build() -> FakeTransport:
    """A transport that answers every GET with a finished build."""
    content = json.dumps(load("describe-success.json")).encode()
    return FakeTransport(lambda method, url, headers: answer(200, url, content=content))


def test_credentials_are_not_sent_over_plain_http_to_a_remote_host() -> None:
    http = finished_build()
    remote = JenkinsClient(auth=(USER, TOKEN), session=http)
    with pytest.raises(JenkinsError, match=r"refusing to send Jenkins credentials over plain http"):
        remote.read_build("http://ci.example:8080/job/cv-platform/42/", StageMap())
    assert http.sent == []


def test_https_remote_host_uses_the_injected_adapter() -> None:
    http = finished_build()
    build = JenkinsClient(auth=(USER, TOKEN), session=http).read_build(
        "https://ci.example/job/cv-platform/42/wfapi/describe", StageMap()
    )
    assert build.url == "https://ci.example/job/cv-platform/42/"
    (_, describe, headers), (_, report, _) = http.sent
    assert describe == "https://ci.example/job/cv-platform/42/wfapi/describe"
    assert report.startswith("https://ci.example/job/cv-platform/42/testReport/api/json?")
    assert headers["Authorization"] == basic_auth(USER, TOKEN)


@pytest.mark.parametrize(
    "url",
    ["ftp://ci.example/job/x/1/", "ci.example/job/x/1", "https://u:p@ci.example/job/x/1/"],
)
def test_bad_build_urls_are_refused(url: str) -> None:
    with pytest.raises(JenkinsError, match=r"--from-jenkins"):
        jenkins.normalize_build_url(url)


def test_credentials_come_in_pairs() -> None:
    assert jenkins.credentials({}) is None
    assert jenkins.credentials({"JENKINS_USER": "u", "JENKINS_TOKEN": "t"}) == ("u", "t")
    with pytest.raises(JenkinsError, match=r"JENKINS_TOKEN is not set"):
        jenkins.credentials({"JENKINS_USER": "u"})


def test_stage_map_from_flags_env_and_defaults() -> None:
    env = {"PIPELINE_JENKINS_TEST_STAGES": "Unit tests, Integration*"}
    stage_map = StageMap.from_env(env, build="Compile,Package")
    assert stage_map.build == ("Compile", "Package")
    assert stage_map.test == ("Unit tests", "Integration*")
    assert stage_map.deploy == ("Deploy staging", "Deploy prod")
    assert stage_map.category("integration (GPU)") == "test"
    assert stage_map.category("package") == "build"
    assert stage_map.category("Deploy canary") is None
    with pytest.raises(JenkinsError, match=r"no stage names"):
        StageMap.from_env({"PIPELINE_JENKINS_DEPLOY_STAGES": " , "})


# -- the Pipeline Stage View plugin's own REST data (../shared/fixtures) --------

SHARED_MAP = StageMap(
    build=("Build", "Dev"), test=("Test*", "QA"), deploy=("Deploy", "Staging", "Production")
)


def _shared_runs(shared: Path) -> list[tuple[str, dict[str, Any]]]:
    runs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((shared / "jenkins-wfapi").glob("*.json")):
        for run in json.loads(path.read_text(encoding="utf-8")):
            runs.append((path.stem, run))
    return runs


def test_every_shared_run_is_read_or_refused_by_its_status(
    jenkins_server: FakeJenkins, shared_fixtures: Path
) -> None:
    runs = _shared_runs(shared_fixtures)
    assert len(runs) >= 15
    for stem, run in runs:
        number = int(str(run["name"]).lstrip("#"))
        url = publish(jenkins_server, stem, number, run)
        if run["status"] == "IN_PROGRESS":
            with pytest.raises(JenkinsError, match=r"still IN_PROGRESS"):
                client().read_build(url, SHARED_MAP)
            continue
        build = client().read_build(url, SHARED_MAP)
        assert build.status == run["status"]
        for stage, raw in zip(build.stages, run["stages"], strict=True):
            if raw["status"] in ("SUCCESS", "FAILED", "UNSTABLE"):
                expected = (raw["durationMillis"] - raw.get("pauseDurationMillis", 0)) / 1000
                assert stage.seconds == pytest.approx(max(0.0, expected)), (stem, stage.name)
            else:
                assert stage.seconds is None, (stem, stage.name)


def _shared_build(server: FakeJenkins, shared: Path, stem: str, name: str) -> jenkins.JenkinsBuild:
    runs = json.loads((shared / "jenkins-wfapi" / f"{stem}.json").read_text(encoding="utf-8"))
    run = next(r for r in runs if r["name"] == name)
    url = publish(server, stem, int(name.lstrip("#")), run)
    return client().read_build(url, SHARED_MAP)


def test_shared_pause_is_not_stage_time(jenkins_server: FakeJenkins, shared_fixtures: Path) -> None:
    build = _shared_build(jenkins_server, shared_fixtures, "06_rest_api_runs", "#7")
    # Staging 19876 ms of which 19763 paused, Production 64 ms.
    assert build.deploy_seconds == pytest.approx(0.113 + 0.064)
    assert build.queue_seconds == pytest.approx(7.498)
    assert build.build_seconds == pytest.approx(0.018)
    assert build.test_seconds == pytest.approx(16.358)


def test_shared_not_executed_stages_have_no_time(
    jenkins_server: FakeJenkins, shared_fixtures: Path
) -> None:
    build = _shared_build(
        jenkins_server, shared_fixtures, "03_rest_api_runs_checkpoint_rerun", "#2"
    )
    assert (build.build_seconds, build.test_seconds) == (None, None)
    assert build.deploy_seconds == pytest.approx(0.6)


def test_shared_failed_and_unstable_runs(
    jenkins_server: FakeJenkins, shared_fixtures: Path
) -> None:
    failed = _shared_build(jenkins_server, shared_fixtures, "04_rest_api_runs_failed", "#3")
    assert failed.status == "FAILED"
    assert failed.deploy_seconds == pytest.approx(0.3)
    unstable = _shared_build(jenkins_server, shared_fixtures, "08_rest_api_unstable_run", "#1")
    assert unstable.status == "UNSTABLE"
    assert unstable.deploy_seconds == pytest.approx(10.247 + 0.629)


def test_shared_run_without_stages_has_no_times(
    jenkins_server: FakeJenkins, shared_fixtures: Path
) -> None:
    build = _shared_build(jenkins_server, shared_fixtures, "05_rest_api_runs", "#1")
    assert (build.build_seconds, build.test_seconds, build.deploy_seconds) == (None, None, None)
    assert build.queue_seconds == pytest.approx(808.146)


def test_timeout_from_the_environment() -> None:
    assert jenkins.client_from_env({"PIPELINE_JENKINS_TIMEOUT": "2.5"})._timeout == 2.5
    assert jenkins.client_from_env({})._timeout == jenkins.DEFAULT_TIMEOUT
    for bad in ("0", "soon", "9999"):
        with pytest.raises(JenkinsError, match=r"PIPELINE_JENKINS_TIMEOUT"):
            jenkins.client_from_env({"PIPELINE_JENKINS_TIMEOUT": bad})
