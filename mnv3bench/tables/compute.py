"""From trials (a DataFrame from ResultStore.trials) to a table: cells, changes, agreement.

No TensorFlow and no device here: the inputs are stored trials, the paper's numbers and,
optionally, a function that counts a variant's MAdds and parameters from its architecture.
The output is a typed TableResult (tables/result.py), computed once and read by every
exporter. Measured numbers and the paper's numbers stay apart (TableRow.paper).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

import pandas as pd

from mnv3bench.bench.drift import session_order_warnings
from mnv3bench.bench.paired import compare_trials, round_keys
from mnv3bench.bench.stats import CI_METHOD, Comparison, summarize
from mnv3bench.bench.verdict import direction, judge
from mnv3bench.delegation import Delegation
from mnv3bench.profile.stored import op_rows
from mnv3bench.tables.definitions import RowDef, TableDef
from mnv3bench.tables.paper import (
    EARLY,
    PAPER_COLUMNS,
    TABLE5_TEXT,
    PaperRow,
    paper_noopt_ratio,
    paper_ratio,
)
from mnv3bench.tables.result import (
    HSWISH_OP_TYPES,
    Cell,
    Counted,
    OpTime,
    PaperComparison,
    PaperValues,
    TableResult,
    TableRow,
    VariantBlocks,
    to_plain,
)

OP_PROFILE_COLUMNS = ("op_profile_by_type", "op_profile")


class CountsLike(Protocol):
    madds: int
    params: int


Counter = Callable[[str], CountsLike]


# -- choosing trials ---------------------------------------------------------------------


def ok_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Only successful trials with a latency (failed trials never carry one)."""
    frame = trials
    if "ok" in frame.columns:
        frame = frame[frame["ok"].astype(bool)]
    return frame[frame["latency_ms"].notna()]


# -- the table ---------------------------------------------------------------------------


def _cells(trials: pd.DataFrame, variants: Sequence[str]) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    for variant in variants:
        group = trials[trials["variant"] == variant]
        if group.empty:
            continue
        latencies = [float(v) for v in group["latency_ms"]]
        ids = [int(v) for v in group["id"]] if "id" in group.columns else []
        cells[variant] = Cell(variant, summarize(latencies), latencies, ids, round_keys(group))
    return cells


def _columns_for(defn: TableDef, device_column: str) -> tuple[tuple[str, ...], str]:
    if defn.per_device_column:
        if device_column in PAPER_COLUMNS:
            return (device_column,), device_column
        return PAPER_COLUMNS, "P-1"
    return (defn.fixed_column,), defn.fixed_column


def _change_pct(cell: Cell | None, base: Cell | None) -> float | None:
    if cell is None or base is None or base.summary.median <= 0:
        return None
    return (cell.summary.median / base.summary.median - 1) * 100


def _paper_values(defn: TableDef, row: RowDef, columns: tuple[str, ...], agreement_column: str) -> PaperValues:
    p = row.paper
    if p is None:
        return PaperValues()
    final = p.version != EARLY
    baseline = defn.row(row.baseline).paper if row.baseline else None
    ratio = paper_ratio(p, baseline, agreement_column) if row.baseline else None
    return PaperValues(
        version=p.version,
        source=p.source,
        top1=p.top1,
        latency_ms={col: p.latency_ms.get(col) if final and not p.change_ms else None for col in columns},
        noopt_ms={col: p.noopt_ms.get(col) if final else None for col in columns},
        # Kept apart: an early-scale latency never sits in a final column.
        early_ms={col: p.latency_ms[col] for col in columns if not final and col in p.latency_ms},
        early_reference_ms={col: p.reference_ms.get(col) for col in columns if not final and col in p.latency_ms},
        madds_m=p.madds_m,
        params_m=p.params_m,
        change_pct=(ratio - 1) * 100 if ratio is not None else None,
        change_printed=p.printed_change,
        change_madds_m=p.change_madds_m,
    )


def _comparison(
    comparison: str, kind: str, subject: Cell | None, baseline: Cell | None, paper_r: float | None, version: str | None
) -> PaperComparison:
    paper = PaperComparison(
        comparison,
        kind,
        subject.variant if subject else None,
        baseline.variant if baseline else None,
        paper_ratio=paper_r,
        paper_direction=direction(paper_r) if paper_r is not None else None,
        paper_version=version,
    )
    if subject is None or baseline is None:
        return replace(paper, verdict="not measured")
    c: Comparison = compare_trials(subject.latencies_ms, subject.rounds, baseline.latencies_ms, baseline.rounds)
    agrees = resolved = None
    verdict = "no paper value"
    if paper_r is not None:
        judged = judge(c, paper_r)
        agrees, resolved, verdict = judged.direction_matches, judged.resolved, judged.text
    return replace(
        paper,
        measured_ratio=c.ratio,
        measured_ratio_ci_low=c.ratio_ci_low,
        measured_ratio_ci_high=c.ratio_ci_high,
        p_value=c.p_value,
        significant=c.significant,
        measured_direction=direction(c.ratio),
        agrees=agrees,
        verdict=verdict,
        method=c.method,
        precision=c.half_width,
        rounds=c.rounds,
        resolved=resolved,
    )


def _comparisons(defn: TableDef, row: RowDef, cells: dict[str, Cell], column: str) -> list[PaperComparison]:
    """The row against its reference row (opt, and no-opt where the table has it), and its no-opt against its opt."""
    out: list[PaperComparison] = []
    p: PaperRow | None = row.paper
    version = p.version if p else None
    opt = cells.get(row.opt)
    noopt = cells.get(row.noopt) if row.noopt else None
    if row.baseline:
        base_row = defn.row(row.baseline)
        base_opt = cells.get(base_row.opt)
        base_noopt = cells.get(base_row.noopt) if base_row.noopt else None
        r = paper_ratio(p, base_row.paper, column) if p else None
        out.append(_comparison(f"{row.label} vs {base_row.label}", "row vs reference", opt, base_opt, r, version))
        if defn.has_noopt:
            r = paper_ratio(p, base_row.paper, column, noopt=True) if p else None
            out.append(
                _comparison(
                    f"{row.label} vs {base_row.label}, no-opt",
                    "row vs reference (no-opt)",
                    noopt,
                    base_noopt,
                    r,
                    version if r is not None else None,
                )
            )
    if defn.has_noopt and row.noopt and not row.noopt_is_opt:
        r = paper_noopt_ratio(p, column) if p else None
        out.append(_comparison(f"{row.label}: no-opt vs opt", "no-opt vs opt", noopt, opt, r, version if r else None))
    return out


def _per_trial(chosen: pd.DataFrame) -> str:
    """What each trial's latency is: its runs' mean or median (latency_estimator; none stored: the mean)."""
    kinds = (chosen["latency_estimator"].fillna("mean") if "latency_estimator" in chosen.columns
             else pd.Series(["mean"] * len(chosen), dtype=object))
    medians = int((kinds == "median").sum())
    if medians == 0:
        return "per-trial means of runs"
    if medians == len(kinds):
        return "per-trial medians of runs"
    return f"per-trial means of runs ({medians} trial(s): medians, no mean printed)"


def comparison_pairs(defn: TableDef) -> list[tuple[str, str]]:
    """(subject, baseline) of every comparison the table makes (as _comparisons makes them):
    what an adaptive session of the table must resolve (bench/precision.py)."""
    pairs: list[tuple[str, str]] = []
    for row in defn.rows:
        if row.baseline:
            base_row = defn.row(row.baseline)
            pairs.append((row.opt, base_row.opt))
            if defn.has_noopt and row.noopt and base_row.noopt:
                pairs.append((row.noopt, base_row.noopt))
        if defn.has_noopt and row.noopt and not row.noopt_is_opt:
            pairs.append((row.noopt, row.opt))
    return list(dict.fromkeys(pairs))


def _counted(defn: TableDef, counter: Counter | None) -> dict[str, Counted]:
    if not defn.counts_madds or counter is None:
        return {}
    counts = {row.opt: counter(row.opt) for row in defn.rows}
    out = {}
    for row in defn.rows:
        c = counts[row.opt]
        base = counts[defn.row(row.baseline).opt] if row.baseline else None
        out[row.opt] = Counted(c.madds / 1e6, c.params / 1e6, (c.madds - base.madds) / 1e6 if base else None)
    return out


def compute_table(
    defn: TableDef,
    trials: pd.DataFrame,
    *,
    device: str,
    device_column: str = "",
    device_is_paper_phone: bool | None = None,
    counter: Counter | None = None,
    op_profile: bool = False,
) -> TableResult:
    """Build a table from trials already chosen for it (one session, or each variant's latest).

    device_column is the device profile's paper column ("P-1".."P-3", "" for none).
    device_is_paper_phone: False for an emulated device even if it claims a column.
    counter(variant_name) -> Counts(madds, params), for tables that show MAdds.
    """
    chosen = ok_trials(trials)
    cells = _cells(chosen, defn.variants())
    missing = [v for v in defn.variants() if v not in cells]
    columns, agreement_column = _columns_for(defn, device_column)
    is_phone = device_is_paper_phone if device_is_paper_phone is not None else bool(device_column)
    absolute_comparable = is_phone and device_column == agreement_column and (
        defn.per_device_column or device_column == defn.fixed_column
    )

    counted = _counted(defn, counter)
    rows: list[TableRow] = []
    comparisons: list[PaperComparison] = []
    for row in defn.rows:
        base_row = defn.row(row.baseline) if row.baseline else None
        opt = cells.get(row.opt)
        noopt = cells.get(row.noopt) if row.noopt and defn.has_noopt else None
        rows.append(
            TableRow(
                definition=row,
                opt=opt,
                noopt=noopt,
                opt_change_pct=_change_pct(opt, cells.get(base_row.opt) if base_row else None),
                noopt_change_pct=_change_pct(
                    noopt, cells.get(base_row.noopt) if base_row and base_row.noopt else None
                ),
                counted=counted.get(row.opt),
                paper=_paper_values(defn, row, columns, agreement_column),
            )
        )
        comparisons += _comparisons(defn, row, cells, agreement_column)

    notes = _notes(defn, device, device_column, agreement_column, absolute_comparable, chosen, cells, missing)
    notes += delegation_notes(chosen, comparisons)
    notes += [f"Warning: {w}" for w in session_order_warnings(chosen)]
    result = TableResult(
        definition=defn,
        device=device,
        device_column=device_column,
        paper_columns=columns,
        agreement_column=agreement_column,
        absolute_comparable=absolute_comparable,
        cells=cells,
        table_rows=rows,
        comparisons=comparisons,
        notes=notes,
        missing=missing,
        sessions=sorted({int(s) for s in chosen["session_id"].dropna()}) if "session_id" in chosen else [],
    )
    if op_profile:
        frame, result.op_profile_note = op_profile_breakdown(trials, defn.variants())
        if frame is not None:
            result.op_times = [OpTime(**{k: to_plain(v) for k, v in rec.items()}) for rec in frame.to_dict("records")]
        result.op_blocks = variant_blocks(ok_trials(trials), defn.variants()) or None
    return result


def variant_blocks(trials: pd.DataFrame, variants: Sequence[str]) -> list[VariantBlocks]:
    """Each variant's op profile by block, from the full op rows its trials stored."""
    from mnv3bench.profile.stored import block_profiles

    out = []
    for name, profile in block_profiles(trials, variants).items():
        attribution = profile.attribution
        total = attribution.total_ms
        hswish, replacement = profile.hswish_split()
        out.append(VariantBlocks(
            variant=name, trials=profile.trials, total_ms=total,
            blocks=tuple((b.name, b.ms, b.share(total)) for b in attribution.blocks),
            unattributed_share=attribution.unattributed_share, hswish_ms=hswish, hswish_replacement_ms=replacement))
    return out


def _notes(
    defn: TableDef,
    device: str,
    device_column: str,
    agreement_column: str,
    absolute_comparable: bool,
    chosen: pd.DataFrame,
    cells: dict[str, Cell],
    missing: list[str],
) -> list[str]:
    notes: list[str] = []
    if absolute_comparable:
        notes.append(f"Device {device} is the paper's phone for column {agreement_column}: absolute latencies are comparable.")
    else:
        why = (
            "its profile has no paper column" if not device_column else f"its profile's paper column is {device_column}"
        )
        notes.append(
            f"Device {device} is not the paper's phone for column {agreement_column} ({why}): absolute numbers are "
            "not comparable, only ratios are."
        )
    n = [len(c.latencies_ms) for c in cells.values()]
    if n:
        notes.append(
            f"Latency: median of {_per_trial(chosen)} over {_span(n)} trials per cell ({CI_METHOD}); "
            f"Δ is the change against {_baselines(defn)}."
        )
    if defn.shows_top1:
        notes.append("Top-1 is not measured here: it is the paper's ImageNet accuracy, quoted.")
    if defn.has_noopt:
        notes.append(
            "opt = fused HARD_SWISH op; no-opt = h-swish from primitive ops (ADD, MUL). ReLU has no h-swish: its "
            "no-opt cell is the same variant as its opt cell."
        )
        notes.append(f"Paper text: {TABLE5_TEXT}.")
    for row in defn.rows:
        for p in (row.paper, row.paper_early):
            if p is not None and p.version == EARLY:
                notes.append(
                    f"Paper row {row.label!r} is from paper version {p.version_label}, {p.source}: "
                    + (p.note or p.printed_change or "")
                    + "; it is shown with its version label, never in a final column."
                )
            elif p is not None and p.note:
                notes.append(f"Paper {row.label} ({p.source}, {p.version}): {p.note}.")
    if "throttled" in chosen.columns and len(chosen):
        throttled = int(chosen["throttled"].astype(bool).sum())
        if throttled:
            notes.append(f"{throttled} of {len(chosen)} trials saw thermal throttling.")
    for variant in missing:
        notes.append(
            f"Missing: no successful trials of {variant} on {device}; run `mnv3bench table {defn.name} --device {device}`."
        )
    return notes


def _delegation_by_variant(chosen: pd.DataFrame) -> dict[str, Delegation]:
    """Each variant's delegation as its newest trial with a delegate line reported it."""
    if "delegate" not in chosen.columns:
        return {}
    out: dict[str, Delegation] = {}
    for variant, group in chosen[chosen["delegate"].notna()].groupby("variant", sort=False):
        last = group.iloc[-1]
        left_out = last.get("delegate_left_out")
        out[str(variant)] = Delegation(
            delegate=str(last["delegate"]),
            total_nodes=int(last["total_nodes"]),
            delegated_nodes=int(last["delegated_nodes"]),
            partitions=int(last["delegate_partitions"]),
            left_out=json.loads(left_out) if isinstance(left_out, str) else {},
        )
    return out


# Partitions a model may run in without comment: the body, and the classifier after
# Keras's Flatten of a dynamic batch, whose shape ops (SHAPE, STRIDED_SLICE, PACK,
# RESHAPE) no delegate takes. Each partition beyond is a round trip between the delegate
# and TFLite's kernels inside the network.
EXPECTED_PARTITIONS = 2


def delegation_notes(chosen: pd.DataFrame, comparisons: Sequence[PaperComparison]) -> list[str]:
    """Models the delegate split inside the network, and comparisons that may measure that.

    When two compared models are split differently, their ratio may measure the
    delegate's coverage (ops it leaves to TFLite's kernels, and the round trips between
    them) rather than the architecture.
    """
    by_variant = _delegation_by_variant(chosen)
    notes: list[str] = []
    for variant, d in by_variant.items():
        if d.partitions > EXPECTED_PARTITIONS:
            kept = d.total_nodes - d.delegated_nodes
            by_type = d.left_out_text() if d.left_out else (
                "op types unknown: the device's runtime split the graph differently from the host's analysis")
            notes.append(f"Delegation: {d.delegate} ran {variant} in {d.partitions} partitions, leaving {kept} of "
                         f"{d.total_nodes} nodes to TFLite's kernels ({by_type}).")
    for c in comparisons:
        a, b = by_variant.get(c.variant or ""), by_variant.get(c.baseline_variant or "")
        if a is not None and b is not None and abs(a.partitions - b.partitions) > 1:
            notes.append(
                f"Warning: {c.comparison}: the delegate splits the two models differently ({a.partitions} vs "
                f"{b.partitions} partitions), so the ratio may measure which ops {a.delegate} runs rather than the "
                "architecture."
            )
    return notes


def _baselines(defn: TableDef) -> str:
    """The rows the Δ columns compare with: "the V3 row", or each row's own when they differ."""
    pairs = [(r.label, r.baseline) for r in defn.rows if r.baseline]
    bases = sorted({b for _, b in pairs})
    if len(bases) == 1:
        return f"the {bases[0]} row"
    return "each row's baseline (" + "; ".join(f"{label} vs {base}" for label, base in pairs) + ")"


def _span(counts: list[int]) -> str:
    return str(min(counts)) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"


# -- op profile ----------------------------------------------------------------------------


def op_profile_breakdown(trials: pd.DataFrame, variants: Sequence[str]) -> tuple[pd.DataFrame | None, str | None]:
    """Per variant and op type: mean avg_ms and percent over the trials that profiled ops.

    Returns (None, why) when no trial carries op profile data, quoting the runtime's own
    warning when it printed one.
    """
    chosen = ok_trials(trials)
    column = next((c for c in OP_PROFILE_COLUMNS if c in chosen.columns), None)
    records = []
    if column is not None:
        for _, trial in chosen[chosen["variant"].isin(list(variants))].iterrows():
            for op in op_rows(trial[column]):
                records.append(
                    {
                        "variant": trial["variant"],
                        "trial": trial.get("id"),
                        "node_type": op["node_type"],
                        "avg_ms": float(op.get("avg_ms") or 0.0),
                        "percent": float(op.get("percent") or 0.0),
                        "times_called": op.get("times_called"),
                    }
                )
    if not records:
        warning = _profiling_warning(chosen)
        why = "No op profile data in these trials: the runtime reported no per-op timings"
        why += f" (it said: {warning!r})." if warning else "."
        why += " Measure with --op-profile (benchmark_model's --enable_op_profiling=true)."
        return None, why
    frame = pd.DataFrame.from_records(records)
    trials_per_variant = frame.groupby("variant")["trial"].nunique().rename("trials")
    table = (
        frame.groupby(["variant", "node_type"], sort=False)
        .agg(avg_ms=("avg_ms", "mean"), percent=("percent", "mean"), times_called=("times_called", "max"))
        .reset_index()
        .join(trials_per_variant, on="variant")
    )
    table["hswish_related"] = table["node_type"].isin(HSWISH_OP_TYPES)
    order = {v: i for i, v in enumerate(variants)}
    table = table.sort_values(["variant", "avg_ms"], ascending=[True, False], key=None)
    table = table.sort_values("variant", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    return table, None


def _profiling_warning(trials: pd.DataFrame) -> str | None:
    if "raw_output" not in trials.columns:
        return None
    for text in trials["raw_output"].dropna():
        for line in str(text).splitlines():
            if line.startswith("WARN") and "profil" in line.lower():
                return line.strip()
    return None
