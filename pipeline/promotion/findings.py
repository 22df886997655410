"""The vulnerabilities gate's judgement of recorded scans: every scan of the digest at once.

Evidence is judged as a whole: the findings of all scans of a digest are merged,
so a later clean report never erases an earlier finding. A finding is one
vulnerability id in one package; when reports disagree on its severity the
highest one the scanners settled counts ("unknown" only when no scanner settled
it). A finding blocks when its severity is at or above the threshold; "unknown"
blocks at any threshold (no scanner vouched for it), "negligible" (Grype) ranks
below low. A blocking finding is accepted only by a waiver of its id for this
digest that is in force now; expired waivers are named, never applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pipeline.records.model import FINDING_SEVERITIES, FindingSeverity, Scan, Waiver

# Most severe first; "unknown" is not ordered (it blocks whatever the threshold).
_RANK: dict[str, int] = {"critical": 4, "high": 3, "medium": 2, "low": 1, "negligible": 0}
_SHOWN = 3  # findings named in a reason before "and N more"


@dataclass(frozen=True)
class MergedFinding:
    id: str
    package: str | None
    severity: FindingSeverity
    fixed_version: str | None

    def describe(self) -> str:
        where = self.package or "no package named"
        fix = f", fix {self.fixed_version}" if self.fixed_version else ", no fix"
        return f"{self.id} {self.severity} ({where}{fix})"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def _more_severe(a: FindingSeverity, b: FindingSeverity) -> FindingSeverity:
    if a == "unknown":
        return b
    if b == "unknown":
        return a
    return a if _RANK[a] >= _RANK[b] else b


def merge_findings(scans: Iterable[Scan]) -> list[MergedFinding]:
    """One entry per (id, package) over every scan, with its highest settled severity."""
    merged: dict[tuple[str, str | None], MergedFinding] = {}
    for scan in scans:
        for f in scan.findings:
            key = (f.id, f.package)
            seen = merged.get(key)
            if seen is None:
                merged[key] = MergedFinding(f.id, f.package, f.severity, f.fixed_version)
            else:
                merged[key] = MergedFinding(
                    f.id,
                    f.package,
                    _more_severe(seen.severity, f.severity),
                    seen.fixed_version or f.fixed_version,
                )
    return sorted(merged.values(), key=lambda m: (-_RANK.get(m.severity, 5), m.id, m.package or ""))


def blocks(severity: FindingSeverity, threshold: str) -> bool:
    """Whether a finding of ``severity`` blocks at ``threshold`` (not "none")."""
    return severity == "unknown" or _RANK[severity] >= _RANK[threshold]


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _tools(scans: Sequence[Scan]) -> str:
    names = [" ".join(p for p in (s.scanner, s.scanner_version) if p) or s.format for s in scans]
    counted = {name: names.count(name) for name in dict.fromkeys(names)}
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counted.items())


def judge_scans(
    scans: Sequence[Scan], waivers: Sequence[Waiver], threshold: str, now: datetime
) -> Verdict:
    """The gate's verdict on ``scans`` of one digest with its ``waivers``, at ``now``."""
    merged = merge_findings(scans)
    blocking = [m for m in merged if blocks(m.severity, threshold)]
    active = {w.finding: w for w in sorted(waivers, key=lambda w: w.expires) if w.active(now)}
    expired = {w.finding: w for w in waivers if w.expires <= now and w.finding not in active}
    open_ = [m for m in blocking if m.id not in active]
    waived = sorted({m.id for m in blocking if m.id in active})
    head = f"{len(scans)} scan(s) ({_tools(scans)})"
    parts: list[str] = []
    if open_:
        parts.append(
            f"{len(open_)} at {threshold} or above: {_listed([m.describe() for m in open_])}"
        )
    if waived:
        parts.append(
            "waived: "
            + _listed(
                [
                    f"{i} until {active[i].expires:%Y-%m-%d} by {active[i].actor or '?'} "
                    f"({active[i].reason})"
                    for i in waived
                ]
            )
        )
    lapsed = sorted(i for i in expired if any(m.id == i for m in open_))
    if lapsed:
        parts.append(
            "expired: "
            + _listed([f"waiver of {i} ended {expired[i].expires:%Y-%m-%d}" for i in lapsed])
        )
    if not open_:
        counted = _count_line(merged)
        parts.insert(
            0, f"nothing open at {threshold} or above" + (f" ({counted})" if counted else "")
        )
    return Verdict(not open_, f"{head}: " + "; ".join(parts))


def _count_line(merged: Sequence[MergedFinding]) -> str:
    counts = [(s, sum(1 for m in merged if m.severity == s)) for s in FINDING_SEVERITIES]
    return ", ".join(f"{n} {s}" for s, n in counts if n)


__all__ = ["MergedFinding", "Verdict", "blocks", "judge_scans", "merge_findings"]
