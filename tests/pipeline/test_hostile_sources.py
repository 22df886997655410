"""What Jenkins (or something posing as it) may answer: wrong shapes, absurd numbers,
JSON nested ten thousand deep. Each is one line naming the problem; nothing recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.io.jsontext import JsonError, loads
from pipeline.records.sources.jenkins import (
    JenkinsError,
    StageMap,
    parse_describe,
    parse_test_report,
)
from tests.pipeline.hostile import assert_refused, cli
from tests.pipeline.jenkins_fake import FakeJenkins, jenkins_server, server

__all__ = ["jenkins_server", "server"]  # fixtures used below

FINISHED = {"status": "SUCCESS", "name": "#1", "stages": []}


@pytest.mark.parametrize(
    ("report", "fragment"),
    [
        ({"suites": 5}, "'suites' is int, not a list"),
        ({"suites": "abc"}, "'suites' is str, not a list"),
        ({"suites": ["abc"]}, "a suite is str, not an object"),
        ({"suites": [{"cases": 5}]}, "a suite's 'cases' is int, not a list"),
        ({"suites": [{"cases": [7]}]}, "a case is int, not an object"),
        ({"passCount": 2**64, "failCount": 0, "skipCount": 0}, "more than any report holds"),
        ({"passCount": 10**400, "failCount": 0, "skipCount": 0}, "more than 300 digits"),
    ],
    ids=["int", "str", "suite-str", "cases-int", "case-int", "2^64", "huge"],
)
def test_a_test_report_of_the_wrong_shape_is_refused(report: dict[str, Any], fragment: str) -> None:
    with pytest.raises(JenkinsError, match=fragment) as caught:
        parse_test_report(report)
    assert "\n" not in str(caught.value)


def test_null_suites_and_cases_are_empty_not_an_error() -> None:
    counts = parse_test_report({"suites": [None, {"cases": None}, {"cases": [None]}]})
    assert (counts.passed, counts.failed, counts.skipped) == (0, 0, 0)


@pytest.mark.parametrize("start", [1e30, 10**400, 2**63, 253402300800000])
def test_a_start_time_off_the_calendar_is_refused(start: Any) -> None:
    with pytest.raises(JenkinsError, match=r"startTimeMillis .* is not a time"):
        parse_describe({**FINISHED, "startTimeMillis": start}, StageMap(), url="http://ci/job/1/")


def test_json_nested_ten_thousand_deep_is_refused_without_recursing() -> None:
    deep = "[" * 10_000 + "]" * 10_000
    with pytest.raises(JsonError, match="nested more than 200 levels deep"):
        loads(deep)
    just_under = "[" * 150 + "]" * 150
    assert loads(just_under) == json.loads(just_under)


@pytest.mark.parametrize(
    ("describe", "report", "fragment"),
    [
        (FINISHED, b'{"suites": 5}', "'suites' is int, not a list"),
        (FINISHED, b'["abc"]', "expected a JSON object"),
        (b"[" * 10_000 + b"]" * 10_000, None, "the answer is not usable JSON (nested more than"),
        ({**FINISHED, "startTimeMillis": 1e30}, None, "startTimeMillis 1e+30 is not a time"),
        (FINISHED, b'{"passCount": 18446744073709551616, "failCount": 0, "skipCount": 0}', "2^"),
        (FINISHED, b'{"passCount": 1' + b"0" * 5000 + b', "failCount": 0}', "not JSON"),
    ],
    ids=["suites-5", "list", "deep", "start-1e30", "count-2^64", "5000-digits"],
)
def test_record_ci_from_a_hostile_jenkins_is_one_line_and_records_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    jenkins_server: FakeJenkins,
    describe: Any,
    report: bytes | None,
    fragment: str,
) -> None:
    jenkins_server.serve("/job/cv/7/wfapi/describe", describe)
    if report is not None:
        jenkins_server.serve("/job/cv/7/testReport/api/json", report)
    store = tmp_path / "records.db"
    result = cli(
        capsys,
        "--store",
        str(store),
        "record",
        "ci",
        "--from-jenkins",
        f"{jenkins_server.url}/job/cv/7/",
    )
    expected = "more than any report holds" if fragment == "2^" else fragment
    assert_refused(result, expected)
    assert not store.exists()


IMAGE = "registry.example.internal/cv/model:v1@sha256:" + "ab" * 32


def test_a_count_flag_past_two_to_the_63_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "records.db"
    args = ["--store", str(store), "record", "ci", "--image", IMAGE]
    args += ["--build-seconds", "1", "--test-seconds", "1", "--passed", str(2**63)]
    with pytest.raises(SystemExit) as caught:
        cli(capsys, *args)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "expected a number up to 9223372036854775807" in err
    assert not store.exists()


def test_a_junit_header_of_1e30_tests_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.xml"
    report.write_text('<testsuite name="s" tests="1e30" failures="0" errors="0"/>')
    store = tmp_path / "records.db"
    result = cli(
        capsys, "--store", str(store), "record", "ci", "--junit", str(report), "--image", IMAGE
    )
    assert_refused(result, "passed 1e+30 is out of range for a count")
    assert not store.exists()


PULUMI_STDERR = (
    "warning: A new version of Pulumi is available. To upgrade from version '3.200.0' to "
    "'3.210.0', run\n   $ curl -sSL https://get.pulumi.com | sh\n"
    "error: getting stack configuration: get stack secrets manager: passphrase must be set "
    "with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables\n"
    "\n"
    "  Resources:\n      0 unchanged\n"
)


def test_a_failing_pulumi_keeps_its_first_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.commands.adapters import Adapters
    from pipeline.io.process import Completed
    from tests.pipeline.hostile import make_project

    def pulumi(argv: Any, cwd: Any = None, /, *, timeout: float, stdin: Any = None) -> Completed:
        return Completed(255, "", PULUMI_STDERR)

    root = make_project(tmp_path / "p")
    result = cli(
        capsys,
        "--project-dir",
        str(root),
        "--store",
        str(tmp_path / "r.db"),
        "record",
        "deploy",
        "--from-pulumi",
        "--stack",
        "staging",
        adapters=Adapters(run=pulumi),
    )
    line = assert_refused(result, "failed (exit 255): error: getting stack configuration")
    assert "PULUMI_CONFIG_PASSPHRASE_FILE environment variables" in line
    assert "unchanged" not in line
