"""`mnv3bench report` from a real SQLite file written by ResultStore; `table` usage errors."""

from __future__ import annotations

import json
import re

import pytest

from mnv3bench.cli import main
from mnv3bench.results import ResultStore, SessionRecord, TrialRecord
from tests.commands.helpers import store_session
from tests.tables.helpers import SPREAD, TABLE5_MS


def test_report_rerenders_from_the_database(tmp_path, capsys):
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, {k: 2 * v for k, v in TABLE5_MS.items()})  # an older, slower session
        newest = store_session(store, {k: v for k, v in TABLE5_MS.items() if k != "large-hswish@112-naive"})
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--device", "emulator", "--table", "5", "--db", str(db), "--json",
              "--reports-dir", str(tmp_path / "reports")])
    assert exit_info.value.code in (None, 0)
    out = capsys.readouterr()
    doc = json.loads(out.out)
    rows = {r["row"]: r for r in doc["rows"]}
    assert rows["V3"]["latency_ms_opt"]["median"] == pytest.approx(20.0)  # the newest session's trials
    assert rows["h-swish @112"]["latency_ms_noopt"]["median"] == pytest.approx(42.0)  # only the older one has it
    assert sorted(doc["sessions"]) == [1, newest]
    assert doc["missing"] == []
    assert (tmp_path / "reports" / "emulator" / "table-5.md").is_file()


def test_report_names_missing_variants(tmp_path, capsys):
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, {"large-hswish-fused": 20.0, "large-relu": 19.5})
    with pytest.raises(SystemExit):
        main(["report", "--device", "emulator", "--table", "5", "--db", str(db), "--reports-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert "large-hswish-naive" in captured.err
    assert "20.0 ms [" in captured.out


def test_report_without_trials_says_how_to_get_them(tmp_path, capsys):
    db = tmp_path / "results.db"
    ResultStore(db).close()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--device", "pixel3", "--db", str(db)])
    assert exit_info.value.code == 1
    assert "mnv3bench table 5 --device pixel3" in capsys.readouterr().err


def test_unknown_table_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["table", "6", "--device", "emulator"])
    assert exit_info.value.code == 2
    assert "5, last-stage, stem, swish-int8, 3, 4" in capsys.readouterr().err


def test_table_list_names_every_table(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["table", "--list"])
    assert exit_info.value.code in (None, 0)
    out = capsys.readouterr().out
    for name in ("5", "last-stage", "stem", "swish-int8", "3", "4"):
        assert re.search(rf"^{re.escape(name)}\s+\S", out, re.MULTILINE), name


def test_report_shows_what_a_reusing_table_showed(tmp_path, capsys):
    # `table --reuse` measured 2 new trials on top of 5 stored ones: `report` must show all 7,
    # as the table did, not only the newest session's 2.
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, {"large-hswish-fused": 20.0})
        old_ids = store.trials()["id"].astype(int).tolist()
        session = store.start_session(
            SessionRecord(command="table 5 --reuse", device_profile="emulator", device_serial="127.0.0.1:5555",
                          device_model="m", device_fingerprint="fp", flags={}, variants=["large-hswish-fused"],
                          tool_version="test", builds_on={"large-hswish-fused": old_ids})
        )
        for index in (len(SPREAD), len(SPREAD) + 1):
            store.record_trial(
                TrialRecord(session_id=session, variant="large-hswish-fused", model_sha256="a" * 64,
                            device_profile="emulator", device_serial="127.0.0.1:5555", device_model="m",
                            device_fingerprint="fp", flags={}, trial_index=index, started_at="2026-01-01T00:00:00",
                            ended_at="2026-01-01T00:00:01", ok=True, latency_ms=20.0, tool_version="test")
            )
        chosen = store.measurement_trials(device="emulator")
    assert len(chosen) == len(SPREAD) + 2
    assert sorted(chosen["session_id"].unique()) == [1, session]
