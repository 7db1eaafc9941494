"""Records for store tests: one trial and one session with every contract column filled."""

from __future__ import annotations

from mnv3bench.results import ResultStore, SessionRecord, TrialRecord, utc_now


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


V3_TRIAL_COLUMNS = ("delegated_nodes", "total_nodes", "delegate_partitions", "delegate", "delegate_left_out")
V4_TRIAL_COLUMNS = ("device_address", "cpu_core", "cpu_cluster", "temp_note")
V5_TRIAL_COLUMNS = ("op_profile",)
V6_SESSION_COLUMNS = ("host", "host_end", "sensors_emulated")
V7_TRIAL_COLUMNS = ("round_index", "round_position")
V8_TRIAL_COLUMNS = ("latency_estimator",)


def as_version(db, version: int) -> None:
    """Make a database look as mnv3bench's schema `version` wrote it (drop later columns)."""
    import contextlib
    import sqlite3

    # Closed, not only committed: the WAL is checkpointed into the file before anyone reads it.
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        for column in V8_TRIAL_COLUMNS if version < 8 else ():
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
        for column in V7_TRIAL_COLUMNS if version < 7 else ():
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
        if version < 7:
            conn.execute("ALTER TABLE sessions DROP COLUMN seed")
        for column in V5_TRIAL_COLUMNS if version < 5 else ():
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
        for column in V6_SESSION_COLUMNS if version < 6 else ():
            conn.execute(f"ALTER TABLE sessions DROP COLUMN {column}")
        if version < 4:
            for column in V4_TRIAL_COLUMNS:
                conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
            conn.execute("ALTER TABLE sessions DROP COLUMN device_address")
        for column in V3_TRIAL_COLUMNS if version < 3 else ():
            conn.execute(f"ALTER TABLE trials DROP COLUMN {column}")
        if version < 2:
            conn.execute("ALTER TABLE sessions DROP COLUMN builds_on")
            conn.execute("ALTER TABLE trials DROP COLUMN freq_cap_khz")
        conn.execute("UPDATE schema_version SET version = ?", (version,))
