"""The paper's own numbers, each with the table or section it comes from and its version.

Source: "Searching for MobileNetV3", Howard et al. "final" is the ICCV 2019 camera-ready /
arXiv v5 text; "early" is the first arXiv version, whose latencies are on another scale
(V3-Large 66 ms instead of 51.4 ms on a Pixel 1). A value is never moved from one version's
column into the other's: an early row carries its own early reference so that ratios are
taken within one version.

These numbers are quoted, never measured: the tables show them beside measurements, and
nothing here is ever written into a measured column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FINAL = "final"
EARLY = "early"
VERSION_LABELS = {
    FINAL: "final (ICCV 2019 / arXiv v5)",
    EARLY: "early (first arXiv version)",
}
PAPER_COLUMNS = ("P-1", "P-2", "P-3")  # Pixel 1 / 2 / 3, single big core, TFLite benchmark tool


@dataclass(frozen=True)
class PaperRow:
    """One row (or one claim) of the paper, in one version.

    latency_ms / noopt_ms map a phone column ("P-1", ...) to milliseconds. When a row's
    version differs from its table's reference row, reference_ms holds the reference row's
    latency on the row's own scale, so a ratio never crosses versions.
    Claims that the paper states only as a change (e.g. "saves 7 ms, 11%") use change_ms,
    change_pct and change_madds_m instead of latencies.
    """

    label: str
    source: str
    version: str = FINAL
    top1: float | None = None
    madds_m: float | None = None
    params_m: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    noopt_ms: dict[str, float] = field(default_factory=dict)
    reference_ms: dict[str, float] = field(default_factory=dict)
    printed_change: str | None = None  # the paper's own words for the change, e.g. "-1%"
    change_ms: float | None = None
    change_pct: float | None = None
    change_madds_m: float | None = None
    note: str = ""

    @property
    def version_label(self) -> str:
        return VERSION_LABELS[self.version]


def _p(p1: float, p2: float, p3: float) -> dict[str, float]:
    return {"P-1": p1, "P-2": p2, "P-3": p3}


# Table 3: floating point, ms on Pixel 1 / 2 / 3 (final).
TABLE3 = {
    "V3-Large 1.0": PaperRow("V3-Large 1.0", "Table 3", top1=75.2, madds_m=219, params_m=5.4, latency_ms=_p(51, 61, 44)),
    "V3-Large 0.75": PaperRow("V3-Large 0.75", "Table 3", top1=73.3, madds_m=155, params_m=4.0, latency_ms=_p(39, 46, 40)),
    "V3-Small 1.0": PaperRow("V3-Small 1.0", "Table 3", top1=67.4, madds_m=56, params_m=2.5, latency_ms=_p(15.8, 19.4, 14.4)),
    "V3-Small 0.75": PaperRow("V3-Small 0.75", "Table 3", top1=65.4, madds_m=44, params_m=2.0, latency_ms=_p(12.8, 15.6, 11.7)),
    "V2 1.0": PaperRow("V2 1.0", "Table 3", top1=72.0, madds_m=300, params_m=3.4, latency_ms=_p(64, 76, 56)),
    "V2 0.35": PaperRow("V2 0.35", "Table 3", top1=60.8, madds_m=59.2, params_m=1.6, latency_ms=_p(16.6, 19.6, 13.9)),
}

# Table 4: 8-bit quantized, ms on Pixel 1 / 2 / 3 (final).
TABLE4 = {
    "V3-Large 1.0": PaperRow("V3-Large 1.0", "Table 4", top1=73.8, latency_ms=_p(44, 42.5, 31.7)),
    "V2 1.0": PaperRow("V2 1.0", "Table 4", top1=70.9, latency_ms=_p(52, 48.3, 37.0)),
    "V3-Small 1.0": PaperRow("V3-Small 1.0", "Table 4", top1=64.9, latency_ms=_p(15.5, 14.9, 10.7)),
    "V2 0.35": PaperRow("V2 0.35", "Table 4", top1=57.2, latency_ms=_p(16.7, 15.6, 11.9)),
}

# Table 5: effect of nonlinearities on V3-Large, Pixel 1 (final), plus the early "0.85" row.
TABLE5 = {
    "V3": PaperRow("V3", "Table 5", top1=75.2, latency_ms={"P-1": 51.4}, noopt_ms={"P-1": 57.5}),
    "0.85": PaperRow(
        "0.85",
        "Table 5 (early version only)",
        version=EARLY,
        top1=74.3,
        latency_ms={"P-1": 55},
        reference_ms={"P-1": 66},
        note="early-version latency scale (V3 = 66 ms there); no no-opt value",
    ),
    "ReLU": PaperRow(
        "ReLU", "Table 5", top1=74.5, latency_ms={"P-1": 50.5}, noopt_ms={"P-1": 50.5}, printed_change="-1%"
    ),
    "h-swish @16": PaperRow(
        "h-swish @16", "Table 5", top1=75.4, latency_ms={"P-1": 53.5}, noopt_ms={"P-1": 68.9}, printed_change="+4%"
    ),
    "h-swish @112": PaperRow(
        "h-swish @112", "Table 5", top1=75.0, latency_ms={"P-1": 51}, noopt_ms={"P-1": 54.4}, printed_change="-0.5%"
    ),
}

# §5.1: the efficient last stage against the original (MobileNetV2-style) one.
LAST_STAGE = PaperRow(
    "efficient last stage",
    "§5.1",
    change_ms=-7,
    change_pct=-11,
    change_madds_m=-30,
    printed_change="-7 ms (-11%), -30M MAdds",
    note="independent arithmetic gives about -34M MAdds, not -30M",
)
LAST_STAGE_EARLY = PaperRow(
    "efficient last stage", "§5.1", version=EARLY, change_ms=-10, change_pct=-15, printed_change="-10 ms (-15%)"
)

# §5.2: stem with 16 filters and h-swish instead of 32 filters and ReLU.
STEM = PaperRow(
    "16 h-swish stem",
    "§5.2",
    change_ms=-2,
    change_madds_m=-10,
    latency_ms={"P-1": 51.4},
    printed_change="-2 ms, -10M MAdds",
    note="ratio derived with V3's 51.4 ms (Table 5); independent arithmetic gives about -10.4M MAdds",
)
STEM_EARLY = PaperRow(
    "16 h-swish stem", "§5.2", version=EARLY, change_ms=-3, latency_ms={"P-1": 66}, printed_change="-3 ms"
)

# §5.2: in quantized mode, swish instead of h-swish raised latency by 15%.
SWISH_INT8 = PaperRow("swish (int8)", "§5.2", change_pct=15, printed_change="+15%")

# Text of §5.2 (final) about Table 5, quoted in the agreement notes.
TABLE5_TEXT = (
    'the optimized h-swish "saves 6 ms (more than 10% of the runtime)" and '
    '"only adds an additional 1 ms compared to traditional ReLU" (§5.2, final)'
)


def paper_ratio(row: PaperRow, reference: PaperRow | None, column: str, *, noopt: bool = False) -> float | None:
    """The paper's latency ratio of `row` to `reference` in one column, within one version.

    Returns None when the paper gives no such pair (a missing value, or the two rows are
    from different versions and the row carries no reference of its own scale).
    """
    if not noopt and row.change_pct is not None:
        return 1 + row.change_pct / 100
    if not noopt and row.change_ms is not None and column in row.latency_ms:
        # A claim stated in ms: the row's latency is the faster model's, the other is it minus the change.
        faster = row.latency_ms[column]
        return faster / (faster - row.change_ms)
    values = row.noopt_ms if noopt else row.latency_ms
    if column not in values:
        return None
    if column in row.reference_ms and not noopt:
        return values[column] / row.reference_ms[column]
    if reference is not None and reference.version == row.version:
        ref_values = reference.noopt_ms if noopt else reference.latency_ms
        if column in ref_values:
            return values[column] / ref_values[column]
    return None


def paper_noopt_ratio(row: PaperRow, column: str) -> float | None:
    """The paper's no-opt / opt ratio of one row (h-swish from primitive ops vs fused)."""
    if column in row.noopt_ms and column in row.latency_ms:
        return row.noopt_ms[column] / row.latency_ms[column]
    return None
