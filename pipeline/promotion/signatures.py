"""How two MLflow signatures differ, one line per difference.

Named specs (columns, or named tensors) are matched by name, unnamed ones by
position. Lines look like ``input 'x': double -> float``, ``output count 3 -> 1``,
``outputs: column-based -> tensor-based``, ``input 'y' added (long)``,
``param 'batch_size': long default 16 -> long default 32``.
"""

from __future__ import annotations

from typing import Literal

from pipeline.records.sources.mlmodel import Name, ParamSpec, Signature, Spec, TensorSpec, label

Side = Literal["input", "output"]


def signature_differences(old: Signature | None, new: Signature | None) -> tuple[str, ...]:
    """One line per difference from ``old`` to ``new``; () when they are the same."""
    if old is None or new is None:
        if old is new:
            return ()
        return ("signature: " + ("none -> present" if old is None else "present -> none"),)
    return (
        *_spec_differences("input", old.inputs, new.inputs),
        *_spec_differences("output", old.outputs, new.outputs),
        *_param_differences(old.params, new.params),
    )


def _kind(specs: tuple[Spec, ...]) -> str:
    if not specs:
        return "none"
    return "tensor-based" if isinstance(specs[0], TensorSpec) else "column-based"


def _spec_differences(side: Side, old: tuple[Spec, ...], new: tuple[Spec, ...]) -> list[str]:
    lines: list[str] = []
    if len(old) != len(new):
        lines.append(f"{side} count {len(old)} -> {len(new)}")
    if _kind(old) != _kind(new):
        lines.append(f"{side}s: {_kind(old)} -> {_kind(new)}")
        return lines
    named = all(s.name is not None for s in (*old, *new))
    if not named:  # positional: compare by place
        was, now = (any(s.name is not None for s in specs) for specs in (old, new))
        if old and new and was != now:
            lines.append(f"{side}s: {_naming(was)} -> {_naming(now)}")
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            if a.describe() != b.describe():
                lines.append(f"{side} #{i + 1}: {a.describe()} -> {b.describe()}")
        lines.extend(
            f"{side} #{i + 1} added ({s.describe()})" for i, s in enumerate(new) if i >= len(old)
        )
        lines.extend(
            f"{side} #{i + 1} removed (was {s.describe()})"
            for i, s in enumerate(old)
            if i >= len(new)
        )
        return lines
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    for s in old:
        if s.name not in after:
            lines.append(f"{side} {label(s.name)} removed (was {s.describe()})")
        elif after[s.name].describe() != s.describe():
            lines.append(f"{side} {label(s.name)}: {s.describe()} -> {after[s.name].describe()}")
    lines.extend(
        f"{side} {label(s.name)} added ({s.describe()})" for s in new if s.name not in before
    )
    kept_old = [s.name for s in old if s.name in after]
    kept_new = [s.name for s in new if s.name in before]
    if kept_old != kept_new:
        lines.append(f"{side} order changed: {_names(kept_old)} -> {_names(kept_new)}")
    return lines


def _naming(named: bool) -> str:
    return "named" if named else "unnamed"


def _names(names: list[Name], limit: int = 6) -> str:
    shown = ", ".join(label(n) for n in names[:limit])
    return shown + (f", ... ({len(names)})" if len(names) > limit else "")


def _param_differences(old: tuple[ParamSpec, ...], new: tuple[ParamSpec, ...]) -> list[str]:
    before = {p.name: p for p in old}
    after = {p.name: p for p in new}
    lines = [
        f"param {p.name!r} removed (was {p.describe()})"
        if p.name not in after
        else f"param {p.name!r}: {p.describe()} -> {after[p.name].describe()}"
        for p in old
        if p.name not in after or after[p.name] != p
    ]
    lines.extend(f"param {p.name!r} added ({p.describe()})" for p in new if p.name not in before)
    return lines
