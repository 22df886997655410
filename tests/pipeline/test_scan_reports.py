"""parse_scan_report: the shared fixtures give exactly SOURCES.md's counts; bad input gives
one actionable line."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from pipeline.records.sources.scans import (
    MAX_REPORT_BYTES,
    ScanReport,
    ScanReportError,
    Severity,
    parse_scan_report,
)
from tests.pipeline.evidencekit import fixture_bytes, one_line

C, H, M, L, N, U = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
    Severity.NEGLIGIBLE,
    Severity.UNKNOWN,
)

# (fixture, format, scanner, version, artifact, non-zero normalised counts) from SOURCES.md.
FIXTURES = [
    (
        "scan/trivy/debian-buster.json.golden",
        "trivy",
        "Trivy",
        "dev",
        "testdata/fixtures/images/debian-buster.tar.gz",
        {C: 1, L: 1},
    ),
    (
        "scan/trivy/alpine-310.json.golden",
        "trivy",
        "Trivy",
        "dev",
        "testdata/fixtures/images/alpine-310.tar.gz",
        {M: 4},
    ),
    (
        "scan/trivy/sl-micro-rancher5.4.json.golden",
        "trivy",
        "Trivy",
        "dev",
        "testdata/fixtures/images/sle-micro-rancher-5.4_ndb.tar.gz",
        {},
    ),
    (
        "scan/trivy/centos-7-ignore-unfixed.json.golden",
        "trivy",
        "Trivy",
        "dev",
        "testdata/fixtures/images/centos-7.tar.gz",
        {M: 1, L: 1},
    ),
    (
        "scan/trivy/alpine-310.sarif.golden",
        "sarif",
        "Trivy",
        "dev",
        "testdata/fixtures/images/alpine-310.tar.gz",
        {M: 4},
    ),
    ("scan/grype/TestJsonImgsPresenter.golden", "grype", "grype", None, "user-input", {C: 1, L: 1}),
    ("scan/grype/TestEmptyJsonPresenter.golden", "grype", "grype", None, None, {}),
    # Grype's SARIF: security-severity is the CVSS base score (8.2, 8.5), so both are HIGH.
    ("scan/grype/TestSarifPresenter_image.golden", "sarif", "grype", "0.0.0-dev", None, {H: 2}),
]


def _report(relative: str) -> ScanReport:
    return parse_scan_report(fixture_bytes(relative))


@pytest.mark.parametrize(
    ("relative", "fmt", "scanner", "version", "artifact", "counts"),
    FIXTURES,
    ids=[f[0].rsplit("/", 1)[1] for f in FIXTURES],
)
def test_fixture_counts_and_header(
    relative: str,
    fmt: str,
    scanner: str,
    version: str | None,
    artifact: str | None,
    counts: dict[Severity, int],
) -> None:
    report = _report(relative)
    assert report.format == fmt
    assert (report.scanner, report.scanner_version, report.artifact) == (scanner, version, artifact)
    assert report.counts() == {s: counts.get(s, 0) for s in Severity}
    assert len(report.findings) == sum(counts.values())
    assert list(report.counts()) == [C, H, M, L, N, U]


@pytest.mark.parametrize(("relative", "fmt", "_s", "_v", "_a", "_c"), FIXTURES)
def test_forcing_the_detected_format_gives_the_same_report(
    relative: str, fmt: Any, _s: object, _v: object, _a: object, _c: object
) -> None:
    data = fixture_bytes(relative)
    assert parse_scan_report(data, fmt=fmt) == parse_scan_report(data)


def test_debian_buster_findings() -> None:
    bash, libidn = _report("scan/trivy/debian-buster.json.golden").findings
    assert (bash.id, bash.severity, bash.package, bash.installed_version) == (
        "CVE-2019-18276",
        L,
        "bash",
        "5.0-4",
    )
    assert bash.fixed_version is None  # the report has no FixedVersion key
    assert (libidn.id, libidn.severity, libidn.package, libidn.fixed_version) == (
        "CVE-2019-18224",
        C,
        "libidn2-0",
        "2.0.5-1+deb10u1",
    )
    assert libidn.target == "testdata/fixtures/images/debian-buster.tar.gz (debian 10.1)"
    assert libidn.title is not None
    assert libidn.title.startswith("libidn2: heap-based buffer overflow")


def test_alpine_two_ids_in_two_packages_are_four_findings() -> None:
    report = _report("scan/trivy/alpine-310.json.golden")
    assert report.ids() == ("CVE-2019-1549", "CVE-2019-1551")
    pairs = {(f.id, f.package, f.installed_version, f.fixed_version) for f in report.findings}
    assert pairs == {
        ("CVE-2019-1549", "libcrypto1.1", "1.1.1c-r0", "1.1.1d-r0"),
        ("CVE-2019-1549", "libssl1.1", "1.1.1c-r0", "1.1.1d-r0"),
        ("CVE-2019-1551", "libcrypto1.1", "1.1.1c-r0", "1.1.1d-r2"),
        ("CVE-2019-1551", "libssl1.1", "1.1.1c-r0", "1.1.1d-r2"),
    }
    assert {s: n for s, n in report.counts().items() if n} == {M: 4}


def test_trivy_sarif_matches_the_json_of_the_same_scan() -> None:
    sarif = _report("scan/trivy/alpine-310.sarif.golden")
    json_report = _report("scan/trivy/alpine-310.json.golden")

    def essentials(report: ScanReport) -> list[tuple[object, ...]]:
        return sorted(
            (f.id, f.severity, f.package, f.installed_version, f.fixed_version, f.title)
            for f in report.findings
        )

    assert essentials(sarif) == essentials(json_report)
    # The severities came from Trivy's severity tag, its own label:
    assert {(f.severity_basis, f.raw_severity, f.level) for f in sarif.findings} == {
        ("scanner", "MEDIUM", "warning")
    }
    assert Counter(f.level for f in sarif.findings) == {"warning": 4}  # SOURCES.md: 4 warning
    assert {f.target for f in sarif.findings} == {"testdata/fixtures/images/alpine-310.tar.gz"}
    assert sarif.scanner_severities


def test_grype_json_findings() -> None:
    low, critical = _report("scan/grype/TestJsonImgsPresenter.golden").findings
    assert (low.id, low.severity, low.raw_severity, low.package, low.installed_version) == (
        "CVE-1999-0001",
        L,
        "Low",
        "package-1",
        "1.1.1",
    )
    assert low.fixed_version == "1.2.1, 2.1.3, 3.4.0"
    assert (critical.id, critical.severity, critical.package, critical.fixed_version) == (
        "CVE-1999-0002",
        C,
        "package-2",
        None,
    )
    assert critical.target == "/foo/bar/somefile-2.txt"


def test_grype_sarif_is_read_from_security_severity_and_keeps_the_level() -> None:
    report = _report("scan/grype/TestSarifPresenter_image.golden")
    low, critical = report.findings
    assert Counter(f.level for f in report.findings) == {"note": 1, "error": 1}  # SOURCES.md
    assert (low.id, low.package, low.installed_version, low.fixed_version) == (
        "CVE-1999-0001",  # from "Vulnerability CVE-1999-0001", not the ruleId "...-package-1"
        "package-1",
        "1.1.1",
        "1.2.1, 2.1.3, 3.4.0",
    )
    assert (low.severity, low.severity_basis, low.raw_severity) == (H, "security-severity", "8.2")
    assert (critical.id, critical.package, critical.fixed_version) == (
        "CVE-1999-0002",
        "package-2",
        None,
    )
    # Grype's Critical becomes HIGH: its SARIF carries the CVSS score (8.5), not the label.
    assert (critical.severity, critical.raw_severity, critical.level) == (H, "8.5", "error")
    assert critical.target == "user-input/somefile-2.txt"
    assert not report.scanner_severities


# ---- synthetic reports ------------------------------------------------------------------


def _bytes(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _trivy(*results: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"SchemaVersion": 2, "ArtifactName": "img", "Results": list(results), **top}


def _vuln(vid: str, pkg: str, severity: str = "HIGH", **more: Any) -> dict[str, Any]:
    base = {"VulnerabilityID": vid, "PkgName": pkg, "InstalledVersion": "1", "Severity": severity}
    return base | more


def _sarif(results: list[dict[str, Any]], rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": "t", "rules": rules}}, "results": results}],
    }


def test_the_same_id_and_package_in_two_results_are_two_findings() -> None:
    doc = _trivy(
        {"Target": "os", "Vulnerabilities": [_vuln("CVE-1", "zlib")]},
        {"Target": "app/vendor", "Vulnerabilities": [_vuln("CVE-1", "zlib")]},
    )
    report = parse_scan_report(_bytes(doc))
    assert [f.target for f in report.findings] == ["os", "app/vendor"]
    assert report.counts()[H] == 2
    assert report.ids() == ("CVE-1",)


def test_trivy_without_results_or_vulnerabilities_is_empty() -> None:
    no_results = {"SchemaVersion": 2, "ArtifactName": "img"}
    assert parse_scan_report(_bytes(no_results)).findings == ()
    assert (
        parse_scan_report(_bytes(_trivy({"Target": "x", "Vulnerabilities": None}))).findings == ()
    )


def test_grype_negligible_and_unknown() -> None:
    def match(severity: str) -> dict[str, Any]:
        vuln = {"id": f"CVE-{severity}", "severity": severity}
        return {"vulnerability": vuln, "artifact": {"name": "p", "version": "1"}}

    doc = {"matches": [match("Negligible"), match("Unknown"), match("")], "descriptor": {}}
    report = parse_scan_report(_bytes(doc))
    assert [f.severity for f in report.findings] == [N, U, U]
    assert {s: n for s, n in report.counts().items() if n} == {N: 1, U: 2}
    assert [s.rank for s in (C, H, M, L, N, U)] == [5, 4, 3, 2, 1, 0]


RULE = {"id": "R1"}


@pytest.mark.parametrize(
    ("rule", "result", "severity", "basis"),
    [
        ({**RULE, "properties": {"tags": ["security", "CRITICAL"]}}, {}, C, "scanner"),
        ({**RULE, "properties": {"tags": ["x"], "security-severity": "9.0"}}, {}, C, "s"),
        ({**RULE, "properties": {"security-severity": "8.9"}}, {}, H, "security-severity"),
        ({**RULE, "properties": {"security-severity": 7}}, {}, H, "security-severity"),
        ({**RULE, "properties": {"security-severity": "6.9"}}, {}, M, "security-severity"),
        ({**RULE, "properties": {"security-severity": "4.0"}}, {}, M, "security-severity"),
        ({**RULE, "properties": {"security-severity": "0.1"}}, {}, L, "security-severity"),
        ({**RULE, "properties": {"security-severity": "0.0"}}, {}, U, "security-severity"),
        (
            {**RULE, "properties": {"security-severity": "2.0"}},
            {"properties": {"security-severity": "9.8"}},
            C,
            "security-severity",
        ),
        (RULE, {"level": "error"}, H, "level"),
        (RULE, {"level": "warning"}, M, "level"),
        (RULE, {"level": "note"}, L, "level"),
        (RULE, {"level": "none"}, U, "level"),
        (RULE, {}, M, "level"),  # SARIF's default level is warning
        ({**RULE, "defaultConfiguration": {"level": "note"}}, {}, L, "level"),
    ],
)
def test_sarif_severity_precedence(
    rule: dict[str, Any], result: dict[str, Any], severity: Severity, basis: str
) -> None:
    doc = _sarif([{"ruleId": "R1", "message": {"text": "m"}, **result}], [rule])
    (finding,) = parse_scan_report(_bytes(doc)).findings
    assert finding.severity == severity
    assert finding.severity_basis == {"s": "security-severity"}.get(basis, basis)
    assert finding.id == "R1"  # no "Vulnerability <id>" line: the ruleId
    assert finding.package is None


def test_sarif_pass_results_are_not_findings_and_rule_index_is_used() -> None:
    rules: list[dict[str, Any]] = [{"id": "A"}, {"id": "B", "properties": {"tags": ["LOW"]}}]
    results: list[dict[str, Any]] = [
        {"ruleId": "A", "kind": "pass"},
        {"ruleIndex": 1},
        {"ruleId": "B/sub"},
    ]
    report = parse_scan_report(_bytes(_sarif(results, rules)))
    assert [(f.id, f.severity) for f in report.findings] == [("B", L), ("B", L)]


def test_utf16_and_bom_input_is_read() -> None:
    text = json.dumps(_trivy({"Target": "x", "Vulnerabilities": [_vuln("CVE-1", "a")]}))
    for data in (text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode()):
        assert parse_scan_report(data).ids() == ("CVE-1",)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    doc = _trivy({"Target": "[" * 500 + "{" * 500, "Vulnerabilities": []})
    assert parse_scan_report(_bytes(doc)).findings == ()


# ---- refusals: one line each ------------------------------------------------------------

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
BAD = [
    (b"", "scan report: input is empty"),
    (b"{not json", "scan report: not JSON: Expecting property name enclosed in double quotes"),
    (b'{"SchemaVersion": 2, "Results": [', "scan report: not JSON: Expecting value at line 1"),
    (b"\xff\xfe\x00", "scan report: not utf-16 text"),
    (b'{"SchemaVersion": 2, "Results": [], "x": NaN}', "scan report: NaN is not a JSON value"),
    (b"[1, 2]", "scan report: the top level is array, not an object"),
    (b'"text"', "scan report: the top level is string, not an object"),
    (b'{"name": "x", "items": []}', "not a scan report: expected Trivy JSON"),
    (
        b'[{"Target": "x", "Vulnerabilities": []}]',
        "Trivy report: a top-level array is the pre-0.20 format without SchemaVersion; "
        "use trivy >= 0.20 --format json",
    ),
    (
        b'{"SchemaVersion": 1, "Results": []}',
        "Trivy report: SchemaVersion 1 is not supported; use trivy >= 0.20 --format json",
    ),
    (b'{"SchemaVersion": 3, "Results": []}', "Trivy report: SchemaVersion 3 is newer than 2"),
    (b'{"SchemaVersion": 2, "Results": {}}', "Trivy report: Results must be an array, got object"),
    (
        b'{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"PkgName": "a"}]}]}',
        "Trivy report: Results[0].Vulnerabilities[0].VulnerabilityID is missing",
    ),
    (
        _bytes(_trivy({"Vulnerabilities": [_vuln("CVE-1", "a", "SEVERE")]})),
        'Trivy report: Results[0].Vulnerabilities[0].Severity "SEVERE" is not a severity',
    ),
    (
        b'{"matches": [{"vulnerability": {"id": "C"}}], "source": {}}',
        "Grype report: matches[0].artifact must be an object, got null",
    ),
    (b'{"matches": {}, "source": {}}', "Grype report: matches must be an array, got object"),
    (_bytes({"version": "2.1.0", "$schema": SARIF_SCHEMA}), "a SARIF report with no runs"),
    (_bytes({"version": "2.1.0", "runs": []}), "a SARIF report with no runs"),
    (
        _bytes({"version": "2.0.0", "runs": [{}]}),
        'SARIF report: version "2.0.0" is not supported; expected "2.1.0"',
    ),
    (
        _bytes(_sarif([{"ruleId": "CVE-9"}], [{"id": "CVE-1"}])),
        "SARIF report: runs[0].results[0].ruleId 'CVE-9' matches none of the run's 1 "
        "tool.driver.rules",
    ),
    (
        _bytes(_sarif([{"ruleId": "B", "ruleIndex": 0}], [{"id": "A"}])),
        "SARIF report: runs[0].results[0].ruleIndex 0 is rule 'A' but ruleId is 'B'",
    ),
    (
        _bytes(_sarif([{"ruleIndex": 3}], [{"id": "A"}])),
        "SARIF report: runs[0].results[0].ruleIndex 3 is out of range: the run has 1 rules",
    ),
    (
        _bytes(_sarif([{"message": {"text": "m"}}], [])),
        "SARIF report: runs[0].results[0] names no rule",
    ),
    (
        _bytes(_sarif([{"ruleId": "A"}], [{"id": "A", "properties": {"security-severity": "hi"}}])),
        'SARIF report: runs[0].results[0]: security-severity "hi" is not a CVSS score',
    ),
    (
        _bytes(_sarif([{"ruleId": "A", "level": "fatal"}], [{"id": "A"}])),
        "SARIF report: runs[0].results[0].level must be one of error, warning, note, none",
    ),
    (
        _bytes({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}}]}),
        "SARIF report: runs[0] has no results array",
    ),
    (
        _bytes({"version": "2.1.0", "runs": [{"tool": {}, "results": []}]}),
        "SARIF report: runs[0].tool.driver must be an object, got null",
    ),
]


@pytest.mark.parametrize(("data", "start"), BAD, ids=[b[1][:60] for b in BAD])
def test_malformed_reports_give_one_line(data: bytes, start: str) -> None:
    with pytest.raises(ScanReportError) as exc:
        parse_scan_report(data)
    assert one_line(exc).startswith(start)


def test_a_truncated_fixture_is_not_json() -> None:
    data = fixture_bytes("scan/trivy/alpine-310.json.golden")
    with pytest.raises(ScanReportError) as exc:
        parse_scan_report(data[: len(data) // 2])
    assert one_line(exc).startswith("scan report: not JSON: ")


def test_a_fixture_with_a_result_whose_rule_is_gone() -> None:
    doc = json.loads(fixture_bytes("scan/trivy/alpine-310.sarif.golden"))
    del doc["runs"][0]["tool"]["driver"]["rules"][1]  # CVE-2019-1551
    for result in doc["runs"][0]["results"]:
        del result["ruleIndex"]
    with pytest.raises(ScanReportError) as exc:
        parse_scan_report(_bytes(doc))
    assert one_line(exc) == (
        "SARIF report: runs[0].results[1].ruleId 'CVE-2019-1551' matches none of the run's 1 "
        "tool.driver.rules"
    )


def test_a_forced_format_that_does_not_match() -> None:
    with pytest.raises(ScanReportError) as exc:
        parse_scan_report(fixture_bytes("scan/trivy/alpine-310.json.golden"), fmt="grype")
    assert one_line(exc) == "expected a Grype JSON report, but this is Trivy JSON"


def test_input_over_the_size_limit() -> None:
    with pytest.raises(ScanReportError) as exc:
        parse_scan_report(b" " * (MAX_REPORT_BYTES + 1))
    assert one_line(exc) == "scan report: input is 67108865 bytes; the limit is 67108864"
    with pytest.raises(ScanReportError) as small:
        parse_scan_report(_bytes(_trivy()), max_bytes=10)
    assert one_line(small).startswith("scan report: input is ")


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_nesting_is_refused_before_decoding(depth: int) -> None:
    data = b'{"SchemaVersion": 2, "Results": [], "x": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(ScanReportError) as exc:
        parse_scan_report(data)
    assert one_line(exc) == "scan report: nesting is deeper than 64 levels"


def test_nesting_at_the_limit_is_accepted() -> None:
    inner = 64 - 1  # the top-level object is level 1
    data = b'{"SchemaVersion": 2, "Results": [], "x": ' + b"[" * inner + b"]" * inner + b"}"
    assert parse_scan_report(data).findings == ()
