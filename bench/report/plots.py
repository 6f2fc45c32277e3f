"""The HTML report's figures (issue 18): matplotlib on the Agg canvas, written as PNG.

Every function draws one figure from plain numbers (the report gathers them from the run
folders, `bench.report.html`) and writes it atomically; nothing here reads a run. Figures are
made with ``matplotlib.figure.Figure`` directly (no pyplot, so no global state and no GUI
backend): PNG output goes through Agg.

- `metric_plot`: one column, every model's value with its 95% interval, the ground-truth row
  as a line with its band, the papers' reported values as diamonds (their own data).
- `blink_plot`: seed 003 Fig. 9 and 12 as distributions: blinks per second per clip and the
  duration of every blink, per model against the real videos.
- `offset_histograms`: the AV offset (frames) of each clip, one small histogram per row.
- `au_rates_plot`: per AU, the share of frames where it occurs, per model and on the real
  videos.
- `confusion_plot`: a confusion matrix (requested or true emotion x judged emotion).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DPI = 100
GT_COLOR = "#222222"
MODEL_COLOR = "#1f77b4"
BEST_COLOR = "#d62728"
REPORTED_COLOR = "#9467bd"


@dataclass(frozen=True)
class Point:
    """One value of a metric plot."""

    name: str
    value: float
    low: float | None = None
    high: float | None = None
    kind: str = "model"  # "model", "ground-truth" or "reported"
    best: bool = False  # the column's best model, or not significantly different from it


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save(fig, path: Path) -> Path:
    """Write ``fig`` as PNG at ``path`` through a temporary name unique to this call."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def metric_plot(path: Path, title: str, points: Sequence[Point]) -> Path:
    """One row per model and reported value (top to bottom in the order given), a dot with its
    interval; the ground-truth point is a vertical line with its interval as a band. Models
    marked ``best`` are red. Non-finite values are left out (listed under the axis)."""
    shown = [p for p in points if p.kind != "ground-truth" and _finite(p.value)]
    missing = [p.name for p in points if p.kind != "ground-truth" and not _finite(p.value)]
    truth = next((p for p in points if p.kind == "ground-truth" and _finite(p.value)), None)
    fig = _figure(7.5, 0.9 + 0.32 * max(len(shown), 1))
    ax = fig.subplots()
    for i, p in enumerate(shown):
        y = len(shown) - 1 - i
        color = REPORTED_COLOR if p.kind == "reported" else (
            BEST_COLOR if p.best else MODEL_COLOR)
        marker = "D" if p.kind == "reported" else "o"
        if _finite(p.low) and _finite(p.high):
            ax.errorbar([p.value], [y], xerr=[[p.value - p.low], [p.high - p.value]],
                        fmt=marker, color=color, capsize=3, markersize=5)
        else:
            ax.plot([p.value], [y], marker, color=color, markersize=5)
    if truth is not None:
        ax.axvline(truth.value, color=GT_COLOR, linestyle="--", linewidth=1,
                   label="ground truth (real videos)")
        if _finite(truth.low) and _finite(truth.high):
            ax.axvspan(truth.low, truth.high, color=GT_COLOR, alpha=0.12)
        ax.legend(loc="best", fontsize=7)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([p.name for p in reversed(shown)], fontsize=8)
    ax.set_ylim(-0.7, max(len(shown), 1) - 0.3)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if missing:
        ax.set_xlabel("no value: " + ", ".join(missing), fontsize=7)
    if not shown and truth is None:
        ax.text(0.5, 0.5, "no value to plot", ha="center", va="center",
                transform=ax.transAxes)
    return save(fig, path)


def _box(ax, data: Mapping[str, Sequence[float]], title: str, unit: str) -> None:
    names = list(data)
    arrays = [np.asarray(data[n], dtype=np.float64) for n in names]
    for i, values in enumerate(arrays):
        values = values[np.isfinite(values)]
        if values.size:
            ax.boxplot([values], positions=[i], widths=0.5, showfliers=False,
                       **_horizontal())
            jitter = np.random.default_rng(i).uniform(-0.15, 0.15, values.size)
            color = GT_COLOR if names[i] == "ground truth" else MODEL_COLOR
            ax.plot(values, i + jitter, ".", color=color, alpha=0.6, markersize=4)
        else:
            ax.text(0.01, i, "none", va="center", fontsize=7, color="grey",
                    transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel(unit, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def blink_plot(path: Path, rates: Mapping[str, Sequence[float]],
               durations: Mapping[str, Sequence[float]]) -> Path:
    """Seed 003 Fig. 9 and 12 as distributions: left, blinks per second of each clip; right,
    the duration of every blink found (all clips pooled); one row per name (the ground
    truth first when given so)."""
    fig = _figure(9.5, 1.0 + 0.35 * max(len(rates), len(durations), 1))
    left, right = fig.subplots(1, 2)
    _box(left, rates, "blinks per second (one dot per clip)", "blinks / s")
    _box(right, durations, "blink duration (one dot per blink)", "seconds")
    return save(fig, path)


def offset_histograms(path: Path, offsets: Mapping[str, Sequence[float]],
                      limit: int = 15) -> Path:
    """One histogram per name of the clips' AV offsets (frames, -limit..limit): where the
    SyncNet judge finds the audio best aligned with the mouth; the real videos sit at 0."""
    names = list(offsets)
    cols = min(4, max(len(names), 1))
    rows = max(1, math.ceil(len(names) / cols))
    fig = _figure(2.4 * cols + 0.5, 1.9 * rows + 0.3)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    bins = np.arange(-limit - 0.5, limit + 1.5, 1.0)
    for ax, name in zip(axes, names, strict=False):
        values = np.clip(np.asarray(offsets[name], dtype=np.float64), -limit, limit)
        values = values[np.isfinite(values)]
        ax.hist(values, bins=bins, color=GT_COLOR if name == "ground truth" else MODEL_COLOR)
        ax.axvline(0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{name} ({values.size} clips)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.supxlabel("AV offset (frames)", fontsize=8)
    return save(fig, path)


def au_rates_plot(path: Path, aus: Sequence[str], rates: Mapping[str, Sequence[float]]
                  ) -> Path:
    """Grouped bars: per AU (x), the share of frames where it occurs, one bar per name (the
    real videos' bars dark)."""
    names = list(rates)
    fig = _figure(max(6.0, 1.3 * len(aus) + 2.0), 3.2)
    ax = fig.subplots()
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(aus))
    cmap = _colors(len(names))
    for i, name in enumerate(names):
        color = GT_COLOR if name == "ground truth" else cmap[i]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, rates[name], width, label=name,
               color=color)
    ax.set_xticks(x)
    ax.set_xticklabels(aus)
    ax.set_ylabel("share of frames with the AU")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncols=min(4, max(len(names), 1)), loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)


def confusion_plot(path: Path, labels: Sequence[str], matrix: Sequence[Sequence[float]],
                   title: str, rows: str = "true", columns: str = "judged") -> Path:
    """A confusion matrix with its counts written in the cells."""
    counts = np.asarray(matrix, dtype=np.float64)
    fig = _figure(4.2, 3.8)
    ax = fig.subplots()
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=8,
                color="white" if value > counts.max() / 2 else "black")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(columns, fontsize=8)
    ax.set_ylabel(rows, fontsize=8)
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def _horizontal() -> dict:
    """Horizontal boxes: ``orientation`` from matplotlib 3.10 (``vert`` is deprecated)."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]
