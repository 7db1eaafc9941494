"""The tables' op-profile-by-block view: grid, Markdown and JSON (from stored profiles)."""

from __future__ import annotations

from types import SimpleNamespace

from mnv3bench.tables.export.display import op_block_grid
from mnv3bench.tables.result import VariantBlocks


def blocks(variant: str, stem: float, last: float, hswish: float, replacement: float) -> VariantBlocks:
    total = 10.0
    rows = (("stem", stem, stem / total), ("bottleneck 1", 10.0 - stem - last, 0.0), ("last stage", last, last / total))
    return VariantBlocks(variant, 3, total, rows, 0.0, hswish, replacement)


def test_grid_shows_stem_last_stage_and_hswish_ops_with_their_share() -> None:
    result = SimpleNamespace(op_blocks=[blocks("large-hswish-fused-original", 1.0, 3.0, 0.5, 0.0),
                                        blocks("large-hswish-naive", 1.0, 1.0, 0.0, 1.5)])
    grid = op_block_grid(result)  # type: ignore[arg-type]
    assert grid is not None
    assert grid.headers[3:7] == ("stem", "last stage", "HARD_SWISH", "ADD/MUL/RELU6 (h-swish)")
    assert grid.rows[0][4] == "3.000 (30.0%)" and grid.rows[0][5] == "0.500 (5.0%)"
    assert grid.rows[1][6] == "1.500 (15.0%)"

    assert op_block_grid(SimpleNamespace(op_blocks=None)) is None  # type: ignore[arg-type]
