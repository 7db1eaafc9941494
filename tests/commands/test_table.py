"""`mnv3bench table` through cli.main with the packaged fake device (mnv3bench.testing): the measurement
options it shares with `run`, the time summary, and Ctrl-C. (The real emulator run of
Table 5 is in test_table_emulator.py.)"""

from __future__ import annotations

import json

import pytest

import mnv3bench.commands.run as run_cmd
import mnv3bench.commands.table as table_cmd
from mnv3bench.bench import runner
from mnv3bench.device.protocol import ShellResult
from mnv3bench.results import ResultStore
from mnv3bench.testing import FakeDevice, FakeSensors
from mnv3bench.testing import benchmark_output as good_output
from tests.bench.helpers import make_artifacts
from tests.helpers import main_in_process as cli


@pytest.fixture
def fake_device(monkeypatch, tmp_path):
    """Both commands' run_session on the fake phone with prebuilt fake models."""
    device = FakeDevice(lambda g, n: ShellResult(good_output(9000 + 50 * n), 0, False))
    seen_models_dirs = []

    def fake_session(profile, variants, config, store, **kw):
        seen_models_dirs.append(kw.pop("models_dir"))
        arts = make_artifacts(tmp_path, [v.name for v in variants])
        return runner.run_session(profile, variants, config, store, device=device, artifacts=arts,
                                  sensors=FakeSensors(), sleep=lambda s: None, **kw)

    monkeypatch.setattr(table_cmd, "run_session", fake_session)
    monkeypatch.setattr(run_cmd, "run_session", fake_session)
    device.models_dirs = seen_models_dirs
    return device


MEASURE = ["--num-runs", "7", "--warmup-runs", "2", "--min-secs", "0", "--max-secs", "3", "--no-xnnpack"]
FIXED = ["--precision", "none"]  # table's default is adaptive (--precision 2% within 300 s)


def test_table_takes_runs_measurement_options(fake_device, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    code, out, err = cli(["table", "stem", "--device", "pixel3", "--trials", "2", *FIXED, *MEASURE, "--db", db,
                          "--models-dir", str(tmp_path / "m"), "--reports-dir", str(tmp_path / "rep"), "--json"],
                         capsys)
    assert code == 0, err
    benchmarks = [c for c in fake_device.commands if c.startswith("taskset ")]
    assert len(benchmarks) == 4  # 2 variants x 2 trials
    for command in benchmarks:
        for flag in ("--num_runs=7", "--warmup_runs=2", "--min_secs=0", "--max_secs=3", "--use_xnnpack=false"):
            assert flag in command.split()
    assert fake_device.models_dirs == [tmp_path / "m"]
    doc = json.loads(out)
    timings = doc["timings"]
    assert timings["trials"] == 4 and timings["total_s"] > 0  # the fake device answers in microseconds
    assert {"build_s", "push_s", "benchmark_s", "overhead_s", "waiting_s", "overhead_fraction"} <= set(timings)
    assert any(note.startswith("Session time: build") for note in doc["notes"])
    assert "time: build 0.0 s, push" in err and "% of benchmark time" in err
    markdown = (tmp_path / "rep" / "pixel3" / "latest" / "table-stem.md").read_text()
    assert "Session time: build" in markdown


def test_run_prints_the_timings_on_stderr_and_keeps_json_per_variant(fake_device, tmp_path, capsys):
    code, out, err = cli(["run", "-d", "pixel3", "--variant", "small-hswish-fused-r96", "--trials", "2",
                          "--db", str(tmp_path / "r.db"), "--json"], capsys)
    assert code == 0, err
    [entry] = json.loads(out)
    assert set(entry) == {"variant", "device", "trials", "latency_ms", "warnings"}
    assert "time: build" in err and "2 trial(s)" in err


def test_bad_measurement_option_is_a_usage_error(tmp_path, capsys):
    code, _, err = cli(["table", "5", "--device", "pixel3", "--num-runs", "0", "--db", str(tmp_path / "r.db")],
                       capsys)
    assert code == 2 and "--num-runs" in err and "Traceback" not in err


def test_ctrl_c_during_table_keeps_trials_and_exits_130_with_the_reuse_hint(fake_device, tmp_path, capsys):
    fake_device.respond = lambda g, n: KeyboardInterrupt() if n == 3 else ShellResult(good_output(9000), 0, False)
    db = tmp_path / "r.db"
    code, out, err = cli(["table", "stem", "--device", "pixel3", "--trials", "2", *FIXED, "--db", str(db),
                          "--reports-dir", str(tmp_path / "rep")], capsys)
    assert code == 130
    assert "interrupted" in err and "--reuse" in err and "missing" in err
    assert out == ""
    with ResultStore(db) as store:
        assert len(store.trials(ok_only=True)) == 2  # trial 1 of both variants, stored before Ctrl-C
    # As the hint says: --reuse measures only what is missing (trial 2 of each variant).
    fake_device.respond = lambda g, n: ShellResult(good_output(9000), 0, False)
    before = len([c for c in fake_device.commands if c.startswith("taskset ")])
    code, out, err = cli(["table", "stem", "--device", "pixel3", "--trials", "2", *FIXED, "--reuse", "--db", str(db),
                          "--reports-dir", str(tmp_path / "rep"), "--json"], capsys)
    assert code == 0, err
    assert len([c for c in fake_device.commands if c.startswith("taskset ")]) - before == 2
    assert sum(len(ids) for ids in json.loads(out)["trials"].values()) == 4


def test_table_with_precision_reports_what_it_reached(fake_device, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    code, out, err = cli(["table", "stem", "--device", "pixel3", "--trials", "2", "--precision", "0.01%",
                          "--max-trials", "4", "--seed", "11", *MEASURE, "--db", db, "--models-dir",
                          str(tmp_path / "m"), "--reports-dir", str(tmp_path / "rep"), "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    precision = doc["precision"]
    assert precision["target"] == pytest.approx(0.0001) and precision["stopped"] == "max-trials"
    assert all(cell["trials"] == 4 for cell in precision["cells"].values()) and precision["missed"]
    assert doc["seed"] == 11
    assert "target ±0.01%" in err and "not reached (max-trials)" in err


def test_table_is_adaptive_by_default_and_none_turns_it_off(fake_device, tmp_path, capsys):
    """The default: --precision 2% within 300 s (bench/options.py); `--precision none`: fixed --trials."""
    common = ["table", "stem", "--device", "pixel3", "--trials", "2", "--max-trials", "3", *MEASURE,
              "--db", str(tmp_path / "r.db"), "--models-dir", str(tmp_path / "m"),
              "--reports-dir", str(tmp_path / "rep"), "--json"]
    code, out, err = cli(common, capsys)
    assert code == 0, err
    precision = json.loads(out)["precision"]
    assert precision["target"] == pytest.approx(0.02) and precision["stopped"] in ("reached", "max-trials")
    assert "target ±2.00%" in err
    code, out, err = cli([*common, "--precision", "none"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["precision"]["target"] is None and "target ±" not in err
    assert all(cell["trials"] == 2 for cell in doc["precision"]["cells"].values())
