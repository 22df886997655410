"""A CI run from what its sources say: plain figures, JUnit reports, a Jenkins build.

Every source makes the same ``CiRun``: the facts the caller already knows
(``CiFacts``: the image, the commit and its time, scan counts) plus the times and
test counts the source supplies. Each reader returns a ``Reading``: the records
and the notes worth telling the user (tests counted from a header, stages not
counted, a test time taken from the reports). Nothing here parses arguments or
prints; the command does both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pipeline.errors import PipelineError
from pipeline.records.model import MAX_COUNT, CiRun, Record, number_text
from pipeline.records.sources.junit import TestCounts

if TYPE_CHECKING:
    from pipeline.records.sources.jenkins import JenkinsBuild

CiSource = Literal["cli", "junit", "jenkins"]
# No stage of one CI run takes a year; a longer one (a JUnit time="1e308", summed to
# infinity) would be stored and printed as a JSON Infinity that parsers refuse.
MAX_STAGE_SECONDS = 366 * 86400


@dataclass(frozen=True)
class Reading:
    """What a source read: records to append, and notes for the user."""

    records: tuple[Record, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CiFacts:
    """What the caller knows about a CI run whatever its source (``""``/None: unknown)."""

    image: str = ""
    digest: str | None = None
    commit: str | None = None
    commit_time: datetime | None = None
    scan_critical: int | None = None
    scan_high: int | None = None


def ci_run(
    facts: CiFacts,
    counts: TestCounts,
    *,
    source: CiSource,
    started: datetime | None,
    build_seconds: float | None,
    test_seconds: float | None,
    key: str | None = None,
) -> CiRun:
    """The one CiRun every source makes: its times and counts, the rest from ``facts``.

    Counts are checked here, once for every source: a number past ``MAX_COUNT``
    (a JUnit header saying ``tests="1e30"``, a flag of twenty digits) is refused
    in one line instead of failing deep in the store; so are stage times that are not
    a finite number of seconds up to ``MAX_STAGE_SECONDS``.
    """
    for name, value in (
        ("passed", counts.passed),
        ("failed", counts.failed),
        ("errors", counts.errors),
        ("skipped", counts.skipped),
        ("scan-critical", facts.scan_critical),
        ("scan-high", facts.scan_high),
    ):
        if value is not None and not 0 <= value <= MAX_COUNT:
            raise PipelineError(
                f"record ci ({source}): {name} {number_text(value)} is out of range for a "
                f"count (0 to {MAX_COUNT:,}); nothing recorded"
            )
    for name, seconds in (("build time", build_seconds), ("test time", test_seconds)):
        if seconds is not None and not 0 <= seconds <= MAX_STAGE_SECONDS:
            raise PipelineError(
                f"record ci ({source}): {name} {number_text(seconds)} s is out of range "
                f"(0 to {MAX_STAGE_SECONDS:,} s, a finite number); nothing recorded"
            )
    return CiRun(
        image=facts.image,
        digest=facts.digest,
        commit=facts.commit,
        commit_time=facts.commit_time,
        started=started,
        build_seconds=build_seconds,
        test_seconds=test_seconds,
        passed=counts.passed,
        failed=counts.failed,
        errors=counts.errors,
        skipped=counts.skipped,
        scan_critical=facts.scan_critical,
        scan_high=facts.scan_high,
        source=source,
        key=key,
    )


def from_junit(
    facts: CiFacts,
    counts: TestCounts,
    *,
    started: datetime | None,
    build_seconds: float | None,
    test_seconds: float | None,
) -> Reading:
    """Test counts from JUnit reports (``junit.count``); the test time is ``test_seconds``,
    else the reports' own."""
    notes = list(counts.warnings)
    if test_seconds is None:
        test_seconds = counts.time_seconds
        if test_seconds is not None:
            notes.append(f"test time {test_seconds:.1f} s taken from the JUnit reports")
    run = ci_run(
        facts,
        counts,
        source="junit",
        started=started,
        build_seconds=build_seconds,
        test_seconds=test_seconds,
    )
    return Reading((run,), tuple(notes))


def from_jenkins(facts: CiFacts, build: JenkinsBuild, file_counts: TestCounts | None) -> Reading:
    """Stage times from a Jenkins build; test counts from the files when given, else its report.

    Keyed ``jenkins:<build URL>``, so recording the same build twice adds nothing. The
    files' own warnings are the caller's to tell: it reads them before asking Jenkins.
    """
    notes = list(build.notes)
    if build.deploy_seconds is not None:
        notes.append(
            f"deploy stages took {build.deploy_seconds:.1f} s; deployments are timed from "
            "their own records (record deploy --from-pulumi)"
        )
    run = ci_run(
        facts,
        file_counts or build.tests or TestCounts(),
        source="jenkins",
        started=build.started,
        build_seconds=build.build_seconds,
        test_seconds=build.test_seconds,
        key=f"jenkins:{build.url}",
    )
    return Reading((run,), tuple(notes))


__all__ = ["CiFacts", "CiSource", "Reading", "ci_run", "from_jenkins", "from_junit"]
