"""Vulnerability scan reports (Trivy JSON, Grype JSON, SARIF 2.1.0) as one typed view.

What counts: every Trivy ``Results[].Vulnerabilities[]`` element, every Grype
``matches[]`` element and every SARIF ``runs[].results[]`` element (except
results of kind ``pass``/``notApplicable``) is one Finding. Nothing is merged:
a CVE in two packages is two findings, and the same (id, package) in two
Results (two targets, e.g. an OS package and a copy vendored by an app) is two
findings, told apart by ``target``; ``ScanReport.ids()`` gives the distinct ids.

Severity: Trivy's ``Severity`` and Grype's ``vulnerability.severity`` are the
scanner's own labels (``severity_basis="scanner"``). How SARIF is read is in
``sarif``. Grype's "Negligible" stays NEGLIGIBLE (below LOW); "Unknown" and a
missing or empty severity are UNKNOWN; any other word is refused.

Input is bounded (``MAX_REPORT_BYTES``, ``MAX_DEPTH``); every refusal is a
``ScanReportError`` whose message is one line naming the report kind and the
JSON path that is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from pipeline.records.sources.sarif import parse_sarif
from pipeline.records.sources.scan_types import (
    Format,
    ReportFinding,
    ScanReport,
    ScanReportError,
    Severity,
    arr,
    obj,
    obj_or_empty,
    opt_text,
    req_text,
    severity_label,
)
from pipeline.records.sources.strict_json import JsonInputError, json_type, load_json, one_line

__all__ = [
    "FORMATS",
    "MAX_DEPTH",
    "MAX_REPORT_BYTES",
    "ReportFinding",
    "ScanReport",
    "ScanReportError",
    "Severity",
    "detect_format",
    "parse_scan_report",
]

MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64  # Trivy's deepest real nesting is about 8

FORMATS: tuple[Format, ...] = ("trivy", "grype", "sarif")
_NAME: dict[str, str] = {"trivy": "Trivy JSON", "grype": "Grype JSON", "sarif": "SARIF"}


def parse_scan_report(
    data: bytes,
    *,
    fmt: Literal["auto", "trivy", "grype", "sarif"] = "auto",
    max_bytes: int = MAX_REPORT_BYTES,
) -> ScanReport:
    """Read a Trivy JSON, Grype JSON or SARIF 2.1.0 report (``"auto"``: told by its keys)."""
    try:
        doc = load_json(data, max_bytes=max_bytes, max_depth=MAX_DEPTH)
    except JsonInputError as exc:
        raise ScanReportError(f"scan report: {exc}") from None
    found, top = _classify(doc)
    if fmt not in ("auto", found):
        raise ScanReportError(f"expected a {_NAME[fmt]} report, but this is {_NAME[found]}")
    if found == "trivy":
        return _trivy(top)
    if found == "grype":
        return _grype(top)
    return parse_sarif(top)


def detect_format(doc: object) -> Format:
    """Which kind of report ``doc`` (decoded JSON) is, from its top-level keys."""
    return _classify(doc)[0]


def _classify(doc: object) -> tuple[Format, Mapping[str, object]]:
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "Target" in doc[0]:
        raise ScanReportError(
            "Trivy report: a top-level array is the pre-0.20 format without SchemaVersion; "
            "use trivy >= 0.20 --format json"
        )
    if not isinstance(doc, dict):
        raise ScanReportError(f"scan report: the top level is {json_type(doc)}, not an object")
    if "SchemaVersion" in doc and ({"Results", "ArtifactName", "Trivy"} & doc.keys()):
        return "trivy", doc
    if "matches" in doc and ({"descriptor", "source"} & doc.keys()):
        return "grype", doc
    schema = doc.get("$schema")
    says_sarif = isinstance(schema, str) and "sarif" in schema.lower()
    if "runs" in doc and ("version" in doc or says_sarif):
        return "sarif", doc
    if says_sarif:
        raise ScanReportError("a SARIF report with no runs")
    keys = ", ".join(one_line(k, 30) for k in sorted(doc)[:8]) or "none"
    raise ScanReportError(
        "not a scan report: expected Trivy JSON (SchemaVersion, Results), Grype JSON "
        f"(matches, descriptor) or SARIF 2.1.0 (version, runs); top-level keys: {keys}"
    )


# ---- Trivy JSON, SchemaVersion 2 (trivy >= 0.20) ------------------------------------------

_T = "Trivy report"


def _trivy(doc: Mapping[str, object]) -> ScanReport:
    version = doc.get("SchemaVersion")
    if version != 2 or isinstance(version, bool):
        if isinstance(version, int) and not isinstance(version, bool) and version > 2:
            raise ScanReportError(f"{_T}: SchemaVersion {version} is newer than 2, the one read")
        shown = one_line(json.dumps(version), 20)
        raise ScanReportError(
            f"{_T}: SchemaVersion {shown} is not supported; use trivy >= 0.20 --format json"
        )
    tool = obj_or_empty(doc.get("Trivy"), "Trivy", _T)
    findings: list[ReportFinding] = []
    for i, raw_result in enumerate(arr(doc.get("Results"), "Results", _T)):
        result = obj(raw_result, f"Results[{i}]", _T)
        target = opt_text(result.get("Target"), f"Results[{i}].Target", _T)
        vulns = arr(result.get("Vulnerabilities"), f"Results[{i}].Vulnerabilities", _T)
        for j, raw in enumerate(vulns):
            at = f"Results[{i}].Vulnerabilities[{j}]"
            v = obj(raw, at, _T)
            findings.append(
                ReportFinding(
                    id=req_text(v.get("VulnerabilityID"), f"{at}.VulnerabilityID", _T),
                    severity=severity_label(v.get("Severity"), f"{at}.Severity", _T),
                    package=req_text(v.get("PkgName"), f"{at}.PkgName", _T),
                    installed_version=opt_text(
                        v.get("InstalledVersion"), f"{at}.InstalledVersion", _T
                    ),
                    fixed_version=opt_text(v.get("FixedVersion"), f"{at}.FixedVersion", _T),
                    title=opt_text(v.get("Title"), f"{at}.Title", _T),
                    target=target,
                    raw_severity=str(v.get("Severity") or ""),
                )
            )
    return ScanReport(
        format="trivy",
        scanner="Trivy",
        scanner_version=opt_text(tool.get("Version"), "Trivy.Version", _T),
        artifact=opt_text(doc.get("ArtifactName"), "ArtifactName", _T),
        findings=tuple(findings),
        os=_trivy_os(obj_or_empty(doc.get("Metadata"), "Metadata", _T)),
    )


def _trivy_os(metadata: Mapping[str, object]) -> str | None:
    """The OS Trivy detected (``Metadata.OS``: "debian 12.5"); None when it found none."""
    found = obj_or_empty(metadata.get("OS"), "Metadata.OS", _T)
    family = opt_text(found.get("Family"), "Metadata.OS.Family", _T)
    name = opt_text(found.get("Name"), "Metadata.OS.Name", _T)
    return " ".join(part for part in (family, name) if part) or None


# ---- Grype JSON ---------------------------------------------------------------------------

_G = "Grype report"
_NOT_PROVIDED = "[not provided]"  # Grype's version when it was built without one


def _grype(doc: Mapping[str, object]) -> ScanReport:
    matches = doc.get("matches")
    if not isinstance(matches, list):
        raise ScanReportError(f"{_G}: matches must be an array, got {json_type(matches)}")
    descriptor = obj_or_empty(doc.get("descriptor"), "descriptor", _G)
    findings = tuple(_grype_match(raw, f"matches[{i}]") for i, raw in enumerate(matches))
    version = opt_text(descriptor.get("version"), "descriptor.version", _G)
    return ScanReport(
        format="grype",
        scanner=opt_text(descriptor.get("name"), "descriptor.name", _G),
        scanner_version=None if version == _NOT_PROVIDED else version,
        artifact=_grype_artifact(obj_or_empty(doc.get("source"), "source", _G)),
        findings=findings,
        os=_grype_os(obj_or_empty(doc.get("distro"), "distro", _G)),
    )


def _grype_os(distro: Mapping[str, object]) -> str | None:
    name = opt_text(distro.get("name"), "distro.name", _G)
    version = opt_text(distro.get("version"), "distro.version", _G)
    return " ".join(part for part in (name, version) if part) or None


def _grype_match(raw: object, at: str) -> ReportFinding:
    match = obj(raw, at, _G)
    vuln = obj(match.get("vulnerability"), f"{at}.vulnerability", _G)
    artifact = obj(match.get("artifact"), f"{at}.artifact", _G)
    fix = obj_or_empty(vuln.get("fix"), f"{at}.vulnerability.fix", _G)
    where = f"{at}.vulnerability.fix.versions"
    listed = arr(fix.get("versions"), where, _G)
    versions = [req_text(v, f"{where}[{k}]", _G) for k, v in enumerate(listed)]
    locations = arr(artifact.get("locations"), f"{at}.artifact.locations", _G)
    first = obj(locations[0], f"{at}.artifact.locations[0]", _G) if locations else {}
    return ReportFinding(
        id=req_text(vuln.get("id"), f"{at}.vulnerability.id", _G),
        severity=severity_label(vuln.get("severity"), f"{at}.vulnerability.severity", _G),
        package=req_text(artifact.get("name"), f"{at}.artifact.name", _G),
        installed_version=opt_text(artifact.get("version"), f"{at}.artifact.version", _G),
        fixed_version=", ".join(versions) or None,
        title=opt_text(vuln.get("description"), f"{at}.vulnerability.description", _G),
        target=opt_text(first.get("path"), f"{at}.artifact.locations[0].path", _G),
        raw_severity=str(vuln.get("severity") or ""),
    )


def _grype_artifact(source: Mapping[str, object]) -> str | None:
    if source.get("type") == "unknown":
        return None
    target = source.get("target")
    if isinstance(target, dict):  # an image: the reference the user gave
        return opt_text(target.get("userInput"), "source.target.userInput", _G)
    return opt_text(target, "source.target", _G)
