"""The runner against the packaged fake device (mnv3bench.testing; hyperfine's mock executor)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from mnv3bench.bench.runner import KILL_COMMAND, RUNNING_COMMAND, RunConfig, run_session
from mnv3bench.device.protocol import ShellResult
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.testing import FakeDevice, FakeSensors
from mnv3bench.testing import benchmark_output as good_output
from tests.bench.helpers import make_artifacts, run


def test_trials_run_in_rounds_of_every_variant_and_are_stored(tmp_path, profile, store):
    names = ["a", "b", "c"]
    dev = FakeDevice()
    result, _ = run(profile, store, names, make_artifacts(tmp_path, names), dev)
    graphs = [Path(g).stem for g in dev.benchmarks]
    # Each round runs every variant once, in its own random order.
    assert [sorted(graphs[i:i + 3]) for i in (0, 3, 6)] == [names] * 3
    trials = store.trials()
    assert list(trials["trial_index"]) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert list(trials["round_index"]) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert list(trials["round_position"]) == [1, 2, 3] * 3
    assert list(trials["variant"]) == graphs
    assert trials["ok"].all() and (trials["latency_ms"] > 5).all()
    # Every command naming the binary is a pinned run, bar the stale-benchmark check (pidof).
    assert all(c.startswith("taskset 10 /data/local/tmp/benchmark_model --graph=") for c in dev.commands
               if "benchmark_model" in c and c != RUNNING_COMMAND)
    assert [v.summary.n for v in result.variants] == [3, 3, 3]
    # trial n answers 5000 + n us: the summary is over the trials variant a ran as
    a_ms = sorted(trials[trials["variant"] == "a"]["latency_ms"])
    assert result.variants[0].summary.median == pytest.approx(a_ms[1])
    assert store.sessions()["seed"].tolist() == [result.seed]


def test_a_trial_is_its_runs_mean_with_the_median_kept_beside_it(tmp_path, profile, store):
    with_median = good_output(5000).replace("std=12\n", "std=12 p5=4990 median=4995 p95=5080\n")
    outputs = iter([with_median, good_output(6000)])
    dev = FakeDevice(lambda graph, n: ShellResult(next(outputs), 0, False))
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev, RunConfig(trials=2))
    trials = store.trials().sort_values("trial_index")
    assert trials["latency_ms"].tolist() == pytest.approx([5.0, 6.0])
    assert trials["latency_estimator"].tolist() == ["mean", "mean"]
    assert trials["inference_median_us"].tolist()[0] == pytest.approx(4995)  # both kept


def test_the_seed_repeats_the_order(tmp_path, profile, store):
    names = ["a", "b", "c", "d"]
    orders = []
    for _ in range(2):
        dev = FakeDevice()
        run(profile, store, names, make_artifacts(tmp_path, names), dev, RunConfig(trials=4, seed=7))
        orders.append([Path(g).stem for g in dev.benchmarks])
    assert orders[0] == orders[1]
    assert orders[0][:4] != orders[0][4:8] or orders[0][4:8] != orders[0][8:12]  # rounds are shuffled


def test_push_skipped_when_device_holds_same_bytes(tmp_path, profile, store):
    arts = make_artifacts(tmp_path, ["a", "b"])
    dev = FakeDevice()
    dev.files[f"{profile.work_dir}/a.tflite"] = arts[0].sha256
    dev.files[f"{profile.work_dir}/b.tflite"] = "0" * 64  # stale model from an older build
    run(profile, store, ["a", "b"], arts, dev, RunConfig(trials=1))
    assert dev.pushes == [f"{profile.work_dir}/b.tflite"]
    assert dev.files[f"{profile.work_dir}/b.tflite"] == arts[1].sha256


def test_half_pushed_model_is_never_benchmarked(tmp_path, profile, store):
    dev = FakeDevice(corrupt_push=True)
    with pytest.raises(MnvError, match="does not match the built file"):
        run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev)
    assert dev.benchmarks == [] and store.trials().empty


def test_failed_output_is_a_failed_trial_with_raw_text(tmp_path, profile, store):
    def respond(graph, n):
        if n == 2:
            return ShellResult("ERROR: Failed to allocate tensors\nBenchmarking failed.\n", 1, False)
        return ShellResult(good_output(4000), 0, False)

    result, _ = run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), FakeDevice(respond),
                    RunConfig(trials=3, keep_going=True))
    trials = store.trials()
    failed = trials[~trials["ok"]]
    assert len(failed) == 1 and failed["latency_ms"].isna().all()
    assert "Failed to allocate tensors" in failed["raw_output"].iloc[0]
    assert "status 1" in failed["error_message"].iloc[0]
    v = result.variants[0]
    assert v.summary.n == 2 and v.failed == 1
    assert {w.code for w in v.warnings} >= {"failed-trials", "few-trials"}


def test_output_without_latency_stops_without_keep_going(tmp_path, profile, store):
    dev = FakeDevice(lambda g, n: ShellResult("INFO: Initialized session in 3.5ms.\n", 0, False))
    with pytest.raises(MnvError, match="(?s)Trial 1 of a failed.*--keep-going") as err:
        run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev)
    assert "--resume" in err.value.hint
    trials = store.trials()
    assert len(trials) == 1 and not trials["ok"].iloc[0] and len(dev.benchmarks) == 1


def test_timeout_kills_device_process_and_keeps_partial_output(tmp_path, profile, store):
    timeouts: list[float] = []

    class Recording(FakeDevice):
        def shell(self, command, *, timeout_s=60.0):
            if command.startswith("taskset"):
                timeouts.append(timeout_s)
            return super().shell(command, timeout_s=timeout_s)

    def respond(graph, n):
        if n == 1:
            return ShellResult("INFO: Initialized session in 3.5ms.\nINFO: count=1 curr=9000\n", None, True)
        return ShellResult(good_output(4000), 0, False)

    dev = Recording(respond)
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev, RunConfig(trials=2, keep_going=True,
                                                                                 timeout_s=7))
    assert timeouts == [7, 7]
    assert dev.commands.index(KILL_COMMAND) == dev.commands.index(next(c for c in dev.commands if "taskset" in c)) + 1
    first = store.trials().iloc[0]
    assert not first["ok"] and first["timed_out"] and "timed out after 7 s" in first["error_message"]
    assert "count=1 curr=9000" in first["raw_output"]
    assert store.trials()["ok"].tolist() == [False, True]


def test_default_timeout_is_derived_from_max_secs():
    assert RunConfig(max_secs=10).trial_timeout_s == 2 * (10 + 10) + 30
    assert RunConfig(max_secs=10, timeout_s=5).trial_timeout_s == 5


def test_disconnect_keeps_finished_trials_and_resume_measures_the_rest(tmp_path, profile, store):
    names = ["a", "b"]
    arts = make_artifacts(tmp_path, names)
    dev = FakeDevice(lambda g, n: ConnectionResetError("device offline") if n == 4 else
                     ShellResult(good_output(3000 + n), 0, False))
    with pytest.raises(MnvError, match="Lost the connection") as err:
        run(profile, store, names, arts, dev, RunConfig(trials=3))
    assert "--resume" in err.value.hint
    stored = store.trials()
    ran = [Path(g).stem for g in dev.benchmarks]  # the 4th never answered
    assert list(zip(stored["variant"], stored["trial_index"])) == list(zip(ran[:3], [1, 1, 2]))
    assert sorted(ran[:2]) == names  # round 1 was whole
    first_of_round_2 = ran[2]
    rest = {(v, i) for v in names for i in (1, 2, 3)} - set(zip(stored["variant"], stored["trial_index"]))

    dev2 = FakeDevice()
    dev2.files = dict(dev.files)
    result, _ = run(profile, store, names, arts, dev2, RunConfig(trials=3, resume=True))
    other = next(n for n in names if n != first_of_round_2)
    assert sorted(Path(g).stem for g in dev2.benchmarks) == sorted([first_of_round_2, other, other])
    measured = store.trials(session=result.session_id)
    assert set(zip(measured["variant"], measured["trial_index"])) == rest and len(measured) == 3
    assert dev2.pushes == []  # the bytes were already there
    assert [v.summary.n for v in result.variants] == [3, 3]

    # Resuming a finished run measures nothing, and a resume of a resume still sees part one.
    dev3 = FakeDevice()
    dev3.files = dict(dev.files)
    result3, _ = run(profile, store, names, arts, dev3, RunConfig(trials=3, resume=True))
    assert dev3.benchmarks == [] and [v.summary.n for v in result3.variants] == [3, 3]


def test_resume_ignores_trials_with_other_flags_or_bytes(tmp_path, profile, store):
    arts = make_artifacts(tmp_path, ["a"])
    dev = FakeDevice()
    run(profile, store, ["a"], arts, dev, RunConfig(trials=2, num_runs=10))
    with pytest.raises(UsageError, match="--num-runs: 10 then, 20 now"):  # other flags: said, not silent
        run(profile, store, ["a"], arts, dev, RunConfig(trials=2, num_runs=20, resume=True))
    run(profile, store, ["a"], arts, dev, RunConfig(trials=2, num_runs=20, resume=True, force_new=True))
    assert len(dev.benchmarks) == 4  # different flags: nothing to resume
    arts[0].path.write_bytes(b"rebuilt")
    arts[0] = dataclasses.replace(arts[0], sha256=hashlib.sha256(b"rebuilt").hexdigest())
    run(profile, store, ["a"], arts, dev, RunConfig(trials=2, num_runs=20, resume=True))
    assert len(dev.benchmarks) == 6


def test_reuse_counts_every_stored_session(tmp_path, profile, store):
    arts = make_artifacts(tmp_path, ["a"])
    dev = FakeDevice()
    run(profile, store, ["a"], arts, dev, RunConfig(trials=2))
    result, _ = run(profile, store, ["a"], arts, dev, RunConfig(trials=3, reuse=True))
    assert len(dev.benchmarks) == 3
    assert result.variants[0].reused == 2 and result.variants[0].summary.n == 3
    assert store.trials()["trial_index"].tolist() == [1, 2, 3]
    # The session says which stored trials it built on, so `report` shows the same 3.
    assert len(store.measurement_trials(device=profile.name)) == 3


def test_thermal_gate_waits_until_cool(tmp_path, profile, store):
    now = [0.0]
    sensors = FakeSensors(temps=[48.0, 44.0, 39.0, 39.0, 39.0])
    sleeps: list[float] = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    run_session(profile, [SimpleNamespace(name="a")], RunConfig(trials=1, thermal_gate_c=40, thermal_poll_s=5),
                store, device=FakeDevice(), artifacts=make_artifacts(tmp_path, ["a"]), sensors=sensors,
                sleep=sleep, clock=lambda: now[0])
    assert sleeps == [5, 5]
    assert store.trials()["temp_before_c"].iloc[0] == 39.0


def test_thermal_gate_times_out_with_advice(tmp_path, profile, store):
    now = [0.0]

    def sleep(s):
        now[0] += s

    with pytest.raises(MnvError, match="above the thermal gate") as err:
        run_session(profile, [SimpleNamespace(name="a")],
                    RunConfig(trials=1, thermal_gate_c=40, thermal_timeout_s=12, thermal_poll_s=5), store,
                    device=FakeDevice(), artifacts=make_artifacts(tmp_path, ["a"]), sensors=FakeSensors([55.0]),
                    sleep=sleep, clock=lambda: now[0])
    assert "cool" in err.value.hint and now[0] == 12
    assert store.trials().empty


def test_throttling_is_flagged(tmp_path, profile, store):
    # the core's cap after each trial: capped to 1.9 GHz after trial 1 (rated 2.8 GHz)
    sensors = FakeSensors(caps=[1900800, 2803200, 2803200])
    result, _ = run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), FakeDevice(), sensors=sensors)
    assert store.trials()["throttled"].tolist() == [True, False, False]
    assert {"throttled", "freq-changed"} <= {w.code for w in result.variants[0].warnings}


def test_cooldown_between_trials_not_before_first(tmp_path, profile, store):
    _, sleeps = run(profile, store, ["a", "b"], make_artifacts(tmp_path, ["a", "b"]), FakeDevice(),
                    RunConfig(trials=2, cooldown_s=3))
    assert sleeps == [3, 3, 3]


def test_device_in_use_by_another_run(tmp_path, profile, store):
    from mnv3bench.device.lock import DeviceLock, default_lock_dir, device_lock_key

    # The lock is per user, not per database: another --db cannot get around it.
    assert store.path.parent not in default_lock_dir().parents
    # Keyed by the serial number the phone reports (the fake reports FAKE123).
    with DeviceLock(default_lock_dir(), device_lock_key("FAKE123", "FAKE123")):
        with pytest.raises(MnvError, match="in use by another mnv3bench process"):
            run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), FakeDevice())
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), FakeDevice())  # free again


def test_bad_config_is_a_usage_error():
    with pytest.raises(UsageError, match="--trials"):
        RunConfig(trials=0)
    with pytest.raises(UsageError, match="--max-secs"):
        RunConfig(min_secs=5, max_secs=2)


def test_ctrl_c_keeps_finished_trials_and_kills_the_device_process(tmp_path, profile, store):
    dev = FakeDevice(lambda g, n: KeyboardInterrupt() if n == 3 else ShellResult(good_output(4000), 0, False))
    with pytest.raises(KeyboardInterrupt):
        run(profile, store, ["a", "b"], make_artifacts(tmp_path, ["a", "b"]), dev)
    assert dev.commands[-1] == KILL_COMMAND
    # Round 1 (a and b, either order) finished; the trial interrupted is not stored.
    assert sorted(zip(store.trials()["variant"], store.trials()["trial_index"])) == [("a", 1), ("b", 1)]


def test_ctrl_c_from_the_cli_exits_130_with_the_resume_hint(tmp_path, monkeypatch, capfd):
    import mnv3bench.commands.run as run_cmd
    from mnv3bench.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_cmd, "run_session", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "-d", "pixel3", "--variant", "small-hswish-fused-r96", "--db", str(tmp_path / "r.db")])
    assert exit_info.value.code == 130 and "--resume" in capfd.readouterr().err



def test_a_run_that_printed_stats_then_failed_stores_no_timings(tmp_path, profile, store):
    # benchmark_model printed a full result, then died at teardown (exit 139): a failure,
    # and none of its numbers may be stored as if they were a measurement.
    device = FakeDevice(respond=lambda graph, n: ShellResult(good_output(5000), 139, False))
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), device, RunConfig(trials=1, keep_going=True))
    [trial] = store.trials().to_dict("records")
    assert not trial["ok"] and "status 139" in trial["error_message"]
    assert pd.isna(trial["latency_ms"]) and pd.isna(trial["inference_avg_us"]) and trial["error"]


def test_a_bug_is_not_reported_as_a_lost_connection(tmp_path, profile, store):
    # Only the device layer's DeviceLinkError means the link died; anything else is a bug
    # and must surface as itself, not as "Lost the connection".
    dev = FakeDevice(lambda g, n: KeyError("op_profile") if n == 2 else ShellResult(good_output(4000), 0, False))
    with pytest.raises(KeyError, match="op_profile"):
        run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev)
    assert store.trials()["trial_index"].tolist() == [1]
