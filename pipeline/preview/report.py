"""One stack's report for the comment: its changes, diagnostics and the policy verdict.

From a ``pulumi preview`` (its steps, with the policy rules run over each step's new
inputs, since Pulumi's preview JSON carries no policy events) or from an offline render
diff (the rules run over both renders; only violations the base did not have are new).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.preview.diff import Snapshot, StackDiff, is_kubernetes_object, kubernetes_type
from pipeline.preview.pulumi_json import Diagnostic, PreviewResult, Step, Urn
from policy.model import PolicyOutcome, Violation

if TYPE_CHECKING:
    from policy.adapter import CheckedResource


@dataclass(frozen=True)
class ResourceChange:
    """One changed resource as the comment shows it."""

    op: str
    type: str
    name: str
    why: tuple[str, ...] = ()
    detail: str = ""  # body of the collapsible section ('' = none)
    detail_lang: str = "diff"


@dataclass(frozen=True)
class StackReport:
    stack: str
    source: str  # how the changes were computed, one line
    counts: Mapping[str, int]
    changes: tuple[ResourceChange, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    policy: PolicyOutcome | None = None
    new_violations: frozenset[Violation] | None = None  # offline: not on the base already
    notes: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, width=1000)


def step_detail(step: Step) -> tuple[str, str]:
    """The property-level detail of a step, and its fence language."""
    if step.op == "create" and step.new_inputs:
        return _yaml(step.new_inputs).rstrip("\n"), "yaml"
    return "\n".join(line for change in step.changes for line in change.lines()), "diff"


def report_from_preview(
    stack: str,
    result: PreviewResult,
    policy: PolicyOutcome | None = None,
    source: str = "pulumi preview",
) -> StackReport:
    changes = []
    for step in result.changes:
        detail, lang = step_detail(step)
        changes.append(ResourceChange(step.op, step.type, step.name, step.why, detail, lang))
    notes = []
    if result.duration_ns:
        source = f"{source} ({result.duration_ns / 1e9:.1f} s)"
    if result.maybe_corrupt:
        notes.append("Pulumi reports that one or more resources may be corrupt.")
    return StackReport(
        stack=stack,
        source=source,
        counts=result.counts(),
        changes=tuple(changes),
        diagnostics=result.diagnostics,
        policy=policy,
        notes=tuple(notes),
    )


def preview_policy(stack: str, result: PreviewResult) -> PolicyOutcome:
    """The policy rules over each step's new inputs (the pack loads only here)."""
    from policy.adapter import CheckedResource, evaluate

    resources = [
        CheckedResource(s.type, s.name, s.new_inputs, s.protect, s.parent_types)
        for s in result.steps
        if s.logical
        and s.op not in ("delete", "discard", "read")
        and s.new_inputs is not None
        and not s.type.startswith(("pulumi:providers:", "pulumi:pulumi:"))
    ]
    return evaluate(resources, stack)


def stack_in(result: PreviewResult) -> str:
    for step in result.steps:
        stack = str(Urn.parse(step.urn).stack)
        if stack:
            return stack
    return ""


def report_from_diff(diff: StackDiff) -> StackReport:
    """An offline render diff's report: only violations the base did not have are new."""
    from policy.adapter import CheckedResource, evaluate

    def checked(snapshot: Snapshot) -> list[CheckedResource]:
        out = []
        for file_name, manifest in sorted(snapshot.manifests.items()):
            meta = manifest.get("metadata") or {}
            name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            out.append(
                CheckedResource(kubernetes_type(manifest), name, manifest, location=file_name)
            )
        for res in snapshot.resources:
            if not is_kubernetes_object(res) and not str(res["type"]).startswith("pulumi:"):
                # The render records `protect`, so the protected-volume rule decides offline;
                # a render without it (an older tool) gets "not checked", never a guess.
                protect = res.get("protect")
                out.append(
                    CheckedResource(
                        res["type"],
                        res["name"],
                        res.get("inputs") or {},
                        protect if isinstance(protect, bool) else None,
                    )
                )
        return out

    head_policy = evaluate(checked(diff.head), diff.stack)
    base_policy = evaluate(checked(diff.base), diff.stack)
    before = {replace(v, location="") for v in base_policy.violations}
    new = frozenset(v for v in head_policy.violations if replace(v, location="") not in before)
    changes = tuple(
        ResourceChange(c.op, c.type, c.name, c.paths, c.detail, c.detail_lang) for c in diff.changes
    )
    return StackReport(
        stack=diff.stack,
        source=f"offline render: {diff.base_label} → working tree "
        "(operations estimated from the manifests; `pulumi preview` decides)",
        counts=diff.counts,
        changes=changes,
        policy=head_policy,
        new_violations=new,
        notes=diff.notes,
    )
