"""The typed view of a vulnerability scan report, and typed access to decoded JSON.

Shared by ``scans`` (Trivy and Grype JSON, format detection) and ``sarif``. A
``ScanReport`` is what one report says, every finding kept; ``scans.scan_record``
turns it into the record the store keeps (``pipeline.records.model.Scan``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pipeline.errors import PipelineError
from pipeline.records.sources.strict_json import json_type, one_line

Format = Literal["trivy", "grype", "sarif"]
SeverityBasis = Literal["scanner", "security-severity", "level"]


class ScanReportError(PipelineError):
    """A scan report that cannot be read or used; the message is one line."""


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    NEGLIGIBLE = "NEGLIGIBLE"  # Grype only: below LOW
    UNKNOWN = "UNKNOWN"  # the scanner did not settle it: a gate must decide (it blocks)

    @property
    def rank(self) -> int:
        """5 for CRITICAL down to 1 for NEGLIGIBLE; 0 for UNKNOWN, which is not ordered."""
        return _RANK[self]


_RANK = {
    Severity.CRITICAL: 5,
    Severity.HIGH: 4,
    Severity.MEDIUM: 3,
    Severity.LOW: 2,
    Severity.NEGLIGIBLE: 1,
    Severity.UNKNOWN: 0,
}
_LABELS = {s.value: s for s in Severity}
_SARIF_LEVEL = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.UNKNOWN,
}


@dataclass(frozen=True)
class ReportFinding:
    id: str
    severity: Severity
    package: str | None  # None only for SARIF results that do not name one
    installed_version: str | None
    fixed_version: str | None  # several versions are joined with ", "
    title: str | None = None
    target: str | None = None  # Trivy Result Target, Grype location path, SARIF artifact uri
    severity_basis: SeverityBasis = "scanner"
    raw_severity: str = ""  # the label, score or level the severity was read from
    level: str | None = None  # the SARIF result's level (None for JSON reports)


@dataclass(frozen=True)
class ScanReport:
    format: Format
    scanner: str | None
    scanner_version: str | None
    artifact: str | None  # what was scanned, as the report names it
    findings: tuple[ReportFinding, ...]
    os: str | None = None  # "debian 12.5": the OS the scanner detected (JSON reports)

    def counts(self) -> dict[Severity, int]:
        """Findings per severity: every severity present, most severe first."""
        tally = Counter(f.severity for f in self.findings)
        return {s: tally.get(s, 0) for s in Severity}

    def ids(self) -> tuple[str, ...]:
        """Distinct vulnerability ids, sorted."""
        return tuple(sorted({f.id for f in self.findings}))

    @property
    def scanner_severities(self) -> bool:
        """Whether every severity is the scanner's own label (not a CVSS score or SARIF level)."""
        return all(f.severity_basis == "scanner" for f in self.findings)


# ---- typed access: every message names the report kind and the JSON path -----------------


def obj(value: object, where: str, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ScanReportError(f"{what}: {where} must be an object, got {json_type(value)}")
    return value


def obj_or_empty(value: object, where: str, what: str) -> Mapping[str, object]:
    return {} if value is None else obj(value, where, what)


def arr(value: object, where: str, what: str) -> list[object]:
    """An array; absent or null is an empty one."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScanReportError(f"{what}: {where} must be an array, got {json_type(value)}")
    return value


def opt_text(value: object, where: str, what: str) -> str | None:
    """An optional string: absent, null and "" are None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScanReportError(f"{what}: {where} must be a string, got {json_type(value)}")
    return value or None


def req_text(value: object, where: str, what: str) -> str:
    """A required non-empty string."""
    if value is None:
        raise ScanReportError(f"{what}: {where} is missing")
    if not isinstance(value, str) or not value:
        got = "an empty string" if value == "" else json_type(value)
        raise ScanReportError(f"{what}: {where} must be a non-empty string, got {got}")
    return value


def severity_label(value: object, where: str, what: str) -> Severity:
    """A scanner's severity word (any case); missing or "" is UNKNOWN."""
    label = opt_text(value, where, what) or "UNKNOWN"
    severity = _LABELS.get(label.upper())
    if severity is None:
        raise ScanReportError(
            f"{what}: {where} {json.dumps(one_line(label, 40))} is not a severity "
            f"({', '.join(s.value for s in Severity)}, any case)"
        )
    return severity


def severity_from_score(score: float) -> Severity:
    """A CVSS base score as a severity, the way GitHub reads SARIF ``security-severity``."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW if score > 0 else Severity.UNKNOWN


def severity_from_level(level: str) -> Severity | None:
    """A SARIF level as a severity (None for a value SARIF does not define)."""
    return _SARIF_LEVEL.get(level)


def severity_word(word: str) -> Severity | None:
    """A severity named by a tag such as Trivy's "MEDIUM" (any case)."""
    return _LABELS.get(word.upper())
