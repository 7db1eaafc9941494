"""The results store: schema version, append-only, WAL, concurrent writers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from mnv3bench.errors import UsageError
from mnv3bench.results import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ResultStore,
    SessionRecord,
    TrialRecord,
)
from tests.helpers import REPO
from tests.results.helpers import (
    V3_TRIAL_COLUMNS,
    V4_TRIAL_COLUMNS,
    V5_TRIAL_COLUMNS,
    V7_TRIAL_COLUMNS,
    V8_TRIAL_COLUMNS,
    as_version,
    session,
    trial,
)


def execute_by_hand(db, sql: str) -> None:
    """SQL written by hand in a connection of its own, as any other sqlite3 client would."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def test_round_trip_with_every_contract_column(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        sid = session(store)
        store.record_trial(trial(sid, 1))
        store.record_trial(trial(sid, 2, ok=False))
        frame = store.trials()
    for column in ("id session_id variant model_sha256 device_profile device_serial device_model device_fingerprint "
                   "flags trial_index started_at ended_at ok error_message latency_ms init_us first_inference_us "
                   "warmup_avg_us inference_avg_us inference_count inference_min_us inference_max_us "
                   "inference_std_us inference_median_us memory_init_mb memory_overall_mb peak_memory_mb "
                   "num_threads graph op_profile_top error temp_before_c temp_after_c freq_before_khz "
                   "freq_after_khz throttled raw_output tool_version tf_version").split():
        assert column in frame.columns, column
    assert frame["ok"].tolist() == [True, False]
    assert frame["latency_ms"].iloc[0] == 8.5 and frame["latency_ms"].isna().iloc[1]
    assert frame["raw_output"].iloc[1] == "ERROR: boom"
    assert '"CONV_2D"' in frame["op_profile_top"].iloc[0]
    assert frame["flags"].iloc[0] == '{"num_runs":"50","num_threads":"1"}'


def test_filters(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        sid = session(store)
        store.record_trial(trial(sid, 1, variant="a"))
        store.record_trial(trial(sid, 2, ok=False, variant="b"))
        assert store.trials(variants=["a"])["variant"].tolist() == ["a"]
        assert store.trials(ok_only=True)["variant"].tolist() == ["a"]
        assert store.trials(device="pixel4").empty
        assert len(store.trials(session=sid)) == 2 and store.trials(variants=[]).empty


def test_a_failed_trial_never_carries_a_number(tmp_path):
    with pytest.raises(ValueError):
        TrialRecord(None, "v", "x", "p", "s", None, None, {}, 1, "t", "t", ok=False, latency_ms=3.0)
    with ResultStore(tmp_path / "r.db"), pytest.raises(sqlite3.IntegrityError):
        execute_by_hand(  # the CHECK constraint holds even for SQL written by hand
            tmp_path / "r.db",
            "INSERT INTO trials (variant, model_sha256, device_profile, device_serial, flags, trial_index, "
            "started_at, ended_at, ok, latency_ms, throttled, timed_out, raw_output, tool_version) "
            "VALUES ('v', 'x', 'p', 's', '{}', 1, 't', 't', 0, 3.0, 0, 0, '', '')")


def test_trials_are_append_only(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        store.record_trial(trial(session(store), 1))
        for sql in ("UPDATE trials SET latency_ms = 1", "DELETE FROM trials"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                execute_by_hand(tmp_path / "r.db", sql)
        assert store.trials()["latency_ms"].tolist() == [8.5]


def test_wal_and_schema_version(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        assert store.journal_mode == "wal"
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    ResultStore(tmp_path / "r.db").close()  # reopening adds no second version row
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (1,)


def test_newer_schema_is_refused(tmp_path):
    ResultStore(tmp_path / "r.db").close()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(UsageError, match="newer mnv3bench") as err:
        ResultStore(tmp_path / "r.db")
    assert "--db" in err.value.hint and "Upgrade" in err.value.hint


def test_not_a_database_is_a_usage_error(tmp_path):
    (tmp_path / "r.db").write_text("not sqlite at all, just some text " * 50)
    with pytest.raises(UsageError, match="not a usable"):
        ResultStore(tmp_path / "r.db")


def test_unwritable_folder_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="Cannot open"):
        ResultStore(tmp_path / "file" / "r.db")


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from tests.results.helpers import session, trial
    from mnv3bench.results import ResultStore
    store = ResultStore({db!r})
    sid = session(store)
    for i in range(60):
        store.record_trial(trial(sid, i, variant=sys.argv[1]))
""")


def test_two_processes_write_concurrently(tmp_path):
    db = tmp_path / "r.db"
    ResultStore(db).close()
    code = WRITER.format(repo=str(REPO), db=str(db))
    procs = [subprocess.Popen([sys.executable, "-c", code, name], stderr=subprocess.PIPE) for name in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with ResultStore(db) as store:
        frame = store.trials()
    assert frame.groupby("variant").size().to_dict() == {"a": 60, "b": 60}
    assert frame["id"].is_unique


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5, 6, 7])
def test_an_older_database_is_migrated_keeping_its_rows(tmp_path, version):
    import sqlite3

    db = tmp_path / f"v{version}.db"
    with ResultStore(db) as store:
        store.record_trial(trial(None, 1))
    as_version(db, version)
    assert all(MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
    with ResultStore(db) as store:
        frame = store.trials()
        assert len(frame) == 1 and "freq_cap_khz" in frame.columns
        assert {*V3_TRIAL_COLUMNS} <= set(frame.columns) and frame["delegate"].isna().all()
        assert {*V4_TRIAL_COLUMNS} <= set(frame.columns) and {*V5_TRIAL_COLUMNS} <= set(frame.columns)
        assert frame["op_profile"].isna().all()
        store.record_trial(trial(None, 2))
        assert len(store.trials()) == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_version_3_rows_keep_their_stored_identity(tmp_path):
    """Before version 4 device_serial held the transport address: old rows keep it as it was."""
    db = tmp_path / "v3.db"
    with ResultStore(db) as store:
        old = trial(None, 1)
        old.device_serial = "192.168.1.20:5555"
        store.record_trial(old)
    as_version(db, 3)
    with ResultStore(db) as store:
        new = trial(None, 2)
        new.device_serial, new.device_address, new.cpu_core, new.cpu_cluster = "FA6AB0301234", "10.0.0.7:5555", 6, "6-7"
        store.record_trial(new)
        frame = store.trials().sort_values("trial_index")
    assert frame["device_serial"].tolist() == ["192.168.1.20:5555", "FA6AB0301234"]
    assert frame["device_address"].isna().tolist() == [True, False]
    assert frame["cpu_core"].tolist()[1] == 6 and frame["cpu_cluster"].tolist()[1] == "6-7"


def test_a_version_4_database_gains_the_host_columns_keeping_its_rows(tmp_path):
    db = tmp_path / "v4.db"
    with ResultStore(db) as store:
        old = session(store)
        store.record_trial(trial(old, 1))
    as_version(db, 4)
    with ResultStore(db) as store:
        assert len(store.trials()) == 1
        new = store.start_session(SessionRecord("run", "emulator", "S1", "m", "fp", {}, ["v"], "0.1.0",
                                                host={"cpu_model": "Xeon", "cores": 2, "load_start": [0.1, 0, 0]},
                                                sensors_emulated=True))
        store.end_session(new, {"load_end": [1.2, 0.5, 0.2]})
        sessions = store.sessions().set_index("id")
    import pandas as pd

    assert pd.isna(sessions.loc[old, "host"]) and pd.isna(sessions.loc[old, "sensors_emulated"])
    assert json.loads(sessions.loc[new, "host"])["cpu_model"] == "Xeon" and sessions.loc[new, "sensors_emulated"] == 1
    assert json.loads(sessions.loc[new, "host_end"]) == {"load_end": [1.2, 0.5, 0.2]}

def test_version_6_database_gains_rounds_and_keeps_its_rows(tmp_path):
    """Trials stored before randomized rounds have no round: they stay, unpaired."""
    db = tmp_path / "v6.db"
    with ResultStore(db) as store:
        sid = session(store)
        store.record_trial(trial(sid, 1))
    as_version(db, 6)
    with ResultStore(db) as store:
        new = trial(sid, 2)
        new.round_index, new.round_position = 1, 2
        store.record_trial(new)
        frame = store.trials().sort_values("trial_index")
    assert {*V7_TRIAL_COLUMNS} <= set(frame.columns)
    assert frame["round_index"].isna().tolist() == [True, False]
    assert frame["round_position"].tolist()[1] == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT seed FROM sessions").fetchall() == [(None,)]


def test_version_7_database_gains_the_latency_estimator_and_keeps_its_rows(tmp_path):
    """Trials stored before the estimator was recorded (all means) keep NULL; new ones name theirs."""
    db = tmp_path / "v7.db"
    with ResultStore(db) as store:
        sid = session(store)
        store.record_trial(trial(sid, 1))
    as_version(db, 7)
    with ResultStore(db) as store:
        new = trial(sid, 2)
        new.latency_estimator = "median"
        store.record_trial(new)
        frame = store.trials().sort_values("trial_index")
    assert {*V8_TRIAL_COLUMNS} <= set(frame.columns)
    assert frame["latency_estimator"].isna().tolist() == [True, False]
    assert frame["latency_estimator"].tolist()[1] == "median"
