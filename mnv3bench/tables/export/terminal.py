"""The table on the terminal: Rich tables for the rows, the agreement and the op profile, then the notes."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from mnv3bench.tables.export.display import (
    Grid,
    agreement_grid,
    agreement_title,
    op_profile_grid,
    table_grid,
)
from mnv3bench.tables.result import TableResult


def _rich_table(grid: Grid, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(grid.headers):
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
    for values in grid.rows:
        table.add_row(*values)
    return table


def to_rich(result: TableResult) -> Group:
    parts: list[Any] = [_rich_table(table_grid(result), title=f"{result.definition.title} — {result.device}")]
    parts.append(_rich_table(agreement_grid(result), title=f"Agreement with the paper: {agreement_title(result)}"))
    ops = op_profile_grid(result)
    if ops is not None:
        parts.append(_rich_table(ops, title="h-swish time by op type (op profiling)"))
    elif result.op_profile_note:
        parts.append(Text(result.op_profile_note, style="yellow"))
    parts.append(Text("\n".join(f"• {n}" for n in result.notes)))
    return Group(*parts)
