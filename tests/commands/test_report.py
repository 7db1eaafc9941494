"""`mnv3bench report` from a real SQLite file written by ResultStore; `table` usage errors."""

from __future__ import annotations

import json
import re

import pytest

from mnv3bench.cli import main
from mnv3bench.results import ResultStore, SessionRecord, TrialRecord
from tests.commands.helpers import store_interleaved, store_session
from tests.tables.helpers import SPREAD, TABLE5_MS


def _report(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *args])
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


def test_report_reads_one_session_and_names_the_others(tmp_path, capsys):
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, {k: 2 * v for k, v in TABLE5_MS.items()})  # an older, slower session of all nine
        newest = store_session(store, {k: v for k, v in TABLE5_MS.items() if k != "large-hswish@112-naive"})
    args = ["--device", "emulator", "--table", "5", "--db", str(db), "--json", "--reports-dir", str(tmp_path / "r")]
    code, out, _ = _report(args, capsys)
    doc = json.loads(out)
    rows = {r["row"]: r for r in doc["rows"]}
    # The session that measured all of the table's variants, never a mix of the two.
    assert code == 0 and doc["sessions"] == [1] and doc["session_id"] == 1
    assert rows["V3"]["latency_ms_opt"]["median"] == pytest.approx(40.0)
    assert doc["missing"] == []
    [warning] = doc["warnings"]["sessions"]
    assert warning.startswith(f"also measured in session {newest}: large-hswish-fused 20 ms (5 trials)")
    assert f"--session {newest}" in warning and "--all-sessions" in warning

    code, out, err = _report([*args, "--session", str(newest)], capsys)
    doc = json.loads(out)
    # Each session's report is kept; latest/ shows the newest session rendered.
    assert "latest" in err and (tmp_path / "r" / "emulator" / "session-1" / "table-5.md").is_file()
    latest = json.loads((tmp_path / "r" / "emulator" / "latest" / "table-5.json").read_text())
    assert latest["session_id"] == newest
    assert code == 0 and doc["sessions"] == [newest] and doc["missing"] == ["large-hswish@112-naive"]
    assert {r["row"]: r for r in doc["rows"]}["V3"]["latency_ms_opt"]["median"] == pytest.approx(20.0)

    code, out, _ = _report([*args, "--all-sessions"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["sessions"] == [1, newest] and doc["session_id"] is None
    [warning] = doc["warnings"]["sessions"]
    assert "pooled trials of sessions 1, 2 (--all-sessions)" in warning
    assert "session 1: large-hswish-fused 40 ms (5 trials)" in warning and "session 2: large-hswish-fused 20 ms" in warning


def test_report_gives_the_newest_interleaved_comparison_and_warns_about_the_other_session(tmp_path, capsys):
    """Fused and naive measured together, then fused alone under doubled load: the comparison is
    the interleaved one, and the loaded session is named (terminal, Markdown, JSON)."""
    db = tmp_path / "results.db"
    fused, naive = "large-hswish-fused", "large-hswish-naive"
    with ResultStore(db) as store:
        store_interleaved(store, {fused: 6.59, naive: 7.2})
        store_interleaved(store, {fused: 13.18})
    reports = tmp_path / "reports"
    code, out, err = _report(["--device", "emulator", "--table", "5", "--db", str(db), "--reports-dir", str(reports)],
                             capsys)
    assert code == 0
    doc = json.loads((reports / "emulator" / "latest" / "table-5.json").read_text())
    [c] = [c for c in doc["agreement"] if c["comparison"] == "V3: no-opt vs opt"]
    assert c["method"] == "paired" and c["rounds"] == 8 and c["measured_ratio"] == pytest.approx(7.2 / 6.59)
    assert c["verdict"] == "agrees" and doc["sessions"] == [1]
    [warning] = doc["warnings"]["sessions"]
    assert "also measured in session 2: large-hswish-fused 13.1 ms (8 trials)" in warning
    assert "also measured in session 2" in (reports / "emulator" / "session-1" / "table-5.md").read_text()
    assert "also measured in session 2" in " ".join(out.split())

    code, _, _ = _report(["--device", "emulator", "--table", "5", "--db", str(db), "--reports-dir", str(reports),
                          "--all-sessions"], capsys)
    doc = json.loads((reports / "emulator" / "sessions-1-2" / "table-5.json").read_text())
    # Pooled on purpose: the fused cell mixes both sessions (only session 1's rounds still pair).
    v3 = {r["row"]: r for r in doc["rows"]}["V3"]
    assert v3["latency_ms_opt"]["median"] > 8 and len(doc["trials"]["large-hswish-fused"]) == 16
    assert "pooled trials of sessions 1, 2" in doc["warnings"]["sessions"][0]


def test_compare_uses_the_newest_session_that_measured_both(tmp_path, capsys):
    db = tmp_path / "results.db"
    fused, naive = "large-hswish-fused", "large-hswish-naive"
    with ResultStore(db) as store:
        store_interleaved(store, {fused: 6.59, naive: 7.2})
        store_interleaved(store, {fused: 13.18})
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", naive, fused, "--device", "emulator", "--db", str(db), "--json"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert (exit_info.value.code or 0) == 0
    assert doc["session"] == 1 and doc["method"] == "paired" and doc["ratio"] == pytest.approx(7.2 / 6.59)
    assert doc["median_a_ms"] == pytest.approx(7.2 * 0.995) and doc["median_b_ms"] == pytest.approx(6.59 * 0.995)
    assert "also measured in session 2: large-hswish-fused 13.1 ms" in doc["warnings"][0]
    assert "also measured in session 2" in " ".join(out.err.split())
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", naive, fused, "--device", "emulator", "--db", str(db), "--session", "2"])
    assert exit_info.value.code == 1 and "session 2 did not measure both" in " ".join(capsys.readouterr().err.split())


def test_a_session_that_built_on_stored_trials_measured_them(tmp_path, capsys):
    """--reuse/--resume: the trials a session built on count as measured in it."""
    db = tmp_path / "results.db"
    fused, naive = "large-hswish-fused", "large-hswish-naive"
    with ResultStore(db) as store:
        store_interleaved(store, {fused: 6.59})
        store_interleaved(store, {naive: 7.2})  # measured alone
        reused = [int(i) for i in store.trials(variants=[fused])["id"]]
        store_interleaved(store, {naive: 7.3}, builds_on={fused: reused})  # --reuse of fused's trials
    with pytest.raises(SystemExit):
        main(["compare", naive, fused, "--device", "emulator", "--db", str(db), "--json"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["session"] == 3 and doc["n_a"] == 8 and doc["n_b"] == 8
    # Session 1 measured nothing session 3 does not use; session 2's naive is named.
    assert len(doc["warnings"]) == 1 and "also measured in session 2: large-hswish-naive" in doc["warnings"][0]


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


def test_report_of_a_session_that_measured_no_table_says_so(tmp_path, capsys):
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, {"large-hswish-fused": 20.0})
    code, _, err = _report(["--device", "emulator", "--session", "7", "--db", str(db), "--reports-dir",
                            str(tmp_path)], capsys)
    assert code == 1 and "no stored trials for any table on emulator in session 7" in " ".join(err.split())
    code, _, err = _report(["--session", "1", "--all-sessions", "--db", str(db)], capsys)
    assert code == 2 and "exclude each other" in err
