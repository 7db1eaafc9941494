"""`mnv3bench run` and `mnv3bench compare` through cli.main (the packaged fake device at the Device seam)."""

from __future__ import annotations

import json

import pytest

import mnv3bench.commands.run as run_cmd
from mnv3bench.bench import runner
from mnv3bench.device.protocol import ShellResult
from mnv3bench.results import ResultStore
from mnv3bench.testing import FakeDevice, FakeSensors
from mnv3bench.testing import benchmark_output as good_output
from tests.bench.helpers import make_artifacts
from tests.helpers import main_in_process as cli


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """run_session with the fake phone and prebuilt fake models; returns the device."""
    device = FakeDevice(lambda g, n: ShellResult(good_output((4000 if "small" in g else 9000) + 7 * (n % 3)), 0,
                                                 False))

    def fake_session(profile, variants, config, store, **kw):
        kw.pop("models_dir", None)
        arts = make_artifacts(tmp_path, [v.name for v in variants])
        return runner.run_session(profile, variants, config, store, device=device, artifacts=arts,
                                  sensors=FakeSensors(), sleep=lambda s: None, **kw)

    monkeypatch.setattr(run_cmd, "run_session", fake_session)
    return device


SMALL, LARGE = "small-hswish-fused-r96", "large-hswish-fused-r96"


def test_run_json_and_compare(fake_run, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    code, out, err = cli(["run", "--device", "pixel3", "--variant", SMALL, "--variant", LARGE, "--trials", "4",
                          "--db", db, "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert [d["variant"] for d in data] == [SMALL, LARGE]
    for d in data:
        assert set(d) == {"variant", "device", "trials", "latency_ms", "warnings"}
        assert d["device"] == "pixel3" and d["trials"] == 4
        assert {"median", "mean", "std", "min", "ci_low", "ci_high", "cv"} <= set(d["latency_ms"])
    assert data[0]["latency_ms"]["median"] < data[1]["latency_ms"]["median"]
    assert "trial" in err  # plain progress on stderr (not a terminal under pytest)

    code, out, err = cli(["compare", SMALL, LARGE, "--device", "pixel3", "--db", db], capsys)
    assert code == 0, err
    assert "faster" in out and "Mann-Whitney" in out

    code, out, _ = cli(["compare", SMALL, LARGE, "--device", "pixel3", "--db", db, "--json"], capsys)
    result = json.loads(out)
    assert result["ratio"] < 0.5 and result["n_a"] == 4 and result["p_value"] is not None


def test_run_table_and_resume(fake_run, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    code, out, _ = cli(["run", "-d", "pixel3", "--variant", SMALL, "--trials", "2", "--db", db], capsys)
    assert code == 0 and SMALL in out and "median" in out and "times in ms" in out
    code, out, _ = cli(["run", "-d", "pixel3", "--variant", SMALL, "--trials", "3", "--db", db, "--resume"], capsys)
    assert code == 0
    with ResultStore(tmp_path / "r.db") as store:
        assert store.trials()["trial_index"].tolist() == [1, 2, 3]


def test_resume_with_other_flags_names_them_and_asks_for_force_new(fake_run, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    base = ["run", "-d", "pixel3", SMALL, "--db", db]
    code, _, _ = cli([*base, "--trials", "2", "--num-runs", "20", "--no-xnnpack"], capsys)
    assert code == 0
    code, _, err = cli([*base, "--trials", "3", "--num-runs", "30", "--resume"], capsys)
    text = " ".join(err.split())
    assert code == 2 and "session 1, the one it would resume, ran with other benchmark flags" in text
    assert "--num-runs: 20 then, 30 now" in text and "--force-new" in text
    assert "--use-xnnpack" not in text  # left at its default: taken from the session, not an error
    with ResultStore(tmp_path / "r.db") as store:
        assert len(store.sessions()) == 1  # nothing started

    # Options left out: the session's own flags, and only the missing trial runs.
    code, _, err = cli([*base, "--trials", "3", "--resume"], capsys)
    assert code == 0 and "continuing session 1 with its flags" in " ".join(err.split())
    with ResultStore(tmp_path / "r.db") as store:
        trials = store.trials()
        assert trials["trial_index"].tolist() == [1, 2, 3] and trials["flags"].nunique() == 1
        assert '"num_runs":"20"' in trials["flags"].iloc[-1] and '"use_xnnpack":"false"' in trials["flags"].iloc[-1]

    # --force-new: a new, full session with the flags given.
    code, _, _ = cli([*base, "--trials", "2", "--num-runs", "30", "--resume", "--force-new"], capsys)
    with ResultStore(tmp_path / "r.db") as store:
        newest = store.trials(session=3)
        assert code == 0 and newest["trial_index"].tolist() == [1, 2]
        assert '"num_runs":"30"' in newest["flags"].iloc[0]


def test_run_all_trials_failed_is_exit_1(monkeypatch, fake_run, tmp_path, capsys):
    fake_run.respond = lambda g, n: ShellResult("ERROR: Could not create interpreter\n", 1, False)
    code, _, err = cli(["run", "-d", "pixel3", "--variant", SMALL, "--trials", "2", "--keep-going",
                        "--db", str(tmp_path / "r.db")], capsys)
    assert code == 1 and "No successful trial" in err and "Traceback" not in err


def test_bad_input_is_exit_2(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    code, _, err = cli(["run", "-d", "pixel3", "--variant", "tiny-bogus", "--db", db], capsys)
    assert code == 2 and "Traceback" not in err
    code, _, err = cli(["run", "-d", "nokia3310", "--variant", SMALL, "--db", db], capsys)
    assert code == 2 and "nokia3310" in err
    code, _, err = cli(["run", "-d", "pixel3", "--variant", SMALL, "--trials", "0", "--db", db], capsys)
    assert code == 2 and "--trials" in err
    code, _, err = cli(["compare", SMALL, LARGE, "-d", "pixel3", "--db", db], capsys)
    assert code == 2 and "No results database" in err


def test_compare_without_trials_of_one_variant(fake_run, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    cli(["run", "-d", "pixel3", "--variant", SMALL, "--trials", "2", "--db", db], capsys)
    code, _, err = cli(["compare", SMALL, LARGE, "-d", "pixel3", "--db", db], capsys)
    assert code == 1 and "No successful trials of" in err and "mnv3bench run" in err
    cli(["run", "-d", "pixel3", "--variant", LARGE, "--trials", "2", "--db", db], capsys)
    # Measured in two sessions, never together: no silent pooling.
    code, _, err = cli(["compare", SMALL, LARGE, "-d", "pixel3", "--db", db], capsys)
    assert code == 1 and "never measured together" in err and "--all-sessions" in err
    code, out, err = cli(["compare", SMALL, LARGE, "-d", "pixel3", "--db", db, "--all-sessions"], capsys)
    assert code == 0 and "cannot reach p < 0.05" in out
    assert "pooled trials of sessions 1, 2" in err


@pytest.mark.parametrize(("trials", "absent"), [(1, ["a CI needs 3 trials", "a CV needs 2 trials"]),
                                                (2, ["a CI needs 3 trials"])])
def test_statistics_below_their_minimum_trials_are_absent(fake_run, tmp_path, capsys, trials, absent):
    code, out, err = cli(["run", "--device", "pixel3", "--variant", SMALL, "--trials", str(trials),
                          "--db", str(tmp_path / "r.db")], capsys)
    assert code == 0, err
    flat = " ".join(out.split())
    for reason in absent:
        assert f"— ({reason})" in flat
    if trials == 1:
        assert "0.0%" not in out
    assert "results stored in" in err  # where the trials went


def test_variants_as_arguments_like_build_and_compare(fake_run, tmp_path, capsys):
    db = str(tmp_path / "r.db")
    code, out, err = cli(["run", "-d", "pixel3", SMALL, LARGE, "--trials", "1", "--db", db, "--json"], capsys)
    assert code == 0, err
    assert [d["variant"] for d in json.loads(out)] == [SMALL, LARGE]
    code, out, err = cli(["run", "-d", "pixel3", SMALL, "--variant", LARGE, "--trials", "1", "--db", db, "--json"],
                         capsys)
    assert code == 0 and [d["variant"] for d in json.loads(out)] == [SMALL, LARGE]


def test_dash_v_is_verbose_anywhere_on_the_line(fake_run, tmp_path, capsys):
    code, _, err = cli(["run", "-d", "pixel3", SMALL, "-v", "--trials", "1", "--db", str(tmp_path / "r.db")], capsys)
    assert code == 0, err
    assert "[1/1] small-hswish-fused-r96 trial 1" in err  # one line per event


def test_flags_show_no_value_type_in_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = cli(["run", "--help"], capsys)
    assert code == 0
    assert "<bool>" not in out and "--json" in out and "--keep-going" in out
    assert "<int>" in out  # options that take a value still show its type


def test_flags_after_double_dash_go_to_benchmark_model_and_are_stored(fake_run, tmp_path, capsys):
    db = tmp_path / "r.db"
    code, _, err = cli(["run", "-d", "pixel3", SMALL, "--trials", "1", "--num-threads", "2", "--db", str(db),
                        "--", "--use_gpu=false"], capsys)
    assert code == 0, err
    assert any("--num_threads=2" in c and "--use_gpu=false" in c for c in fake_run.commands)
    with ResultStore(db) as store:
        flags = json.loads(store.trials()["flags"].iloc[0])
    assert flags["use_gpu"] == "false" and flags["num_threads"] == "2"


def _suggested(err: str, after: str) -> list[str]:
    """The command a hint suggests after `after`, as argv for cli.main."""
    import re
    import shlex

    [line] = re.findall(re.escape(after) + r" `?([^`\n]+)`?", err)
    argv = shlex.split(line)
    assert argv[0] == "mnv3bench"
    return argv[1:]


def test_following_a_suggested_command_stays_on_the_users_db(fake_run, tmp_path, capsys):
    db = str(tmp_path / "custom.db")
    code, _, err = cli(["run", "-d", "pixel3", SMALL, "--trials", "3", "--db", db], capsys)
    assert code == 0, err
    code, _, err = cli(["compare", SMALL, LARGE, "-d", "pixel3", "--db", db], capsys)
    assert code == 1 and "Measure it:" in err  # LARGE was never measured
    follow = _suggested(err, "Measure it:")
    assert follow[follow.index("--db") + 1] == db
    code, _, err = cli([*follow, "--trials", "6"], capsys)
    assert code == 0, err
    code, out, err = cli(["compare", SMALL, LARGE, "-d", "pixel3", "--db", db], capsys)
    assert code == 0 and "faster" in out
    assert not (tmp_path / "reports").exists()  # nothing went to the default database


def test_a_failed_trial_says_the_exact_resume_command_with_every_option(fake_run, tmp_path, capsys):
    db = str(tmp_path / "custom.db")
    fake_run.respond = lambda g, n: ShellResult("ERROR: boom", 1, False) if n == 2 else ShellResult(
        good_output(4000), 0, False)
    argv = ["run", "-d", "pixel3", SMALL, "--trials", "3", "--num-runs", "7", "--db", db, "--", "--use_gpu=false"]
    code, _, err = cli(argv, capsys)
    assert code == 1 and "--resume" in err
    follow = _suggested(err, "That is:")
    assert follow == [*argv[:-2], "--resume", "--", "--use_gpu=false"]  # the same flags: a resume, not a new session
    fake_run.respond = lambda g, n: ShellResult(good_output(4000), 0, False)
    code, _, err = cli(follow, capsys)
    assert code == 0, err
    with ResultStore(db) as store:
        ok = store.trials(ok_only=True)
    assert sorted(ok["trial_index"]) == [1, 2, 3]  # trial 2 again, on the same database
