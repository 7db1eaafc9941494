"""A table on several phones side by side (tables/side_by_side.py and its exporters)."""

from __future__ import annotations

import csv
import io
import json

from rich.console import Console

from mnv3bench.api import table_result
from mnv3bench.tables.definitions import get_table
from mnv3bench.tables.export.side_by_side import (
    side_grid,
    to_csv,
    to_json_dict,
    to_markdown,
    to_rich,
)
from mnv3bench.tables.side_by_side import side_by_side
from tests.tables.helpers import TABLE5_MS, synthetic_trials

T3_MS = {"large-hswish-fused": 10.0, "large-0.75-hswish-fused": 9.0, "v2-1.0": 12.0, "small-hswish-fused": 3.5,
         "small-0.75-hswish-fused": 2.8, "v2-0.35": 3.3}


def _phones(name: str, medians: dict[str, float], devices: tuple[str, ...]):
    return side_by_side([table_result(name, synthetic_trials({v: ms * (1 + i) for v, ms in medians.items()},
                                                             session_id=i + 1, device_profile=device), device)
                         for i, device in enumerate(devices)])


def test_table_3_puts_each_pixel_beside_its_paper_column() -> None:
    assert set(get_table("3").variants()) == set(T3_MS)
    side = _phones("3", T3_MS, ("pixel1", "pixel2", "pixel3"))
    grid = side_grid(side)
    assert grid.headers == ("Row", "pixel1 (P-1) ms", "pixel2 (P-2) ms", "pixel3 (P-3) ms",
                            "paper P-1 ms", "paper P-2 ms", "paper P-3 ms")
    large = dict(zip(grid.headers, grid.rows[0], strict=True))
    assert large["Row"] == "V3-Large 1.0"
    assert large["pixel1 (P-1) ms"].startswith("10.0 ms [") and large["pixel3 (P-3) ms"].startswith("30.0 ms [")
    assert large["paper P-1 ms"] == "51"  # the paper's Table 3, as definitions quote it
    data = to_json_dict(side)
    assert data["devices"] == ["pixel1", "pixel2", "pixel3"] and data["paper_columns"] == ["P-1", "P-2", "P-3"]
    assert data["rows"][0]["measured"]["pixel2"]["opt"]["median_ms"] == 20.0
    assert data["rows"][0]["paper_ms"]["p1"] == 51
    json.dumps(data)  # plain values only
    header = next(csv.reader(io.StringIO(to_csv(side))))
    assert header[:5] == ["row", "pixel1_opt_median_ms", "pixel1_opt_ci_low_ms", "pixel1_opt_ci_high_ms", "pixel1_opt_n"]
    assert "| pixel1 (P-1) ms | pixel2 (P-2) ms |" in to_markdown(side)


def test_other_tables_get_one_column_per_device_beside_the_papers_one() -> None:
    side = _phones("5", TABLE5_MS, ("pixel1", "emulator"))
    headers = side_grid(side).headers
    assert headers == ("Row", "pixel1 (P-1) opt ms", "pixel1 (P-1) no-opt ms", "emulator opt ms",
                       "emulator no-opt ms", "paper P-1 ms")
    console = Console(width=80, record=True)
    console.print(to_rich(side))
    text = console.export_text()
    # The verdicts as a single phone's table heads them, and the path its own table is at now.
    assert "directions match" not in text
    for device in ("pixel1", "emulator"):
        counts = next(t for t in side.tables if t.device == device).verdict_counts()
        assert f"{device}: {counts.headline()} with the paper's" in text.replace("\n", " ")
        assert f"{device}/latest/table-5.md" in to_markdown(side)


def test_each_phones_notes_and_warnings_come_with_the_side_by_side_view() -> None:
    side = _phones("5", TABLE5_MS, ("pixel1", "pixel2"))
    side.tables[1].warnings = {"large-hswish-fused": ["throttled in trial 2. Let it cool down."]}
    side.tables[0].notes.append("Session 4 s measuring.")
    console = Console(width=100, record=True)
    console.print(to_rich(side))
    text = console.export_text()
    own = text[text.index("\npixel1:\n"):text.index("\npixel2:\n")]
    assert "• Session 4 s measuring." in own and text.count("Top-1 is not measured here") == 1  # shared: once
    assert "pixel2 warnings:\n• large-hswish-fused: throttled in trial 2. Let it cool down." in text
    assert "pixel1 warnings" not in text
    markdown = to_markdown(side)
    assert "### Warnings\n\n#### pixel2\n\n- large-hswish-fused: throttled in trial 2. Let it cool down." in markdown
    assert "#### pixel1" not in markdown
    assert to_json_dict(side)["warnings"] == {"pixel1": {}, "pixel2": side.tables[1].warnings}
