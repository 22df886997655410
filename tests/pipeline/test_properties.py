"""Property-based checks (hypothesis) of the grammars and readers hostile input reaches:
image references, stack files, JUnit reports, times and numbers. Each property says what
holds for every input, not for an example; example counts are modest (tests/conftest.py)."""

from __future__ import annotations

import argparse
import math
import string
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.commands.options import positive_int, seconds
from pipeline.errors import PipelineError
from pipeline.images.refs import MAX_PORT, ImageRef, InvalidReferenceError, parse_ref
from pipeline.records.model import TimeRangeError, number_text, read_time
from pipeline.records.sources.junit import JunitError, TestCounts, parse_file, summarize
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import read_image, write_image

# --- Image references -----------------------------------------------------------------------

_alnum = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
path_component = st.builds(
    lambda parts, seps: parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=False)),
    st.lists(_alnum, min_size=1, max_size=3),
    st.lists(st.sampled_from([".", "_", "__", "-", "--"]), min_size=2, max_size=2),
)
domain = st.lists(
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10),
    min_size=2,
    max_size=3,
).map(".".join)
registry = st.one_of(
    domain,
    st.builds(lambda d, p: f"{d}:{p}", domain, st.integers(1, MAX_PORT)),
    st.just("localhost:5000"),
)
tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
digest = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
image_ref = st.builds(
    ImageRef,
    registry,
    st.lists(path_component, min_size=1, max_size=3).map("/".join),
    st.one_of(st.none(), tag),
    st.one_of(st.none(), digest),
).filter(lambda r: r.tag is not None or r.digest is not None)


@given(image_ref)
def test_every_well_formed_reference_reads_back_as_written(ref: ImageRef) -> None:
    assert parse_ref(str(ref)) == ref


@given(st.text(max_size=80))
def test_any_text_is_a_reference_or_one_line_refusal(text: str) -> None:
    try:
        ref = parse_ref(text)
    except InvalidReferenceError as exc:
        message = str(exc)
        assert "\n" not in message
        return
    assert parse_ref(str(ref)) == ref


@given(domain, st.integers(MAX_PORT + 1, 10**12), tag)
def test_a_port_out_of_range_is_refused(host: str, port: int, tagged: str) -> None:
    with pytest.raises(InvalidReferenceError, match="out of range"):
        parse_ref(f"{host}:{port}/cv/model:{tagged}")


# --- Stack files ------------------------------------------------------------------------------

STACK_FILE = """\
# The staging stack.
config:
  cv-platform:environment: staging   # kept
  cv-platform:image:
    repository: registry.example.internal/cv/model
    tag: old
    digest: sha256:{old}
  cv-platform:replicas: 1
""".format(old="0" * 64)

setting = st.builds(
    ImageSetting,
    st.builds(lambda r: f"{r.registry}/{r.repository}", image_ref),
    st.one_of(st.none(), tag),
    digest,
)


@given(setting)
def test_an_image_written_to_a_stack_file_reads_back_and_nothing_else_changes(
    new: ImageSetting,
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "Pulumi.staging.yaml"
        path.write_text(STACK_FILE, encoding="utf-8")
        write_image(path, new)
        assert read_image(path) == new
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[:3] == STACK_FILE.splitlines()[:3]
        assert lines[-1] == "  cv-platform:replicas: 1"


@given(st.text(max_size=200))
def test_any_stack_file_text_reads_or_is_refused_in_one_line(text: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "Pulumi.staging.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        message = ""
        try:
            read_image(path)
        except PipelineError as exc:
            message = str(exc)
        assert "\n" not in message


# --- JUnit ----------------------------------------------------------------------------------

attribute = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "abc", "1e308", "-0", "1,000", " 7 ", "NaN", "inf"]),
)


def _counts(xml: str) -> TestCounts:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "report.xml"
        path.write_text(xml, encoding="utf-8")
        return summarize([parse_file(path)])


@given(tests=attribute, failures=attribute, errors=attribute, skipped=attribute)
def test_header_counts_are_whole_and_never_negative_whatever_they_say(
    tests: str, failures: str, errors: str, skipped: str
) -> None:
    xml = (
        f"<testsuite name='s' tests={quoteattr(tests)} failures={quoteattr(failures)} "
        f"errors={quoteattr(errors)} skipped={quoteattr(skipped)}/>"
    )
    counts = _counts(xml)
    for value in (counts.passed, counts.failed, counts.errors, counts.skipped):
        assert isinstance(value, int)
        assert value >= 0


outcome = st.sampled_from(["", "<failure/>", "<error/>", "<skipped/>"])


@given(st.lists(outcome, max_size=30))
def test_each_distinct_case_is_counted_once_in_its_outcome(outcomes: list[str]) -> None:
    cases = "".join(
        f"<testcase classname='c' name='t{i}'>{body}</testcase>" for i, body in enumerate(outcomes)
    )
    counts = _counts(f"<testsuite name='s'>{cases}</testsuite>")
    assert counts.failed == outcomes.count("<failure/>")
    assert counts.errors == outcomes.count("<error/>")
    assert counts.skipped == outcomes.count("<skipped/>")
    assert counts.passed == outcomes.count("")
    assert counts.total == counts.cases == len(outcomes)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_report_or_a_one_line_refusal(data: bytes) -> None:
    message = ""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "report.xml"
        path.write_bytes(data)
        try:
            parse_file(path)
        except JunitError as exc:
            message = str(exc)
    assert "\n" not in message


# --- Times ----------------------------------------------------------------------------------

zones = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(timezones=zones))
def test_an_aware_time_reads_as_the_same_instant_in_utc(when: datetime) -> None:
    try:
        read, naive = read_time(when.isoformat())
    except TimeRangeError:
        # Only at the calendar's two ends can UTC fall off it.
        assert when.year in (1, 9999)
        return
    assert not naive
    assert read.tzinfo is UTC
    assert read == when


@given(st.datetimes())
def test_a_time_without_a_zone_is_read_as_utc_and_said_so(when: datetime) -> None:
    read, naive = read_time(when.isoformat())
    assert naive
    assert read == when.replace(tzinfo=UTC)


@given(st.text(max_size=40))
def test_any_text_is_a_time_or_a_value_error(text: str) -> None:
    try:
        read, _ = read_time(text)
    except ValueError:
        return
    assert read.tzinfo is UTC


# --- Numbers --------------------------------------------------------------------------------


@given(st.one_of(st.integers(), st.floats(), st.integers(-(10**400), 10**400)))
def test_number_text_never_raises_and_is_one_short_line(value: int | float) -> None:
    text = number_text(value)
    assert "\n" not in text
    assert len(text) <= 40


@given(st.text(max_size=30))
def test_seconds_are_finite_and_not_negative_or_refused(text: str) -> None:
    try:
        value = seconds(text)
    except argparse.ArgumentTypeError:
        return
    assert math.isfinite(value)
    assert value >= 0


@given(st.text(max_size=30))
def test_a_positive_whole_number_flag_is_one_or_refused(text: str) -> None:
    try:
        value = positive_int(text)
    except argparse.ArgumentTypeError as exc:
        message = str(exc)
        assert "\n" not in message
        return
    assert isinstance(value, int)
    assert value >= 1
