"""The table as a reader sees it, shared by the terminal and Markdown: headers and cell text.

Measured cells read "51.4 ms [50.9, 52.0]" (median of trial means, 95% interval); paper
cells are labelled "paper" and carry their version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mnv3bench.bench.supported import supported_ci
from mnv3bench.tables.paper import EARLY
from mnv3bench.tables.result import (
    HSWISH_OP_TYPES,
    Cell,
    PaperComparison,
    TableResult,
    TableRow,
    VariantBlocks,
    hswish_op_ms,
)

MISSING = "—"


@dataclass(frozen=True)
class Grid:
    """Column headers and one tuple of cell strings per row."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @classmethod
    def from_columns(cls, columns: list[tuple[str, list[str]]]) -> Grid:
        return cls(tuple(h for h, _ in columns), tuple(zip(*(cells for _, cells in columns))))


# -- numbers as text -------------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_latency(median: Any, ci_low: Any, ci_high: Any, n: Any = None, why_no_ci: str | None = None) -> str:
    """"51.4 ms [50.9, 52.0]"; without an interval "51.4 ms (n=2; a CI needs 3 trials)"."""
    if is_missing(median):
        return MISSING
    if is_missing(ci_low) or is_missing(ci_high):
        said = "; ".join(p for p in (None if is_missing(n) else f"n={int(n)}", why_no_ci) if p)
        return f"{_num(median)} ms ({said})" if said else f"{_num(median)} ms"
    return f"{_num(median)} ms [{_num(ci_low)}, {_num(ci_high)}]"


def cell_latency(cell: Cell | None) -> str:
    """"51.4 ms [50.9, 52.0]": a cell's median with its interval, or why it has none."""
    if cell is None:
        return MISSING
    interval = cell.interval()
    return format_latency(interval["median"], interval["ci_low"], interval["ci_high"], cell.summary.n,
                          supported_ci(cell.summary).reason)


def _pct(value: Any) -> str:
    return MISSING if is_missing(value) else f"{value:+.1f}%"


def _ratio(value: Any, low: Any = None, high: Any = None) -> str:
    if is_missing(value):
        return MISSING
    if is_missing(low) or is_missing(high):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _plain_num(value: Any, unit: str = "") -> str:
    return MISSING if is_missing(value) else f"{value:g}{unit}"


# -- the main table ------------------------------------------------------------------------


def table_grid(result: TableResult) -> Grid:
    """The table, one column per displayed quantity, paper columns labelled."""
    defn = result.definition
    rows = result.table_rows
    columns: list[tuple[str, list[str]]] = [("Row", [r.label for r in rows])]
    if defn.shows_top1:
        columns.append(("Top-1 % (paper)", [_plain_num(r.paper.top1) for r in rows]))
    if any(r.counted is not None for r in rows):
        columns.append(("MAdds (counted)", [_plain_num(round(r.counted.madds_m, 1), "M") if r.counted else MISSING for r in rows]))
        changes = [r.counted.madds_change_m if r.counted else None for r in rows]
        if any(not is_missing(v) for v in changes):
            columns.append(("ΔMAdds", [MISSING if is_missing(v) else f"{v:+.1f}M" for v in changes]))
    device = result.device
    columns.append((f"{'opt' if defn.has_noopt else 'latency'} ({device})", [cell_latency(r.opt) for r in rows]))
    columns.append(("Δ opt", [_pct(r.opt_change_pct) for r in rows]))
    if defn.has_noopt:
        columns.append((f"no-opt ({device})", [_noopt_cell(r) for r in rows]))
        columns.append(("Δ no-opt", [_pct(r.noopt_change_pct) for r in rows]))
    if result.has_paper_latencies():
        for col in result.paper_columns:
            columns.append((f"paper {col} ms", [_paper_latency(r, col) for r in rows]))
            if defn.has_noopt:
                columns.append((f"paper {col} no-opt ms", [_plain_num(r.paper.noopt_ms.get(col)) for r in rows]))
    if defn.counts_madds and defn.per_device_column:
        columns.append(("paper MAdds", [_plain_num(r.paper.madds_m, "M") for r in rows]))
    columns.append((f"paper Δ ({result.agreement_column})", [_paper_change(r) for r in rows]))
    columns.append(("paper version", [r.paper.version or MISSING for r in rows]))
    return Grid.from_columns(columns)


def _noopt_cell(row: TableRow) -> str:
    text = cell_latency(row.noopt)
    return f"{text} (= opt, no h-swish)" if row.definition.noopt_is_opt and text != MISSING else text


def _paper_latency(row: TableRow, col: str) -> str:
    early = row.paper.early_ms.get(col)
    if early is None:
        return _plain_num(row.paper.latency_ms.get(col))
    ref = row.paper.early_reference_ms.get(col)
    return f"{early:g} (early; V3 {ref:g} there)" if not is_missing(ref) else f"{early:g} (early)"


def _paper_change(row: TableRow) -> str:
    printed = row.paper.change_printed
    text = printed if printed is not None else _pct(row.paper.change_pct)
    if row.definition.paper is not None and row.definition.paper.version == EARLY and text != MISSING:
        text += " (early)"
    early = row.definition.paper_early
    if early is not None and early.printed_change:
        text += f"; early: {early.printed_change}"
    return text


def warning_lines(result: TableResult) -> list[str]:
    """Each variant's warnings, "variant: what was seen. What to do.", in table order."""
    return [f"{variant}: {text}" for variant, texts in result.warnings.items() for text in texts]


# -- agreement and op profile ----------------------------------------------------------------

AGREEMENT_HEADERS = ("Comparison", "measured ratio [95% CI]", "paper ratio", "measured", "paper", "verdict",
                     "method")


def agreement_grid(result: TableResult) -> Grid:
    return Grid(
        AGREEMENT_HEADERS,
        tuple(
            (
                c.comparison,
                _ratio(c.measured_ratio, c.measured_ratio_ci_low, c.measured_ratio_ci_high),
                MISSING if is_missing(c.paper_ratio) else f"{c.paper_ratio:.3f} ({c.paper_version})",
                c.measured_direction or MISSING,
                c.paper_direction or MISSING,
                c.verdict,
                _method(c),
            )
            for c in result.comparisons
        ),
    )


def op_block_grid(result: TableResult) -> Grid | None:
    """Per variant: op time, the stem's and the last stage's share of it (§5.1), and the time
    in HARD_SWISH vs the ADD/MUL/RELU6 that spell it in no-opt (§5.2); None without data."""
    if not result.op_blocks:
        return None

    def block(v: VariantBlocks, name: str) -> str:
        found = v.block_ms(name)
        return "-" if found is None else f"{found[0]:.3f} ({found[1]:.1%})"

    def share(ms: float, total: float) -> str:
        return f"{ms:.3f} ({ms / total:.1%})" if total > 0 else f"{ms:.3f}"

    return Grid(
        ("variant", "trials", "op ms", "stem", "last stage", "HARD_SWISH", "ADD/MUL/RELU6 (h-swish)", "unattributed"),
        tuple((v.variant, str(v.trials), f"{v.total_ms:.3f}", block(v, "stem"), block(v, "last stage"),
               share(v.hswish_ms, v.total_ms), share(v.hswish_replacement_ms, v.total_ms),
               f"{v.unattributed_share:.1%}") for v in result.op_blocks),
    )


def _method(c: PaperComparison) -> str:
    """"paired, 8 rounds, ±1.2%": how the ratio was estimated and the precision it reached."""
    if c.method is None:
        return MISSING
    text = f"{c.method}, {c.rounds} rounds" if c.method == "paired" else c.method
    return text + ("" if c.precision is None else f", ±{c.precision:.1%}")


def agreement_title(result: TableResult) -> str:
    """The agreement summary's headline: resolved agreements, disagreements, unresolved."""
    agree, judged = result.agreement_counts()
    # The directions alone, resolved or not, are context, never a count of agreements.
    return f"{result.verdict_counts().headline()} ({agree} of {judged} point the paper's way, resolved or not)"


def op_profile_grid(result: TableResult) -> Grid | None:
    """ms in the h-swish op and the ops that replace it, per variant; None without op profile data."""
    if result.op_times is None:
        return None
    return Grid(
        ("variant", *(f"{op} ms" for op in HSWISH_OP_TYPES)),
        tuple((variant, *(f"{ms[op]:.3f}" for op in HSWISH_OP_TYPES)) for variant, ms in hswish_op_ms(result.op_times)),
    )
