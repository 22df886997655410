"""``metrics``: M_CI, M_CD and the DORA keys over a time window.

Reads the record store, computes with ``pipeline.metrics.compute`` (pure), and
prints one of the report formats (``pipeline.metrics.report`` for table and
Markdown, ``pipeline.metrics.prometheus``, or JSON); optionally writes a weekly
chart (``pipeline.metrics.plot``) and puts the figures to CloudWatch
(``pipeline.metrics.cloudwatch``). matplotlib and boto3 load only when asked for.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.commands.options import ISO, examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime, timedelta
    from typing import Literal

    from pipeline.commands.adapters import Adapters
    from pipeline.metrics.by_model import ModelFigures
    from pipeline.metrics.compute import Metrics
    from pipeline.records.model import Records, Window
    from pipeline.records.stores import Store

DEFAULT_WINDOW = "30d"
# The longest --window: 100 years (a longer one is "everything": --since says so).
MAX_WINDOW_DAYS = 36_525
FORMATS: tuple[MetricsFormat, ...] = ("table", "json", "markdown", "prometheus")
if TYPE_CHECKING:
    MetricsFormat = Literal["table", "json", "markdown", "prometheus"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "M_CI = (T_C + T_T + T_D) / 3 in minutes; M_CD = P_T x P_D; plus the DORA keys "
        "(2023 definitions) over prod, from the record store, for a window up to now. "
        "No data is n/a, never 0."
    )
    parser.epilog = examples(
        "metrics --stack prod --window 30d",
        "metrics --since 2026-01-01T00:00:00Z --format json",
        "metrics --format prometheus > /var/lib/node_exporter/cv-platform.prom",
        "metrics --stack prod --plot weekly.png --push-cloudwatch CvPlatform/Delivery",
        "metrics --stack prod --by-model",
    )
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="S",
        help="measure this stack; repeat for more (default: every stack; DORA over prod)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--since", metavar="ISO", help=f"window start, up to now ({ISO})")
    group.add_argument("--window", metavar="SPAN", help="e.g. 30d, 12w, 48h (default 30d)")
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default table)"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="write a weekly chart")
    parser.add_argument(
        "--push-cloudwatch", metavar="NAMESPACE", help="put the metrics to CloudWatch"
    )
    parser.add_argument(
        "--by-model",
        action="store_true",
        help="also break M_CD down per model version (from the images' model cards; "
        "table, markdown and json)",
    )


def parse_span(text: str) -> timedelta:
    import re
    from datetime import timedelta

    from pipeline.errors import UsageError

    units = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
    match = re.match(r"^\s*(\d{1,20}(?:\.\d{1,20})?)\s*([hdw])\s*$", text, re.IGNORECASE)
    if not match:
        raise UsageError(f"--window {text!r}: expected a number and h, d or w (e.g. 30d, 12w, 48h)")
    amount = float(match.group(1))
    if amount <= 0:
        raise UsageError(f"--window {text!r}: must be longer than zero")
    unit = units[match.group(2).lower()]
    if amount * unit.total_seconds() > MAX_WINDOW_DAYS * 86_400:
        raise UsageError(
            f"--window {text!r}: longer than {MAX_WINDOW_DAYS // 365} years, the longest window "
            "(use --since for a start date)"
        )
    return amount * unit


def resolve_window(since: str | None, span: str | None, now: datetime) -> tuple[Window, list[str]]:
    """The window [since, now) and notes (e.g. a zone-less --since read as UTC)."""
    from pipeline.errors import UsageError
    from pipeline.records.model import Window, read_time, time_problem, utc, zone_note

    notes: list[str] = []
    until = utc(now)
    if since:
        try:
            start, zone_less = read_time(since)
        except ValueError as exc:
            raise UsageError(time_problem("--since", since, exc)) from None
        if zone_less:
            notes.append(zone_note(f"--since {since}"))
        if start >= until:
            raise UsageError(f"--since {since}: is not in the past")
        return Window(start, until), notes
    span_length = parse_span(span or DEFAULT_WINDOW)
    try:
        return Window(until - span_length, until), notes
    except OverflowError:  # a window reaching before year 1
        raise UsageError(f"--window {span}: reaches before the calendar's start") from None


def load_records(store: Store, window: Window) -> Records:
    """Everything up to the window's end: earlier CI runs give deployments their
    commit time, so they are read even when they started before the window."""
    from pipeline.records.model import Records, Window, utc

    upto = Window(None, window.until)
    until = window.until
    return Records(
        ci_runs=tuple(store.ci_runs(upto)),
        deployments=tuple(store.deployments(None, upto)),
        rollbacks=tuple(r for r in store.rollbacks(None) if until is None or utc(r.at) < until),
        model_cards=tuple(store.model_cards()),
        verifications=tuple(
            v for v in store.verifications(None) if until is None or utc(v.until) <= until
        ),
    )


def render(
    metrics: Metrics, fmt: MetricsFormat, models: Sequence[ModelFigures] | None = None
) -> str:
    """The report in ``fmt``, ending with a line break; ``models``: the per-model breakdown."""
    if fmt == "json":
        import json

        data = metrics.to_json()
        if models is not None:
            data["by_model"] = [row.to_json() for row in models]
        return json.dumps(data, indent=2) + "\n"
    if fmt == "prometheus":
        from pipeline.metrics.prometheus import render_prometheus

        return render_prometheus(metrics)
    from pipeline.metrics.by_model import render_by_model
    from pipeline.metrics.report import render_markdown, render_table

    markdown = fmt == "markdown"
    text = render_markdown(metrics) if markdown else render_table(metrics)
    if models is not None:
        text += "\n" + render_by_model(models, markdown=markdown)
    return text + "\n"


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from pathlib import Path

    from pipeline.errors import UsageError
    from pipeline.metrics.compute import compute, weekly
    from pipeline.project import locate_project

    if args.by_model and args.format == "prometheus":
        raise UsageError("--by-model: the Prometheus format has no per-model breakdown")
    window, notes = resolve_window(args.since, args.window, adapters.now())
    # Refuse bad --plot / --push-cloudwatch values before anything is read or printed.
    plot = namespace = None
    if args.plot:
        from pipeline.metrics.plot import check_plot_path

        plot = check_plot_path(Path(args.plot))
    if args.push_cloudwatch:
        from pipeline.metrics.cloudwatch import check_namespace

        namespace = check_namespace(args.push_cloudwatch)
    stacks: list[str] = list(dict.fromkeys(args.stack or []))
    project = locate_project(args.project_dir, args.store)
    store = adapters.open_store(args.store, project, create=False, readonly=True)
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
        from pipeline.metrics.cloudwatch import push_cloudwatch

        count = push_cloudwatch(metrics, namespace, adapters.cloudwatch)
        done.append(f"put {count} metric(s) to CloudWatch namespace {namespace}")
    if plot:
        from pipeline.metrics.plot import write_plot

        assert window.since is not None
        assert window.until is not None
        write_plot(plot, weekly(records, window.since, window.until, stacks), metrics)
        done.append(f"wrote {plot}")
    models = None
    if args.by_model:
        from pipeline.metrics.by_model import by_model

        models = by_model(records, window, stacks)
    sys.stdout.write(render(metrics, args.format, models))
    # Machine formats keep stdout clean; progress goes to stderr there.
    progress = sys.stderr if args.format in ("json", "prometheus") else sys.stdout
    for line in done:
        print(line, file=progress)
    return 0
