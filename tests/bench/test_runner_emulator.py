"""End to end: `mnv3bench run` against the host emulator over real ADB, with its fault knobs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mnv3bench.bench.runner import NullProgress, RunConfig, run_session
from mnv3bench.device.adb import load_signer
from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator import start_in_process
from mnv3bench.errors import MnvError
from mnv3bench.results import ResultStore
from mnv3bench.variants import parse_variant
from tests.helpers import main_in_process as cli

pytestmark = pytest.mark.slow

SMALL = "small-hswish-fused-r96"
QUICK = ["--num-runs", "5", "--min-secs", "0", "--max-secs", "5"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """One build of the small model shared by every test here (building costs seconds)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MNV3BENCH_ADBKEY", str(tmp_path / "adbkey"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the emulated phone's files
    monkeypatch.delenv("MNV3BENCH_ADB", raising=False)
    monkeypatch.setenv("CI", "1")



def test_run_on_the_emulator_then_resume_measures_nothing(tmp_path, models_dir, capsys):
    db = str(tmp_path / "r.db")
    argv = ["run", "--device", "emulator", "--variant", SMALL, "--trials", "3", *QUICK, "--db", db,
            "--models-dir", str(models_dir)]
    code, out, err = cli([*argv, "--json"], capsys)
    assert code == 0, err
    [result] = json.loads(out)
    assert result["variant"] == SMALL and result["device"] == "emulator" and result["trials"] == 3
    latency = result["latency_ms"]
    assert 0 < latency["min"] <= latency["median"] and latency["ci_low"] <= latency["median"] <= latency["ci_high"]
    with ResultStore(tmp_path / "r.db") as store:
        trials = store.trials()
    assert trials["ok"].all() and len(trials) == 3
    assert (trials["flags"].str.contains('"num_runs":"5"')).all()
    assert trials["raw_output"].str.contains("count=5").all()
    assert "pushed" in err

    code, _, err = cli([*argv, "--resume"], capsys)
    assert code == 0, err
    assert "pushed" not in err and "Already measured" in err  # same bytes on the phone, nothing to run
    with ResultStore(tmp_path / "r.db") as store:
        assert len(store.trials()) == 3


class FaultAfter(NullProgress):
    """Turns an emulator fault on once `after` trials have finished."""

    def __init__(self, server, fault: str, after: int) -> None:
        self.server, self.fault, self.after, self.finished = server, fault, after, 0

    def trial_finished(self, variant, trial_index, ok, latency_ms, error):
        self.finished += 1
        if self.finished == self.after:
            self.server.phone.faults = frozenset({self.fault})


class FaultAtTrial(NullProgress):
    """Turns an emulator fault on just before the trials start (after preflight, which
    would otherwise catch a hanging binary itself)."""

    def __init__(self, server, fault: str) -> None:
        self.server, self.fault = server, fault

    def trial_started(self, variant, trial_index, done, total):
        self.server.phone.faults = frozenset({self.fault})


@pytest.fixture
def emulator(tmp_path):
    profile = load_profile("emulator")
    load_signer(tmp_path / "adbkey", notify=lambda m: None)
    server = start_in_process(profile, root=tmp_path / "phone", trusted_keys=[tmp_path / "adbkey.pub"])
    yield profile, server
    server.stop()


def test_link_dropped_mid_session_keeps_trials_and_resume_finishes(tmp_path, models_dir, emulator):
    profile, server = emulator
    variants = [parse_variant(SMALL)]
    config = RunConfig(trials=3, num_runs=5, min_secs=0, max_secs=5)
    with ResultStore(tmp_path / "r.db") as store:
        with pytest.raises(MnvError) as err:
            run_session(profile, variants, config, store, adb=server.address, models_dir=models_dir,
                        progress=FaultAfter(server, "drop-run", after=2))
        assert "--resume" in str(err.value)
        assert store.trials()["trial_index"].tolist() == [1, 2]
        server.phone.faults = frozenset()
        resumed = run_session(profile, variants, RunConfig(trials=3, num_runs=5, min_secs=0, max_secs=5,
                                                           resume=True),
                              store, adb=server.address, models_dir=models_dir)
        assert store.trials(session=resumed.session_id)["trial_index"].tolist() == [3]
        assert resumed.variants[0].summary.n == 3


def test_hung_benchmark_times_out_and_crash_is_a_failed_trial(tmp_path, models_dir, emulator):
    profile, server = emulator
    config = RunConfig(trials=1, num_runs=5, min_secs=0, max_secs=5, timeout_s=3, keep_going=True)
    with ResultStore(tmp_path / "r.db") as store:
        result = run_session(profile, [parse_variant(SMALL)], config, store, adb=server.address,
                             models_dir=models_dir, progress=FaultAtTrial(server, "hang"))
        hung = store.trials().iloc[-1]
        assert not hung["ok"] and hung["timed_out"] and "timed out after 3 s" in hung["error_message"]
        assert hung["raw_output"] and result.variants[0].summary is None

        server.phone.faults = frozenset()  # preflight runs the binary; a hung one would fail it
        run_session(profile, [parse_variant(SMALL)], config, store, adb=server.address, models_dir=models_dir,
                    progress=FaultAtTrial(server, "crash"))
        crashed = store.trials().iloc[-1]
        assert not crashed["ok"] and pd.isna(crashed["latency_ms"])  # a failed trial has no number
        assert "ERROR" in crashed["raw_output"]


def test_hot_phone_waits_at_the_thermal_gate_then_runs(tmp_path, models_dir, monkeypatch):
    monkeypatch.setenv("MNV3BENCH_EMU_COOL_S", "3")
    profile = load_profile("emulator")
    load_signer(tmp_path / "adbkey", notify=lambda m: None)
    server = start_in_process(profile, root=tmp_path / "phone", faults=("hot",),
                              trusted_keys=[tmp_path / "adbkey.pub"])
    messages: list[str] = []

    class Recorder(NullProgress):
        def message(self, text):
            messages.append(text)

    try:
        config = RunConfig(trials=1, num_runs=5, min_secs=0, max_secs=5, thermal_gate_c=50, thermal_poll_s=0.5,
                           thermal_timeout_s=60)
        with ResultStore(tmp_path / "r.db") as store:
            run_session(profile, [parse_variant(SMALL)], config, store, adb=server.address, models_dir=models_dir,
                        progress=Recorder())
            trial = store.trials().iloc[0]
        assert any("Waiting for the CPU to cool below 50 C" in m for m in messages)
        assert trial["ok"] and trial["temp_before_c"] < 50
    finally:
        server.stop()
