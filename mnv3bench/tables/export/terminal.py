"""The table on the terminal: Rich tables for the rows, the agreement and the op profile, then the notes.

Each table fits the terminal without breaking a word. When its cells on one line each fit,
they are shown as in the Markdown; on a narrower terminal the table turns compact: headers
are abbreviated (with a legend under the table), every interval is stacked under its median
and written as one word (19.6–20.4), and only text cells wrap, between words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mnv3bench.tables.export.display import (
    Grid,
    agreement_grid,
    agreement_title,
    op_block_grid,
    op_profile_grid,
    table_grid,
    warning_lines,
)
from mnv3bench.tables.result import TableResult

# "20.0 ms [19.6, 20.4]", "1.150 [1.116, 1.185]": a value with its interval.
_INTERVAL = re.compile(r"^(?P<value>\S+)(?: ms)? \[(?P<low>[^,\]]+), (?P<high>[^\]]+)\](?P<rest>.*)$")
# "20.0 ms (n=2; a CI needs 3 trials)": a value and why it has no interval.
_NO_INTERVAL = re.compile(r"^(?P<value>\S+) ms \((?P<why>[^)]*)\)(?P<rest>.*)$")
_SAME_AS_OPT = " (= opt, no h-swish)"


def _compact_header(header: str, device: str) -> tuple[str, str | None]:
    """A short header and its legend entry (None when it needs none)."""
    rules = [
        (f"opt ({device})", "opt ms", "opt ms: measured median, h-swish fused (95% CI below)"),
        (f"no-opt ({device})", "no-opt ms", "no-opt ms: measured median, h-swish naive (95% CI below)"),
        (f"latency ({device})", "ms", "ms: measured median (95% CI below)"),
        ("Top-1 % (paper)", "Top-1ᵖ", None),
        ("MAdds (counted)", "MAdds", "MAdds: counted from the architecture"),
        ("paper MAdds", "MAddsᵖ", None),
        ("paper version", "ver.ᵖ", None),
        ("measured ratio [95% CI]", "ratio", "ratio: measured ratio of medians (95% CI below)"),
        ("paper ratio", "ratioᵖ", None),
    ]
    for full, short, legend in rules:
        if header == full:
            return short, legend
    match = re.fullmatch(r"paper (P-\d)( no-opt)? ms", header)
    if match:
        return f"{match.group(1)}{match.group(2) or ''} msᵖ", None
    match = re.fullmatch(r"paper Δ \((P-\d)\)", header)
    if match:
        return f"Δ {match.group(1)}ᵖ", None
    return header, None


def _compact_cell(text: str) -> str:
    same = text.endswith(_SAME_AS_OPT)
    if same:
        text = text[: -len(_SAME_AS_OPT)]
    match = _INTERVAL.match(text)
    if match:
        text = f"{match['value']}\n{match['low']}–{match['high']}{match['rest']}"
    else:
        match = _NO_INTERVAL.match(text)
        if match:
            text = f"{match['value']}\n({match['why']}){match['rest']}"
    return text + ("\n= opt" if same else "")


def _rich_table(grid: Grid, title: str | None, *, compact: bool) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD, pad_edge=not compact,
                  collapse_padding=compact)
    for i, name in enumerate(grid.headers):
        # Text wraps between words; no column is narrower than its longest word, so none is cut.
        words = [w for text in (name, *(row[i] for row in grid.rows)) for w in text.split()]
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold",
                         min_width=max((len(w) for w in words), default=1))
    for values in grid.rows:
        table.add_row(*values)
    return table


def _compact_grid(grid: Grid, device: str) -> tuple[Grid, list[str]]:
    headers, legend = [], []
    for header in grid.headers:
        short, entry = _compact_header(header, device)
        headers.append(short)
        if entry:
            legend.append(entry)
    if any(h.endswith("ᵖ") for h in headers):
        legend.append("ᵖ: the paper's number")
    rows = tuple(tuple(_compact_cell(cell) for cell in row) for row in grid.rows)
    return Grid(tuple(headers), rows), legend


class FittedTable:
    """A grid drawn as wide as it needs when that fits the console, else compact with a legend."""

    def __init__(self, grid: Grid, title: str, device: str) -> None:
        self.grid, self.title, self.device = grid, title, device

    def _natural_width(self, console: Console, options: ConsoleOptions, table: Table) -> int:
        for column in table.columns:
            column.no_wrap = True
        width = Measurement.get(console, options.update(width=10_000), table).maximum
        for column in table.columns:
            column.no_wrap = False
        return width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = _rich_table(self.grid, self.title, compact=False)
        if self._natural_width(console, options, wide) <= options.max_width:
            yield wide
            return
        grid, legend = _compact_grid(self.grid, self.device)
        yield _rich_table(grid, self.title, compact=True)
        if legend:
            yield Text("; ".join(legend), style="dim")


def _bullets(lines: Iterable[str]) -> str:
    return "\n".join(f"• {line}" for line in lines)


def to_rich(result: TableResult) -> Group:
    parts: list[Any] = [FittedTable(table_grid(result), f"{result.definition.title} — {result.device}", result.device)]
    parts.append(FittedTable(agreement_grid(result), f"Agreement with the paper: {agreement_title(result)}",
                             result.device))
    ops = op_profile_grid(result)
    if ops is not None:
        parts.append(FittedTable(ops, "h-swish time by op type (op profiling)", result.device))
    blocks = op_block_grid(result)
    if blocks is not None:
        parts.append(FittedTable(blocks, "Where the op time goes: ms per run (share of the run)", result.device))
    if ops is None and result.op_profile_note:
        parts.append(Text(result.op_profile_note, style="yellow"))
    parts.append(Text(_bullets(result.notes)))
    warnings = warning_lines(result)
    if warnings:
        parts.append(Text("Warnings:\n" + _bullets(warnings), style="yellow"))
    return Group(*parts)
