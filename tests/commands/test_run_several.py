"""`run --device A --device B ...`: the same variants on several phones at once.

End to end on three Pixel twins attached to Debian's adb server, as a lab's phones are: each
profile finds its twin by codename, one twin fails, and --resume finishes it."""

from __future__ import annotations

import json

import pytest

from mnv3bench.device.profiles import load_profile
from tests.helpers import QUICK, SMALL, rows

PIXELS = ("pixel1", "pixel2", "pixel3")


def test_serials_pair_with_devices_and_a_count_mismatch_is_a_usage_error(cli, rel_env, tmp_path) -> None:
    result = cli("run", "--device", "pixel1", "--device", "pixel2", "--serial", "A", SMALL,
                 "--db", str(tmp_path / "r.db"))
    assert result.code == 2 and "1 --serial for 2 --device" in result.err
    result = cli("run", "--device", "pixel1", "--serial", "A", "--serial", "B", SMALL, "--db", str(tmp_path / "r.db"))
    assert result.code == 2 and "2 --serial for one --device" in result.err


@pytest.mark.slow
def test_three_in_process_twins_in_one_command(cli, rel_env, small_model, tmp_path, monkeypatch) -> None:
    # The fixed-time fault: each benchmark run waits 0.05 s and computes nothing.
    monkeypatch.setenv("MNV3BENCH_EMU_RUN_S", "0.05")
    db = tmp_path / "r.db"
    argv = [a for name in PIXELS for a in ("--device", name)]
    result = cli("run", *argv, "--adb", "emulate:fixed-time", SMALL, "--trials", "2", *QUICK, "--db", str(db),
                 "--models-dir", str(small_model), "--json")
    assert result.code == 0, result.err
    entries = json.loads(result.out)
    assert [entry["device"] for entry in entries] == list(PIXELS)
    assert [entry["latency_ms"]["median"] for entry in entries] == [50.0] * 3
    assert "pixel2: in-process twin" in result.err
    assert sorted(rows(db, "SELECT device_profile, COUNT(*) FROM trials WHERE ok = 1 GROUP BY device_profile")) == [
        (name, 2) for name in PIXELS]


@pytest.mark.adb
@pytest.mark.slow
def test_each_profile_finds_its_twin_on_the_adb_server_and_resume_finishes_a_failed_one(
        cli, rel_env, adb_server, emulator, small_model, tmp_path) -> None:
    serials = {}
    for name in PIXELS:
        # pixel2's twin crashes on its first benchmark run only: its session fails, the others go on.
        twin = emulator(profile=load_profile(name), root=tmp_path / name, faults=("crash@1",) if name == "pixel2" else ())
        serials[name] = adb_server.attach(twin.address)
    db = tmp_path / "r.db"
    argv = ["run", *[a for name in PIXELS for a in ("--device", name)], SMALL, "--trials", "2", *QUICK,
            "--db", str(db), "--models-dir", str(small_model)]
    result = cli(*argv)
    assert result.code == 1, result.err
    for name, codename in zip(PIXELS, ("sailfish", "walleye", "blueline"), strict=True):
        assert f"{name}: {serials[name]} (codename {codename} on the adb server" in result.err
    assert "1 of 3 phones failed: pixel2: Trial 1 of" in result.err and "--resume" in result.err
    assert "pixel1 (" in result.out and "pixel3 (" in result.out  # the others' results are shown
    counted = dict(rows(db, "SELECT device_profile, COUNT(*) FROM trials WHERE ok = 1 GROUP BY device_profile"))
    assert counted == {"pixel1": 2, "pixel3": 2}

    again = cli(*argv, "--resume")
    assert again.code == 0, again.err
    counted = dict(rows(db, "SELECT device_profile, COUNT(*) FROM trials WHERE ok = 1 GROUP BY device_profile"))
    assert counted == {"pixel1": 2, "pixel2": 2, "pixel3": 2}
    assert {json.loads(info)["route"] for (info,) in rows(db, "SELECT device_info FROM sessions")} == {"adb-server"}


def test_compare_on_several_phones_gives_one_comparison_each(tmp_path, capsys) -> None:
    from mnv3bench.bench.runner import RunConfig, run_session
    from mnv3bench.device.protocol import ShellResult
    from mnv3bench.results import ResultStore
    from mnv3bench.testing import FakeDevice, FakeSensors, benchmark_output
    from tests.bench.helpers import make_artifacts
    from tests.helpers import main_in_process

    names = ["small-relu", "small-hswish-fused"]
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        for k, name in enumerate(PIXELS[:2], start=1):
            # On each phone the second variant takes twice as long as the first.
            device = FakeDevice(lambda g, n, k=k: ShellResult(benchmark_output(1000 * k * (2 if "fused" in g else 1)),
                                                              0, False), serial=name.upper())
            run_session(load_profile(name), names, RunConfig(trials=3), store, device=device,
                        artifacts=make_artifacts(tmp_path, names), sensors=FakeSensors(), sleep=lambda s: None)
    code, out, err = main_in_process(["compare", *names, "--device", "pixel1", "--device", "pixel2", "--db", str(db),
                                      "--json"], capsys)
    assert code == 0, err
    found = json.loads(out)
    assert [c["device"] for c in found] == ["pixel1", "pixel2"]
    assert [round(c["ratio"], 2) for c in found] == [0.5, 0.5]  # A / B
    assert [c["median_a_ms"] for c in found] == [1.0, 2.0]


def _fake_phones(devices):
    """The fleet's session runner with each profile on its own fake phone, and those phones."""
    from mnv3bench.bench import runner
    from mnv3bench.bench.fleet import Phone
    from mnv3bench.testing import FakeSensors

    def run_session(profile, variants, config, store, **kw):
        return runner.run_session(profile, variants, config, store, device=devices[profile.name],
                                  artifacts=kw["artifacts"], progress=kw["progress"], sensors=FakeSensors(),
                                  sleep=lambda s: None, command_line=kw["command_line"])

    return run_session, [Phone(load_profile(name), device.serial, "given with --serial") for name, device in devices.items()]


def _ok(graph, n):
    import time

    from mnv3bench.device.protocol import ShellResult
    from mnv3bench.testing import benchmark_output

    time.sleep(0.05)
    return ShellResult(benchmark_output(5000 + n), 0, False)


def test_a_stopped_fleet_says_what_each_phone_kept_and_how_to_measure_the_rest(tmp_path, monkeypatch, capsys) -> None:
    import os
    import signal

    import typer

    import mnv3bench.model.builds as builds
    from mnv3bench.bench.runner import RunConfig
    from mnv3bench.commands.measure_options import measure_fleet
    from mnv3bench.testing import FakeDevice
    from tests.bench.helpers import make_artifacts

    names = ["a", "b"]
    monkeypatch.setattr(builds, "ensure_models", lambda variants, **kw: make_artifacts(tmp_path, names))

    def stops_at_trial_3(graph, n):  # as if Ctrl-C came while pixel2 measured its third trial
        if n == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return _ok(graph, n)

    run_session, phones = _fake_phones({"pixel1": FakeDevice(_ok, serial="P1"),
                                        "pixel2": FakeDevice(stops_at_trial_3, serial="P2")})
    db = tmp_path / "r.db"
    with pytest.raises(typer.Exit) as stopped:
        measure_fleet(run_session, phones, names, RunConfig(trials=20), db, adb=None, models_dir=tmp_path,
                      command_line="mnv3bench run", resume_command="mnv3bench run a b --resume")
    assert stopped.value.exit_code == 143
    err = capsys.readouterr().err
    kept = dict(rows(db, "SELECT device_serial, COUNT(*) FROM trials WHERE ok = 1 GROUP BY device_serial"))
    assert kept["P2"] >= 2 and kept["P1"] >= 1  # pixel2's trial in flight may be stored too
    session = dict(rows(db, "SELECT device_serial, id FROM sessions"))
    for phone, serial in (("pixel1", "P1"), ("pixel2", "P2")):  # each phone's own session, as one phone's Ctrl-C
        line = next(line for line in err.splitlines() if line.startswith(f"{phone}: interrupted"))
        assert f"interrupted: kept {kept[serial]} trial" in line, line
        assert line.endswith(f"r.db, session {session[serial]}."), line
    assert err.rstrip().endswith("Measure what is missing: mnv3bench run a b --resume")


def test_the_models_of_several_phones_are_built_once_with_the_builds_shown_as_for_one(tmp_path, monkeypatch,
                                                                                       capsys) -> None:
    import mnv3bench.model.builds as builds
    from mnv3bench.bench.runner import RunConfig
    from mnv3bench.commands.measure_options import measure_fleet
    from mnv3bench.testing import FakeDevice
    from tests.bench.helpers import make_artifacts

    def ensure_models(variants, *, progress, **kw):
        for state in ("queued", "building", "built"):
            progress("a", state, "/models/a.tflite")
        progress("b", "cached", "/models/b.tflite")
        return make_artifacts(tmp_path, ["a", "b"])

    monkeypatch.setattr(builds, "ensure_models", ensure_models)
    run_session, phones = _fake_phones({"pixel1": FakeDevice(_ok, serial="P1"), "pixel2": FakeDevice(_ok, serial="P2")})
    measure_fleet(run_session, phones, ["a", "b"], RunConfig(trials=1), tmp_path / "r.db", adb=None,
                  models_dir=tmp_path, command_line="mnv3bench run", resume_command="mnv3bench run a b --resume")
    err = capsys.readouterr().err.splitlines()
    assert "building a" in err and "  cached b" in err
    assert any(line.startswith("   built a (") and line.endswith(" s)") for line in err), err
