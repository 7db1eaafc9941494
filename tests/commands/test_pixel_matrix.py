"""Every Pixel twin, end to end: `mnv3bench run` pins the fastest cluster, stores plausible
temperatures (or unknown, with the reason) and identifies the phone by its serial; and the
real-phone faults, each where it happens."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from mnv3bench.device.profiles import load_profile
from tests.helpers import QUICK, SMALL

pytestmark = pytest.mark.slow

PIXELS = [f"pixel{n}" for n in range(1, 10)]


def trials(db: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM trials ORDER BY id").fetchall()


def run_twin(cli, server, name: str, tmp_path: Path, models: Path, *extra: str):
    db = tmp_path / f"{name}.db"
    result = cli("run", "--device", name, "--adb", server.address, "--variant", SMALL, "--trials", "1", *QUICK,
                 "--db", str(db), "--models-dir", str(models), *extra)
    return result, db


def test_every_pixel_twin(cli, emulator, rel_env, models_copy: Path, tmp_path: Path) -> None:
    for name in PIXELS:
        profile = load_profile(name)
        server = emulator((), root=tmp_path / name, profile=profile)
        result, db = run_twin(cli, server, name, tmp_path, models_copy)
        assert result.code == 0, (name, result.err)
        [row] = trials(db)
        assert row["ok"] == 1, (name, row["error_message"])
        fastest = profile.fastest_cluster
        assert row["cpu_core"] == profile.pin_core and row["cpu_core"] in fastest.cpus, name
        assert row["cpu_cluster"] == fastest.label, name
        for temp in (row["temp_before_c"], row["temp_after_c"]):
            assert (temp is not None and 0 < temp < 125) or row["temp_note"], name
        assert row["device_serial"] == server.phone.props["ro.serialno"] != server.address, name
        assert row["device_address"] == server.address
        assert json.loads(row["flags"])["use_xnnpack"] == "true"
        server.stop()


def test_pinning_failure_is_named_in_the_trial(cli, emulator, rel_env, models_copy: Path, tmp_path: Path) -> None:
    server = emulator(("cpuset-little",), root=tmp_path / "p6", profile=load_profile("pixel6"))
    # The runner's preflight stops first and names it, with the fix.
    result, _db = run_twin(cli, server, "pixel6", tmp_path, models_copy)
    assert result.code != 0 and "pinning" in result.err and "cpuset" in result.err


def test_denied_thermal_sysfs_stores_dumpsys_temperatures(cli, emulator, rel_env, models_copy: Path,
                                                          tmp_path: Path) -> None:
    server = emulator(("thermal-denied",), root=tmp_path / "p8", profile=load_profile("pixel8"))
    result, db = run_twin(cli, server, "pixel8", tmp_path, models_copy)
    assert result.code == 0, result.err
    [row] = trials(db)
    assert row["temp_before_c"] == pytest.approx(39.5) and row["temp_note"] is None


def _standin_is_this_checkout() -> bool:
    """The emulator runs its stand-in with `python -I` (no PYTHONPATH): the installed mnv3bench."""
    import subprocess
    import sys

    import mnv3bench

    installed = subprocess.run([sys.executable, "-I", "-c", "import mnv3bench; print(mnv3bench.__file__)"],
                               capture_output=True, text=True, check=True).stdout.strip()
    return Path(installed).resolve() == Path(mnv3bench.__file__).resolve()


@pytest.mark.skipif(not _standin_is_this_checkout(), reason="the emulator's stand-in is another checkout's")
def test_old_binary_that_ignores_use_xnnpack_fails_the_trial(cli, emulator, rel_env, models_copy: Path,
                                                             tmp_path: Path) -> None:
    server = emulator(("old-binary",), root=tmp_path / "p3", profile=load_profile("pixel3"))
    _result, db = run_twin(cli, server, "pixel3", tmp_path, models_copy, "--keep-going")
    [row] = trials(db)
    assert row["ok"] == 0 and "ignored flags" in row["error_message"] and "--use_xnnpack" in row["error_message"]


def test_doctor_on_an_in_process_twin_names_the_dumpsys_source(cli, rel_env) -> None:
    result = cli("doctor", "--device", "pixel6", "--adb", "emulate:thermal-denied")
    assert "dumpsys thermalservice" in result.out, result.out + result.err
    result = cli("doctor", "--device", "pixel7", "--adb", "emulate:cpuset-little")
    assert result.code == 1 and "pinning" in result.out and "cpuset is /foreground" in result.out


def test_a_hung_run_under_its_download_name_is_killed(tmp_path: Path, emulator, adb_key: Path,
                                                      models_copy: Path, rel_env) -> None:
    from mnv3bench.bench.runner import RunConfig, run_session
    from mnv3bench.results import ResultStore
    from mnv3bench.variants import parse_variant

    text = (Path(__file__).resolve().parents[2] / "mnv3bench" / "devices" / "pixel5.toml").read_text()
    path = tmp_path / "pixel5.toml"
    path.write_text(text.replace('benchmark_binary = "/data/local/tmp/benchmark_model"',
                                 'benchmark_binary = "/data/local/tmp/android_aarch64_benchmark_model"'))
    profile = load_profile(path)
    server = emulator(("download-name", "hang@1"), root=tmp_path / "p5", profile=profile)
    config = RunConfig(trials=2, num_runs=3, warmup_runs=1, min_secs=0, max_secs=3, timeout_s=8, keep_going=True)
    with ResultStore(tmp_path / "r.db") as store:
        run_session(profile, [parse_variant(SMALL)], config, store, adb=server.address, models_dir=models_copy,
                    device_options={"keys_path": adb_key})
        frame = store.trials()
    assert frame["ok"].tolist() == [False, True] and frame["timed_out"].tolist()[0]
    assert server.phone.running_pids() == []  # the hung process did not outlive its trial
