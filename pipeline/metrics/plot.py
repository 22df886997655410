"""A weekly chart of the metrics as a PNG: M_CI, M_CD and deployments per week.

matplotlib is imported only here, with the Agg backend (no display needed). The
file is written beside its target and renamed, so a reader never sees half a PNG.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, UsageError
from pipeline.metrics.compute import Metrics
from pipeline.metrics.report import number, stack_label, window_label

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
        f"Delivery metrics per week, stacks: {stack_label(metrics)}\n{window_label(metrics)}",
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
    headline(ax_ci, f"M_CI = (T_C + T_T + T_D) / 3: {number(metrics.m_ci_minutes, 1, ' min')}")
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
    headline(ax_cd, f"M_CD = P_T x P_D: {number(metrics.m_cd, 3)}")
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
