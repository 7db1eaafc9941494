"""A computed table as typed values: rows of cells, comparisons with the paper, notes.

compute.py makes a TableResult once; every exporter (terminal, Markdown, CSV, JSON, PNG)
reads it. Nothing here imports pandas: the DataFrame views (`rows`, `agreement`,
`op_profile`) are for users of the Python API and load pandas only when read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mnv3bench.tables.definitions import RowDef, TableDef

if TYPE_CHECKING:
    import pandas as pd

    from mnv3bench.bench.stats import Summary

# The h-swish op and the primitive ops that replace it when it is not fused.
HSWISH_OP_TYPES = ("HARD_SWISH", "ADD", "MUL")


def column_key(column: str) -> str:
    """"P-1" -> "p1", for JSON/CSV keys."""
    return column.lower().replace("-", "")


def to_plain(value: Any) -> Any:
    """NaN -> None and numpy scalars -> Python, for JSON."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


@dataclass
class Cell:
    """One measured latency: the summary of a variant's trial means (ms) and the trials used."""

    variant: str
    summary: Summary
    latencies_ms: list[float]
    trial_ids: list[int]
    # Each trial's round, (session_id, round_index), or None when it ran outside rounds:
    # what pairs it with another variant's trial (bench/paired.py).
    rounds: list[tuple[int, int] | None] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        """The half-width of the median's 95% CI relative to the median (0.02 = ±2%)."""
        return self.summary.half_width

    def interval(self) -> dict[str, float | None]:
        """Median and CI; the CI is None below the trials it needs (bench/supported.py)."""
        from mnv3bench.bench.supported import supported_ci

        ci = supported_ci(self.summary).value
        low, high = ci if isinstance(ci, tuple) else (None, None)
        return {"median": self.summary.median, "ci_low": low, "ci_high": high}


@dataclass(frozen=True)
class Counted:
    """Size counted from the architecture (no model built), in millions."""

    madds_m: float
    params_m: float
    madds_change_m: float | None  # vs the row's reference row; None for a reference row


@dataclass(frozen=True)
class PaperValues:
    """The paper's numbers for one row, as quoted beside the measurements.

    Latencies are per paper column shown ("P-1", ...). A final-version latency goes in
    latency_ms; an early-version one only in early_ms (with the early V3 in
    early_reference_ms), so the two scales never share a column.
    """

    version: str | None = None
    source: str | None = None
    top1: float | None = None
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    noopt_ms: dict[str, float | None] = field(default_factory=dict)  # tables with a no-opt column
    early_ms: dict[str, float] = field(default_factory=dict)
    early_reference_ms: dict[str, float | None] = field(default_factory=dict)
    madds_m: float | None = None  # table 3's printed MAdds and parameters
    params_m: float | None = None
    change_pct: float | None = None  # vs the row's reference row, within one version
    change_printed: str | None = None  # the paper's own words, e.g. "-7 ms (-11%), -30M MAdds"
    change_madds_m: float | None = None


@dataclass(frozen=True)
class TableRow:
    """One row of a table: its measured cells, their change against the reference row, the paper's."""

    definition: RowDef
    opt: Cell | None
    noopt: Cell | None  # None when not measured or the table has no no-opt column
    opt_change_pct: float | None
    noopt_change_pct: float | None
    counted: Counted | None
    paper: PaperValues

    @property
    def label(self) -> str:
        return self.definition.label


@dataclass(frozen=True)
class PaperComparison:
    """One measured ratio beside the paper's ratio for the same pair, and whether they agree."""

    comparison: str
    kind: str  # "row vs reference", "row vs reference (no-opt)", "no-opt vs opt"
    variant: str | None
    baseline_variant: str | None
    measured_ratio: float | None = None
    measured_ratio_ci_low: float | None = None
    measured_ratio_ci_high: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    measured_direction: str | None = None
    paper_ratio: float | None = None
    paper_direction: str | None = None
    paper_version: str | None = None
    agrees: bool | None = None  # the measured direction is the paper's (resolved or not; see resolved)
    verdict: str = "no paper value"  # "agrees", "disagrees", "not resolved at ±x%" (bench/verdict.py)
    method: str | None = None  # "paired" (within-round ratios) or "ratio of medians"
    precision: float | None = None  # the ratio CI's half-width relative to the ratio (0.02 = ±2%)
    rounds: int | None = None  # rounds that ran both variants
    resolved: bool | None = None  # the verdict is a direction (agrees/disagrees), not "not resolved"


@dataclass(frozen=True)
class VerdictCounts:
    """The agreement summary's headline."""

    agrees: int
    disagrees: int
    not_resolved: int

    def headline(self) -> str:
        return f"{self.agrees} agree, {self.disagrees} disagree, {self.not_resolved} not resolved"


@dataclass(frozen=True)
class OpTime:
    """Mean time of one op type in one variant, over the trials that profiled ops."""

    variant: str
    node_type: str
    avg_ms: float
    percent: float
    times_called: int | float | None
    trials: int
    hswish_related: bool


@dataclass(frozen=True)
class VariantBlocks:
    """One variant's op time by block (profile/blocks.py) and in h-swish's ops, per run."""

    variant: str
    trials: int
    total_ms: float  # sum of op times
    blocks: tuple[tuple[str, float, float], ...]  # (block, ms, share of total_ms), network order
    unattributed_share: float
    hswish_ms: float  # HARD_SWISH (XNNPACK: HardSwish)
    hswish_replacement_ms: float  # ADD/MUL/RELU6 in activation places: no-opt's h-swish

    def block_ms(self, name: str) -> tuple[float, float] | None:
        return next(((ms, share) for block, ms, share in self.blocks if block == name), None)


@dataclass
class TableResult:
    definition: TableDef
    device: str
    device_column: str  # the device profile's paper column ("" when none)
    paper_columns: tuple[str, ...]  # paper latency columns shown
    agreement_column: str  # paper column the ratios are compared with
    absolute_comparable: bool
    cells: dict[str, Cell]
    table_rows: list[TableRow]
    comparisons: list[PaperComparison]
    notes: list[str]
    missing: list[str]
    sessions: list[int]
    op_times: list[OpTime] | None = None  # None: op profiling not asked for, or no data (see note)
    op_profile_note: str | None = None
    op_blocks: list[VariantBlocks] | None = None  # with op_times: the same profiles, by block
    # Per variant: what makes its numbers less trustworthy, with advice (shown wherever they are).
    warnings: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # provenance: command, versions, timings
    precision_target: float | None = None  # --precision asked for (0.02 = ±2%); None: fixed trials
    precision_stopped: str | None = None  # why the rounds stopped: reached, max-time, max-trials

    @property
    def name(self) -> str:
        return self.definition.name

    def set_precision_target(self, target: float, stopped: str | None) -> None:
        """Record the --precision asked for, and add a note naming what did not reach it."""
        self.precision_target, self.precision_stopped = target, stopped
        missed = self.precision_missed()
        if missed:
            self.notes.append(f"Precision ±{target:.1%} not reached ({stopped}) by: {', '.join(missed)}.")
        else:
            self.notes.append(f"Precision ±{target:.1%} reached by every cell and comparison.")

    def precision_missed(self) -> list[str]:
        """Cells (variants) and comparisons whose interval is wider than the target."""
        target = self.precision_target
        if target is None:
            return []
        cells = [v for v, c in self.cells.items() if c.precision is None or c.precision > target]
        comparisons = [c.comparison for c in self.comparisons
                       if c.measured_ratio is not None and (c.precision is None or c.precision > target)]
        return cells + comparisons

    def trial_ids(self) -> dict[str, list[int]]:
        return {variant: cell.trial_ids for variant, cell in self.cells.items()}

    def n_trials(self) -> int:
        return sum(len(cell.trial_ids) for cell in self.cells.values())

    def has_paper_latencies(self) -> bool:
        """Whether the paper prints per-row latencies (Tables 3-5), not only a change."""
        return any(r.paper is not None and r.paper.latency_ms and r.paper.change_ms is None for r in self.definition.rows)

    def agreement_counts(self) -> tuple[int, int]:
        """(comparisons whose direction matches the paper's, comparisons with a paper value)."""
        judged = [c for c in self.comparisons if c.agrees is not None]
        return sum(1 for c in judged if c.agrees), len(judged)

    def verdict_counts(self) -> VerdictCounts:
        """Resolved agreements, resolved disagreements and unresolved, among comparisons with a paper value."""
        judged = [c for c in self.comparisons if c.agrees is not None]
        agree = sum(1 for c in judged if c.resolved and c.agrees)
        disagree = sum(1 for c in judged if c.resolved and not c.agrees)
        return VerdictCounts(agree, disagree, len(judged) - agree - disagree)

    # -- pandas views, for the Python API --------------------------------------------------

    @property
    def rows(self) -> pd.DataFrame:
        """One row per table row, the CSV's columns (see `row_records`)."""
        import pandas as pd

        return pd.DataFrame.from_records(row_records(self))

    @property
    def agreement(self) -> pd.DataFrame:
        """One row per comparison with the paper, the PaperComparison fields as columns."""
        import pandas as pd

        return pd.DataFrame.from_records([asdict(c) for c in self.comparisons])

    @property
    def op_profile(self) -> pd.DataFrame | None:
        import pandas as pd

        return None if self.op_times is None else pd.DataFrame.from_records([asdict(o) for o in self.op_times])


def row_records(result: TableResult) -> list[dict[str, Any]]:
    """Each row flattened to named columns: the CSV file and the `rows` DataFrame.

    Which columns appear follows the table: no-opt columns only where the table has them,
    Top-1 where it quotes it, counted MAdds where a counter was given, one paper latency
    column per paper column shown, early-version latencies in their own columns.
    """
    return [_record(result.definition, result.paper_columns, row) for row in result.table_rows]


def _record(defn: TableDef, columns: tuple[str, ...], row: TableRow) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "row": row.label,
        "variant_opt": row.definition.opt,
        "variant_noopt": row.definition.noopt,
        "noopt_is_opt": row.definition.noopt_is_opt,
        "baseline_row": row.definition.baseline,
    }
    for prefix, cell in (("opt", row.opt), ("noopt", row.noopt)):
        if prefix == "noopt" and not defn.has_noopt:
            continue
        s = cell.summary if cell else None
        interval = cell.interval() if cell else {}
        rec[f"{prefix}_median_ms"] = s.median if s else None
        rec[f"{prefix}_ci_low_ms"] = interval.get("ci_low")
        rec[f"{prefix}_ci_high_ms"] = interval.get("ci_high")
        rec[f"{prefix}_cv"] = _cv(s) if s else None
        rec[f"{prefix}_n"] = s.n if s else 0
    rec["opt_change_pct"] = row.opt_change_pct
    if defn.has_noopt:
        rec["noopt_change_pct"] = row.noopt_change_pct
    if row.counted is not None:
        rec["madds_m"] = row.counted.madds_m
        rec["params_m"] = row.counted.params_m
        rec["madds_change_m"] = row.counted.madds_change_m
    p = row.paper
    rec["paper_version"] = p.version
    rec["paper_source"] = p.source
    if defn.shows_top1:
        rec["paper_top1"] = p.top1
    for col in columns:
        key = column_key(col)
        rec[f"paper_{key}_ms"] = p.latency_ms.get(col)
        if defn.has_noopt:
            rec[f"paper_{key}_noopt_ms"] = p.noopt_ms.get(col)
    for col in columns:
        if col in p.early_ms:
            rec[f"paper_early_{column_key(col)}_ms"] = p.early_ms[col]
            rec[f"paper_early_{column_key(col)}_reference_ms"] = p.early_reference_ms.get(col)
    if defn.counts_madds and defn.per_device_column:
        rec["paper_madds_m"] = p.madds_m
        rec["paper_params_m"] = p.params_m
    rec["paper_change_pct"] = p.change_pct
    rec["paper_change_printed"] = p.change_printed
    if p.change_madds_m is not None:
        rec["paper_change_madds_m"] = p.change_madds_m
    return rec


def _cv(summary: Summary) -> float | None:
    from mnv3bench.bench.supported import supported_cv

    value = supported_cv(summary).value
    return value if isinstance(value, float) else None


def hswish_op_ms(op_times: list[OpTime]) -> list[tuple[str, dict[str, float]]]:
    """Per variant (sorted by name): ms in HARD_SWISH, ADD and MUL, 0.0 where absent."""
    by_variant: dict[str, dict[str, float]] = {}
    for op in op_times:
        if op.hswish_related:
            ms = by_variant.setdefault(op.variant, dict.fromkeys(HSWISH_OP_TYPES, 0.0))
            ms[op.node_type] += op.avg_ms
    return sorted(by_variant.items())
