"""Per-image evidence from files: a vulnerability report and a model card, as records.

``scan_record`` reads a Trivy JSON, Grype JSON or SARIF report (``scans``) and
``model_card_record`` a ``model-card.json`` (``model_card``), its signature
optionally taken from an MLflow ``MLmodel`` file (``mlmodel``). Both refuse, with
one line, what cannot be used as evidence for the digest, and key the record on
the digest and the content, so recording the same file twice adds nothing.

A SARIF report is kept only when its severities are the scanner's own labels
(Trivy writes its severity among the rule's tags). Grype's SARIF carries the
highest CVSS score instead (its fixture's Critical match reads as HIGH there and
its Low match, CVSS 8.2, as HIGH too), so a gate fed it would judge a different
severity than Grype's: it is refused, naming the JSON report to record instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from pipeline.images.refs import pinned_digest, short_digest
from pipeline.records.model import Finding, FindingSeverity, ModelCard, Scan
from pipeline.records.sources.mlmodel import MLmodelError, parse_mlmodel
from pipeline.records.sources.model_card import load_model_card
from pipeline.records.sources.scan_types import ScanReport, ScanReportError, Severity
from pipeline.records.sources.scans import parse_scan_report

ScanFormat = Literal["auto", "trivy", "grype", "sarif"]


@dataclass(frozen=True)
class Evidence:
    """A record read from a file, and the notes worth telling the user."""

    record: Scan | ModelCard
    notes: tuple[str, ...] = ()


def content_key(kind: str, digest: str, content: bytes) -> str:
    return f"{kind}:{digest}:sha256:{hashlib.sha256(content).hexdigest()}"


def scan_record(
    data: bytes, *, image: str, digest: str, name: str, fmt: ScanFormat = "auto"
) -> Evidence:
    """The scan of ``digest`` that the report ``data`` (file ``name``) holds."""
    try:
        report = parse_scan_report(data, fmt=fmt)
    except ScanReportError as exc:
        raise ScanReportError(f"{name}: {exc}") from None
    if report.format == "sarif" and not report.scanner_severities:
        raise ScanReportError(
            f"{name}: this SARIF ({report.scanner or 'unknown tool'}) gives CVSS scores or "
            "levels, not the scanner's own severities (a Grype Critical can read as HIGH); "
            "record its JSON report instead (grype -o json, trivy --format json)"
        )
    scanned = pinned_digest(report.artifact) if report.artifact else None
    if scanned is not None and scanned != digest:
        raise ScanReportError(
            f"{name} is a scan of {short_digest(scanned)}, not of {short_digest(digest)}"
        )
    notes = []
    if report.os is None and report.format != "sarif":
        notes.append(
            f"{name}: the scanner detected no OS in the image, so no OS package was checked"
        )
    scan = Scan(
        image=image,
        digest=digest,
        format=report.format,
        scanner=report.scanner,
        scanner_version=report.scanner_version,
        artifact=report.artifact,
        os=report.os,
        findings=findings_of(report),
        key=content_key("scan", digest, data),
    )
    return Evidence(scan, tuple(notes))


# The parser's severities as the record model spells them (the same six names).
_SEVERITY: dict[Severity, FindingSeverity] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.NEGLIGIBLE: "negligible",
    Severity.UNKNOWN: "unknown",
}


def findings_of(report: ScanReport) -> tuple[Finding, ...]:
    return tuple(
        Finding(
            id=f.id,
            severity=_SEVERITY[f.severity],
            package=f.package,
            installed_version=f.installed_version,
            fixed_version=f.fixed_version,
            target=f.target,
        )
        for f in report.findings
    )


def model_card_record(
    card: bytes,
    *,
    image: str,
    digest: str,
    card_name: str,
    mlmodel: bytes | None = None,
    mlmodel_name: str = "MLmodel",
) -> Evidence:
    """The model card of ``digest``; with ``mlmodel``, its signature comes from that file."""
    signature = None
    notes: list[str] = []
    if mlmodel is not None:
        parsed = parse_mlmodel(mlmodel, source=mlmodel_name)
        if parsed.signature is None:
            raise MLmodelError(f"{mlmodel_name}: the model was logged without a signature")
        signature = parsed.signature
        notes.append(f"signature taken from {mlmodel_name}")
    read = load_model_card(card, source=card_name, signature=signature)
    text = json.dumps(dict(read.raw), sort_keys=True, separators=(",", ":"))
    record = ModelCard(
        image=image,
        digest=digest,
        name=read.name,
        version=read.version,
        accuracy=read.accuracy,
        inputs=read.inputs,
        outputs=read.outputs,
        params=read.params,
        latency_p50_ms=read.latency_p50_ms,
        latency_p95_ms=read.latency_p95_ms,
        card=text,
        source="cli+mlmodel" if mlmodel is not None else "cli",
        key=content_key("model-card", digest, text.encode()),
    )
    return Evidence(record, tuple(notes))


__all__ = ["Evidence", "ScanFormat", "content_key", "model_card_record", "scan_record"]
