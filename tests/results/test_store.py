"""The results store: schema version, append-only, WAL, concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from mnv3bench.errors import UsageError
from mnv3bench.results import (
    SCHEMA_VERSION,
    ResultStore,
    SessionRecord,
    TrialRecord,
    utc_now,
)


def trial(session_id: int, index: int, ok: bool = True, variant: str = "v") -> TrialRecord:
    return TrialRecord(
        session_id=session_id, variant=variant, model_sha256="ab" * 32, device_profile="pixel3",
        device_serial="S1", device_model="Pixel 3", device_fingerprint="google/blueline:12",
        flags={"num_threads": "1", "num_runs": "50"}, trial_index=index, started_at=utc_now(), ended_at=utc_now(),
        ok=ok, error_message=None if ok else "no latency", latency_ms=7.5 + index if ok else None,
        parsed={"inference_avg_us": 7500 + 1000 * index, "inference_count": 50, "num_threads": 1,
                "op_profile_top": [{"node_type": "CONV_2D", "avg_ms": 1.2, "percent": 40.0}],
                "error": not ok} if ok else {"error": True},
        temp_before_c=35.0, temp_after_c=41.5, freq_before_khz=2803200, freq_after_khz=2803200,
        raw_output="INFO: count=50 ..." if ok else "ERROR: boom", tool_version="0.1.0", tf_version="2.21.0",
    )


def session(store: ResultStore) -> int:
    return store.start_session(SessionRecord("run", "pixel3", "S1", "Pixel 3", "google/blueline:12",
                                             {"num_threads": "1"}, ["v"], "0.1.0"))


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
    with ResultStore(tmp_path / "r.db") as store, pytest.raises(sqlite3.IntegrityError):
        store._conn.execute(  # the CHECK constraint holds even for SQL written by hand
            "INSERT INTO trials (variant, model_sha256, device_profile, device_serial, flags, trial_index, "
            "started_at, ended_at, ok, latency_ms, throttled, timed_out, raw_output, tool_version) "
            "VALUES ('v', 'x', 'p', 's', '{}', 1, 't', 't', 0, 3.0, 0, 0, '', '')")


def test_trials_are_append_only(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        store.record_trial(trial(session(store), 1))
        for sql in ("UPDATE trials SET latency_ms = 1", "DELETE FROM trials"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                store._conn.execute(sql)
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
    sys.path.insert(0, {tests!r})
    from test_store import trial, session
    from mnv3bench.results import ResultStore
    store = ResultStore({db!r})
    sid = session(store)
    for i in range(60):
        store.record_trial(trial(sid, i, variant=sys.argv[1]))
""")


def test_two_processes_write_concurrently(tmp_path):
    import pathlib

    db = tmp_path / "r.db"
    ResultStore(db).close()
    code = WRITER.format(tests=str(pathlib.Path(__file__).parent), db=str(db))
    procs = [subprocess.Popen([sys.executable, "-c", code, name], stderr=subprocess.PIPE) for name in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with ResultStore(db) as store:
        frame = store.trials()
    assert frame.groupby("variant").size().to_dict() == {"a": 60, "b": 60}
    assert frame["id"].is_unique


V3_TRIAL_COLUMNS = ("delegated_nodes", "total_nodes", "delegate_partitions", "delegate", "delegate_left_out")
V4_TRIAL_COLUMNS = ("op_profile",)


def _as_version(db, version: int) -> None:
    """Make a database look as mnv3bench's schema `version` wrote it (drop later columns)."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        for column in V4_TRIAL_COLUMNS:
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
        for column in V3_TRIAL_COLUMNS if version < 3 else ():
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
        if version < 2:
            conn.execute("ALTER TABLE sessions DROP COLUMN builds_on")
            conn.execute("ALTER TABLE trials DROP COLUMN freq_cap_khz")
        conn.execute("UPDATE schema_version SET version = ?", (version,))


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_database_is_migrated_keeping_its_rows(tmp_path, version):
    import sqlite3

    from mnv3bench.results import _MIGRATIONS

    db = tmp_path / f"v{version}.db"
    with ResultStore(db) as store:
        store.record_trial(trial(None, 1))
    _as_version(db, version)
    assert all(_MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
    with ResultStore(db) as store:
        frame = store.trials()
        assert len(frame) == 1 and "freq_cap_khz" in frame.columns
        assert {*V3_TRIAL_COLUMNS} <= set(frame.columns) and frame["delegate"].isna().all()
        assert {*V4_TRIAL_COLUMNS} <= set(frame.columns) and frame["op_profile"].isna().all()
        store.record_trial(trial(None, 2))
        assert len(store.trials()) == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
