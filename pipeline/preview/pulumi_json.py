"""Parse the JSON digest of ``pulumi preview --json [--diff]`` into plain, redacted data.

The format is Pulumi's ``display.PreviewDigest`` (sdk/go/common/display/json.go): ``config``,
``steps`` (``op``, ``urn``, ``provider``, ``oldState``/``newState`` as ``apitype.ResourceV3``,
``diffReasons``, ``replaceReasons``, ``detailedDiff`` {path: {kind, inputDiff}}),
``diagnostics`` (``urn``, ``message``, ``severity``), ``duration`` (nanoseconds) and
``changeSummary`` {op: count}. Every field is optional (Go ``omitempty``).

Secrets never survive parsing: every value goes through ``pipeline.preview.values.scrub``
(secrets as ``[secret]``, unknowns as ``[unknown]``, assets summarised). Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError
from pipeline.io import jsontext
from pipeline.preview.redact import redact_inputs
from pipeline.preview.values import ABSENT, compact, lookup, scrub

# The operations that count once per resource in changeSummary (Step.Logical() in the engine);
# the halves of a replacement (create-replacement, delete-replaced, ...) do not.
LOGICAL_OPS = frozenset(
    {"same", "create", "update", "delete", "replace", "read", "refresh", "import", "discard"}
)
CHANGE_OPS = frozenset({"create", "update", "delete", "replace", "import"})
COUNT_ORDER = ("create", "update", "replace", "delete", "same")


class PreviewFormatError(PipelineError):
    """The input is not a Pulumi preview JSON document."""


@dataclass(frozen=True)
class Urn:
    stack: str
    project: str
    type: str  # the resource's own type token
    parent_types: tuple[str, ...]
    name: str

    @classmethod
    def parse(cls, urn: str) -> Urn:
        prefix = "urn:pulumi:"
        parts = urn[len(prefix) :].split("::", 3) if urn.startswith(prefix) else []
        if len(parts) != 4:
            return cls("", "", "", (), urn)
        stack, project, qualified, name = parts
        types = qualified.split("$")
        return cls(stack, project, types[-1], tuple(types[:-1]), name)


@dataclass(frozen=True)
class PropertyChange:
    """One entry of ``detailedDiff``: old/new as compact redacted JSON, None when absent."""

    path: str
    kind: str  # add | add-replace | delete | delete-replace | update | update-replace
    input_diff: bool
    old: str | None
    new: str | None

    @property
    def replaces(self) -> bool:
        return self.kind.endswith("-replace")

    def lines(self) -> list[str]:
        """The change as diff lines: ``- path: old`` and ``+ path: new`` (``~ path`` if unseen)."""
        tag = "  (forces replacement)" if self.replaces else ""
        if self.old is None and self.new is None:
            return [f"~ {self.path}{tag}"]
        return [
            f"{sign} {self.path}: {value}{tag}"
            for sign, value in (("-", self.old), ("+", self.new))
            if value is not None
        ]


@dataclass(frozen=True)
class Step:
    op: str
    urn: str
    type: str
    name: str
    parent_types: tuple[str, ...]
    diff_reasons: tuple[str, ...]
    replace_reasons: tuple[str, ...]
    changes: tuple[PropertyChange, ...]
    old_inputs: Mapping[str, Any] | None
    new_inputs: Mapping[str, Any] | None
    protect: bool | None

    @property
    def logical(self) -> bool:
        return self.op in LOGICAL_OPS

    @property
    def is_change(self) -> bool:
        return self.op in CHANGE_OPS

    @property
    def why(self) -> tuple[str, ...]:
        """The properties behind the step: replace reasons for a replace, else the diff."""
        if self.op == "replace" and self.replace_reasons:
            return self.replace_reasons
        if self.diff_reasons:
            return self.diff_reasons
        return tuple(c.path for c in self.changes)


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # error | warning | info | info#err | debug
    message: str
    urn: str = ""


@dataclass(frozen=True)
class PreviewResult:
    steps: tuple[Step, ...]
    change_summary: Mapping[str, int]
    diagnostics: tuple[Diagnostic, ...] = ()
    duration_ns: int | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    maybe_corrupt: bool = False

    def counts(self) -> dict[str, int]:
        """Resources per operation: changeSummary when present, else the logical steps."""
        counts = dict(self.change_summary) if self.change_summary else self.step_counts()
        for op in COUNT_ORDER:
            counts.setdefault(op, 0)
        return counts

    def step_counts(self) -> dict[str, int]:
        """Logical steps per operation (equals changeSummary when run with --show-sames)."""
        counts: dict[str, int] = {}
        for step in self.steps:
            if step.logical:
                counts[step.op] = counts.get(step.op, 0) + 1
        return counts

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.is_change)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")


# --- parsing -------------------------------------------------------------------------------


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _state(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _clean(state: Mapping[str, Any] | None, key: str, rtype: str) -> Any:
    """A state's inputs or outputs, scrubbed of Pulumi secrets and plaintext credentials."""
    if state is None:
        return None
    value = scrub(state.get(key) or {})
    if isinstance(value, dict):
        value.pop("__defaults", None)
    return redact_inputs(value, rtype)


def _changes(
    raw: Any,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    diff_reasons: Sequence[str],
    rtype: str,
) -> tuple[PropertyChange, ...]:
    old_inputs = _clean(old, "inputs", rtype) or {}
    old_outputs = _clean(old, "outputs", rtype) or {}
    new_inputs = _clean(new, "inputs", rtype) or {}

    def text(source: Any, path: str) -> str | None:
        found = lookup(source, path)
        return None if found is ABSENT else compact(found)

    changes: list[PropertyChange] = []
    if isinstance(raw, Mapping):
        for path in sorted(raw):
            entry = raw[path] if isinstance(raw[path], Mapping) else {}
            kind = str(entry.get("kind", "update"))
            input_diff = bool(entry.get("inputDiff", False))
            old_src = old_inputs if input_diff or not old_outputs else old_outputs
            before = None if kind.startswith("add") else text(old_src, path)
            after = None if kind.startswith("delete") else text(new_inputs, path)
            changes.append(PropertyChange(path, kind, input_diff, before, after))
    else:
        # No detailed diff (older providers): show the top-level keys the engine named.
        for key in diff_reasons:
            before, after = text(old_inputs, key), text(new_inputs, key)
            kind = "add" if before is None else "delete" if after is None else "update"
            changes.append(PropertyChange(key, kind, True, before, after))
    return tuple(changes)


def _step(raw: Any, index: int) -> Step:
    if not isinstance(raw, Mapping):
        raise PreviewFormatError(f"steps[{index}] is not an object")
    op = raw.get("op")
    urn = raw.get("urn")
    if not isinstance(op, str) or not isinstance(urn, str):
        raise PreviewFormatError(f"steps[{index}] has no op or urn")
    old, new = _state(raw.get("oldState")), _state(raw.get("newState"))
    parsed = Urn.parse(urn)
    state = new or old or {}
    rtype = parsed.type or str(state.get("type", ""))
    diff_reasons = _str_list(raw.get("diffReasons"))
    protect = state.get("protect")
    return Step(
        op=op,
        urn=urn,
        type=rtype,
        name=parsed.name,
        parent_types=parsed.parent_types,
        diff_reasons=diff_reasons,
        replace_reasons=_str_list(raw.get("replaceReasons")),
        changes=_changes(raw.get("detailedDiff"), old, new, diff_reasons, rtype),
        old_inputs=_clean(old, "inputs", rtype),
        new_inputs=_clean(new, "inputs", rtype),
        protect=bool(protect) if protect is not None or new is not None else None,
    )


def _diagnostic(raw: Any, index: int) -> Diagnostic:
    if not isinstance(raw, Mapping):
        raise PreviewFormatError(f"diagnostics[{index}] is not an object")
    message = str(raw.get("prefix", "") or "") + str(raw.get("message", "") or "")
    return Diagnostic(
        severity=str(raw.get("severity") or "info"),
        message=message.strip(),
        urn=str(raw.get("urn") or ""),
    )


def parse_preview(data: Any) -> PreviewResult:
    """A ``PreviewResult`` from the decoded JSON of ``pulumi preview --json``."""
    if not isinstance(data, Mapping):
        raise PreviewFormatError("not a Pulumi preview document: expected a JSON object")
    known = {"config", "steps", "diagnostics", "duration", "changeSummary", "maybeCorrupt"}
    if not known.intersection(data):
        raise PreviewFormatError(
            "not a Pulumi preview document: none of steps, changeSummary, diagnostics"
        )
    steps_raw = data.get("steps")
    steps_raw = [] if steps_raw is None else steps_raw
    diags_raw = data.get("diagnostics")
    diags_raw = [] if diags_raw is None else diags_raw
    summary_raw = data.get("changeSummary")
    summary_raw = {} if summary_raw is None else summary_raw
    if not isinstance(steps_raw, list):
        raise PreviewFormatError("steps is not a list")
    if not isinstance(diags_raw, list):
        raise PreviewFormatError("diagnostics is not a list")
    if not isinstance(summary_raw, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in summary_raw.values()
    ):
        raise PreviewFormatError("changeSummary is not a map of operation to count")
    duration = data.get("duration")
    config_raw = data.get("config") or {}
    config = (
        {str(k): str(scrub(v)) for k, v in config_raw.items()}
        if isinstance(config_raw, Mapping)
        else {}
    )
    return PreviewResult(
        steps=tuple(_step(s, i) for i, s in enumerate(steps_raw)),
        change_summary={str(k): int(v) for k, v in summary_raw.items()},
        diagnostics=tuple(_diagnostic(d, i) for i, d in enumerate(diags_raw)),
        duration_ns=int(duration) if isinstance(duration, int | float) else None,
        config=config,
        maybe_corrupt=bool(data.get("maybeCorrupt", False)),
    )


def _after_preamble(text: str) -> Any:
    """The document when a CLI printed a few lines before it (warnings on stdout), else None."""
    start = text.find("\n{")
    if start < 0:
        return None
    try:
        return jsontext.loads(text[start + 1 :])
    except ValueError:
        return None


def loads_preview(text: str, source: str = "preview JSON") -> PreviewResult:
    """Parse the text ``pulumi preview --json`` printed (``source`` names it in errors)."""
    stripped = text.strip()
    if not stripped:
        raise PreviewFormatError(f"{source} is empty")
    try:
        data = jsontext.loads(stripped)
    except jsontext.JsonError as exc:
        raise PreviewFormatError(f"{source} cannot be used: {exc}") from None
    except json.JSONDecodeError as exc:
        data = _after_preamble(stripped)
        if data is None:
            raise PreviewFormatError(
                f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
    except ValueError as exc:  # e.g. an integer past Python's 4,300-digit limit
        raise PreviewFormatError(f"{source} cannot be used: {exc}") from None
    try:
        return parse_preview(data)
    except PreviewFormatError as exc:
        raise PreviewFormatError(f"{source}: {exc}") from None
