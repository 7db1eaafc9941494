"""Reliability across processes: Ctrl-C mid-sweep, two writers on one database, two runs on one device.

These run `python -m mnv3bench run` as real subprocesses against an emulator serving from
this test process, exactly as a user in two terminals would.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from mnv3bench.device.lock import default_lock_dir
from tests.helpers import (
    QUICK,
    SMALL,
    ctrl_c_reaches_it,
    integrity_ok,
    mnv3_command,
    rows,
    trial_count,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def run_args(server, db: Path, models: Path, trials: int = 3, *extra: str) -> list[str]:
    return ["run", "--device", "emulator", "--adb", server.address, "--variant", SMALL, "--trials", str(trials),
            *QUICK, "--db", str(db), "--models-dir", str(models), *extra]


def spawn(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(mnv3_command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ), preexec_fn=ctrl_c_reaches_it)


def interrupted_sweep(server, db: Path, models: Path) -> tuple[int, str]:
    """Start a 3-trial sweep, press Ctrl-C once the first trial is stored; (exit code, stderr)."""
    proc = spawn(*run_args(server, db, models, 3, "--cooldown", "1"))
    try:
        assert wait_until(lambda: trial_count(db) >= 1, 60), "the first trial never got stored"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_ctrl_c_keeps_finished_trials_consistent_and_resume_finishes(rel_env, emulator, small_model, cli, tmp_path):
    server = emulator()
    db = tmp_path / "r.db"
    code, err = interrupted_sweep(server, db, small_model)
    assert code == 130  # the shell's status for SIGINT
    assert "Traceback" not in err
    assert "--resume" in err  # the user learns the finished trials are kept and how to finish
    assert integrity_ok(db)
    kept = rows(db, "SELECT trial_index, ok FROM trials ORDER BY id")
    assert 1 <= len(kept) < 3 and all(ok for _, ok in kept)
    assert wait_until(lambda: not server.phone.running_pids(), 5)  # no benchmark left running

    resumed = cli(*run_args(server, db, small_model), "--resume")
    assert resumed.code == 0, resumed.err
    indices = [i for (i,) in rows(db, "SELECT trial_index FROM trials WHERE ok = 1 ORDER BY trial_index")]
    assert indices == [1, 2, 3]  # each trial measured exactly once across both runs
    assert integrity_ok(db)


def test_two_processes_write_one_database_without_corruption(rel_env, emulator, small_model, tmp_path):
    phones = [emulator(root=tmp_path / "phone-a"), emulator(root=tmp_path / "phone-b")]
    db = tmp_path / "shared.db"
    procs = [spawn(*run_args(phone, db, small_model, 3)) for phone in phones]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    assert integrity_ok(db)
    per_session = rows(db, "SELECT session_id, COUNT(*), SUM(ok), GROUP_CONCAT(trial_index) FROM trials "
                           "GROUP BY session_id ORDER BY session_id")
    assert [(n, ok) for _, n, ok, _ in per_session] == [(3, 3), (3, 3)]
    assert {tuple(sorted(idx.split(","))) for *_, idx in per_session} == {("1", "2", "3")}


def _held_by(lock_dir: Path, pid: int) -> bool:
    return any(p.read_text().strip() == str(pid) for p in lock_dir.glob("*.lock")) if lock_dir.exists() else False


def _second_run_on_a_busy_device(server, first_db: Path, second_db: Path, models: Path, cli) -> None:
    """While one `mnv3bench run` holds the device, a second one is refused with a clear message."""
    holder = spawn(*run_args(server, first_db, models, 3, "--min-secs", "2"))
    try:
        lock_dir = default_lock_dir()  # per user (rel_env's XDG cache), whatever --db says
        assert wait_until(lambda: _held_by(lock_dir, holder.pid), 60), "the first run never started"
        second = cli(*run_args(server, second_db, models, 1))
        assert second.code == 1, second.err
        assert "in use" in second.err and f"pid {holder.pid}" in second.err
        assert "Traceback" not in second.err
        assert trial_count(second_db) == 0 or rows(second_db, "SELECT COUNT(DISTINCT session_id) FROM trials") == [(1,)]
        _, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, err  # the first run was not disturbed
    finally:
        if holder.poll() is None:
            holder.kill()


def test_second_run_on_a_device_in_use_is_refused(rel_env, emulator, small_model, cli, tmp_path):
    server = emulator()
    db = tmp_path / "r.db"
    _second_run_on_a_busy_device(server, db, db, small_model, cli)
    assert rows(db, "SELECT COUNT(DISTINCT session_id), COUNT(*) FROM trials") == [(1, 3)]


def test_second_run_on_a_device_in_use_is_refused_even_with_another_database(rel_env, emulator, small_model, cli,
                                                                             tmp_path):
    server = emulator()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _second_run_on_a_busy_device(server, tmp_path / "a" / "r.db", tmp_path / "b" / "r.db", small_model, cli)
