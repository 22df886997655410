"""The JUnit plugin's ``BUILD_URL/testReport/api/json``, read as test counts. Pure.

``passCount``, ``failCount`` and ``skipCount`` when all three are counts, else one
status per case from ``suites[].cases[].status``. Whatever the server sends is
checked: a shape that is not the plugin's (``"suites": 5``, a suite that is a string)
and a count no report can hold (past 2^63 - 1) are ``JenkinsError`` lines, never a
``TypeError`` deep in the loop. ``JenkinsError`` lives here so that
``pipeline.records.sources.jenkins`` (the describe reader and the client) and this
module share it without importing each other.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from pipeline.errors import PipelineError
from pipeline.records.model import MAX_COUNT, number_text
from pipeline.records.sources.junit import TestCounts


class JenkinsError(PipelineError):
    """Jenkins could not be read, refused, or the build cannot be recorded."""


def millis(value: Any) -> float | None:
    """A JSON number of milliseconds as a float (a huge integer is infinite), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer with hundreds of digits
        return float("inf")


def _is_count(value: Any) -> TypeGuard[int]:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return False
    if value > MAX_COUNT:
        raise JenkinsError(
            f"testReport/api/json: a count of {number_text(value)} tests is more than any report "
            f"holds (at most {MAX_COUNT:,}): is this a Jenkins test report?"
        )
    return True


def _list_of(data: Any, field: str, what: str) -> list[Any]:
    """``data[field]`` as a list (absent or null: empty); any other shape is refused."""
    value = data.get(field) if isinstance(data, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise JenkinsError(
            f"testReport/api/json: {what} is {type(value).__name__}, not a list: "
            "is this a Jenkins test report?"
        )
    return value


def _count_cases(data: dict[str, Any]) -> tuple[int, int, int]:
    """(passed, failed, skipped) from ``suites[].cases[].status``, shapes checked."""
    passed = failed = skipped = 0
    for suite in _list_of(data, "suites", "'suites'"):
        if suite is None:
            continue
        if not isinstance(suite, dict):
            raise JenkinsError(
                f"testReport/api/json: a suite is {type(suite).__name__}, not an object: "
                "is this a Jenkins test report?"
            )
        for case in _list_of(suite, "cases", "a suite's 'cases'"):
            if case is not None and not isinstance(case, dict):
                raise JenkinsError(
                    f"testReport/api/json: a case is {type(case).__name__}, not an object: "
                    "is this a Jenkins test report?"
                )
            status = str((case or {}).get("status") or "").upper()
            if status in ("PASSED", "FIXED"):
                passed += 1
            elif status in ("FAILED", "REGRESSION"):
                failed += 1
            elif status == "SKIPPED":
                skipped += 1
    return passed, failed, skipped


def parse_test_report(data: Any) -> TestCounts:
    """The JUnit plugin's ``testReport/api/json`` as counts (failures include errors)."""
    if not isinstance(data, dict):
        raise JenkinsError("testReport/api/json: expected a JSON object")
    duration = millis(data.get("duration"))
    pass_count, fail_count, skip_count = (
        data.get(k) for k in ("passCount", "failCount", "skipCount")
    )
    if _is_count(pass_count) and _is_count(fail_count) and _is_count(skip_count):
        passed, failed, skipped = int(pass_count), int(fail_count), int(skip_count)
        cases = passed + failed + skipped
    else:
        passed, failed, skipped = _count_cases(data)
        cases = passed + failed + skipped
    return TestCounts(
        passed=passed,
        failed=failed,
        skipped=skipped,
        time_seconds=duration if duration is not None and duration >= 0 else None,
        files=0,
        cases=cases,
    )


__all__ = ["JenkinsError", "millis", "parse_test_report"]
