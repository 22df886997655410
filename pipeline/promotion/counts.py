"""Vulnerability counts without finding ids: ECR's own scan and the ``--scan-critical`` /
``--scan-high`` figures recorded with CI runs, for scanners in no format ``record``
reads. They cannot be waived (a waiver names a finding); pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.promotion.policy import Severity
from pipeline.records.model import CiRun

_LEVEL = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
# Findings whose severity the scanner did not settle: they block at any threshold.
_UNSETTLED = frozenset({"undefined", "untriaged"})


@dataclass(frozen=True)
class ScanFindings:
    """Vulnerability counts for the candidate image, from one source.

    ``counts`` maps lowercase severity to a count; ``covers`` is the lowest
    severity the source counts at all (an ECR scan counts every level; a CI
    run records only critical and high), so a threshold below it cannot be
    checked from this source.
    """

    source: str
    counts: tuple[tuple[str, int], ...]
    covers: str = "low"


def judge_counts(findings: ScanFindings, threshold: Severity) -> tuple[bool, str]:
    """Counts without ids (ECR's scan, --scan-critical/--scan-high): not waivable."""
    if _LEVEL[findings.covers] > _LEVEL[threshold]:
        return False, (
            f"{findings.source} counts only {findings.covers} and above; "
            f"cannot check findings at {threshold}"
        )
    blocking = [
        (severity, count)
        for severity, count in findings.counts
        if count > 0 and (severity in _UNSETTLED or _LEVEL.get(severity, 0) >= _LEVEL[threshold])
    ]
    if blocking:
        listed = ", ".join(f"{count} {severity}" for severity, count in blocking)
        return False, f"{findings.source}: {listed} (blocks at {threshold})"
    counted = ", ".join(f"{count} {severity}" for severity, count in findings.counts if count)
    return True, (
        f"{findings.source}: nothing at {threshold} or above" + (f" ({counted})" if counted else "")
    )


def findings_from_counts(source: str, counts: Mapping[str, int]) -> ScanFindings:
    """Scanner counts (any case, e.g. ECR's ``findingSeverityCounts``) as ScanFindings."""
    order = {**_LEVEL, "undefined": -1, "untriaged": -1}
    merged: dict[str, int] = {}
    for severity, count in counts.items():
        merged[severity.lower()] = merged.get(severity.lower(), 0) + int(count)
    ranked = sorted(merged.items(), key=lambda item: -order.get(item[0], -1))
    return ScanFindings(source, tuple(ranked), covers="low")


def findings_from_ci_runs(runs: Iterable[CiRun]) -> ScanFindings | None:
    """The scan counts of every CI run of a digest that recorded some, at once: the most
    any run counted per severity (a later run with fewer never erases an earlier count)."""
    counted = [r for r in runs if r.scan_critical is not None]
    if not counted:
        return None
    critical = max(r.scan_critical or 0 for r in counted)
    highs = [r.scan_high for r in counted if r.scan_high is not None]
    counts = [("critical", critical)] + ([("high", max(highs))] if highs else [])
    ids = ", ".join(f"#{r.id}" for r in counted)
    source = f"CI run {ids} scan" if len(counted) == 1 else f"CI runs {ids} scans"
    return ScanFindings(source, tuple(counts), covers="high" if highs else "critical")


def findings_from_ci_run(run: CiRun) -> ScanFindings | None:
    """The scan counts recorded with a CI run (critical, and high when recorded)."""
    if run.scan_critical is None:
        return None
    counts = [("critical", run.scan_critical)]
    if run.scan_high is not None:
        counts.append(("high", run.scan_high))
    covers = "high" if run.scan_high is not None else "critical"
    return ScanFindings(f"CI run #{run.id} scan", tuple(counts), covers=covers)


__all__ = [
    "ScanFindings",
    "findings_from_ci_run",
    "findings_from_ci_runs",
    "findings_from_counts",
    "judge_counts",
]
