"""Numbers shown only where the trials support them, and warnings shown wherever numbers are."""

from __future__ import annotations

import pytest
from rich.console import Console

from mnv3bench.tables.compute import compute_table
from mnv3bench.tables.definitions import get_table
from mnv3bench.tables.export.csv import to_csv
from mnv3bench.tables.export.json import to_json_dict
from mnv3bench.tables.export.markdown import to_markdown
from mnv3bench.tables.export.terminal import to_rich
from tests.tables.helpers import TABLE5_MS, synthetic_trials


def _table5(trials: int):
    frame = synthetic_trials(TABLE5_MS)
    return compute_table(get_table("5"), frame[frame["trial_index"] < trials], device="emulator")


def _terminal(result) -> str:
    console = Console(width=400, record=True)
    console.print(to_rich(result))
    return console.export_text()


@pytest.mark.parametrize("trials", [1, 2])
def test_below_three_trials_no_interval_is_shown_anywhere(trials):
    result = _table5(trials)
    v3 = {r["row"]: r for r in to_json_dict(result)["rows"]}["V3"]["latency_ms_opt"]
    assert v3["median"] == pytest.approx(20.0 * (1 - 0.02) if trials == 1 else 20.0 * 0.985)
    assert v3["ci_low"] is None and v3["ci_high"] is None
    for text in (to_markdown(result), _terminal(result)):
        assert f"(n={trials}; a CI needs 3 trials)" in text
        assert " [" not in text.split("Agreement")[0]  # no "[low, high]" in the latency table
    assert "None" not in to_csv(result).split("\n")[0]


def test_a_single_trial_has_no_cv_in_the_csv():
    rows = to_csv(_table5(1)).splitlines()
    header = rows[0].split(",")
    assert rows[1].split(",")[header.index("opt_cv")] == ""  # absent, not 0.0
    assert rows[1].split(",")[header.index("opt_ci_low_ms")] == ""


def test_three_trials_give_an_interval():
    v3 = {r["row"]: r for r in to_json_dict(_table5(3))["rows"]}["V3"]["latency_ms_opt"]
    assert v3["ci_low"] < v3["median"] < v3["ci_high"]


def test_warnings_are_in_the_terminal_the_markdown_and_the_json():
    result = _table5(5)
    result.warnings = {"large-relu": ["Trials vary a lot: CV 15.4% is above 5%. Let the phone cool down."]}
    line = "large-relu: Trials vary a lot: CV 15.4% is above 5%."
    assert line in to_markdown(result) and "### Warnings" in to_markdown(result)
    assert line in _terminal(result) and "Warnings:" in _terminal(result)
    assert to_json_dict(result)["warnings"] == result.warnings


def test_the_latency_note_names_what_the_change_is_against():
    notes = " ".join(_table5(5).notes)
    assert "reference column" not in notes
