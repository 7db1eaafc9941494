"""Renderers: Markdown parses as a table, CSV columns, JSON keys, PNG files, folder errors."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from rich.console import Console

from mnv3bench.errors import MnvError
from mnv3bench.tables.compute import compute_table
from mnv3bench.tables.definitions import get_table
from mnv3bench.tables.export.csv import to_csv
from mnv3bench.tables.export.display import format_latency
from mnv3bench.tables.export.files import write_reports
from mnv3bench.tables.export.json import json_rows, to_json_dict
from mnv3bench.tables.export.markdown import to_markdown
from mnv3bench.tables.export.terminal import to_rich
from tests.tables.helpers import TABLE5_MS, synthetic_trials

TABLE5_JSON_KEYS = {
    "row", "variant_opt", "variant_noopt", "latency_ms_opt", "latency_ms_noopt",
    "paper_top1", "paper_p1_ms", "paper_p1_noopt_ms",
}


@pytest.fixture(scope="module")
def table5():
    return compute_table(get_table("5"), synthetic_trials(TABLE5_MS), device="emulator")


def _pipe_tables(markdown: str) -> list[list[list[str]]]:
    """Every pipe table in the text, as rows of cells (the separator row dropped)."""
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]  # an escaped \| stays inside its cell
            current.append([c.strip() for c in cells])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_latency_format_has_units_and_interval():
    assert format_latency(51.43, 50.91, 52.04) == "51.4 ms [50.9, 52.0]"
    assert format_latency(5.123, 5.0, 5.3) == "5.12 ms [5.00, 5.30]"
    assert format_latency(51.4, None, None, 1) == "51.4 ms (n=1)"
    assert format_latency(None, None, None) == "—"


def test_markdown_is_a_well_formed_paper_style_table(table5):
    text = to_markdown(table5)
    assert text.startswith("## Table 5")
    tables = _pipe_tables(text)
    main, agreement = tables[0], tables[1]
    width = len(main[0])
    assert all(len(r) == width for r in main), "every row has as many cells as the header"
    assert set(main[1]) <= {":---", "---:"}
    assert [r[0] for r in main[2:]] == ["V3", "0.85", "ReLU", "h-swish @16", "h-swish @112"]
    v3 = dict(zip(main[0], main[2]))
    assert v3["opt (emulator)"] == "20.0 ms [19.6, 20.4]" and v3["paper P-1 ms"] == "51.4"
    early = dict(zip(main[0], main[3]))
    assert early["paper P-1 ms"] == "55 (early; V3 66 there)" and early["paper version"] == "early"
    relu = dict(zip(main[0], main[4]))
    assert "(= opt" in relu["no-opt (emulator)"]
    assert agreement[0][0] == "Comparison" and all(len(r) == len(agreement[0]) for r in agreement)
    assert "only ratios are" in text and "Top-1 is not measured" in text and "Trials used: 45" in text


def test_rich_output_shows_intervals(table5):
    console = Console(width=250, record=True)
    console.print(to_rich(table5))
    text = console.export_text()
    assert "20.0 ms [19.6, 20.4]" in text and "Agreement with the paper" in text


def test_json_table5_rows_have_exactly_the_documented_keys(table5):
    rows = json_rows(table5)
    assert [set(r) for r in rows] == [TABLE5_JSON_KEYS] * 5
    v3 = rows[0]
    assert set(v3["latency_ms_opt"]) == {"median", "ci_low", "ci_high"}
    assert (v3["paper_top1"], v3["paper_p1_ms"], v3["paper_p1_noopt_ms"]) == (75.2, 51.4, 57.5)
    early = rows[1]
    assert early["paper_p1_ms"] is None and early["paper_top1"] == 74.3  # early latency never in a final column
    doc = json.loads(json.dumps(to_json_dict(table5)))
    assert any(p["row"] == "0.85" and p["version"] == "early" and p["latency_ms"] == {"P-1": 55} for p in doc["paper"])
    assert doc["trials"]["large-relu"] == [21, 22, 23, 24, 25] and doc["sessions"] == [1]


def test_csv_columns(table5):
    reader = csv.DictReader(io.StringIO(to_csv(table5)))
    expected = {"row", "variant_opt", "variant_noopt", "opt_median_ms", "opt_ci_low_ms", "opt_ci_high_ms",
                "noopt_median_ms", "opt_change_pct", "paper_p1_ms", "paper_p1_noopt_ms", "paper_version"}
    assert expected <= set(reader.fieldnames)
    assert len(list(reader)) == 5


def test_report_files_are_written(table5, tmp_path):
    written = write_reports(table5, tmp_path)
    folder = tmp_path / "emulator" / "session-1"
    names = {p.name for p in written}
    assert names == {"table-5.md", "table-5.csv", "table-5-agreement.csv", "table-5.json",
                     "table-5-latency.png", "table-5-change.png"}
    for path in written:
        assert path.parent == folder and path.stat().st_size > 0
    for png in ("table-5-latency.png", "table-5-change.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((folder / "table-5.json").read_text())["table"] == "5"


def test_unwritable_reports_folder_names_folder_and_fix(table5, tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(MnvError) as err:
        write_reports(table5, blocker)
    assert str(blocker / "emulator") in err.value.message
    assert "--reports-dir" in err.value.hint


def test_other_tables_render_their_documented_keys():
    trials = synthetic_trials({"large-hswish-fused-int8": 10.0, "large-swish-int8": 11.5})
    result = compute_table(get_table("swish-int8"), trials, device="emulator")
    rows = json_rows(result)
    assert set(rows[1]) == {"row", "variant_opt", "variant_noopt", "latency_ms_opt", "latency_ms_noopt",
                            "change_pct_opt", "paper_change_pct"}
    assert rows[1]["change_pct_opt"] == pytest.approx(15.0) and rows[1]["paper_change_pct"] == pytest.approx(15.0)
    assert rows[1]["latency_ms_noopt"] is None
    assert "+15%" in to_markdown(result)
