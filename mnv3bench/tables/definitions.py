"""The tables this tool regenerates: which variants fill which cells, and what the paper says.

A table is data: rows, each naming the variant measured in its main ("opt") column, the
variant in its no-opt column (h-swish from primitive ops) where the table has one, the row
its change is relative to, and the paper's numbers for it. All of a table's variants are
measured in one interleaved session, so `TableDef.variants()` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv3bench.errors import UsageError
from mnv3bench.tables import paper
from mnv3bench.tables.paper import PaperRow


@dataclass(frozen=True)
class RowDef:
    label: str
    opt: str  # variant in the main latency column
    noopt: str | None = None  # variant in the no-opt column; == opt for a row without h-swish
    baseline: str | None = None  # label of the row this row's change is relative to
    paper: PaperRow | None = None
    paper_early: PaperRow | None = None  # the same claim in the early version, shown labelled

    @property
    def noopt_is_opt(self) -> bool:
        return self.noopt is not None and self.noopt == self.opt


@dataclass(frozen=True)
class TableDef:
    name: str
    title: str
    description: str
    source: str
    rows: tuple[RowDef, ...]
    has_noopt: bool = False
    # Tables 3 and 4 give P-1, P-2 and P-3: compare with the device's own column. The
    # other tables are measured on a Pixel 1 only.
    per_device_column: bool = False
    fixed_column: str = "P-1"
    shows_top1: bool = False
    counts_madds: bool = False  # show MAdds (and params) counted from the architecture

    def variants(self) -> list[str]:
        """Every variant the table needs, each once, in row order (opt before no-opt)."""
        names: list[str] = []
        for row in self.rows:
            for name in (row.opt, row.noopt):
                if name is not None and name not in names:
                    names.append(name)
        return names

    def row(self, label: str) -> RowDef:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(label)


_T5 = paper.TABLE5
TABLE_5 = TableDef(
    name="5",
    title="Table 5: effect of non-linearities on MobileNetV3-Large",
    description="V3, 0.85, ReLU, h-swish @16, h-swish @112; fused h-swish (P-1) vs h-swish from primitive ops (no-opt)",
    source="Table 5",
    rows=(
        RowDef("V3", "large-hswish-fused", "large-hswish-naive", None, _T5["V3"]),
        RowDef("0.85", "large-0.85-hswish-fused", "large-0.85-hswish-naive", "V3", _T5["0.85"]),
        RowDef("ReLU", "large-relu", "large-relu", "V3", _T5["ReLU"]),
        RowDef("h-swish @16", "large-hswish@16-fused", "large-hswish@16-naive", "V3", _T5["h-swish @16"]),
        RowDef("h-swish @112", "large-hswish@112-fused", "large-hswish@112-naive", "V3", _T5["h-swish @112"]),
    ),
    has_noopt=True,
    shows_top1=True,
)

LAST_STAGE = TableDef(
    name="last-stage",
    title="§5.1: efficient last stage vs the original (MobileNetV2-style) last stage",
    description="large-hswish-fused vs large-hswish-fused-original, with counted MAdds",
    source="§5.1",
    rows=(
        RowDef("original last stage", "large-hswish-fused-original"),
        RowDef("efficient last stage", "large-hswish-fused", None, "original last stage", paper.LAST_STAGE, paper.LAST_STAGE_EARLY),
    ),
    counts_madds=True,
)

STEM = TableDef(
    name="stem",
    title="§5.2: stem with 16 filters and h-swish vs 32 filters and ReLU",
    description="large-hswish-fused vs large-hswish-fused-stem32relu, with counted MAdds",
    source="§5.2",
    rows=(
        RowDef("32 ReLU stem", "large-hswish-fused-stem32relu"),
        RowDef("16 h-swish stem", "large-hswish-fused", None, "32 ReLU stem", paper.STEM, paper.STEM_EARLY),
    ),
    counts_madds=True,
)

SWISH_INT8 = TableDef(
    name="swish-int8",
    title="§5.2: swish vs h-swish in quantized (int8) mode",
    description="large-hswish-fused-int8 vs large-swish-int8",
    source="§5.2",
    rows=(
        RowDef("h-swish (int8)", "large-hswish-fused-int8"),
        RowDef("swish (int8)", "large-swish-int8", None, "h-swish (int8)", paper.SWISH_INT8),
    ),
)

_T3 = paper.TABLE3
TABLE_3 = TableDef(
    name="3",
    title="Table 3: floating-point MobileNetV3 vs MobileNetV2",
    description="V3-Large/Small at 1.0 and 0.75, V2 1.0 and 0.35, fp32",
    source="Table 3",
    rows=(
        RowDef("V3-Large 1.0", "large-hswish-fused", None, "V2 1.0", _T3["V3-Large 1.0"]),
        RowDef("V3-Large 0.75", "large-0.75-hswish-fused", None, "V2 1.0", _T3["V3-Large 0.75"]),
        RowDef("V2 1.0", "v2-1.0", None, None, _T3["V2 1.0"]),
        RowDef("V3-Small 1.0", "small-hswish-fused", None, "V2 0.35", _T3["V3-Small 1.0"]),
        RowDef("V3-Small 0.75", "small-0.75-hswish-fused", None, "V2 0.35", _T3["V3-Small 0.75"]),
        RowDef("V2 0.35", "v2-0.35", None, None, _T3["V2 0.35"]),
    ),
    per_device_column=True,
    shows_top1=True,
    counts_madds=True,
)

_T4 = paper.TABLE4
TABLE_4 = TableDef(
    name="4",
    title="Table 4: quantized (int8) MobileNetV3 vs MobileNetV2",
    description="V3-Large 1.0, V3-Small 1.0, V2 1.0, V2 0.35, int8",
    source="Table 4",
    rows=(
        RowDef("V3-Large 1.0", "large-hswish-fused-int8", None, "V2 1.0", _T4["V3-Large 1.0"]),
        RowDef("V2 1.0", "v2-1.0-int8", None, None, _T4["V2 1.0"]),
        RowDef("V3-Small 1.0", "small-hswish-fused-int8", None, "V2 0.35", _T4["V3-Small 1.0"]),
        RowDef("V2 0.35", "v2-0.35-int8", None, None, _T4["V2 0.35"]),
    ),
    per_device_column=True,
    shows_top1=True,
)

TABLES: dict[str, TableDef] = {t.name: t for t in (TABLE_5, LAST_STAGE, STEM, SWISH_INT8, TABLE_3, TABLE_4)}


def table_names() -> list[str]:
    return list(TABLES)


def get_table(name: str) -> TableDef:
    """The table called `name`; UsageError listing the valid names otherwise."""
    key = name.strip().lower()
    if key.startswith("table"):
        key = key[len("table") :].strip(" -_")
    if key in TABLES:
        return TABLES[key]
    raise UsageError(
        f"unknown table {name!r}; the tables are: {', '.join(TABLES)}.",
        "Pick one of those names, e.g. `mnv3bench table 5 --device emulator`; `mnv3bench table --list` describes them.",
    )
