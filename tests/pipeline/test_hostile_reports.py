"""Report paths that are not report files, and reports shaped to be slow: a FIFO, a
device, a huge file, a pattern matching too much, a long attribute. Each ends at once
(or in seconds, linearly) with one line, and nothing is recorded."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pipeline.records.sources import reportfiles
from pipeline.records.sources.junit import JunitError, count, parse_file
from tests.pipeline.hostile import assert_refused, cli

IMAGE = "registry.example.internal/cv/model:v1@sha256:" + "ab" * 32


def test_a_fifo_given_as_junit_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "report.xml"
    os.mkfifo(fifo)
    store = tmp_path / "records.db"
    # Had the open blocked, this thread would release it (a writer opens the FIFO).
    release = threading.Timer(20, lambda: os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)))
    release.start()
    try:
        result = cli(
            capsys, "--store", str(store), "record", "ci", "--junit", str(fifo), "--image", IMAGE
        )
    finally:
        release.cancel()
        release.join()
    assert_refused(result, "not a regular file (a FIFO, a device or a socket)")
    assert not store.exists()


def test_a_device_is_refused() -> None:
    with pytest.raises(JunitError, match="not a regular file"):
        parse_file("/dev/zero")


def test_a_file_larger_than_any_report_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    with big.open("wb") as handle:  # sparse: no disk used
        handle.truncate(reportfiles.MAX_REPORT_BYTES + 1)
    with pytest.raises(JunitError, match=r"more than a report can reasonably be \(limit 64 MiB\)"):
        parse_file(big)


def test_a_report_growing_while_read_is_stopped_at_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "r.xml"
    report.write_bytes(b"<testsuite>" + b"<testcase name='a'/>" * 5000 + b"</testsuite>")
    monkeypatch.setattr(reportfiles, "MAX_REPORT_BYTES", 50_000)
    monkeypatch.setattr(reportfiles, "MIN_PIECE", 4096)
    # The size checked at open passes; the pieces read past it are what stops it.
    monkeypatch.setattr(os, "fstat", lambda fd, real=os.fstat: _shrunk(real(fd)))
    with pytest.raises(JunitError, match="more than a report can reasonably be"):
        parse_file(report)


def _shrunk(info: os.stat_result) -> os.stat_result:
    values = list(info)
    values[6] = 10  # st_size
    return os.stat_result(values)


def test_a_pattern_matching_more_than_the_file_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reportfiles, "MAX_FILES", 5)
    for i in range(7):
        (tmp_path / f"r{i}.xml").write_text("<testsuite/>")
    with pytest.raises(JunitError, match="matches more than 5 paths: narrow the pattern"):
        count([str(tmp_path / "*.xml")])


def test_a_long_attribute_is_parsed_in_large_pieces(tmp_path: Path) -> None:
    # 8 MB in one attribute: fed 16 KiB at a time, expat 2.5 re-scanned it ~500 times.
    report = tmp_path / "long.xml"
    message = b"x" * (8 << 20)
    report.write_bytes(
        b'<testsuite><testcase classname="c" name="n"><failure message="'
        + message
        + b'"/></testcase></testsuite>'
    )
    fed: list[int] = []
    real_read = reportfiles.Pieces.read

    def spy(self: reportfiles.Pieces, size: int = -1) -> bytes:
        data = real_read(self, size)
        fed.append(len(data))
        return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reportfiles.Pieces, "read", spy)
        counted = count([str(report)])
    assert counted.failed == 1
    assert max(fed) >= len(message)  # the whole token arrives in one feed


# A time no report can hold (1e308, Infinity) refuses its file: test_record_limits.py.
@pytest.mark.parametrize("times", [("2e7", "2e7"), ("4e7", "0")])
def test_report_times_summing_past_any_ci_stage_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], times: tuple[str, str]
) -> None:
    reports = []
    for index, seconds in enumerate(times):
        report = tmp_path / f"report-{index}.xml"
        report.write_text(
            f'<testsuite name="s{index}" tests="1" time="{seconds}">'
            f'<testcase classname="c" name="t{index}" time="{seconds}"/></testsuite>',
            encoding="utf-8",
        )
        reports += ["--junit", str(report)]
    store = tmp_path / "records.db"
    result = cli(capsys, "--store", str(store), "record", "ci", *reports, "--image", IMAGE)
    line = assert_refused(result, "record ci (junit): test time ")
    assert "is out of range (0 to 31,622,400 s, a finite number); nothing recorded" in line
    assert not store.exists()


def test_report_times_within_a_year_are_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuite name="s" tests="1" time="3.5"><testcase classname="c" name="t" time="3.5"/>'
        "</testsuite>",
        encoding="utf-8",
    )
    store = tmp_path / "records.db"
    result = cli(
        capsys, "--store", str(store), "record", "ci", "--junit", str(report), "--image", IMAGE
    )
    assert result.code == 0, result
    assert "test time 3.5 s taken from the JUnit reports" in result.err
