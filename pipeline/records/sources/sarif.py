"""SARIF 2.1.0 results (as Trivy and Grype write them) as Findings.

SARIF has no severity field. The first of these that is present decides:

1. a severity word among the rule's ``properties.tags`` (Trivy writes its
   own severity there: ``["vulnerability", "security", "MEDIUM"]``);
2. ``properties.security-severity`` of the result, else of the rule, read as a
   CVSS score: >= 9.0 CRITICAL, >= 7.0 HIGH, >= 4.0 MEDIUM, > 0 LOW, 0 UNKNOWN
   (GitHub's reading). Grype writes the best CVSS base score here, which can
   disagree with Grype's own severity (its Low fixture match carries 8.2);
3. the result's ``level`` (default: the rule's ``defaultConfiguration.level``,
   else "warning"): error HIGH, warning MEDIUM, note LOW, none UNKNOWN. A level
   can never say CRITICAL.

Package and versions are not structured in SARIF; they are read from the
"Package: ..." / "Installed Version: ..." / "Fixed Version: ..." lines Trivy
writes in the result message, else the "Package:" / "Version:" / "Fix Version:"
lines Grype writes in the rule help. The vulnerability id is the
"Vulnerability <id>" line of either (Grype's ruleId is "<id>-<package>"), else
the ruleId. Results of kind ``pass`` or ``notApplicable`` are not findings.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping

from pipeline.records.sources.scan_types import (
    ReportFinding,
    ScanReport,
    ScanReportError,
    Severity,
    SeverityBasis,
    arr,
    obj,
    obj_or_empty,
    opt_text,
    req_text,
    severity_from_level,
    severity_from_score,
    severity_word,
)
from pipeline.records.sources.strict_json import json_type, one_line

_S = "SARIF report"
_NOT_FINDINGS = frozenset({"pass", "notApplicable"})
_KEY_VALUE = re.compile(
    r"^(Package|Installed Version|Version|Fixed Version|Fix Version): ?(.*?)\s*$", re.MULTILINE
)
_VULN_LINE = re.compile(r"^\**Vulnerability (\S+?)\**\s*$", re.MULTILINE)


def parse_sarif(doc: Mapping[str, object]) -> ScanReport:
    """The findings of every run; scanner and artifact come from the first run."""
    version = doc.get("version")
    if version != "2.1.0":
        shown = one_line(json.dumps(version), 30)
        raise ScanReportError(f'{_S}: version {shown} is not supported; expected "2.1.0"')
    runs = arr(doc.get("runs"), "runs", _S)
    if not runs:
        raise ScanReportError("a SARIF report with no runs")
    findings: list[ReportFinding] = []
    first: tuple[str | None, str | None, str | None] = (None, None, None)
    for r, raw_run in enumerate(runs):
        at = f"runs[{r}]"
        run = obj(raw_run, at, _S)
        driver = obj(obj(run.get("tool"), f"{at}.tool", _S).get("driver"), f"{at}.tool.driver", _S)
        name = req_text(driver.get("name"), f"{at}.tool.driver.name", _S)
        rules = [
            obj(rule, f"{at}.tool.driver.rules[{k}]", _S)
            for k, rule in enumerate(arr(driver.get("rules"), f"{at}.tool.driver.rules", _S))
        ]
        by_id: dict[str, Mapping[str, object]] = {}
        for k, rule in enumerate(rules):
            by_id.setdefault(req_text(rule.get("id"), f"{at}.tool.driver.rules[{k}].id", _S), rule)
        if run.get("results") is None:
            raise ScanReportError(
                f"{_S}: {at} has no results array, so the tool did not report results "
                "(no findings is an empty array)"
            )
        for i, raw in enumerate(arr(run.get("results"), f"{at}.results", _S)):
            finding = _result(raw, f"{at}.results[{i}]", rules, by_id, unescape=name == "Trivy")
            if finding is not None:
                findings.append(finding)
        if r == 0:
            version_text = driver.get("version") or driver.get("semanticVersion")
            props = obj_or_empty(run.get("properties"), f"{at}.properties", _S)
            first = (
                name,
                opt_text(version_text, f"{at}.tool.driver.version", _S),
                opt_text(props.get("imageName"), f"{at}.properties.imageName", _S),
            )
    return ScanReport("sarif", first[0], first[1], first[2], tuple(findings))


def _result(
    raw: object,
    at: str,
    rules: list[Mapping[str, object]],
    by_id: Mapping[str, Mapping[str, object]],
    *,
    unescape: bool,
) -> ReportFinding | None:
    result = obj(raw, at, _S)
    if result.get("kind", "fail") in _NOT_FINDINGS:
        return None
    rule = _rule_of(result, at, rules, by_id)
    severity, basis, raw_severity, level = _severity(result, rule, at)
    message = _text_of(result.get("message"), f"{at}.message", _S)
    help_text = _text_of(rule.get("help"), f"rule {rule['id']!s}.help", _S)
    fields: dict[str, str] = dict(_KEY_VALUE.findall(help_text))
    fields.update(_KEY_VALUE.findall(message))
    named = _VULN_LINE.search(message) or _VULN_LINE.search(help_text)
    fixed = fields.get("Fixed Version") or fields.get("Fix Version") or ""
    title = _text_of(rule.get("shortDescription"), f"rule {rule['id']!s}.shortDescription", _S)
    return ReportFinding(
        id=named.group(1) if named else str(rule["id"]),
        severity=severity,
        package=fields.get("Package") or None,
        installed_version=fields.get("Installed Version") or fields.get("Version") or None,
        fixed_version=", ".join(v.strip() for v in fixed.split(",") if v.strip()) or None,
        title=(html.unescape(title) if unescape else title) or None,
        target=_uri(result, at),
        severity_basis=basis,
        raw_severity=raw_severity,
        level=level,
    )


def _rule_of(
    result: Mapping[str, object],
    at: str,
    rules: list[Mapping[str, object]],
    by_id: Mapping[str, Mapping[str, object]],
) -> Mapping[str, object]:
    ref = obj_or_empty(result.get("rule"), f"{at}.rule", _S)
    rule_id = opt_text(result.get("ruleId", ref.get("id")), f"{at}.ruleId", _S)
    index = result.get("ruleIndex", ref.get("index", -1))
    if not isinstance(index, int) or isinstance(index, bool) or index < -1:
        raise ScanReportError(f"{_S}: {at}.ruleIndex must be an integer >= 0, got {index!r}")
    if index >= 0:
        if index >= len(rules):
            raise ScanReportError(
                f"{_S}: {at}.ruleIndex {index} is out of range: the run has {len(rules)} rules"
            )
        rule = rules[index]
        if rule_id is not None and rule["id"] != rule_id and rule["id"] != rule_id.split("/")[0]:
            raise ScanReportError(
                f"{_S}: {at}.ruleIndex {index} is rule '{one_line(str(rule['id']), 60)}' "
                f"but ruleId is '{one_line(rule_id, 60)}'"
            )
        return rule
    if rule_id is None:
        raise ScanReportError(f"{_S}: {at} names no rule (no ruleId, rule.id or ruleIndex)")
    rule_or_none = by_id.get(rule_id) or by_id.get(rule_id.split("/")[0])
    if rule_or_none is None:
        raise ScanReportError(
            f"{_S}: {at}.ruleId '{one_line(rule_id, 60)}' matches none of the run's "
            f"{len(rules)} tool.driver.rules"
        )
    return rule_or_none


def _severity(
    result: Mapping[str, object], rule: Mapping[str, object], at: str
) -> tuple[Severity, SeverityBasis, str, str]:
    """(severity, basis, raw value, level) for one result."""
    config = obj_or_empty(rule.get("defaultConfiguration"), f"{at} rule.defaultConfiguration", _S)
    level = result.get("level", config.get("level", "warning"))
    by_level = severity_from_level(level) if isinstance(level, str) else None
    if by_level is None or not isinstance(level, str):
        raise ScanReportError(
            f"{_S}: {at}.level must be one of error, warning, note, none; got "
            f"{one_line(json.dumps(level), 30)}"
        )
    rule_props = obj_or_empty(rule.get("properties"), f"{at} rule.properties", _S)
    words = [
        (found, tag)
        for tag in arr(rule_props.get("tags"), f"{at} rule.properties.tags", _S)
        if isinstance(tag, str) and (found := severity_word(tag)) is not None
    ]
    if words:
        found, tag = max(words, key=lambda pair: pair[0].rank)
        return found, "scanner", tag, level
    result_props = obj_or_empty(result.get("properties"), f"{at}.properties", _S)
    score = result_props.get("security-severity", rule_props.get("security-severity"))
    if score is not None:
        return severity_from_score(_score(score, at)), "security-severity", str(score), level
    return by_level, "level", level, level


def _score(value: object, at: str) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0.0 <= number <= 10.0:
        shown = one_line(json.dumps(value), 30)
        raise ScanReportError(
            f"{_S}: {at}: security-severity {shown} is not a CVSS score in 0.0..10.0"
        )
    return number


def _text_of(message: object, where: str, what: str) -> str:
    """The ``text`` of a SARIF message / multiformatMessageString ("" when absent)."""
    if message is None:
        return ""
    if not isinstance(message, dict):
        raise ScanReportError(f"{what}: {where} must be an object, got {json_type(message)}")
    return opt_text(message.get("text"), f"{where}.text", what) or ""


def _uri(result: Mapping[str, object], at: str) -> str | None:
    locations = arr(result.get("locations"), f"{at}.locations", _S)
    if not locations:
        return None
    location = obj(locations[0], f"{at}.locations[0]", _S)
    physical = obj_or_empty(location.get("physicalLocation"), f"{at}.locations[0]", _S)
    where = f"{at}.locations[0].physicalLocation.artifactLocation"
    artifact = obj_or_empty(physical.get("artifactLocation"), where, _S)
    return opt_text(artifact.get("uri"), f"{where}.uri", _S)
