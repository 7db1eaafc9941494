"""Terminal tables fit 100 and 160 columns without cutting a word; wide terminals get the full cells."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from mnv3bench.tables.compute import compute_table
from mnv3bench.tables.definitions import TABLES, get_table
from mnv3bench.tables.export.display import agreement_grid, table_grid
from mnv3bench.tables.export.terminal import to_rich
from tests.tables.helpers import TABLE5_MS, synthetic_trials


def _result(name: str):
    medians = TABLE5_MS if name == "5" else {v: 10.0 + i for i, v in enumerate(get_table(name).variants())}
    return compute_table(get_table(name), synthetic_trials(medians), device="emulator")


def _render(result, width: int) -> str:
    console = Console(width=width, record=True)
    console.print(to_rich(result))
    return console.export_text()


def _words(cell: str) -> list[str]:
    """The words a cell must show whole: a value, and its interval as one word."""
    match = re.match(r"^(\S+)(?: ms)? \[([^,\]]+), ([^\]]+)\](.*)$", cell)
    if match:
        return [match[1], f"{match[2]}–{match[3]}", *match[4].split()]
    return [w for w in cell.replace(" ms ", " ").split() if w not in ("ms",)]


@pytest.mark.parametrize("width", [100, 160])
@pytest.mark.parametrize("name", list(TABLES))
def test_tables_fit_without_cutting_words(name, width):
    result = _result(name)
    text = _render(result, width)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    tokens = set(text.split())
    for grid in (table_grid(result), agreement_grid(result)):
        for row in grid.rows:
            for cell in row:
                compact = _words(cell.removesuffix(" (= opt, no h-swish)"))
                wide = cell.split()  # a table that fits shows the cell as it is
                assert set(compact) <= tokens or set(wide) <= tokens, (name, width, cell, tokens)


def test_table_5_at_100_columns_stacks_intervals_and_explains_abbreviations():
    text = _render(_result("5"), 100)
    assert "19.6–20.4" in text and "20.0 ms [19.6, 20.4]" not in text
    assert "ᵖ: the paper's number" in " ".join(text.split())


def test_a_wide_terminal_gets_the_cells_as_in_the_markdown():
    assert "20.0 ms [19.6, 20.4]" in _render(_result("5"), 250)


@pytest.mark.parametrize("columns", ["100", "160"])
def test_the_terminal_width_comes_from_columns(columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", columns)
    console = Console(record=True, force_terminal=True)
    assert console.width == int(columns)
    console.print(to_rich(_result("5")))
    text = console.export_text()
    assert "19.6–20.4" in text and max(len(line.rstrip()) for line in text.splitlines()) <= int(columns)
