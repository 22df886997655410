"""The pull-request comment: marker, counts, flags, tables, details, size limit, secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.preview.comment import GITHUB_LIMIT, MARKER, build_comment
from pipeline.preview.pulumi_json import loads_preview, parse_preview
from pipeline.preview.report import ResourceChange, StackReport, report_from_preview
from policy.model import NotChecked, PolicyOutcome, Violation
from tests.pipeline.previewkit import huge_preview

FIXTURES = Path(__file__).parent / "fixtures" / "preview"


def _report(stack: str, name: str) -> StackReport:
    result = loads_preview((FIXTURES / name).read_text(encoding="utf-8"))
    return report_from_preview(stack, result)


def test_comment_starts_with_the_hidden_marker() -> None:
    body = build_comment([_report("staging", "diagnostics.json")])
    assert body.startswith(MARKER + "\n")
    assert body.count(MARKER) == 1


def test_heading_carries_every_count() -> None:
    body = build_comment([_report("prod", "replace.json")])
    assert (
        "### `prod`: 0 to create · 1 to update · 1 to replace · 0 to delete · 13 unchanged" in body
    )
    assert "| `prod` | 0 | 1 | 1 | 0 | 13 | n/a |" in body


def test_prod_replaces_and_deletes_are_flagged_before_any_stack() -> None:
    body = build_comment([_report("staging", "diagnostics.json"), _report("prod", "deletes.json")])
    flag = body.index("**prod** (production): 0 to replace, 3 to delete")
    assert flag < body.index("### `staging`")
    assert "> - **delete** `docker:index/volume:Volume` `registry-data`" in body


def test_staging_deletes_are_not_flagged_as_production() -> None:
    body = build_comment([_report("staging", "deletes.json")])
    assert "(production)" not in body


def test_replace_row_says_why() -> None:
    body = build_comment([_report("prod", "replace.json")])
    assert (
        "| `kubernetes:apps/v1:Deployment` | `model-server-deployment` | replace | "
        "`spec.selector` |" in body
    )
    assert "(because of `spec.selector`)" in body


def test_errors_and_warnings_are_listed_info_is_not() -> None:
    body = build_comment([_report("staging", "diagnostics.json")])
    assert "> [!CAUTION]\n> **staging**: the preview reported 1 error(s)" in body
    assert "**error** (`model-server-deployment`): error: configured Kubernetes cluster" in body
    assert "**warning** (`model-server-service`)" in body
    assert "loading settings for stack staging" not in body


def test_property_details_are_collapsible() -> None:
    body = build_comment([_report("prod", "replace.json")])
    section = re.search(
        r"<details><summary>update <code>kubernetes:core/v1:Service</code> "
        r"<code>model-server-service</code></summary>\n\n```diff\n(.*?)\n```",
        body,
        re.S,
    )
    assert section is not None
    assert section.group(1) == "- spec.ports[0].port: 80\n+ spec.ports[0].port: 8080"
    assert "(forces replacement)" in body


def test_policy_violations_name_rule_and_resource() -> None:
    outcome = PolicyOutcome(
        violations=(
            Violation(
                "load-balancer-source-ranges",
                "mandatory",
                "kubernetes:core/v1:Service",
                "cv-staging/public",
                "Service of type LoadBalancer has no spec.loadBalancerSourceRanges",
                "service-cv-staging-public.yaml",
            ),
        ),
        not_checked=(
            NotChecked(
                "protected-tooling-volumes",
                "docker:index/volume:Volume",
                "jenkins-home",
                "resource options (protect) are not part of an offline render",
            ),
        ),
        resources_checked=3,
        policies=("load-balancer-source-ranges", "protected-tooling-volumes"),
    )
    report = StackReport("staging", "test", {"same": 3}, policy=outcome)
    body = build_comment([report])
    assert (
        "| `load-balancer-source-ranges` | `kubernetes:core/v1:Service` `cv-staging/public` in "
        "`service-cv-staging-public.yaml` | mandatory | Service of type LoadBalancer has no "
        "spec.loadBalancerSourceRanges |" in body
    )
    assert "Not checked: `protected-tooling-volumes` for `jenkins-home`" in body
    assert "| `staging` | 0 | 0 | 0 | 0 | 3 | 1 violation(s) |" in body


def test_known_secret_values_are_replaced_everywhere() -> None:
    change = ResourceChange("update", "t:m:R", "r", ("a",), "- a: s3cr3t-value\n+ a: other")
    report = StackReport("staging", "uses s3cr3t-value, not xyz", {"update": 1}, (change,))
    body = build_comment([report], secret_values=["s3cr3t-value", "xyz"])
    assert "s3cr3t-value" not in body
    assert body.count("[secret]") == 2
    assert "not xyz" in body  # too short to scrub blindly


def test_large_preview_is_shortened_in_details_never_in_summary() -> None:
    result = parse_preview(huge_preview(resources=150, props=40, width=60))
    report = report_from_preview("prod", result)
    full = sum(len(c.detail) for c in report.changes)
    assert full > 3 * GITHUB_LIMIT  # the fixture really is too large
    body = build_comment([report])
    assert len(body.encode()) <= GITHUB_LIMIT
    # The summary is whole: every resource has its row and the counts are exact.
    rows = re.findall(
        r"^\| `kubernetes:core/v1:ConfigMap` \| `settings-\d{4}` \| update \|", body, re.M
    )
    assert len(rows) == 150
    assert "150 to update" in body
    # ...and the comment says what it shortened.
    note = re.search(r"(\d+) detail section\(s\) truncated, (\d+) omitted", body)
    assert note is not None
    assert int(note.group(1)) + int(note.group(2)) > 0
    assert "more lines not shown" in body or int(note.group(2)) > 0


def test_when_excerpts_cannot_all_fit_some_details_are_omitted() -> None:
    result = parse_preview(huge_preview(resources=400, props=10, width=80))
    body = build_comment([report_from_preview("prod", result)])
    assert len(body.encode()) <= GITHUB_LIMIT
    note = re.search(r"(\d+) detail section\(s\) truncated, (\d+) omitted", body)
    assert note is not None
    assert int(note.group(2)) > 0
    assert len(re.findall(r"settings-\d{4}` \| update", body)) == 400


def test_a_small_preview_is_not_shortened() -> None:
    body = build_comment([_report("prod", "replace.json")])
    assert "Shortened" not in body


def test_thousands_of_changes_cut_the_table_but_never_the_counts() -> None:
    result = parse_preview(huge_preview(resources=3000, props=2, width=10))
    body = build_comment([report_from_preview("prod", result)])
    assert len(body.encode()) <= GITHUB_LIMIT
    assert "3000 to update" in body
    assert "| `prod` | 0 | 3000 | 0 | 0 | 4 | n/a |" in body
    listed = len(re.findall(r"settings-\d{4}` \| update", body))
    assert 0 < listed < 3000
    assert f"| … | {3000 - listed} more not listed (comment size limit) | | |" in body
    assert f"{3000 - listed} changed resource(s) are not listed in the tables" in body


def test_findings_too_large_to_post_are_an_error() -> None:
    violations = tuple(
        Violation("rule", "mandatory", "t:m:R", f"r{i}", "x" * 50) for i in range(100)
    )
    outcome = PolicyOutcome(violations, resources_checked=100, policies=("rule",))
    report = StackReport("staging", "test", {"same": 100}, policy=outcome)
    with pytest.raises(PipelineError, match="over the 2,000 limit"):
        build_comment([report], limit=2_000)
