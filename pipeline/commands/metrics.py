"""`pipeline metrics`: M_CI, M_CD and the DORA keys over a time window.

Reads the record store, computes with ``pipeline.metrics`` (pure), and prints a
table, JSON, Markdown or Prometheus text; optionally writes a weekly chart and
puts the figures to CloudWatch. matplotlib and boto3 are imported only when
asked for.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, UsageError
from pipeline.metrics import Metrics, compute, weekly
from pipeline.records import Records, Window, utc

DEFAULT_WINDOW = "30d"
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hdw])\s*$", re.IGNORECASE)
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_span(text: str) -> timedelta:
    match = _SPAN.match(text)
    if not match:
        raise UsageError(f"--window {text!r}: expected a number and h, d or w (e.g. 30d, 12w, 48h)")
    amount = float(match.group(1))
    if amount <= 0:
        raise UsageError(f"--window {text!r}: must be longer than zero")
    return amount * _UNIT[match.group(2).lower()]


def resolve_window(since: str | None, span: str | None, now: datetime) -> tuple[Window, list[str]]:
    """The window [since, now) and notes (e.g. a zone-less --since read as UTC)."""
    notes: list[str] = []
    until = utc(now)
    if since:
        try:
            raw = since.strip()
            parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in "Zz" else raw)
        except ValueError:
            raise UsageError(f"--since {since!r}: expected an ISO 8601 time") from None
        if parsed.tzinfo is None:
            notes.append(f"--since {since} has no time zone: read as UTC")
        start = utc(parsed)
        if start >= until:
            raise UsageError(f"--since {since}: is not in the past")
        return Window(start, until), notes
    return Window(until - parse_span(span or DEFAULT_WINDOW), until), notes


def load_records(store: Any, window: Window) -> Records:
    """Everything up to the window's end: earlier CI runs give deployments their
    commit time, so they are read even when they started before the window."""
    upto = Window(None, window.until)
    until = window.until
    return Records(
        ci_runs=tuple(store.ci_runs(upto)),
        deployments=tuple(store.deployments(None, upto)),
        rollbacks=tuple(r for r in store.rollbacks(None) if until is None or utc(r.at) < until),
    )


def run(args: argparse.Namespace) -> int:
    from pipeline.store import locate_project, open_store

    window, notes = resolve_window(args.since, args.window, datetime.now(UTC))
    # Refuse bad --plot / --push-cloudwatch values before anything is read or printed.
    plot = check_plot_path(Path(args.plot)) if args.plot else None
    namespace = check_namespace(args.push_cloudwatch) if args.push_cloudwatch else None
    stacks: list[str] = list(dict.fromkeys(args.stack or []))
    store = open_store(args.store, locate_project(args.project_dir, args.store), create=False)
    try:
        records = load_records(store, window)
    finally:
        store.close()
    recorded = {d.stack for d in records.deployments}
    notes += [
        f"no deployment of stack {s} is recorded (a typo?)" for s in stacks if s not in recorded
    ]
    metrics = compute(records, window, stacks, notes=notes)

    # Side effects first (the push is the one likely to fail), the report last:
    # a failed run prints one error line, not a report followed by an error.
    done: list[str] = []
    if namespace:
        count = push_cloudwatch(metrics, namespace)
        done.append(f"put {count} metric(s) to CloudWatch namespace {namespace}")
    if plot:
        assert window.since is not None
        assert window.until is not None
        write_plot(plot, weekly(records, window.since, window.until, stacks), metrics)
        done.append(f"wrote {plot}")

    fmt = args.format
    if fmt == "json":
        print(json.dumps(metrics.to_json(), indent=2))
    elif fmt == "markdown":
        print(render_markdown(metrics))
    elif fmt == "prometheus":
        print(render_prometheus(metrics), end="")
    else:
        print(render_table(metrics))
    for line in done:
        _say(fmt, line)
    return 0


def _say(fmt: str, line: str) -> None:
    # Machine formats keep stdout clean; progress goes to stderr there.
    import sys

    print(line, file=sys.stderr if fmt in ("json", "prometheus") else sys.stdout)


# -- text renderings -----------------------------------------------------------


def _num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _stack_label(metrics: Metrics) -> str:
    return ", ".join(metrics.stacks) if metrics.stacks else "all"


def _window_label(metrics: Metrics) -> str:
    def show(at: datetime | None) -> str:
        return "-" if at is None else utc(at).strftime("%Y-%m-%d %H:%M UTC")

    return f"{show(metrics.since)} .. {show(metrics.until)}"


def _rows(metrics: Metrics) -> list[tuple[str, str, str]]:
    m = metrics
    d = m.dora
    tiers = d.tiers()
    return [
        (
            "M_CI",
            _num(m.m_ci_minutes, 1, " min"),
            "(T_C + T_T + T_D) / 3",
        ),
        ("T_C build", _num(m.t_c_minutes, 1, " min"), f"mean over {m.ci_runs} CI run(s)"),
        ("T_T test", _num(m.t_t_minutes, 1, " min"), f"mean over {m.ci_runs} CI run(s)"),
        (
            "T_D deploy",
            _num(m.t_d_minutes, 1, " min"),
            f"mean over {m.deployments} deployment(s)",
        ),
        ("M_CD", _num(m.m_cd, 3), "P_T x P_D"),
        (
            "P_T",
            _num(m.p_t, 3),
            f"{m.passed} passed, {m.failed} failed, {m.errors} errors ({m.skipped} skipped)",
        ),
        (
            "P_D",
            _num(m.p_d, 3),
            f"{m.deployments_succeeded} succeeded, {m.deployments_failed} failed",
        ),
        (
            "deployment frequency",
            _num(d.deployment_frequency_per_week, 2, " /week"),
            tiers["deployment_frequency"] or "",
        ),
        (
            "lead time for changes",
            _num(d.lead_time_hours, 1, " h"),
            _tier_detail(
                tiers["lead_time"],
                f"median of {d.lead_time_samples}"
                if d.lead_time_samples
                else "no commit time known for a successful deployment"
                if d.deployments
                else "no deployment",
            ),
        ),
        (
            "change failure rate",
            _pct(d.change_failure_rate),
            _tier_detail(
                tiers["change_failure_rate"],
                f"{d.failed_changes} of {d.deployments} deployment(s)",
            ),
        ),
        (
            "recovery time",
            _num(d.recovery_time_hours, 1, " h"),
            _tier_detail(
                tiers["recovery_time"],
                (
                    f"median of {d.recoveries}"
                    if d.recoveries or d.failed_changes
                    else "no failed change"
                    if d.deployments
                    else "no deployment"
                )
                + (f", {d.unrecovered} not yet recovered" if d.unrecovered else ""),
            ),
        ),
    ]


def _tier_detail(tier: str | None, detail: str) -> str:
    return f"{tier} ({detail})" if tier else detail


def render_table(metrics: Metrics) -> str:
    lines = [
        f"Delivery metrics {_window_label(metrics)} (stacks: {_stack_label(metrics)}; "
        f"DORA over {', '.join(metrics.dora.stacks) or 'none'})"
    ]
    rows = _rows(metrics)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for i, (name, value, detail) in enumerate(rows):
        if i == 7:
            lines.append("DORA (2023 definitions)")
        lines.append(f"  {name.ljust(width)}  {value.rjust(value_width)}  {detail}".rstrip())
    lines.extend(f"warning: {w}" for w in metrics.warnings)
    lines.extend(f"note: {n}" for n in metrics.notes)
    return "\n".join(lines)


def render_markdown(metrics: Metrics) -> str:
    lines = [
        f"### Delivery metrics, {_window_label(metrics)}",
        "",
        f"Stacks: {_stack_label(metrics)}; DORA over {', '.join(metrics.dora.stacks) or 'none'}.",
        "",
        "| metric | value | detail |",
        "|---|---:|---|",
    ]
    for name, value, detail in _rows(metrics):
        cells = (c.replace("|", "\\|") for c in (name, value, detail))
        lines.append("| " + " | ".join(cells) + " |")
    for w in metrics.warnings:
        lines.append(f"\n> warning: {w}")
    for n in metrics.notes:
        lines.append(f"\n> note: {n}")
    return "\n".join(lines)


# -- Prometheus ----------------------------------------------------------------

PROMETHEUS_PREFIX = "cvplatform"


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in pairs.items()) + "}"


def render_prometheus(metrics: Metrics) -> str:
    """Text exposition format 0.0.4; metrics with no data are left out (never NaN)."""
    out: list[str] = []
    scope = {"stacks": _stack_label(metrics)}
    dora_scope = {"stacks": ", ".join(metrics.dora.stacks) or "none"}

    def family(
        name: str,
        kind: str,
        help_text: str,
        samples: Sequence[tuple[dict[str, str], float | None]],
    ) -> None:
        present = [(labels, value) for labels, value in samples if value is not None]
        if not present:
            return
        # Text format 0.0.4: a counter is declared and sampled under its _total name.
        full = f"{PROMETHEUS_PREFIX}_{name}" + ("_total" if kind == "counter" else "")
        out.append(f"# HELP {full} {help_text}")
        out.append(f"# TYPE {full} {kind}")
        for labels, value in present:
            out.append(f"{full}{_labels(labels)} {float(value)!r}")

    def seconds(minutes: float | None) -> float | None:
        return None if minutes is None else minutes * 60

    def hours_to_s(hours: float | None) -> float | None:
        return None if hours is None else hours * 3600

    m = metrics
    d = m.dora
    family(
        "m_ci_seconds", "gauge", "M_CI = (T_C + T_T + T_D) / 3", [(scope, seconds(m.m_ci_minutes))]
    )
    family(
        "ci_build_time_seconds",
        "gauge",
        "T_C: mean build time of the window's CI runs",
        [(scope, seconds(m.t_c_minutes))],
    )
    family(
        "ci_test_time_seconds",
        "gauge",
        "T_T: mean test time of the window's CI runs",
        [(scope, seconds(m.t_t_minutes))],
    )
    family(
        "deploy_time_seconds",
        "gauge",
        "T_D: mean duration of the window's deployments",
        [(scope, seconds(m.t_d_minutes))],
    )
    family("m_cd_ratio", "gauge", "M_CD = P_T * P_D (0..1)", [(scope, m.m_cd)])
    family(
        "test_pass_ratio",
        "gauge",
        "P_T = passed / (passed + failed + errors) (0..1)",
        [(scope, m.p_t)],
    )
    family(
        "deploy_success_ratio",
        "gauge",
        "P_D = succeeded / (succeeded + failed) (0..1)",
        [(scope, m.p_d)],
    )
    family("window_ci_runs", "gauge", "CI runs in the window", [(scope, float(m.ci_runs))])
    family(
        "window_deployments", "gauge", "deployments in the window", [(scope, float(m.deployments))]
    )
    family(
        "window_tests",
        "gauge",
        "test results summed over the window's CI runs",
        [
            ({**scope, "result": "passed"}, float(m.passed)),
            ({**scope, "result": "failed"}, float(m.failed)),
            ({**scope, "result": "error"}, float(m.errors)),
            ({**scope, "result": "skipped"}, float(m.skipped)),
        ],
    )
    family(
        "dora_deployment_frequency_per_week",
        "gauge",
        "DORA deployment frequency: successful deployments per week",
        [(dora_scope, d.deployment_frequency_per_week)],
    )
    family(
        "dora_lead_time_seconds",
        "gauge",
        "DORA lead time for changes: median commit -> deployed",
        [(dora_scope, hours_to_s(d.lead_time_hours))],
    )
    family(
        "dora_change_failure_ratio",
        "gauge",
        "DORA change failure rate (0..1)",
        [(dora_scope, d.change_failure_rate)],
    )
    family(
        "dora_recovery_time_seconds",
        "gauge",
        "DORA failed-deployment recovery time: median failure -> next success",
        [(dora_scope, hours_to_s(d.recovery_time_hours))],
    )
    family(
        "dora_tier",
        "gauge",
        "DORA 2023 performance level per key (1 for the level reached)",
        [
            ({**dora_scope, "key": key, "tier": tier}, 1.0)
            for key, tier in d.tiers().items()
            if tier is not None
        ],
    )
    family(
        "ci_runs",
        "counter",
        "CI runs recorded up to the window's end",
        [({}, float(m.totals.get("ci_runs", 0)))],
    )
    deploy_samples: list[tuple[dict[str, str], float | None]] = []
    for key, value in sorted(m.totals.items()):
        if key.startswith("deployments:"):
            _, stack, result = key.split(":", 2)
            deploy_samples.append(({"stack": stack, "result": result}, float(value)))
    family("deployments", "counter", "deployments recorded up to the window's end", deploy_samples)
    family(
        "rollbacks",
        "counter",
        "rollbacks recorded up to the window's end",
        [({}, float(m.totals.get("rollbacks", 0)))],
    )
    return "\n".join(out) + "\n"


# -- CloudWatch ----------------------------------------------------------------


def cloudwatch_data(metrics: Metrics) -> list[dict[str, Any]]:
    """``MetricData`` entries for ``put_metric_data``; no-data metrics are left out."""
    m = metrics
    d = m.dora
    stack = _stack_label(m)
    at = m.until or datetime.now(UTC)

    def minutes_to_s(value: float | None) -> float | None:
        return None if value is None else value * 60

    def hours_to_s(value: float | None) -> float | None:
        return None if value is None else value * 3600

    entries: list[tuple[str, float | None, str, str]] = [
        ("MCI", minutes_to_s(m.m_ci_minutes), "Seconds", stack),
        ("BuildTime", minutes_to_s(m.t_c_minutes), "Seconds", stack),
        ("TestTime", minutes_to_s(m.t_t_minutes), "Seconds", stack),
        ("DeployTime", minutes_to_s(m.t_d_minutes), "Seconds", stack),
        ("MCD", m.m_cd, "None", stack),
        ("TestPassRatio", m.p_t, "None", stack),
        ("DeploySuccessRatio", m.p_d, "None", stack),
        ("CIRuns", float(m.ci_runs), "Count", stack),
        ("Deployments", float(m.deployments), "Count", stack),
    ]
    dora_stack = ", ".join(d.stacks) or "none"
    entries += [
        ("DeploymentFrequencyPerWeek", d.deployment_frequency_per_week, "None", dora_stack),
        ("LeadTime", hours_to_s(d.lead_time_hours), "Seconds", dora_stack),
        ("ChangeFailureRate", d.change_failure_rate, "None", dora_stack),
        ("RecoveryTime", hours_to_s(d.recovery_time_hours), "Seconds", dora_stack),
    ]
    return [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "Stack", "Value": dim}],
            "Timestamp": at,
            "Value": float(value),
            "Unit": unit,
        }
        for name, value, unit, dim in entries
        if value is not None
    ]


def check_namespace(namespace: str) -> str:
    if not namespace or namespace.startswith("AWS/") or len(namespace) > 255:
        raise UsageError(
            f"--push-cloudwatch {namespace!r}: a namespace of your own (not AWS/...), 1-255 chars"
        )
    return namespace


def push_cloudwatch(
    metrics: Metrics,
    namespace: str,
    client_factory: Callable[[], Any] | None = None,
) -> int:
    """Put the metrics to CloudWatch (credentials and region from the environment)."""
    check_namespace(namespace)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    data = cloudwatch_data(metrics)
    if not data:
        return 0
    try:
        client: Any = client_factory() if client_factory else boto3.client("cloudwatch")
        for start in range(0, len(data), 20):
            client.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PipelineError(
            f"CloudWatch refused put_metric_data: {error.get('Code', 'error')}: "
            f"{error.get('Message', '')}".rstrip(": ")
        ) from None
    except BotoCoreError as exc:
        raise PipelineError(f"CloudWatch: {exc}") from None
    return len(data)


# -- chart ---------------------------------------------------------------------


PLOT_LABELLED_WEEKS = 13


def check_plot_path(path: Path) -> Path:
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot {path}: the chart is written as PNG; name it *.png")
    if not path.parent.is_dir():
        raise PipelineError(f"--plot {path}: directory {path.parent} does not exist")
    # matplotlib is the optional extra `plot`: only this option needs it.
    if importlib.util.find_spec("matplotlib") is None:
        raise PipelineError(
            "--plot needs matplotlib, which is not installed: run make setup, "
            "uv sync --extra plot, or pip install 'cv-platform[plot]'"
        )
    return path


def write_plot(path: Path, points: Sequence[Any], metrics: Metrics) -> None:
    """Three stacked panels per week: M_CI (minutes), M_CD (0..1), deployments."""
    check_plot_path(path)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = [p.start for p in points]
    # Points and bars sit mid-week, over the week they summarise.
    middles = [w + timedelta(days=3.5) for w in weeks]
    # Up to a quarter, every week carries its value; over longer windows only
    # the latest one does, and every n-th week is named, so labels never collide.
    every_week = len(points) <= PLOT_LABELLED_WEEKS
    fig, (ax_ci, ax_cd, ax_dep) = plt.subplots(
        3, 1, sharex=True, figsize=(10, 8), constrained_layout=True
    )
    fig.suptitle(
        f"Delivery metrics per week, stacks: {_stack_label(metrics)}\n{_window_label(metrics)}",
        fontsize=11,
    )

    def series(values: Sequence[float | None]) -> list[float]:
        return [float("nan") if v is None else v for v in values]  # gaps, not zeros

    def shown(values: Sequence[float | None]) -> set[int]:
        present = [i for i, v in enumerate(values) if v is not None]
        return set(range(len(values))) if every_week else set(present[-1:])

    def labelled_line(ax: Any, values: Sequence[float | None], color: str, fmt: str) -> None:
        ax.plot(middles, series(values), marker="o" if every_week else ".", color=color)
        label = shown(values)
        for i, (x, v) in enumerate(zip(middles, values, strict=True)):
            if i not in label:
                continue
            if v is None:
                # Said in the week's place, so a gap never reads as zero.
                ax.text(
                    x,
                    0.05,
                    "n/a",
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    fontsize=8,
                    color="grey",
                )
            else:
                ax.annotate(
                    format(v, fmt),
                    (x, v),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=8,
                    color=color,
                )

    def headline(ax: Any, text: str) -> None:
        ax.set_title(text, fontsize=10, loc="left")

    ci = [p.m_ci_minutes for p in points]
    labelled_line(ax_ci, ci, "tab:blue", ".1f")
    ax_ci.set_ylabel("minutes")
    top = max((v for v in ci if v is not None), default=0.0)
    ax_ci.set_ylim(0, top * 1.25 if top > 0 else 1)  # room for the labels above the points
    headline(ax_ci, f"M_CI = (T_C + T_T + T_D) / 3: {_num(metrics.m_ci_minutes, 1, ' min')}")
    ax_ci.set_title(
        "n/a: no data that week" if every_week else "gaps: weeks without data",
        fontsize=8,
        loc="right",
        color="grey",
    )
    ax_ci.grid(alpha=0.3)

    labelled_line(ax_cd, [p.m_cd for p in points], "tab:green", ".2f")
    ax_cd.set_ylabel("ratio (0..1)")
    ax_cd.set_ylim(0, 1.15)
    headline(ax_cd, f"M_CD = P_T x P_D: {_num(metrics.m_cd, 3)}")
    ax_cd.grid(alpha=0.3)

    ok = [p.deployments - p.deployments_failed for p in points]
    bad = [p.deployments_failed for p in points]
    ax_dep.bar(middles, ok, width=5, color="tab:green", label="succeeded")
    ax_dep.bar(middles, bad, width=5, bottom=ok, color="tab:red", label="failed")
    totals = [g + f for g, f in zip(ok, bad, strict=True)]
    label = shown([t or None for t in totals])
    for i, (x, good, failed) in enumerate(zip(middles, ok, bad, strict=True)):
        if good + failed and i in label:
            ax_dep.annotate(
                f"{good + failed}" + (f" ({failed} failed)" if failed else ""),
                (x, good + failed),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=8,
            )
    ax_dep.set_ylim(0, max(totals, default=0) * 1.2 + 1)
    ax_dep.set_ylabel("deployments")
    headline(
        ax_dep,
        f"deployments: {metrics.deployments} "
        f"({metrics.deployments_succeeded} succeeded, {metrics.deployments_failed} failed)",
    )
    # In the title row, right: never over a bar or its label.
    ax_dep.legend(loc="lower right", bbox_to_anchor=(1, 1), ncol=2, fontsize=8, frameon=False)
    ax_dep.grid(alpha=0.3, axis="y")
    named = weeks[:: -(-len(weeks) // PLOT_LABELLED_WEEKS) or 1]
    ax_dep.set_xticks(named, labels=[w.strftime("%Y-%m-%d") for w in named])
    ax_dep.set_xlabel("week starting (UTC)")
    fig.autofmt_xdate()

    # Written next to the target and renamed: never a half-written PNG.
    fd, tmp = tempfile.mkstemp(prefix=".plot-", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
