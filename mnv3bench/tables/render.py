"""Renderers of a computed table: Rich (terminal), Markdown, CSV, JSON, and the report files.

One function per format, all reading a TableResult. Measured cells read
"51.4 ms [50.9, 52.0]" (median of trial means, 95% interval); paper cells are labelled
"paper" and carry their version.

JSON rows (`--json` and table-<name>.json), keys per table:
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
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text

from mnv3bench.errors import MnvError
from mnv3bench.tables.compute import Cell, TableResult, column_key, hswish_op_summary, to_plain
from mnv3bench.tables.paper import EARLY, PAPER_COLUMNS, VERSION_LABELS

MISSING = "—"


# -- formatting helpers ------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_latency(median: Any, ci_low: Any, ci_high: Any, n: Any = None) -> str:
    """"51.4 ms [50.9, 52.0]"; without an interval (one trial) "51.4 ms (n=1)"."""
    if _is_missing(median):
        return MISSING
    if _is_missing(ci_low) or _is_missing(ci_high):
        return f"{_num(median)} ms (n={int(n)})" if not _is_missing(n) else f"{_num(median)} ms"
    return f"{_num(median)} ms [{_num(ci_low)}, {_num(ci_high)}]"


def _pct(value: Any) -> str:
    return MISSING if _is_missing(value) else f"{value:+.1f}%"


def _ratio(value: Any, low: Any = None, high: Any = None) -> str:
    if _is_missing(value):
        return MISSING
    if _is_missing(low) or _is_missing(high):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _plain_num(value: Any, unit: str = "") -> str:
    return MISSING if _is_missing(value) else f"{value:g}{unit}"


def _has_paper_latencies(result: TableResult) -> bool:
    return any(r.paper is not None and r.paper.latency_ms and r.paper.change_ms is None for r in result.definition.rows)


# -- the displayed table (strings), shared by Rich and Markdown ------------------------------


def display_frame(result: TableResult) -> pd.DataFrame:
    """The table as strings, one column per displayed quantity, paper columns labelled."""
    defn = result.definition
    rows = result.rows
    out = pd.DataFrame({"Row": rows["row"]})
    if defn.shows_top1:
        out["Top-1 % (paper)"] = [_plain_num(v) for v in rows["paper_top1"]]
    if "madds_m" in rows.columns:
        out["MAdds (counted)"] = [_plain_num(round(v, 1), "M") if not _is_missing(v) else MISSING for v in rows["madds_m"]]
        if any(not _is_missing(v) for v in rows["madds_change_m"]):
            out["ΔMAdds"] = [MISSING if _is_missing(v) else f"{v:+.1f}M" for v in rows["madds_change_m"]]
    device = result.device
    opt_head = f"{'opt' if defn.has_noopt else 'latency'} ({device})"
    out[opt_head] = [
        format_latency(r.opt_median_ms, r.opt_ci_low_ms, r.opt_ci_high_ms, r.opt_n) for r in rows.itertuples()
    ]
    out["Δ opt"] = [_pct(v) for v in rows["opt_change_pct"]]
    if defn.has_noopt:
        cells = []
        for r in rows.itertuples():
            text = format_latency(r.noopt_median_ms, r.noopt_ci_low_ms, r.noopt_ci_high_ms, r.noopt_n)
            cells.append(f"{text} (= opt, no h-swish)" if r.noopt_is_opt and text != MISSING else text)
        out[f"no-opt ({device})"] = cells
        out["Δ no-opt"] = [_pct(v) for v in rows["noopt_change_pct"]]
    if _has_paper_latencies(result):
        for col in result.paper_columns:
            key = column_key(col)
            out[f"paper {col} ms"] = _paper_latency_cells(result, col, f"paper_{key}_ms")
            if defn.has_noopt:
                out[f"paper {col} no-opt ms"] = [_plain_num(v) for v in rows[f"paper_{key}_noopt_ms"]]
    if "paper_madds_m" in rows.columns:
        out["paper MAdds"] = [_plain_num(v, "M") for v in rows["paper_madds_m"]]
    out[f"paper Δ ({result.agreement_column})"] = _paper_change_cells(result)
    out["paper version"] = [MISSING if _is_missing(v) else v for v in rows["paper_version"]]
    return out


def _paper_latency_cells(result: TableResult, col: str, key: str) -> list[str]:
    cells = []
    early_key = f"paper_early_{column_key(col)}_ms"
    early_ref = f"paper_early_{column_key(col)}_reference_ms"
    for _, r in result.rows.iterrows():
        if early_key in r and not _is_missing(r[early_key]):
            ref = r.get(early_ref)
            cells.append(f"{r[early_key]:g} (early; V3 {ref:g} there)" if not _is_missing(ref) else f"{r[early_key]:g} (early)")
        else:
            cells.append(_plain_num(r[key]))
    return cells


def _paper_change_cells(result: TableResult) -> list[str]:
    cells = []
    for row, (_, r) in zip(result.definition.rows, result.rows.iterrows()):
        printed = r.get("paper_change_printed")
        text = printed if isinstance(printed, str) else _pct(r.get("paper_change_pct"))
        if row.paper is not None and row.paper.version == EARLY and text != MISSING:
            text += " (early)"
        if row.paper_early is not None and row.paper_early.printed_change:
            text += f"; early: {row.paper_early.printed_change}"
        cells.append(text)
    return cells


def agreement_frame(result: TableResult) -> pd.DataFrame:
    a = result.agreement
    if a.empty:
        return pd.DataFrame(columns=["Comparison", "measured ratio [95% CI]", "paper ratio", "measured", "paper", "verdict"])
    return pd.DataFrame(
        {
            "Comparison": a["comparison"],
            "measured ratio [95% CI]": [
                _ratio(r.measured_ratio, r.measured_ratio_ci_low, r.measured_ratio_ci_high) for r in a.itertuples()
            ],
            "paper ratio": [
                MISSING if _is_missing(r.paper_ratio) else f"{r.paper_ratio:.3f} ({r.paper_version})" for r in a.itertuples()
            ],
            "measured": [MISSING if _is_missing(v) else v for v in a["measured_direction"]],
            "paper": [MISSING if _is_missing(v) else v for v in a["paper_direction"]],
            "verdict": a["verdict"],
        }
    )


def agreement_counts(result: TableResult) -> tuple[int, int]:
    """(comparisons whose direction matches the paper's, comparisons with a paper value)."""
    a = result.agreement
    if a.empty:
        return 0, 0
    judged = a[a["agrees"].notna()]
    return int(judged["agrees"].astype(bool).sum()), len(judged)


def op_profile_frame(result: TableResult) -> pd.DataFrame | None:
    if result.op_profile is None:
        return None
    summary = hswish_op_summary(result.op_profile)
    return pd.DataFrame(
        {
            "variant": summary["variant"],
            **{f"{op} ms": [f"{v:.3f}" for v in summary[op]] for op in ("HARD_SWISH", "ADD", "MUL")},
        }
    )


# -- Rich --------------------------------------------------------------------------------


def _rich_table(frame: pd.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(frame.columns):
        table.add_column(str(name), justify="left" if i == 0 else "right", overflow="fold")
    for values in frame.itertuples(index=False):
        table.add_row(*[str(v) for v in values])
    return table


def to_rich(result: TableResult) -> Group:
    parts: list[Any] = [_rich_table(display_frame(result), title=f"{result.definition.title} — {result.device}")]
    agree, judged = agreement_counts(result)
    parts.append(_rich_table(agreement_frame(result), title=f"Agreement with the paper: {agree}/{judged} directions match"))
    if result.op_profile is not None:
        parts.append(_rich_table(op_profile_frame(result), title="h-swish time by op type (op profiling)"))
    elif result.op_profile_note:
        parts.append(Text(result.op_profile_note, style="yellow"))
    parts.append(Text("\n".join(f"• {n}" for n in result.notes)))
    return Group(*parts)


# -- Markdown ----------------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub/pandoc pipe table; text columns left, numbers right."""
    header = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    align = "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(frame.columns))) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, align, *body])


def to_markdown(result: TableResult) -> str:
    defn = result.definition
    agree, judged = agreement_counts(result)
    lines = [
        f"## {defn.title}",
        "",
        f"Device: **{result.device}**" + (f" (paper column {result.device_column})" if result.device_column else "")
        + f". Compared with the paper's {result.agreement_column} column"
        + ("." if result.absolute_comparable else "; absolute numbers are not comparable, only ratios are."),
        "",
        markdown_table(display_frame(result)),
        "",
        f"### Agreement with the paper ({agree}/{judged} directions match)",
        "",
        markdown_table(agreement_frame(result)),
        "",
    ]
    if result.op_profile is not None:
        lines += ["### h-swish time by op type", "", markdown_table(op_profile_frame(result)), ""]
    elif result.op_profile_note:
        lines += ["### Op profile", "", result.op_profile_note, ""]
    lines += ["### Notes", ""]
    lines += [f"- {n}" for n in result.notes]
    lines += [f"- Paper versions: {'; '.join(f'{k} = {v}' for k, v in VERSION_LABELS.items())}."]
    lines += [f"- {line}" for line in _provenance_lines(result)]
    return "\n".join(lines) + "\n"


def _provenance_lines(result: TableResult) -> list[str]:
    extra = result.extra
    lines = [
        f"Trials used: {result.n_trials()} in session(s) {', '.join(map(str, result.sessions)) or MISSING}"
        + (f"; {len(result.missing)} variant(s) missing" if result.missing else "")
        + "."
    ]
    for key, label in (("generated_at", "Generated"), ("command", "Command"), ("tool_version", "mnv3bench")):
        if extra.get(key):
            lines.append(f"{label}: {extra[key]}")
    return lines


# -- CSV and JSON ------------------------------------------------------------------------


def to_csv(result: TableResult) -> str:
    """The measured and paper numbers, one row per table row, machine-readable columns."""
    return result.rows.to_csv(index=False)


def _latency(cell: Cell | None) -> dict[str, float | None] | None:
    return cell.interval() if cell is not None else None


def json_rows(result: TableResult) -> list[dict[str, Any]]:
    defn = result.definition
    paper_latencies = _has_paper_latencies(result)
    out = []
    for row, (_, r) in zip(defn.rows, result.rows.iterrows()):
        item: dict[str, Any] = {
            "row": row.label,
            "variant_opt": row.opt,
            "variant_noopt": row.noopt,
            "latency_ms_opt": _latency(result.cells.get(row.opt)),
            "latency_ms_noopt": _latency(result.cells.get(row.noopt)) if row.noopt else None,
        }
        if defn.shows_top1:
            item["paper_top1"] = to_plain(r["paper_top1"])
        if paper_latencies:
            for col in result.paper_columns:
                key = column_key(col)
                item[f"paper_{key}_ms"] = to_plain(r[f"paper_{key}_ms"])
                if defn.has_noopt:
                    item[f"paper_{key}_noopt_ms"] = to_plain(r[f"paper_{key}_noopt_ms"])
        if not defn.has_noopt:
            item["change_pct_opt"] = to_plain(r["opt_change_pct"])
            item["paper_change_pct"] = to_plain(r["paper_change_pct"])
        if "madds_m" in r:
            item["madds_m"] = to_plain(r["madds_m"])
            item["params_m"] = to_plain(r["params_m"])
        if "paper_madds_m" in r:
            item["paper_madds_m"] = to_plain(r["paper_madds_m"])
            item["paper_params_m"] = to_plain(r["paper_params_m"])
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


def to_json_dict(result: TableResult) -> dict[str, Any]:
    agreement = [{k: to_plain(v) for k, v in rec.items()} for rec in result.agreement.to_dict("records")]
    op_profile = None
    if result.op_profile is not None:
        op_profile = [{k: to_plain(v) for k, v in rec.items()} for rec in result.op_profile.to_dict("records")]
    return {
        "table": result.name,
        "title": result.definition.title,
        "device": result.device,
        "device_paper_column": result.device_column or None,
        "compared_with_paper_column": result.agreement_column,
        "absolute_comparable": result.absolute_comparable,
        "rows": json_rows(result),
        "agreement": agreement,
        "paper": _paper_entries(result),
        "notes": result.notes,
        "missing": result.missing,
        "sessions": result.sessions,
        "trials": result.trial_ids(),
        "op_profile": op_profile,
        "op_profile_note": result.op_profile_note,
        **{k: v for k, v in result.extra.items() if k not in ("table",)},
    }


def to_json(result: TableResult) -> str:
    return json.dumps(to_json_dict(result), indent=2, default=to_plain)


# -- files -------------------------------------------------------------------------------


def report_dir(reports_dir: Path, device: str) -> Path:
    return Path(reports_dir) / device


def write_reports(result: TableResult, reports_dir: Path | str) -> list[Path]:
    """Markdown, CSV (rows and agreement), JSON and PNG plots under <reports_dir>/<device>/."""
    from mnv3bench.tables.plots import plot_change, plot_latency  # matplotlib only when writing files

    result.extra.setdefault("generated_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    folder = report_dir(Path(reports_dir), result.device)
    stem = f"table-{result.name}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            folder / f"{stem}.md": to_markdown(result),
            folder / f"{stem}.csv": to_csv(result),
            folder / f"{stem}-agreement.csv": result.agreement.to_csv(index=False),
            folder / f"{stem}.json": to_json(result) + "\n",
        }
        for path, text in paths.items():
            path.write_text(text, encoding="utf-8")
        written = list(paths)
        written.append(plot_latency(result, folder / f"{stem}-latency.png"))
        written.append(plot_change(result, folder / f"{stem}-change.png"))
    except OSError as err:
        raise MnvError(
            f"cannot write the reports to {folder}: {err.strerror or err}.",
            f"Pass a writable folder with --reports-dir DIR, or make {folder} writable (it must be a folder, "
            "not a file).",
        ) from err
    return written
