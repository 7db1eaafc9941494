"""The table as PNG plots: latency per row with 95% intervals, and measured vs paper change.

matplotlib with the Agg backend: files only, no display needed (CI, ssh, the emulator).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from mnv3bench.tables.result import Cell, TableResult  # noqa: E402


def _value(v: float | None) -> float:
    return math.nan if v is None or math.isnan(v) else float(v)


def _errors(medians: list[float], lows: list[float], highs: list[float]) -> np.ndarray:
    lo = [m - l if not math.isnan(l) else 0.0 for m, l in zip(medians, lows)]
    hi = [h - m if not math.isnan(h) else 0.0 for m, h in zip(medians, highs)]
    return np.nan_to_num(np.array([lo, hi]))


def _interval(cells: list[Cell | None]) -> tuple[list[float], list[float], list[float]]:
    """Medians, interval lows and highs, NaN where not measured."""
    summaries = [c.summary if c is not None else None for c in cells]
    return (
        [_value(s.median if s else None) for s in summaries],
        [_value(s.ci_low if s else None) for s in summaries],
        [_value(s.ci_high if s else None) for s in summaries],
    )


def plot_latency(result: TableResult, path: Path) -> Path:
    """Median latency per row (opt, and no-opt where the table has it) with interval bars."""
    rows = result.table_rows
    labels = [r.label for r in rows]
    x = np.arange(len(labels))
    series = [([r.opt for r in rows], "opt (fused h-swish)" if result.definition.has_noopt else "latency")]
    if result.definition.has_noopt:
        series.append(([r.noopt for r in rows], "no-opt (h-swish from ADD/MUL)"))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(labels) + 2), 4), dpi=100)
    try:
        for i, (cells, name) in enumerate(series):
            med, low, high = _interval(cells)
            err = _errors(med, low, high)
            ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(med), width, yerr=err, capsize=4, label=name)
        ax.set_xticks(x, labels, rotation=15)
        ax.set_ylabel(f"latency, ms (median, 95% CI) on {result.device}")
        ax.set_title(result.definition.title, fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def plot_change(result: TableResult, path: Path) -> Path:
    """Change relative to each row's reference row: measured (opt) beside the paper's."""
    rows = [r for r in result.table_rows if r.definition.baseline is not None]
    labels = [f"{r.label} vs {r.definition.baseline}" for r in rows]
    measured = [_value(r.opt_change_pct) for r in rows]
    paper = [_value(r.paper.change_pct) for r in rows]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 * len(labels) + 2), 4), dpi=100)
    try:
        ax.bar(x - 0.2, np.nan_to_num(measured), 0.4, label=f"measured ({result.device})")
        ax.bar(x + 0.2, np.nan_to_num(paper), 0.4, label=f"paper ({result.agreement_column})")
        for xi, (m, p) in enumerate(zip(measured, paper)):
            if math.isnan(p):
                ax.annotate("no paper value", (xi + 0.2, 0), ha="center", va="bottom", fontsize=7)
            if math.isnan(m):
                ax.annotate("not measured", (xi - 0.2, 0), ha="center", va="bottom", fontsize=7)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, labels, rotation=15, fontsize=8)
        ax.set_ylabel("latency change, %")
        ax.set_title(f"{result.definition.title}: measured vs paper change", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
