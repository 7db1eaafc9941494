"""A table on several phones (tables/side_by_side.py) as the terminal, Markdown, CSV and JSON show it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text

from mnv3bench.errors import MnvError
from mnv3bench.tables.export.display import (
    MISSING,
    Grid,
    cell_latency,
    is_missing,
    warning_lines,
)
from mnv3bench.tables.export.files import LATEST, point_latest, session_of
from mnv3bench.tables.export.markdown import markdown_table
from mnv3bench.tables.export.terminal import FittedTable
from mnv3bench.tables.result import Cell, column_key, to_plain
from mnv3bench.tables.side_by_side import SideBySide

FOLDER = "side-by-side"  # under the reports folder: beside the phones' own folders


def _paper(value: float | None, early: float | None) -> str:
    if early is not None:
        return f"{early:g} (early)"
    return MISSING if is_missing(value) else f"{value:g}"


def side_grid(table: SideBySide) -> Grid:
    """Row, then a measured column per phone (and its no-opt one), then the paper's columns."""
    rows = table.rows()
    columns: list[tuple[str, list[str]]] = [("Row", [r.label for r in rows])]
    for i, phone in enumerate(table.tables):
        label = table.device_label(phone)
        columns.append((f"{label} ms" if not table.definition.has_noopt else f"{label} opt ms",
                        [cell_latency(r.opt[i]) for r in rows]))
        if table.definition.has_noopt:
            columns.append((f"{label} no-opt ms", [cell_latency(r.noopt[i]) for r in rows]))
    for col in table.paper_columns:
        columns.append((f"paper {col} ms", [_paper(r.paper_ms.get(col), r.paper_early_ms.get(col)) for r in rows]))
    return Grid.from_columns(columns)


def agreement_lines(table: SideBySide) -> list[str]:
    """Per phone the verdicts a single-phone table heads its agreement with (resolved agreements,
    disagreements, unresolved), and where that phone's own table shows every ratio."""
    return [f"{phone.device}: {phone.verdict_counts().headline()} with the paper's {phone.agreement_column} "
            f"column (every ratio: {phone.device}/{LATEST}/table-{phone.name}.md in the reports folder)"
            for phone in table.tables]


def title(table: SideBySide) -> str:
    return f"{table.definition.title} — {', '.join(table.devices)}"


def to_rich(table: SideBySide) -> Group:
    """The phones side by side, the agreement per phone, the notes (those every phone shares
    once), then each phone's own notes and warnings, as a single phone's table shows them."""
    bullets = "\n".join(f"• {line}" for line in agreement_lines(table))
    shared = [note for note in table.tables[0].notes if all(note in phone.notes for phone in table.tables)]
    parts: list[Any] = [FittedTable(side_grid(table), title(table), ""), Text(bullets),
                        Text("\n".join(f"• {note}" for note in shared))]
    for phone in table.tables:  # the notes one phone has (its session, its host), then its warnings
        own = [note for note in phone.notes if note not in shared]
        if own:
            parts.append(Text(f"{phone.device}:\n" + "\n".join(f"• {note}" for note in own)))
        warnings = warning_lines(phone)
        if warnings:
            parts.append(Text(f"{phone.device} warnings:\n" + "\n".join(f"• {w}" for w in warnings), style="yellow"))
    return Group(*parts)


def to_markdown(table: SideBySide, extra: dict[str, Any] | None = None) -> str:
    lines = [f"## {title(table)}", "", markdown_table(side_grid(table)), "", "### Agreement with the paper", "",
             *(f"- {line}" for line in agreement_lines(table))]
    warned = [(phone.device, warning_lines(phone)) for phone in table.tables if phone.warnings]
    if warned:
        lines += ["", "### Warnings"]
        for device, warnings in warned:
            lines += ["", f"#### {device}", "", *(f"- {w}" for w in warnings)]
        lines.append("")
    for key, label in (("generated_at", "Generated"), ("command", "Command"), ("tool_version", "mnv3bench")):
        if extra and extra.get(key):
            lines.append(f"- {label}: {extra[key]}")
    return "\n".join(lines) + "\n"


def _numbers(cell: Cell | None) -> dict[str, Any]:
    if cell is None:
        return {"median_ms": None, "ci_low_ms": None, "ci_high_ms": None, "n": 0}
    interval = cell.interval()
    return {"median_ms": to_plain(interval["median"]), "ci_low_ms": to_plain(interval["ci_low"]),
            "ci_high_ms": to_plain(interval["ci_high"]), "n": cell.summary.n}


def to_json_dict(table: SideBySide) -> dict[str, Any]:
    rows = []
    for row in table.rows():
        measured = {}
        for i, phone in enumerate(table.tables):
            entry = {"opt": _numbers(row.opt[i])}
            if table.definition.has_noopt:
                entry["noopt"] = _numbers(row.noopt[i])
            measured[phone.device] = entry
        rows.append({"row": row.label, "measured": measured,
                     "paper_ms": {column_key(c): to_plain(v) for c, v in row.paper_ms.items()},
                     "paper_early_ms": {column_key(c): v for c, v in row.paper_early_ms.items()}})
    return {"table": table.name, "title": table.definition.title, "devices": list(table.devices),
            "paper_columns": list(table.paper_columns),
            "device_columns": {t.device: t.device_column or None for t in table.tables}, "rows": rows,
            "warnings": {t.device: t.warnings for t in table.tables}}


def to_csv(table: SideBySide) -> str:
    """One row per table row: per phone its median, interval and n, then the paper's columns."""
    records = []
    for row in table.rows():
        record: dict[str, Any] = {"row": row.label}
        for i, phone in enumerate(table.tables):
            kinds = [("opt", row.opt[i])] + ([("noopt", row.noopt[i])] if table.definition.has_noopt else [])
            for kind, cell in kinds:
                for key, value in _numbers(cell).items():
                    record[f"{phone.device}_{kind}_{key}"] = value
        for col, value in row.paper_ms.items():
            record[f"paper_{column_key(col)}_ms"] = value
        records.append(record)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]) if records else ["row"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def session_set_folder(table: SideBySide) -> str:
    """"sessions-4-5-6": the phones' sessions, in phone order (each phone's pooled ones when pooled)."""
    ids = [session_of(t) for t in table.tables]
    if all(i is not None for i in ids):
        return "sessions-" + "-".join(map(str, ids))
    pooled = [s for t in table.tables for s in t.sessions]
    return "sessions-" + "-".join(map(str, pooled)) if pooled else "no-session"


def write_side_by_side(table: SideBySide, reports_dir: Path | str, extra: dict[str, Any] | None = None) -> list[Path]:
    """Markdown, CSV and JSON under <reports_dir>/side-by-side/sessions-<ids>/table-<name>-<device>-....*,
    then side-by-side/latest/ pointed at them when their newest session is the newest shown there
    (as a phone's own reports: tables/export/files.py). Each set of sessions keeps its files."""
    extra = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **(extra or {})}
    ids = [session_of(t) for t in table.tables]
    newest = max(ids) if ids and all(i is not None for i in ids) else None  # type: ignore[type-var]
    folder = Path(reports_dir) / FOLDER / session_set_folder(table)
    stem = f"table-{table.name}-{'-'.join(table.devices)}"
    data = {**to_json_dict(table), **{k: v for k, v in extra.items() if isinstance(v, (str, int, float))},
            "sessions": ids, "session_id": newest}
    paths = {folder / f"{stem}.md": to_markdown(table, extra), folder / f"{stem}.csv": to_csv(table),
             folder / f"{stem}.json": json.dumps(data, indent=2) + "\n"}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in paths.items():
            path.write_text(text, encoding="utf-8")
        if newest is not None:
            point_latest(list(paths), folder.parent / LATEST, newest, f"{stem}.json")
    except OSError as err:
        raise MnvError(f"cannot write the reports to {folder}: {err.strerror or err}.",
                       f"Pass a writable folder with --reports-dir DIR, or make {folder} writable.") from err
    return list(paths)
