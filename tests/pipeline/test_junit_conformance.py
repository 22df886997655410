"""Every third-party JUnit file in ../shared/fixtures, against the counts in its SOURCES.md.

SOURCES.md states, per file, the element-level counts (``testcases=N; failure=N,
error=N, skipped=N``: testcase elements, and testcases with such a child) and
flaky/rerun element counts; the files are read in place, never copied. On top
of that, the upstream projects' own expectations are checked where our
documented rules (retries folded, header fallback, suite-level errors) agree
with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.records.sources import junit
from pipeline.records.sources.junit import JunitError

_ROW = re.compile(r"^\|\s*(junit/[^|]+?\.xml)\s*\|(.*)\|\s*$")
_COUNTS = re.compile(r"testcases=(\d+); failure=(\d+), error=(\d+), skipped=(\d+)")
_FLAKY = re.compile(r"flakyFailure (\d+) cases? / (\d+) elements?")
_RERUN = re.compile(r"rerunFailure (\d+) cases? / (\d+) elements?")


@dataclass(frozen=True)
class Expected:
    path: str
    testcases: int | None
    failure: int | None
    error: int | None
    skipped: int | None
    flaky: tuple[int, int] | None
    rerun: tuple[int, int] | None
    must_fail: bool


def _expectations(sources: Path) -> list[Expected]:
    rows: list[Expected] = []
    for line in sources.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        path, rest = match.group(1), match.group(2)
        counts = _COUNTS.search(rest)
        flaky = _FLAKY.search(rest)
        rerun = _RERUN.search(rest)
        rows.append(
            Expected(
                path=path,
                testcases=int(counts.group(1)) if counts else None,
                failure=int(counts.group(2)) if counts else None,
                error=int(counts.group(3)) if counts else None,
                skipped=int(counts.group(4)) if counts else None,
                flaky=(int(flaky.group(1)), int(flaky.group(2))) if flaky else None,
                rerun=(int(rerun.group(1)), int(rerun.group(2))) if rerun else None,
                must_fail="NOT well-formed" in rest,
            )
        )
    return rows


@pytest.fixture(scope="module")
def expectations(shared_fixtures: Path) -> list[Expected]:
    rows = _expectations(shared_fixtures / "SOURCES.md")
    if not rows:
        pytest.fail("SOURCES.md lists no junit/*.xml file: its table format changed")
    return rows


def test_sources_lists_every_junit_file_on_disk_and_nothing_missing(
    shared_fixtures: Path, expectations: list[Expected]
) -> None:
    # A row the table parser missed would be a file never checked.
    listed = sorted(row.path for row in expectations)
    on_disk = sorted(
        p.relative_to(shared_fixtures).as_posix()
        for p in (shared_fixtures / "junit").rglob("*.xml")
    )
    assert listed == on_disk


def test_every_listed_file_matches_its_recorded_counts(
    shared_fixtures: Path, expectations: list[Expected]
) -> None:
    checked = 0
    for row in expectations:
        path = shared_fixtures / row.path
        if row.must_fail:
            with pytest.raises(JunitError, match=re.escape(str(path))):
                junit.parse_file(path)
            checked += 1
            continue
        assert row.testcases is not None, f"{row.path}: no counts in SOURCES.md"
        report = junit.parse_file(path)
        outcomes = [c.outcome for c in report.cases]
        got = (
            len(report.cases),
            outcomes.count("failed"),
            outcomes.count("error"),
            outcomes.count("skipped"),
        )
        assert got == (row.testcases, row.failure, row.error, row.skipped), row.path
        if row.flaky:
            flaky_cases = [c for c in report.cases if c.flaky_attempts]
            assert (len(flaky_cases), sum(c.flaky_attempts for c in flaky_cases)) == row.flaky
            assert all(c.outcome == "passed" for c in flaky_cases), row.path
        if row.rerun:
            rerun_cases = [c for c in report.cases if c.reruns]
            assert (len(rerun_cases), sum(c.reruns for c in rerun_cases)) == row.rerun
            assert all(c.outcome == "failed" for c in rerun_cases), row.path
        checked += 1
    assert checked == len(expectations)


def _counts(shared: Path, *paths: str) -> tuple[int, int, int, int]:
    c = junit.count([str(shared / "junit" / p) for p in paths])
    return (c.passed, c.failed, c.errors, c.skipped)


def test_upstream_publish_unit_test_result_action_expectations(shared_fixtures: Path) -> None:
    # junit.fail.results.json: succ 3, fail 1, error 0, skip 1.
    assert _counts(shared_fixtures, "publish-unit-test-result-action/junit.fail.xml") == (
        3,
        1,
        0,
        1,
    )
    # xunit.results.json: 2 succ (the root's tests="173" is not used).
    assert _counts(shared_fixtures, "publish-unit-test-result-action/xunit.xml") == (2, 0, 0, 0)
    # no-cases-but-tests.results.json: from the header, 3 succ, 1 fail, 2 skip.
    assert _counts(shared_fixtures, "publish-unit-test-result-action/no-cases-but-tests.xml") == (
        3,
        1,
        0,
        2,
    )


def test_upstream_test_reporter_expectations(shared_fixtures: Path) -> None:
    assert _counts(shared_fixtures, "test-reporter/python-xunit-pytest.xml") == (6, 2, 0, 2)
    # test-reporter merges error into failed: 4 passed, 2 failed, 2 skipped.
    passed, failed, errors, skipped = _counts(
        shared_fixtures, "test-reporter/python-xunit-unittest.xml"
    )
    assert (passed, failed + errors, skipped) == (4, 2, 2)
    assert _counts(shared_fixtures, "test-reporter/jest-junit.xml") == (1, 4, 0, 1)


def test_upstream_junit_plugin_expectations(shared_fixtures: Path) -> None:
    # includeFlakyAndRerun: 2 tests in all, the flaky one passed, the rerun one failed.
    assert _counts(
        shared_fixtures,
        "junit-plugin/TEST-io.olamy.AlwaysFailTest.xml",
        "junit-plugin/TEST-io.olamy.FlakyTest.xml",
    ) == (1, 1, 0, 0)
    # testParseNestedTestSuites: 3 results, one of them the suite that failed to load.
    passed, failed, errors, skipped = _counts(
        shared_fixtures, "junit-plugin/junit-report-nested-testsuites.xml"
    )
    assert (passed + failed + errors + skipped, failed + errors) == (3, 1)
    huge = junit.count([str(shared_fixtures / "junit/junit-plugin/junit-report-huge.xml")])
    assert (huge.passed, huge.failed, huge.errors, huge.skipped) == (7580 - 19 - 2430, 19, 0, 2430)


def test_upstream_action_junit_report_flaky_expectation(shared_fixtures: Path) -> None:
    c = junit.count([str(shared_fixtures / "junit/action-junit-report/flaky_success_first.xml")])
    # testParser.test.ts: totalCount 1, passed 1, failed 0, retriedCount 2.
    assert (c.total, c.passed, c.failed, c.errors, c.retried) == (1, 1, 0, 0, 2)
