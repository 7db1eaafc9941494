"""A table reads one session: the one that measured most of its variants (selection.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from mnv3bench.api import selected_table
from tests.tables.helpers import TABLE5_MS, synthetic_trials


def _measured(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([f.assign(measured_in=f["session_id"], flags="{}", device_fingerprint="fp") for f in frames],
                     ignore_index=True)


def test_a_table_never_mixes_sessions_and_names_the_one_left_out():
    full = synthetic_trials(TABLE5_MS, session_id=1)
    loaded = synthetic_trials({"large-hswish-fused": 40.0}, session_id=2, first_id=100)
    result = selected_table("5", _measured(full, loaded), "emulator")
    assert result.sessions == [1] and result.cells["large-hswish-fused"].summary.median == pytest.approx(20.0)
    assert result.extra["session_id"] == 1
    [warning] = result.warnings["sessions"]
    assert warning.startswith("also measured in session 2: large-hswish-fused 40 ms (5 trials)")

    newer = selected_table("5", _measured(full, loaded), "emulator", session=2)
    assert newer.sessions == [2] and len(newer.missing) == 8 and "sessions" in newer.warnings

    pooled = selected_table("5", _measured(full, loaded), "emulator", all_sessions=True)
    assert pooled.sessions == [1, 2] and pooled.extra["pooled_sessions"] == [1, 2]
    assert "pooled trials of sessions 1, 2" in pooled.warnings["sessions"][0]
