"""A run on mnv3bench's emulator computes on a host core: the runner holds that core
(HostCoreLock) and records the session's sensors as emulated, whether the emulator plays
itself (`--device emulator`) or a phone's twin (`--device pixel3 --adb emulate`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnv3bench.bench.runner import NullProgress, RunConfig, run_session
from mnv3bench.device.lock import default_lock_dir, emulator_host_cpu
from mnv3bench.device.profiles import load_profile
from mnv3bench.results import ResultStore
from mnv3bench.variants import parse_variant
from tests.helpers import SMALL

QUICK = RunConfig(trials=1, num_runs=3, warmup_runs=1, min_secs=0.0, max_secs=3.0)


class Said(NullProgress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


@pytest.mark.parametrize(("device", "adb"), [("emulator", None), ("pixel3", "emulate")], ids=["emulator", "twin"])
def test_an_emulated_run_waits_for_its_host_core_and_says_its_sensors_are_emulated(
        rel_env, small_model: Path, tmp_path: Path, device: str, adb: str | None) -> None:
    profile = load_profile(device)
    core = emulator_host_cpu(profile.pin_core)
    # Another run holds the host core this one would measure on, for a second.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from mnv3bench.device.lock import HostCoreLock; "
        f"lock = HostCoreLock({str(default_lock_dir())!r}, {core}).__enter__(); print('held', flush=True); "
        "time.sleep(1.5)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said = Said()
        started = time.monotonic()
        with ResultStore(tmp_path / "r.db") as store:
            result = run_session(profile, [parse_variant(SMALL)], QUICK, store, adb=adb, progress=said,
                                 models_dir=small_model)
            session = store.sessions().set_index("id").loc[result.session_id]
        assert time.monotonic() - started > 1.0 - 0.2  # it measured only after the holder let go
    finally:
        holder.wait(timeout=20)
    waits = [line for line in said.lines if line.startswith("Waiting for host cpu")]
    assert waits and f"host cpu {core}" in waits[0] and str(holder.pid) in waits[0]
    assert session["sensors_emulated"] == 1
