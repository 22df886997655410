"""Count test results in JUnit XML reports, whatever tool wrote them.

The reports come from pytest, unittest/xmlrunner, xUnit.net, Maven Surefire,
Gradle, jest-junit and Jenkins' own fixtures; they agree on ``<testcase>`` and
on little else. The rules, in the order they apply:

* The body is the truth: every ``<testcase>`` element anywhere in the document
  counts, however deeply ``<testsuite>`` elements nest; header attributes
  (``tests=``, ``failures=``, ...) are only used when a file has no
  ``<testcase>`` at all (then the leaf suites' headers are summed, as
  EnricoMi/publish-unit-test-result-action does), and such a file is named in
  ``TestCounts.from_header``.
* A case's outcome comes from its direct children: ``<error>`` -> error,
  ``<failure>`` -> failed, ``<skipped>`` -> skipped, none of these -> passed.
  Surefire's ``<flakyFailure>``/``<flakyError>`` mean it failed and then passed
  on a rerun: passed (counted in ``flaky``). ``<rerunFailure>``/``<rerunError>``
  mean every rerun failed too: failed (or error), never passed.
* A ``<failure>``/``<error>`` directly inside a ``<testsuite>`` (a class that
  failed to load) counts as one errored case, as Jenkins' JUnit plugin does.
* Retries: when the same ``classname`` + ``name`` appears more than once in one
  ``<testsuite>``, the attempts are one test (Gradle's test-retry plugin and
  mikepenz's flaky reports write retries so). The same names in two suites
  (jest-junit puts every test file of a run in one report) are two tests. A
  retried test passed if any attempt passed (flaky), otherwise it takes the
  outcome of its last attempt that was not skipped; the extra attempts are
  counted in ``retried``. Files are not merged with each
  other: the same test in two files (e.g. a matrix of Python versions) is two
  tests.
* Time: the root ``<testsuites time=>`` if present, else the sum of the
  outermost suites' ``time``, else the sum of the cases' times. Negative case
  times (seen in real reports) are left out and counted in a warning; a time that is
  Infinity, NaN or more than ``limits.MAX_REAL`` seconds refuses the file.

XML is parsed with defusedxml: no DTD entity is ever expanded and no external
resource is fetched; a report that declares entities is refused.

Files are opened by ``pipeline.records.sources.reportfiles``: regular files only
(a FIFO would block for ever), bounded in size and number, and fed to the parser
in pieces of at least an eighth of the file (expat re-scans an unfinished token on
every feed; see there).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from pipeline.records.sources.reportfiles import (
    Pieces,
    ReportError,
    defused_reason,
    expand_reports,
    open_report,
    xml_error_position,
)

Outcome = Literal["passed", "failed", "error", "skipped"]


class JunitError(ReportError):
    """A JUnit report is missing, unreadable or not well-formed XML."""


@dataclass(frozen=True)
class JunitCase:
    """One ``<testcase>`` element (one attempt, when a test was retried)."""

    classname: str
    name: str
    outcome: Outcome
    time: float | None = None
    flaky: bool = False
    reruns: int = 0  # <rerunFailure>/<rerunError> elements
    flaky_attempts: int = 0  # <flakyFailure>/<flakyError> elements
    suite: int = 0  # which <testsuite> of the file holds it (1, 2, ... in document order)


@dataclass(frozen=True)
class HeaderCounts:
    tests: int
    failures: int
    errors: int
    skipped: int


@dataclass(frozen=True)
class JunitReport:
    """What one file says, before retries are folded together."""

    path: str
    cases: tuple[JunitCase, ...]
    suite_errors: int = 0
    header: HeaderCounts | None = None
    time_seconds: float | None = None
    negative_times: int = 0


@dataclass(frozen=True)
class TestCounts:
    """Test results summed over one or more reports."""

    __test__ = False  # not a pytest test class, despite the name

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    time_seconds: float | None = None
    files: int = 0
    cases: int = 0  # <testcase> elements read, retries included
    retried: int = 0  # attempts folded into an earlier attempt of the same test
    flaky: int = 0  # tests that failed at least once and then passed
    from_header: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


class _OffScale(ValueError):
    """A time attribute that is a number, but not a test time (caught per file)."""


def _time(text: str | None) -> float | None:
    """A ``time`` attribute: None when absent or no number; Infinity, NaN or more than
    ``MAX_REAL`` seconds is ``_OffScale`` (two such suites would sum to Infinity)."""
    from pipeline.records.limits import MAX_REAL

    try:
        value = None if text is None else float(text.strip().replace(",", ""))
    except ValueError:
        return None
    if value is not None and not abs(value) <= MAX_REAL:  # NaN fails the comparison too
        raise _OffScale(f"time={text!r} is not a finite number up to {MAX_REAL:g} s")
    return value


def _count_attr(elem: Element, *names: str) -> int | None:
    for name in names:
        value = _number(elem.get(name))
        if value is not None:
            return max(0, int(value))
    return None


def _case_from(elem: Element, suite: int) -> JunitCase:
    kinds = [_local(child.tag) for child in elem]
    reruns = sum(1 for k in kinds if k in ("rerunFailure", "rerunError"))
    flaky_attempts = sum(1 for k in kinds if k in ("flakyFailure", "flakyError"))
    outcome: Outcome
    if "error" in kinds or ("rerunError" in kinds and "failure" not in kinds):
        outcome = "error"
    elif "failure" in kinds or reruns:
        outcome = "failed"
    elif "skipped" in kinds:
        outcome = "skipped"
    else:
        outcome = "passed"
    return JunitCase(
        classname=elem.get("classname") or "",
        name=elem.get("name") or "",
        outcome=outcome,
        time=_time(elem.get("time")),
        flaky=bool(flaky_attempts) and outcome == "passed",
        reruns=reruns,
        flaky_attempts=flaky_attempts,
        suite=suite,
    )


def parse_file(path: str | os.PathLike[str]) -> JunitReport:
    """Read one JUnit XML file (streaming: large reports never build one tree)."""
    # defusedxml is imported here so `python -m pipeline --help` stays light.
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    name = os.fspath(path)
    cases: list[JunitCase] = []
    suite_errors = 0
    suites_seen = 0
    open_suites: list[int] = []  # the number of each enclosing <testsuite>, innermost last
    root_tag: str | None = None
    root_time: float | None = None
    outer_times: list[float | None] = []
    leaf_headers: list[HeaderCounts] = []
    root_header: HeaderCounts | None = None
    # For each open <testsuite>: did it contain another suite?
    suite_has_child: list[bool] = []
    in_case = 0
    try:
        handle, size = open_report(name, JunitError)
        with handle:
            pieces = Pieces(handle, size, name, JunitError)
            for event, elem in iterparse(pieces, events=("start", "end")):
                tag = _local(elem.tag)
                if event == "start":
                    if root_tag is None:
                        root_tag = tag
                        if tag not in ("testsuites", "testsuite"):
                            raise JunitError(
                                f"{name}: not a JUnit report: the root element is <{tag}>, "
                                "expected <testsuites> or <testsuite>"
                            )
                        if tag == "testsuites":
                            root_time = _time(elem.get("time"))
                            root_header = _header(elem)
                    if tag == "testcase":
                        in_case += 1
                    elif tag == "testsuite" and not in_case:
                        if suite_has_child:
                            suite_has_child[-1] = True
                        else:
                            outer_times.append(_time(elem.get("time")))
                        suite_has_child.append(False)
                        suites_seen += 1
                        open_suites.append(suites_seen)
                    continue
                # end events
                if tag == "testcase":
                    in_case -= 1
                    if not in_case:
                        cases.append(_case_from(elem, open_suites[-1] if open_suites else 0))
                        elem.clear()
                elif tag == "testsuite" and not in_case:
                    for child in elem:
                        if _local(child.tag) in ("error", "failure"):
                            suite_errors += 1
                            break
                    had_child = suite_has_child.pop()
                    open_suites.pop()
                    if not had_child:
                        header = _header(elem)
                        if header is not None:
                            leaf_headers.append(header)
                    if root_tag == "testsuite" and not open_suites:
                        root_header = root_header or _header(elem)
                    elem.clear()
    except JunitError:
        raise
    except _OffScale as exc:
        raise JunitError(f"{name}: {exc}, not a test time; fix the report") from None
    except ParseError as exc:
        message = str(exc).split(":", 1)[0]
        raise JunitError(
            f"{name}: not well-formed XML at {xml_error_position(exc)}: {message}"
        ) from None
    except DefusedXmlException as exc:
        raise JunitError(f"{name}: refused: {defused_reason(exc)}") from None
    except UnicodeDecodeError as exc:
        raise JunitError(f"{name}: not readable as text: {exc.reason}") from None
    except IsADirectoryError:
        raise JunitError(f"{name}: is a directory (give the files, e.g. {name}/*.xml)") from None
    except FileNotFoundError:
        raise JunitError(f"{name}: no such file") from None
    except OSError as exc:
        raise JunitError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if root_tag is None:
        raise JunitError(f"{name}: empty file, not a JUnit report")

    negative = sum(1 for c in cases if c.time is not None and c.time < 0)
    time_seconds: float | None
    if root_time is not None and root_time >= 0:
        time_seconds = root_time
    elif outer_times and all(t is not None and t >= 0 for t in outer_times):
        time_seconds = sum(t for t in outer_times if t is not None)
    else:
        times = [c.time for c in cases if c.time is not None and c.time >= 0]
        time_seconds = sum(times) if times else None
    summary: HeaderCounts | None = None
    if leaf_headers:
        summary = HeaderCounts(
            tests=sum(h.tests for h in leaf_headers),
            failures=sum(h.failures for h in leaf_headers),
            errors=sum(h.errors for h in leaf_headers),
            skipped=sum(h.skipped for h in leaf_headers),
        )
    elif root_header is not None:
        summary = root_header
    return JunitReport(
        path=name,
        cases=tuple(cases),
        suite_errors=suite_errors,
        header=summary,
        time_seconds=time_seconds,
        negative_times=negative,
    )


def _header(elem: Element) -> HeaderCounts | None:
    tests = _count_attr(elem, "tests")
    if tests is None:
        return None
    return HeaderCounts(
        tests=tests,
        failures=_count_attr(elem, "failures") or 0,
        errors=_count_attr(elem, "errors") or 0,
        # "skips" is a non-standard spelling seen in the wild; "disabled" is xUnit's.
        skipped=_count_attr(elem, "skipped", "skips", "disabled") or 0,
    )


def _fold_retries(cases: Sequence[JunitCase]) -> tuple[list[Outcome], int, int]:
    """One outcome per distinct test; returns (outcomes, retried attempts, flaky tests)."""
    groups: dict[tuple[int, str, str], list[JunitCase]] = {}
    for case in cases:
        groups.setdefault((case.suite, case.classname, case.name), []).append(case)
    outcomes: list[Outcome] = []
    retried = 0
    flaky = 0
    for attempts in groups.values():
        if len(attempts) == 1:
            only = attempts[0]
            outcomes.append(only.outcome)
            flaky += only.flaky
            continue
        retried += len(attempts) - 1
        results = [a.outcome for a in attempts]
        if "passed" in results:
            outcomes.append("passed")
            if any(r in ("failed", "error") for r in results) or any(a.flaky for a in attempts):
                flaky += 1
            continue
        ran = [r for r in results if r != "skipped"]
        outcomes.append(ran[-1] if ran else "skipped")
    return outcomes, retried, flaky


def summarize(reports: Iterable[JunitReport]) -> TestCounts:
    """Sum reports into one set of counts, applying the module's rules."""
    passed = failed = errors = skipped = files = elements = retried = flaky = 0
    negative = 0
    times: list[float] = []
    from_header: list[str] = []
    for report in reports:
        files += 1
        elements += len(report.cases)
        negative += report.negative_times
        if report.time_seconds is not None:
            times.append(report.time_seconds)
        if not report.cases and not report.suite_errors and report.header is not None:
            h = report.header
            failed += h.failures
            errors += h.errors
            skipped += h.skipped
            passed += max(0, h.tests - h.failures - h.errors - h.skipped)
            if h.tests:
                from_header.append(report.path)
            continue
        outcomes, file_retried, file_flaky = _fold_retries(report.cases)
        retried += file_retried
        flaky += file_flaky
        errors += report.suite_errors
        for outcome in outcomes:
            if outcome == "passed":
                passed += 1
            elif outcome == "failed":
                failed += 1
            elif outcome == "error":
                errors += 1
            else:
                skipped += 1
    warnings: list[str] = []
    if negative:
        warnings.append(f"{negative} test case(s) with a negative time were left out of the time")
    if from_header:
        warnings.append(
            "no <testcase> elements in "
            + ", ".join(from_header)
            + ": counts taken from the suite header"
        )
    return TestCounts(
        passed=passed,
        failed=failed,
        errors=errors,
        skipped=skipped,
        time_seconds=sum(times) if times else None,
        files=files,
        cases=elements,
        retried=retried,
        flaky=flaky,
        from_header=tuple(from_header),
        warnings=tuple(warnings),
    )


def expand(patterns: Sequence[str]) -> list[Path]:
    """Expand file names and globs (``**`` allowed) into a sorted, de-duplicated list."""
    return expand_reports(patterns, "--junit", JunitError)


def count(patterns: Sequence[str]) -> TestCounts:
    """Parse every file the patterns name and sum them; any bad file fails the whole call."""
    if not patterns:
        raise JunitError("no JUnit report given")
    return summarize(parse_file(path) for path in expand(patterns))
