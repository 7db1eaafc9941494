"""The table as JSON (`--json` and table-<name>.json).

Keys of each row, per table:
- every table: row, variant_opt, variant_noopt, latency_ms_opt, latency_ms_noopt
  (each latency {median, ci_low, ci_high} in ms, or null when not measured / no such column);
- tables with Top-1 (3, 4, 5): paper_top1;
- tables with per-row paper latencies (3, 4, 5): paper_<p1|p2|p3>_ms for each paper column
  shown, and paper_<col>_noopt_ms for table 5 (final version only; early rows give null and
  appear, labelled, under "paper" at the top level);
- tables without a no-opt column: change_pct_opt (measured, vs the row's reference row) and
  paper_change_pct (the paper's, same comparison);
- tables with counted MAdds (3, last-stage, stem): madds_m, params_m; table 3 also
  paper_madds_m, paper_params_m.
So table 5's rows have exactly: row, variant_opt, variant_noopt, latency_ms_opt,
latency_ms_noopt, paper_top1, paper_p1_ms, paper_p1_noopt_ms.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from mnv3bench.tables.paper import PAPER_COLUMNS
from mnv3bench.tables.result import Cell, TableResult, column_key, to_plain


def _latency(cell: Cell | None) -> dict[str, float | None] | None:
    return cell.interval() if cell is not None else None


def _number(value: float | None) -> float | None:
    # The paper's numbers are quoted as printed (51, 51.4); in JSON they are all decimals.
    return None if value is None else float(value)


def json_rows(result: TableResult) -> list[dict[str, Any]]:
    defn = result.definition
    paper_latencies = result.has_paper_latencies()
    out = []
    for row in result.table_rows:
        p = row.paper
        item: dict[str, Any] = {
            "row": row.label,
            "variant_opt": row.definition.opt,
            "variant_noopt": row.definition.noopt,
            "latency_ms_opt": _latency(result.cells.get(row.definition.opt)),
            "latency_ms_noopt": _latency(result.cells.get(row.definition.noopt)) if row.definition.noopt else None,
        }
        if defn.shows_top1:
            item["paper_top1"] = _number(p.top1)
        if paper_latencies:
            for col in result.paper_columns:
                key = column_key(col)
                item[f"paper_{key}_ms"] = _number(p.latency_ms.get(col))
                if defn.has_noopt:
                    item[f"paper_{key}_noopt_ms"] = _number(p.noopt_ms.get(col))
        if not defn.has_noopt:
            item["change_pct_opt"] = row.opt_change_pct
            item["paper_change_pct"] = p.change_pct
        if row.counted is not None:
            item["madds_m"] = row.counted.madds_m
            item["params_m"] = row.counted.params_m
        if defn.counts_madds and defn.per_device_column:
            item["paper_madds_m"] = _number(p.madds_m)
            item["paper_params_m"] = _number(p.params_m)
        out.append(item)
    return out


def _paper_entries(result: TableResult) -> list[dict[str, Any]]:
    entries = []
    for row in result.definition.rows:
        for p in (row.paper, row.paper_early):
            if p is None:
                continue
            entries.append(
                {
                    "row": row.label,
                    "version": p.version,
                    "version_label": p.version_label,
                    "source": p.source,
                    "top1": p.top1,
                    "latency_ms": {c: v for c, v in p.latency_ms.items() if c in PAPER_COLUMNS} or None,
                    "noopt_ms": p.noopt_ms or None,
                    "reference_ms": p.reference_ms or None,
                    "madds_m": p.madds_m,
                    "params_m": p.params_m,
                    "change": p.printed_change,
                    "change_ms": p.change_ms,
                    "change_pct": p.change_pct,
                    "change_madds_m": p.change_madds_m,
                    "note": p.note or None,
                }
            )
    return entries


def _plain_record(record: Any) -> dict[str, Any]:
    return {k: to_plain(v) for k, v in asdict(record).items()}


def _op_blocks_record(v: Any) -> dict[str, Any]:
    return {"variant": v.variant, "trials": v.trials, "total_ms": v.total_ms,
            "blocks": [{"name": name, "ms": ms, "share": share} for name, ms, share in v.blocks],
            "unattributed_share": v.unattributed_share, "hswish_ms": v.hswish_ms,
            "hswish_replacement_ms": v.hswish_replacement_ms}


def _agreement_summary(result: TableResult) -> dict[str, int]:
    agree, judged = result.agreement_counts()
    counts = result.verdict_counts()
    return {"agrees": counts.agrees, "disagrees": counts.disagrees, "not_resolved": counts.not_resolved,
            "directions_match": agree, "judged": judged}


def _precision(result: TableResult) -> dict[str, Any]:
    """Per cell and per comparison: the precision reached (CI half-width relative to the
    median or ratio) and the trials used; against the --precision target when one was asked."""
    target = result.precision_target

    def reached(value: float | None) -> bool | None:
        return None if target is None else value is not None and value <= target

    return {
        "target": target,
        "stopped": result.precision_stopped,
        "cells": {variant: {"precision": cell.precision, "trials": len(cell.latencies_ms),
                            "reached": reached(cell.precision)} for variant, cell in result.cells.items()},
        "comparisons": {c.comparison: {"precision": c.precision, "method": c.method, "rounds": c.rounds,
                                       "reached": reached(c.precision)}
                        for c in result.comparisons if c.measured_ratio is not None},
        "missed": result.precision_missed(),
    }


def to_json_dict(result: TableResult) -> dict[str, Any]:
    return {
        "table": result.name,
        "title": result.definition.title,
        "device": result.device,
        "device_paper_column": result.device_column or None,
        "compared_with_paper_column": result.agreement_column,
        "absolute_comparable": result.absolute_comparable,
        "rows": json_rows(result),
        "agreement": [_plain_record(c) for c in result.comparisons],
        "agreement_summary": _agreement_summary(result),
        "precision": _precision(result),
        "paper": _paper_entries(result),
        "notes": result.notes,
        "warnings": result.warnings,
        "missing": result.missing,
        "sessions": result.sessions,
        "trials": result.trial_ids(),
        "op_profile": None if result.op_times is None else [_plain_record(o) for o in result.op_times],
        "op_profile_note": result.op_profile_note,
        "op_blocks": None if result.op_blocks is None else [_op_blocks_record(v) for v in result.op_blocks],
        **{k: v for k, v in result.extra.items() if k not in ("table",)},
    }


def to_json(result: TableResult) -> str:
    return json.dumps(to_json_dict(result), indent=2, default=to_plain)
