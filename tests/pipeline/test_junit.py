"""JUnit XML counting, one dialect per test, counts verified by reading each fixture."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.records.sources import junit
from pipeline.records.sources.junit import JunitError, TestCounts

FIXTURES = Path(__file__).parent / "fixtures" / "junit"


def counts(name: str) -> TestCounts:
    return junit.count([str(FIXTURES / name)])


def outcome(c: TestCounts) -> tuple[int, int, int, int]:
    return (c.passed, c.failed, c.errors, c.skipped)


def test_pytest_counts_failure_error_and_skip_separately() -> None:
    c = counts("pytest.xml")
    assert outcome(c) == (2, 1, 1, 1)
    assert c.time_seconds == pytest.approx(3.25)


def test_unittest_report_with_bom_and_crlf() -> None:
    c = counts("unittest-bom-crlf.xml")
    assert outcome(c) == (2, 1, 0, 1)
    assert c.time_seconds == pytest.approx(0.004)


def test_surefire_flaky_failure_counts_as_passed_and_rerun_failure_as_failed() -> None:
    c = counts("surefire-reruns.xml")
    # passesFirstTime + passesOnRerun (flaky) passed; alwaysFails failed (failure +
    # 2 rerunFailure); alwaysErrors error (error + rerunError); disabledOnCi skipped.
    assert outcome(c) == (2, 1, 1, 1)
    assert c.flaky == 1
    assert c.cases == 5


def test_surefire_header_counting_reruns_is_ignored() -> None:
    report = junit.parse_file(FIXTURES / "surefire-reruns.xml")
    assert report.header is not None
    assert report.header.tests == 9
    assert counts("surefire-reruns.xml").total == 5


def test_jest_junit_text_only_failures_and_empty_skipped() -> None:
    c = counts("jest-junit.xml")
    assert outcome(c) == (2, 2, 0, 1)
    assert c.time_seconds == pytest.approx(1.532)


def test_gradle_report() -> None:
    assert outcome(counts("gradle.xml")) == (2, 1, 0, 1)


def test_nested_suites_count_every_case_once_and_a_suite_level_error() -> None:
    c = counts("nested.xml")
    # test_a, test_health pass; test_b fails; model.loader failed to load (suite <error>).
    assert outcome(c) == (2, 1, 1, 0)
    assert c.cases == 3
    assert c.time_seconds == pytest.approx(5.5)


def test_body_wins_when_the_header_disagrees() -> None:
    c = counts("header-disagrees.xml")
    assert outcome(c) == (2, 1, 0, 0)
    assert c.from_header == ()


def test_file_without_testcases_falls_back_to_leaf_suite_headers() -> None:
    c = counts("header-only.xml")
    # a: 4 tests, 1 failure, 1 error; b: 3 tests, 1 skipped.
    assert outcome(c) == (4, 1, 1, 1)
    assert c.from_header == (str(FIXTURES / "header-only.xml"),)
    assert any("suite header" in w for w in c.warnings)


def test_retried_case_is_one_test_passed_if_any_attempt_passed() -> None:
    c = counts("retried.xml")
    # test_upload: fail, fail, pass -> passed (flaky); test_download: fail, error ->
    # error (its last attempt); test_login and tests.test_api.test_upload pass.
    assert outcome(c) == (3, 0, 1, 0)
    assert c.retried == 3
    assert c.flaky == 1
    assert c.cases == 7


def test_same_names_in_two_suites_of_one_file_are_two_tests(tmp_path: Path) -> None:
    # jest-junit: one report, one <testsuite> per test file, titles may repeat.
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites name="jest tests" tests="2" failures="1">\n'
        '  <testsuite name="src/a.test.js" tests="1" failures="0">\n'
        '    <testcase classname="App renders" name="App renders" time="0.01"/>\n'
        "  </testsuite>\n"
        '  <testsuite name="src/b.test.js" tests="1" failures="1">\n'
        '    <testcase classname="App renders" name="App renders" time="0.02">\n'
        "      <failure>expected 1 to be 2</failure>\n"
        "    </testcase>\n"
        "  </testsuite>\n"
        "</testsuites>\n",
        encoding="utf-8",
    )
    c = junit.count([str(report)])
    assert outcome(c) == (1, 1, 0, 0)
    assert c.retried == 0


def test_same_test_in_two_files_is_two_tests() -> None:
    c = junit.count([str(FIXTURES / "gradle.xml"), str(FIXTURES / "pytest.xml")])
    assert outcome(c) == (4, 2, 1, 2)
    assert c.files == 2


def test_corrupt_file_is_one_error_with_file_and_position() -> None:
    path = FIXTURES / "corrupt.xml"
    with pytest.raises(JunitError) as caught:
        counts("corrupt.xml")
    message = str(caught.value)
    assert message.startswith(f"{path}: not well-formed XML at line 5, column ")
    assert "\n" not in message


def test_entity_declarations_are_refused_not_expanded() -> None:
    with pytest.raises(JunitError, match=r"entities\.xml: refused"):
        counts("entities.xml")


def test_a_non_junit_document_is_refused() -> None:
    with pytest.raises(JunitError, match=r"root element is <html>"):
        counts("not-junit.xml")


def test_empty_file_is_refused() -> None:
    with pytest.raises(JunitError, match=r"empty\.xml: .*(empty|no element)"):
        counts("empty.xml")


def test_glob_expands_sorted_and_deduplicated() -> None:
    pattern = str(FIXTURES / "g*.xml")
    c = junit.count([pattern, str(FIXTURES / "gradle.xml")])
    assert c.files == 1
    assert outcome(c) == (2, 1, 0, 1)


def test_glob_without_match_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JunitError, match=r"no file matches this pattern"):
        junit.count([str(tmp_path / "reports" / "**" / "*.xml")])


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JunitError, match=r"no such file"):
        junit.count([str(tmp_path / "nope.xml")])


def test_one_bad_file_fails_the_whole_set() -> None:
    with pytest.raises(JunitError, match=r"corrupt\.xml"):
        junit.count([str(FIXTURES / "gradle.xml"), str(FIXTURES / "corrupt.xml")])


def write_big_report(path: Path, cases: int) -> None:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="big">\n']
    for i in range(cases):
        body = ""
        if i % 100 == 0:
            body = '<failure message="x" type="AssertionError">trace</failure>'
        elif i % 10 == 0:
            body = '<skipped message="off"/>'
        parts.append(
            f'<testcase classname="pkg.S{i}.SomeLongTestName" name="Run 0" time="0.01">'
            f"{body}<system-out>line {i}</system-out></testcase>\n"
        )
    parts.append("</testsuite>\n")
    path.write_text("".join(parts), encoding="utf-8")


def test_large_report_counts(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    write_big_report(path, 7500)
    started = time.perf_counter()
    c = junit.count([str(path)])
    elapsed = time.perf_counter() - started
    # i % 100 == 0 -> 75 failures; i % 10 == 0 but not % 100 -> 675 skipped.
    assert outcome(c) == (7500 - 75 - 675, 75, 0, 675)
    assert c.time_seconds == pytest.approx(75.0)
    # Generous bound: this is a streaming parse, seconds would mean a regression.
    assert elapsed < 5, f"parsing 7,500 cases took {elapsed:.2f}s"
