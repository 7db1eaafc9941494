"""The Python API (`import mnv3bench`): build, run, make a table, read results."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mnv3bench
from mnv3bench.bench.runner import SessionResult
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.model.cache import ModelArtifact
from mnv3bench.results import ResultStore, SessionRecord, TrialRecord
from mnv3bench.tables.result import TableResult
from tests.commands.helpers import store_session
from tests.helpers import SMALL
from tests.tables.helpers import TABLE5_MS

QUICK = {"trials": 2, "num_runs": 3, "warmup_runs": 1, "min_secs": 0.0, "max_secs": 3.0}


def test_import_is_cheap() -> None:
    code = ("import sys, mnv3bench\n"
            "heavy = {'pandas', 'tensorflow', 'numpy', 'keras', 'adb_shell', 'adbutils', 'typer', 'rich'}\n"
            "print(sorted(heavy & set(sys.modules)))\n"
            "print(all(callable(getattr(mnv3bench, n)) for n in mnv3bench.__all__ if n != '__version__'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True"]


def test_build_models_returns_the_cached_artifact(small_model: Path) -> None:
    [artifact] = mnv3bench.build_models([SMALL], models_dir=small_model)
    assert isinstance(artifact, ModelArtifact) and artifact.variant == SMALL
    assert artifact.path.is_file() and artifact.ops.get("HARD_SWISH", 0) > 0 and artifact.madds > 0


def test_models_default_to_the_clis_folder_not_the_current_one(small_model: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home-dir"
    shutil.copytree(small_model, home / "models")  # the CLI's models folder already holds SMALL
    monkeypatch.setenv("MNV3BENCH_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    [artifact] = mnv3bench.build_models([SMALL])
    assert artifact.path.is_relative_to(home / "models") and not (tmp_path / "models").exists()


def test_build_models_checks_every_name_first(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        mnv3bench.build_models([SMALL, "small-hswish-sideways"], models_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_make_table_and_readers_from_a_stored_session(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, {k: 2 * v for k, v in TABLE5_MS.items()})  # older, slower
        newest = store_session(store, dict(TABLE5_MS))
    table = mnv3bench.make_table("5", "emulator", db=db)
    assert isinstance(table, TableResult) and table.name == "5" and table.missing == []
    assert table.n_trials() == len(TABLE5_MS) * 5 and table.sessions == [newest]
    trials = mnv3bench.read_trials(db)
    assert isinstance(trials, pd.DataFrame) and len(trials) == 2 * len(TABLE5_MS) * 5
    assert trials["ok"].dtype == bool and set(trials["session_id"]) == {1, newest}
    assert len(mnv3bench.read_trials(db, newest=True)) == len(TABLE5_MS) * 5
    assert list(mnv3bench.read_sessions(db)["id"]) == [1, newest]


def test_make_table_carries_the_warnings_and_host_notes_report_shows(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    host = {"cpu_model": "Intel Xeon", "cores": 2, "load_start": [3.5, 2.0, 1.0]}
    with ResultStore(db) as store:
        session = store.start_session(SessionRecord(
            command="table 5", device_profile="emulator", device_serial="s", device_model="m",
            device_fingerprint="fp", flags={}, variants=list(TABLE5_MS), tool_version="test", host=host,
            sensors_emulated=True))
        for variant, ms in TABLE5_MS.items():
            for index, offset in enumerate((-0.01, 0.01)):  # two trials: too few for a CI
                store.record_trial(TrialRecord(
                    session_id=session, variant=variant, model_sha256="a" * 64, device_profile="emulator",
                    device_serial="s", device_model="m", device_fingerprint="fp", flags={}, trial_index=index,
                    started_at="2026-01-01T00:00:00", ended_at="2026-01-01T00:00:01", ok=True,
                    latency_ms=ms * (1 + offset), tool_version="test"))
    table = mnv3bench.make_table("5", "emulator", db=db)
    assert "confidence interval needs at least 3" in " ".join(table.warnings["large-relu"])
    assert any(f"Session {session} ran on the emulator" in n for n in table.notes)
    assert any("HIGH HOST LOAD" in n for n in table.notes)


def test_readers_name_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(MnvError, match="no results database"):
        mnv3bench.read_trials(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.slow
def test_run_on_the_emulator_then_read_it_back(tmp_path: Path, small_model: Path, rel_env: dict[str, str]) -> None:
    db = tmp_path / "results.db"
    session = mnv3bench.run("emulator", [SMALL], QUICK, db=db, models_dir=small_model)
    assert isinstance(session, SessionResult) and session.device_profile == "emulator"
    [variant] = session.variants
    assert variant.variant == SMALL and len(variant.trial_ids) == 2 and variant.summary is not None
    trials = mnv3bench.read_trials(db, variants=[SMALL], ok_only=True)
    assert sorted(trials["id"]) == sorted(variant.trial_ids) and (trials["latency_ms"] > 0).all()
    sessions = mnv3bench.read_sessions(db)
    assert list(sessions["id"]) == [session.session_id] and "Python API" in sessions["command"][0]


def test_run_phones_measures_each_phone_in_its_own_session_of_one_database(tmp_path: Path, small_model: Path,
                                                                            rel_env: dict[str, str]) -> None:
    db = tmp_path / "results.db"
    # Twins of two Pixels in this process; fixed-time: each run takes a set time, no stand-in.
    fleet = mnv3bench.run_phones(["pixel3", "pixel7"], [SMALL], {**QUICK, "trials": 1}, db=db,
                                 adb="emulate:fixed-time", models_dir=small_model)
    assert fleet.failed == [], [str(o.error) for o in fleet.failed]
    assert sorted(r.device_profile for r in fleet.results) == ["pixel3", "pixel7"]
    sessions = mnv3bench.read_sessions(db)
    assert sorted(sessions["device_profile"]) == ["pixel3", "pixel7"]
    assert all("run_phones (Python API)" in command for command in sessions["command"])
    trials = mnv3bench.read_trials(db, variants=[SMALL], ok_only=True)
    assert sorted(trials["device_profile"]) == ["pixel3", "pixel7"]
