"""`report` shows the warnings `run` would give for the stored trials it renders, and what the
sessions recorded about the host."""

from __future__ import annotations

import json

import pytest

from mnv3bench.cli import main
from mnv3bench.results import ResultStore, SessionRecord, TrialRecord
from tests.tables.helpers import TABLE5_MS


def _store(db, offsets, **session_fields) -> int:
    with ResultStore(db) as store:
        session = store.start_session(SessionRecord(
            command="table 5", device_profile="emulator", device_serial="s", device_model="m",
            device_fingerprint="fp", flags={}, variants=list(TABLE5_MS), tool_version="test", **session_fields))
        for variant, ms in TABLE5_MS.items():
            for index, offset in enumerate(offsets):
                store.record_trial(TrialRecord(
                    session_id=session, variant=variant, model_sha256="a" * 64, device_profile="emulator",
                    device_serial="s", device_model="m", device_fingerprint="fp", flags={}, trial_index=index,
                    started_at="2026-01-01T00:00:00", ended_at="2026-01-01T00:00:01", ok=True,
                    latency_ms=ms * (1 + offset), tool_version="test"))
        if "host" in session_fields:
            store.end_session(session, {"load_end": [1.1, 1.0, 0.9]})
    return session


def test_report_diagnoses_the_stored_trials(tmp_path, capsys):
    db = tmp_path / "results.db"
    _store(db, (-0.01, 0.01))  # two trials: too few for a CI
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--device", "emulator", "--table", "5", "--db", str(db), "--reports-dir", str(tmp_path)])
    assert exit_info.value.code in (None, 0)
    out = " ".join(capsys.readouterr().out.split())  # Rich may wrap the long line
    assert "large-relu: Only 2 successful trial(s); the confidence interval needs at least 3." in out
    assert "(n=2; a CI needs 3 trials)" in out
    doc = json.loads((tmp_path / "emulator" / "latest" / "table-5.json").read_text())
    assert "large-relu" in doc["warnings"]
    assert "### Warnings" in (tmp_path / "emulator" / "latest" / "table-5.md").read_text()


def test_report_says_the_emulators_sensors_are_invented_and_flags_a_busy_host(tmp_path, capsys):
    db = tmp_path / "results.db"
    host = {"cpu_model": "Intel Xeon", "cores": 2, "load_start": [3.5, 2.0, 1.0], "governor": "performance"}
    session = _store(db, (-0.01, 0.0, 0.01), host=host, sensors_emulated=True)
    with pytest.raises(SystemExit):
        main(["report", "--device", "emulator", "--table", "5", "--db", str(db), "--reports-dir", str(tmp_path),
              "--json"])
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any(f"Session {session} ran on the emulator" in n and "Intel Xeon, 2 cores, governor performance" in n
               for n in notes)
    assert any("HIGH HOST LOAD" in n and "3.50 at the start" in n for n in notes)


def test_suggested_commands_repeat_the_users_db(tmp_path, capsys):
    db = tmp_path / "my results.db"
    _store(db, (-0.01, 0.0, 0.01))
    with pytest.raises(SystemExit):
        main(["report", "--device", "pixel3", "--table", "5", "--db", str(db), "--reports-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert f"mnv3bench table 5 --device pixel3 --db '{db}'" in " ".join(err.split())
    with pytest.raises(SystemExit):
        main(["compare", "large-relu", "small-relu", "--device", "emulator", "--db", str(db)])
    err = " ".join(capsys.readouterr().err.split())
    assert f"mnv3bench run --device emulator large-relu small-relu --db '{db}'" in err
