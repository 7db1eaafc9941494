"""Reliability: each emulator fault knob against `mnv3bench run`, end to end over real ADB.

Every test drives the CLI (in this process, so the emulator's faults can be switched while
it runs) against an emulator serving on loopback, then reads the SQLite database to prove
that no finished trial was lost, no failed trial carries a number, and --resume measures
only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from mnv3bench.bench.runner import RunConfig, run_session
from mnv3bench.device.adb import connect
from mnv3bench.device.profiles import load_profile
from mnv3bench.errors import MnvError
from mnv3bench.results import ResultStore
from mnv3bench.variants import parse_variant
from tests.helpers import (
    QUICK,
    REPO,
    SMALL,
    WhenTrials,
    integrity_ok,
    rows,
    trial_count,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

REMOTE = f"/data/local/tmp/mnv3bench/{SMALL}.tflite"


def run_args(server, db: Path, models: Path, trials: int = 3, *extra: str, reach=None) -> list[str]:
    where = reach(server) if reach else ["--adb", server.address]
    return ["run", "--device", "emulator", *where, "--variant", SMALL, "--trials", str(trials),
            *QUICK, "--db", str(db), "--models-dir", str(models), *extra]


@pytest.fixture(params=["direct", "adb-server"])
def reach(request, rel_env):
    """How a run reaches the emulator: directly (--adb), or through Debian's adb server, where
    `adb connect` attached it (--serial); re-attached for each run, as a user would after a drop."""
    if request.param == "direct":
        return lambda server: ["--adb", server.address]
    adb_server = request.getfixturevalue("adb_server")
    return lambda server: ["--serial", adb_server.attach(server.address)]


def built_sha(models: Path) -> str:
    [sidecar] = models.glob(f"{SMALL}-*.tflite.json")
    return json.loads(sidecar.read_text())["sha256"]


def device_file(server, path: str = REMOTE) -> Path:
    return server.phone.fs.resolve(path)


def trials_of(db: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM trials ORDER BY id").fetchall()


def assert_clean_error(result, *needles: str, code: int = 1) -> None:
    assert result.code == code, (result.code, result.err)
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle.lower() in result.err.lower(), (needle, result.err)


# -- connection dropped ----------------------------------------------------------------------


def test_drop_push_exits_clearly_leaves_no_partial_model_and_resume_completes(rel_env, reach, emulator, small_model,
                                                                            cli, tmp_path):
    server = emulator(faults=("drop-push",))
    db = tmp_path / "r.db"
    first = cli(*run_args(server, db, small_model, reach=reach))
    assert_clean_error(first, "lost the connection", "pushing", "--resume")
    assert trial_count(db) == 0
    work = device_file(server, "/data/local/tmp/mnv3bench")
    assert not work.exists() or [p.name for p in work.iterdir()] == []  # not even a temp file

    server.phone.faults = frozenset()  # the cable is back
    second = cli(*run_args(server, db, small_model, reach=reach), "--resume")
    assert second.code == 0, second.err
    want = built_sha(small_model)
    assert hashlib.sha256(device_file(server).read_bytes()).hexdigest() == want
    trials = trials_of(db)
    assert [t["trial_index"] for t in trials] == [1, 2, 3] and all(t["ok"] for t in trials)
    assert {t["model_sha256"] for t in trials} == {want}


def test_a_stale_partial_model_on_the_device_is_replaced_before_benchmarking(rel_env, emulator, small_model, cli,
                                                                           tmp_path):
    server = emulator()
    model = next(small_model.glob(f"{SMALL}-*.tflite")).read_bytes()
    server.phone.fs.write_bytes(REMOTE, model[: len(model) // 2], permissions=0o644)  # an old broken push
    result = cli(*run_args(server, tmp_path / "r.db", small_model, 1))
    assert result.code == 0, result.err
    assert f"pushed {SMALL}" in result.err
    assert hashlib.sha256(device_file(server).read_bytes()).hexdigest() == built_sha(small_model)


class CorruptingPush:
    """The real AdbDevice, but each push lands truncated on the phone (as on a failing flash)."""

    def __init__(self, device, phone) -> None:
        self.device, self.phone = device, phone

    def __getattr__(self, name):
        return getattr(self.device, name)

    def push(self, local, remote, progress=None):
        self.device.push(local, remote, progress)
        landed = self.phone.fs.resolve(remote)
        landed.write_bytes(landed.read_bytes()[:1000])


def test_a_push_that_lands_damaged_is_never_benchmarked(rel_env, emulator, small_model, adb_key, tmp_path):
    server = emulator()
    profile = load_profile("emulator", REPO / "mnv3bench" / "devices")
    device = connect(profile, adb_address=server.address, keys_path=adb_key)
    try:
        with ResultStore(tmp_path / "r.db") as store, pytest.raises(MnvError) as err:
            run_session(profile, [parse_variant(SMALL)], RunConfig(trials=1, num_runs=3, min_secs=0, max_secs=3),
                        store, device=CorruptingPush(device, server.phone), models_dir=small_model)
    finally:
        device.close()
    assert "does not match the built file" in err.value.message and "will not be benchmarked" in err.value.message
    assert "--resume" in (err.value.hint or "")
    assert trial_count(tmp_path / "r.db") == 0


def test_drop_during_a_benchmark_keeps_finished_trials_and_resume_runs_only_the_rest(rel_env, reach, emulator, small_model,
                                                                                   cli, tmp_path):
    server = emulator(faults=("drop-run@2",))  # the link dies during the second benchmark run
    db = tmp_path / "r.db"
    first = cli(*run_args(server, db, small_model, reach=reach))
    assert_clean_error(first, "lost the connection", "trial 2", "--resume")
    assert [(t["trial_index"], t["ok"]) for t in trials_of(db)] == [(1, 1)]

    server.phone.faults = frozenset()
    second = cli(*run_args(server, db, small_model, reach=reach), "--resume")
    assert second.code == 0, second.err
    trials = trials_of(db)
    assert len(trials) == 3 and all(t["ok"] for t in trials)
    resumed = [t["trial_index"] for t in trials if t["session_id"] == trials[-1]["session_id"]]
    assert resumed == [2, 3]  # only the missing trials were measured
    assert integrity_ok(db)


def test_link_lost_between_trials_keeps_the_first_and_resume_on_a_new_connection_finishes(
        rel_env, emulator, small_model, cli, tmp_path):
    server = emulator()
    db = tmp_path / "r.db"
    unplug = WhenTrials(db, 1, server.stop)  # during the cool-down after trial 1
    unplug.start()
    first = cli(*run_args(server, db, small_model, 3, "--cooldown", "2"))
    assert unplug.fired.is_set()
    assert_clean_error(first, "connection", "--resume")
    assert [(t["trial_index"], t["ok"]) for t in trials_of(db)] == [(1, 1)]

    again = emulator(root=tmp_path / "phone")  # plugged back in: same phone, new address
    second = cli(*run_args(again, db, small_model), "--resume")
    assert second.code == 0, second.err
    assert "pushed" not in second.err  # the model on the phone was whole: its hash matched
    trials = trials_of(db)
    assert [t["trial_index"] for t in trials] == [1, 2, 3] and all(t["ok"] for t in trials)


# -- a benchmark that hangs ------------------------------------------------------------------


# "hang@1": the first benchmark run hangs. (A plain "hang" also hangs preflight's
# `benchmark_model --help`, which then fails before any trial.)


def test_hung_benchmark_times_out_is_killed_and_stops_the_run(rel_env, reach, emulator, small_model, cli, tmp_path):
    server = emulator(faults=("hang@1",))
    db = tmp_path / "r.db"
    result = cli(*run_args(server, db, small_model, 2, "--timeout", "2", reach=reach))
    assert_clean_error(result, f"trial 1 of {SMALL} failed", "timed out after 2 s", "--keep-going")
    [hung] = trials_of(db)  # stopped after the first: trial 2 never ran
    assert not hung["ok"] and hung["timed_out"] and hung["latency_ms"] is None
    assert "STARTING!" in hung["raw_output"]  # the partial output is kept
    assert "killed" in hung["error_message"]
    assert wait_until(lambda: not server.phone.running_pids(), 5), "benchmark_model still running on the device"


def test_hung_benchmark_with_keep_going_records_the_failure_and_carries_on(rel_env, emulator, small_model, cli,
                                                                           tmp_path):
    server = emulator(faults=("hang@1",))
    db = tmp_path / "r.db"
    result = cli(*run_args(server, db, small_model, 2, "--timeout", "6", "--keep-going"))
    assert result.code == 0, result.err
    hung, ok = trials_of(db)
    assert (hung["ok"], hung["timed_out"], hung["latency_ms"]) == (0, 1, None)
    assert ok["ok"] and ok["latency_ms"] > 0
    assert "failed: timed out" in result.err and "+1 failed" in result.out
    assert not server.phone.running_pids()


# -- benchmark output that is not a measurement ----------------------------------------------


@pytest.mark.parametrize(("fault", "raw_marker"), [("crash", "ERROR: Node number 3"),
                                                   ("garbage", "tensor arena relocated")])
def test_crash_and_garbage_are_failed_trials_with_raw_output_never_a_number(fault, raw_marker, rel_env, emulator,
                                                                          small_model, cli, tmp_path):
    server = emulator(faults=(fault,))
    db = tmp_path / "r.db"
    result = cli(*run_args(server, db, small_model, 2, "--keep-going", "--json"))
    assert_clean_error(result, "no successful trial")
    trials = trials_of(db)
    assert len(trials) == 2
    for trial in trials:
        assert not trial["ok"] and trial["latency_ms"] is None and trial["inference_avg_us"] is None
        assert raw_marker in trial["raw_output"] and trial["error_message"]
    [summary] = json.loads(result.out)
    assert summary["latency_ms"] is None and summary["trials"] == 0


# -- preflight: fail before any work ---------------------------------------------------------


def _profile_copy(tmp_path: Path, **changes: object) -> Path:
    """devices/emulator.toml copied into a tmp devices dir with some keys changed."""
    text = (REPO / "mnv3bench" / "devices" / "emulator.toml").read_text()
    out = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        out.append(f"{key} = {json.dumps(changes[key])}" if key in changes and "=" in line else line)
    folder = tmp_path / "devices"
    folder.mkdir(exist_ok=True)
    (folder / "emulator.toml").write_text("\n".join(out) + "\n")
    return folder


@pytest.mark.parametrize("case", ["no-binary", "not-executable", "full-storage", "wrong-abi"])
def test_device_not_ready_fails_before_any_build_push_or_trial(case, rel_env, emulator, cli, tmp_path, monkeypatch):
    # A wrong ABI is a profile that does not fit the phone: a usage error (exit 2), found on connect.
    code, *expected = {
        "no-binary": (1, "the device is not ready", "benchmark_model is missing",
                      "mnv3bench device setup --device emulator"),
        "not-executable": (1, "the device is not ready", "is not executable", "chmod 755"),
        "full-storage": (1, "the device is not ready", "MB free", "Free space on the phone"),
        "wrong-abi": (2, "ABI is x86_64", "expects arm64-v8a", 'a profile with abi = "x86_64"'),
    }[case]
    if case == "no-binary":
        server = emulator(faults=("no-binary",))
    elif case == "not-executable":
        server = emulator()
        server.phone.fs.set_mode("/data/local/tmp/benchmark_model", 0o644)
    elif case == "full-storage":
        devices = _profile_copy(tmp_path, storage_free_kb=40_000)
        monkeypatch.setenv("MNV3BENCH_DEVICES", str(devices))
        server = emulator(profile=load_profile("emulator", devices))
    else:  # the profile says arm64, the device is x86_64
        server = emulator()
        monkeypatch.setenv("MNV3BENCH_DEVICES", str(_profile_copy(tmp_path, abi="arm64-v8a")))
    models = tmp_path / "fresh-models"
    db = tmp_path / "r.db"
    result = cli(*run_args(server, db, models))
    assert_clean_error(result, *expected, code=code)
    assert trial_count(db) == 0
    assert not models.exists() or not any(models.iterdir())  # nothing was built
    assert not device_file(server).exists()  # nothing was pushed


# -- thermal ---------------------------------------------------------------------------------


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def test_hot_device_makes_the_gate_wait_then_the_trial_runs_cool(rel_env, emulator, small_model, cli, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("MNV3BENCH_EMU_COOL_S", "6")  # 85 C falling to 35 C over 6 s: below 45 C after 4.8 s
    server = emulator(faults=("hot",))
    db = tmp_path / "r.db"
    result = cli(*run_args(server, db, small_model, 1, "--thermal-gate", "45", "--thermal-timeout", "30"))
    assert result.code == 0, result.err
    assert "Waiting for the CPU to cool below 45 C" in result.err
    assert re.search(r"\(now \d+\.\d C \(emulated\)\)", result.err)  # the emulator invents its temperatures
    [trial] = trials_of(db)
    assert trial["ok"] and trial["temp_before_c"] < 45
    [(session_start,)] = rows(db, "SELECT started_at FROM sessions")
    assert _seconds(session_start, trial["started_at"]) > 0.5  # the wait is visible in the stored times


def test_device_that_stays_hot_times_out_with_advice_and_no_trial(rel_env, emulator, small_model, cli, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("MNV3BENCH_EMU_COOL_S", "600")
    server = emulator(faults=("hot",))
    db = tmp_path / "r.db"
    result = cli(*run_args(server, db, small_model, 1, "--thermal-gate", "45", "--thermal-timeout", "1"))
    assert_clean_error(result, "above the thermal gate of 45 C", "Let the phone cool", "--resume")
    assert trial_count(db) == 0


def test_throttling_during_a_trial_is_flagged_in_the_results_and_the_output(rel_env, emulator, small_model, cli,
                                                                           tmp_path, monkeypatch):
    monkeypatch.setenv("MNV3BENCH_EMU_COOL_S", "600")  # stays near 85 C: the big cores run at 70%
    server = emulator(faults=("hot",))
    db = tmp_path / "r.db"
    result = cli(*run_args(server, db, small_model, 1))
    assert result.code == 0, result.err
    [trial] = trials_of(db)
    assert trial["ok"] and trial["temp_before_c"] > 60 and trial["freq_before_khz"] < 2803200
    assert trial["throttled"] == 1
    assert "throttling" in result.err.lower()
