"""The table as Markdown: a GitHub/pandoc pipe table, the agreement, the op profile, notes and provenance."""

from __future__ import annotations

from mnv3bench.tables.export.display import (
    MISSING,
    Grid,
    agreement_grid,
    agreement_title,
    op_block_grid,
    op_profile_grid,
    table_grid,
    warning_lines,
)
from mnv3bench.tables.paper import VERSION_LABELS
from mnv3bench.tables.result import TableResult


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown_table(grid: Grid) -> str:
    """A pipe table; text columns left, numbers right."""
    header = "| " + " | ".join(_md_cell(c) for c in grid.headers) + " |"
    align = "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(grid.headers))) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in grid.rows]
    return "\n".join([header, align, *body])


def to_markdown(result: TableResult) -> str:
    defn = result.definition
    lines = [
        f"## {defn.title}",
        "",
        f"Device: **{result.device}**" + (f" (paper column {result.device_column})" if result.device_column else "")
        + f". Compared with the paper's {result.agreement_column} column"
        + ("." if result.absolute_comparable else "; absolute numbers are not comparable, only ratios are."),
        "",
        markdown_table(table_grid(result)),
        "",
        f"### Agreement with the paper: {agreement_title(result)}",
        "",
        markdown_table(agreement_grid(result)),
        "",
    ]
    ops = op_profile_grid(result)
    if ops is not None:
        lines += ["### h-swish time by op type", "", markdown_table(ops), ""]
    blocks = op_block_grid(result)
    if blocks is not None:
        lines += ["### Where the op time goes (ms per run, share of the run)", "", markdown_table(blocks), ""]
    if ops is None and result.op_profile_note:
        lines += ["### Op profile", "", result.op_profile_note, ""]
    warnings = warning_lines(result)
    if warnings:
        lines += ["### Warnings", "", *(f"- {w}" for w in warnings), ""]
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
