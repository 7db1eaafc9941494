"""One table measured on several phones: a measured column per phone, beside the paper's.

`table 3 --device pixel1 --device pixel2 --device pixel3` computes each phone's TableResult as
a single-phone `table` does (compute.py), then puts them side by side here. Tables 3 and 4
print P-1, P-2 and P-3: each phone's column sits next to the paper's column of that phone.
The other tables were measured on a Pixel 1 only; they get one measured column per phone,
beside the paper's one column.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv3bench.tables.definitions import TableDef
from mnv3bench.tables.paper import PAPER_COLUMNS
from mnv3bench.tables.result import Cell, TableResult


@dataclass(frozen=True)
class SideRow:
    label: str
    opt: tuple[Cell | None, ...]  # one per phone, in the order the phones were given
    noopt: tuple[Cell | None, ...]  # likewise; empty when the table has no no-opt column
    paper_ms: dict[str, float | None]  # paper column -> the paper's latency (final version only)
    paper_early_ms: dict[str, float]  # paper column -> an early-version latency, kept apart


@dataclass(frozen=True)
class SideBySide:
    definition: TableDef
    tables: tuple[TableResult, ...]  # one per phone, each computed as a single-phone table

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(t.device for t in self.tables)

    def device_label(self, table: TableResult) -> str:
        """"pixel1 (P-1)" for a phone the paper measured, else the profile name."""
        return f"{table.device} ({table.device_column})" if table.device_column else table.device

    @property
    def paper_columns(self) -> tuple[str, ...]:
        """The paper's columns to show: the phones' own (P-1, P-2, P-3, in the paper's order)
        for the tables that print one per phone, else the table's one column."""
        shown = {c for t in self.tables for c in t.paper_columns}
        return tuple(c for c in PAPER_COLUMNS if c in shown)

    def rows(self) -> list[SideRow]:
        out: list[SideRow] = []
        for i, first in enumerate(self.tables[0].table_rows):
            per_phone = [t.table_rows[i] for t in self.tables]
            paper: dict[str, float | None] = {}
            early: dict[str, float] = {}
            for row in per_phone:
                paper.update({c: v for c, v in row.paper.latency_ms.items() if v is not None or c not in paper})
                early.update(row.paper.early_ms)
            out.append(SideRow(
                first.label, tuple(r.opt for r in per_phone),
                tuple(r.noopt for r in per_phone) if self.definition.has_noopt else (),
                {c: paper.get(c) for c in self.paper_columns}, early))
        return out


def side_by_side(tables: list[TableResult]) -> SideBySide:
    """The phones' tables of one definition, side by side (in the order given)."""
    names = {t.name for t in tables}
    if len(names) != 1 or not tables:
        raise ValueError(f"side by side needs one table on several phones, got {sorted(names)}")
    return SideBySide(tables[0].definition, tuple(tables))
