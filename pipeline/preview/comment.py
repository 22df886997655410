"""The pull-request comment: what a change does to each stack, in Markdown. Pure.

Layout: a hidden marker (so a re-run edits the same comment), prod replaces and deletes and
failed previews flagged first, then per stack a heading with the counts, a table of changed
resources, diagnostics, policy violations and collapsible property-level details. The comment
stays under GitHub's 65,536-character limit by shortening the details (never the summary)
and says what it shortened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.errors import PipelineError
from pipeline.preview.pulumi_json import COUNT_ORDER
from pipeline.preview.redact import MIN_SECRET_LENGTH, redact_free_text
from pipeline.preview.report import StackReport
from pipeline.preview.secret_forms import Scrubber
from policy.model import DEFAULT_PROD_STACKS

MARKER = "<!-- cv-platform:preview -->"
GITHUB_LIMIT = 65_536
# Room kept free under the limit for the shortening note and rounding.
_NOTE_RESERVE = 600
_MIN_DETAIL = 400
_MAX_DIAGNOSTIC = 2_000
_OP_LABEL = {
    "create": "create",
    "update": "update",
    "replace": "replace",
    "delete": "delete",
    "import": "import",
    "read": "read",
    "refresh": "refresh",
    "same": "unchanged",
}
_SEVERITY_ICON = {"error": "❌", "warning": "⚠️"}


# --- Markdown helpers ----------------------------------------------------------------------


def _code(text: str) -> str:
    """Inline code that survives backticks and table pipes."""
    text = text.replace("\n", " ").replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def _fence(body: str, lang: str) -> str:
    longest = max((len(run) for run in body.split("\n") if set(run) == {"`"}), default=0)
    ticks = "`" * max(3, longest + 1) if "```" in body else "```"
    return f"{ticks}{lang}\n{body}\n{ticks}"


def counts_line(counts: Mapping[str, int]) -> str:
    parts = [
        f"{counts.get('create', 0)} to create",
        f"{counts.get('update', 0)} to update",
        f"{counts.get('replace', 0)} to replace",
        f"{counts.get('delete', 0)} to delete",
        f"{counts.get('same', 0)} unchanged",
    ]
    extra = sorted(k for k, v in counts.items() if k not in COUNT_ORDER and v)
    parts.extend(f"{counts[k]} to {_OP_LABEL.get(k, k)}" for k in extra)
    return " · ".join(parts)


def _has_changes(report: StackReport) -> bool:
    return any(v for k, v in report.counts.items() if k != "same")


# --- sections: (text, is_detail) -----------------------------------------------------------


@dataclass
class _Detail:
    title: str
    body: str
    lang: str
    kept: int = -1  # characters of body kept; -1 = all, 0 = omitted


@dataclass
class _Table:
    header: list[str]
    rows: list[str]
    kept: int = -1  # rows kept; -1 = all

    def render(self) -> str:
        rows = self.rows if self.kept < 0 else self.rows[: self.kept]
        lines = [*self.header, *rows]
        if 0 <= self.kept < len(self.rows):
            more = len(self.rows) - self.kept
            lines.append(f"| … | {more} more not listed (comment size limit) | | |")
        return "\n".join(lines) + "\n"


@dataclass
class _Doc:
    parts: list[str | _Detail | _Table] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def table(self, header: list[str], rows: list[str]) -> None:
        self.parts.append(_Table(header, rows))

    def detail(self, title: str, body: str, lang: str) -> None:
        self.parts.append(_Detail(title, body, lang))


def _render_detail(d: _Detail) -> str:
    body = d.body
    if d.kept == 0:
        return ""
    suffix = ""
    if 0 < d.kept < len(body):
        cut = body.rfind("\n", 0, d.kept)
        cut = cut if cut > 0 else d.kept
        hidden = body[cut:].count("\n") + (0 if body.endswith("\n") else 1)
        body = body[:cut]
        suffix = f"\n\n_… {hidden} more lines not shown (comment size limit)._"
    return (
        f"<details><summary>{d.title}</summary>\n\n{_fence(body, d.lang)}{suffix}\n\n</details>\n"
    )


def _flags(reports: Sequence[StackReport], prod_stacks: Iterable[str]) -> list[str]:
    prod = set(prod_stacks)
    lines: list[str] = []
    for report in reports:
        if report.errors:
            lines.append(
                f"> [!CAUTION]\n> **{report.stack}**: the preview reported "
                f"{len(report.errors)} error(s); the changes below may be incomplete."
            )
        if report.stack not in prod:
            continue
        risky = [c for c in report.changes if c.op in ("replace", "delete")]
        if not risky:
            continue
        n_replace = sum(1 for c in risky if c.op == "replace")
        n_delete = len(risky) - n_replace
        head = (
            f"> [!WARNING]\n> **{report.stack}** (production): {n_replace} to replace, "
            f"{n_delete} to delete"
        )
        items = [
            f"> - **{c.op}** {_code(c.type)} {_code(c.name)}"
            + (f" (because of {', '.join(_code(w) for w in c.why[:5])})" if c.why else "")
            for c in risky
        ]
        lines.append("\n".join([head, *items]))
    return lines


def _violation_rows(report: StackReport) -> list[str]:
    policy = report.policy
    if policy is None:
        return []
    out: list[str] = []
    if policy.violations:
        mandatory = len(policy.mandatory)
        out.append(
            f"**Policy violations** ({len(policy.violations)}, {mandatory} mandatory; "
            f"rules from `policy/`):\n"
        )
        show_new = report.new_violations is not None
        header = "| Rule | Resource | Level | Problem |" + (" New |" if show_new else "")
        out.append(header)
        out.append("|---|---|---|---|" + ("---|" if show_new else ""))
        for v in policy.violations:
            where = f" in {_code(v.location)}" if v.location else ""
            row = (
                f"| {_code(v.policy)} | {_code(v.resource_type)} {_code(v.resource_name)}{where} "
                f"| {v.enforcement} | {_cell(v.message)} |"
            )
            if show_new:
                assert report.new_violations is not None
                row += " yes |" if v in report.new_violations else " no |"
            out.append(row)
        out.append("")
    else:
        out.append(
            f"**Policy**: no violations ({len(policy.policies)} rules, "
            f"{policy.resources_checked} resources checked).\n"
        )
    if policy.not_checked:
        grouped: dict[tuple[str, str], list[str]] = {}
        for nc in policy.not_checked:
            grouped.setdefault((nc.policy, nc.reason), []).append(nc.resource_name)
        for (rule, reason), names in sorted(grouped.items()):
            shown = ", ".join(_code(n) for n in names[:10])
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            out.append(f"- Not checked: {_code(rule)} for {shown}{more}: {reason}.")
        out.append("")
    return out


def _stack_section(doc: _Doc, report: StackReport) -> None:
    doc.add(f"### {_code(report.stack)}: {counts_line(report.counts)}\n\n_{report.source}_\n")
    for note in report.notes:
        doc.add(f"> {note}\n")
    if report.changes:
        rows = []
        for c in report.changes:
            why = ", ".join(_code(w) for w in c.why[:8])
            if len(c.why) > 8:
                why += f" and {len(c.why) - 8} more"
            rows.append(f"| {_code(c.type)} | {_code(c.name)} | {c.op} | {why} |")
        doc.table(["| Type | Name | Operation | Why |", "|---|---|---|---|"], rows)
    elif not _has_changes(report):
        doc.add("No changes.\n")
    shown = [d for d in report.diagnostics if d.severity in ("error", "warning")]
    if shown:
        lines = ["**Diagnostics**:\n"]
        for d in shown:
            msg = redact_free_text(d.message)
            if len(msg) > _MAX_DIAGNOSTIC:
                msg = msg[:_MAX_DIAGNOSTIC] + " …"
            where = f" ({_code(d.urn.rsplit('::', 1)[-1])})" if d.urn else ""
            body = msg.replace("\n", "\n  ")
            lines.append(f"- {_SEVERITY_ICON[d.severity]} **{d.severity}**{where}: {body}")
        doc.add("\n".join(lines) + "\n")
    violations = _violation_rows(report)
    if violations:
        doc.add("\n".join(violations))
    for c in report.changes:
        if c.detail:
            title = f"{c.op} <code>{_html(c.type)}</code> <code>{_html(c.name)}</code>"
            doc.detail(title, c.detail, c.detail_lang)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _size(text: str) -> int:
    # GitHub counts characters; UTF-8 bytes are never fewer, so this errs on the safe side.
    return len(text.encode("utf-8"))


def _fit(details: list[_Detail], budget: int) -> None:
    """Shorten detail bodies so their rendered size fits ``budget``: cap the longest first."""

    def total() -> int:
        return sum(_size(_render_detail(d)) + 2 for d in details)

    if total() <= budget:
        return
    lo, hi = _MIN_DETAIL, max((len(d.body) for d in details), default=0)
    best = -1
    while lo <= hi:
        cap = (lo + hi) // 2
        for d in details:
            d.kept = cap if len(d.body) > cap else -1
        if total() <= budget:
            best, lo = cap, cap + 1
        else:
            hi = cap - 1
    if best >= 0:
        for d in details:
            d.kept = best if len(d.body) > best else -1
        return
    # Even a minimal excerpt of each does not fit: keep short excerpts from the top, omit the rest.
    for d in details:
        d.kept = 0
    used = 0
    for d in details:
        d.kept = _MIN_DETAIL if len(d.body) > _MIN_DETAIL else -1
        size = _size(_render_detail(d)) + 2
        if used + size > budget:
            d.kept = 0
        else:
            used += size


def build_comment(
    reports: Sequence[StackReport],
    *,
    title: str = "Infrastructure preview",
    secret_values: Iterable[str] = (),
    prod_stacks: Iterable[str] = DEFAULT_PROD_STACKS,
    limit: int = GITHUB_LIMIT,
    rerun_hint: str = "python -m pipeline preview",
) -> str:
    """The whole comment. Known ``secret_values`` are replaced by ``[secret]`` everywhere."""
    secrets = tuple(secret_values)
    doc = _Doc()
    doc.add(f"{MARKER}\n## {title}\n")
    for flag in _flags(reports, prod_stacks):
        doc.add(flag + "\n")
    if not reports:
        doc.add("No stacks were previewed.\n")
    summary_rows = ["| Stack | Create | Update | Replace | Delete | Unchanged | Policy |"]
    summary_rows.append("|---|---|---|---|---|---|---|")
    for r in reports:
        pol = "n/a"
        if r.policy is not None:
            pol = f"{len(r.policy.violations)} violation(s)" if r.policy.violations else "ok"
        c = r.counts
        summary_rows.append(
            f"| {_code(r.stack)} | {c.get('create', 0)} | {c.get('update', 0)} "
            f"| {c.get('replace', 0)} | {c.get('delete', 0)} | {c.get('same', 0)} | {pol} |"
        )
    if reports:
        doc.add("\n".join(summary_rows) + "\n")
    for report in reports:
        _stack_section(doc, report)

    # Redact first: lengths are measured on what will be posted.
    scrub = Scrubber(secrets, MIN_SECRET_LENGTH)
    for i, part in enumerate(doc.parts):
        if isinstance(part, _Detail):
            part.body = scrub(part.body)
            part.title = scrub(part.title)
        elif isinstance(part, _Table):
            part.rows = [scrub(r) for r in part.rows]
        else:
            doc.parts[i] = scrub(part)
    fixed = sum(_size(p) + 2 for p in doc.parts if isinstance(p, str))
    room = limit - fixed - _NOTE_RESERVE
    if room < 0:
        raise PipelineError(
            f"the comment's counts, flags and findings alone are {fixed:,} characters, over "
            f"the {limit:,} limit: preview fewer stacks at a time"
        )
    tables = [p for p in doc.parts if isinstance(p, _Table)]
    unlisted = _fit_tables(tables, room)
    details = [p for p in doc.parts if isinstance(p, _Detail)]
    _fit(details, room - sum(_size(t.render()) + 2 for t in tables))

    truncated = sum(1 for d in details if 0 < d.kept < len(d.body))
    omitted = sum(1 for d in details if d.kept == 0)
    out = [
        p if isinstance(p, str) else p.render() if isinstance(p, _Table) else _render_detail(p)
        for p in doc.parts
    ]
    if truncated or omitted or unlisted:
        complete = (
            f"{unlisted} changed resource(s) are not listed in the tables; the counts are complete"
            if unlisted
            else "The counts and tables above are complete"
        )
        out.append(
            f"> [!NOTE]\n> Shortened to stay under GitHub's {limit:,}-character limit: "
            f"{truncated} detail section(s) truncated, {omitted} omitted. {complete}; run "
            f"`{rerun_hint}` for every detail."
        )
    text = "\n".join(p for p in out if p).rstrip("\n") + "\n"
    assert _size(text) <= limit, "the size budget is computed on the final parts"
    return text


def _fit_tables(tables: list[_Table], room: int) -> int:
    """Drop rows (largest table first) until the tables fit ``room``; return rows dropped.

    Only reached when the changed resources alone overflow the comment (thousands of them);
    the counts, flags and findings are never cut.
    """

    def total() -> int:
        return sum(_size(t.render()) + 2 for t in tables)

    # Keep some room for details, and for each table's "N more not listed" line.
    room -= _MIN_DETAIL + 100 * len(tables)
    current = total()
    kept = {id(t): len(t.rows) for t in tables}
    sizes = {id(t): [_size(r) + 1 for r in t.rows] for t in tables}
    dropped = 0
    while current > room and any(kept.values()):
        table = max(tables, key=lambda t: kept[id(t)])
        kept[id(table)] -= 1
        current -= sizes[id(table)][kept[id(table)]]
        dropped += 1
    for table in tables:
        if kept[id(table)] < len(table.rows):
            table.kept = kept[id(table)]
    return dropped
