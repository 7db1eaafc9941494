"""--precision: rounds continue until the intervals are narrow enough, or a budget ends."""

from __future__ import annotations

import pytest

from mnv3bench.bench.precision import MAX_TIME, MAX_TRIALS, REACHED, assess
from mnv3bench.bench.runner import RunConfig
from mnv3bench.device.protocol import ShellResult
from mnv3bench.errors import UsageError
from mnv3bench.testing import FakeDevice
from mnv3bench.testing import benchmark_output as good_output
from tests.bench.helpers import Messages, make_artifacts, run


def noisy(spread_us: int):
    """a 5 ms model, b 5% slower, with a small noise that cycles through the trials."""
    def answer(graph, n):
        base = 5000 if graph.endswith("a.tflite") else 5250
        return ShellResult(good_output(base + (n * 7919) % spread_us), 0, False)
    return answer


def test_rounds_continue_until_the_target_then_stop(tmp_path, profile, store):
    names = ["a", "b"]
    progress = Messages()
    result, _ = run(profile, store, names, make_artifacts(tmp_path, names), FakeDevice(noisy(500)),
                    RunConfig(trials=3, precision="2%", seed=5), progress=progress)
    report = result.precision
    assert report.stopped == REACHED and report.met and report.missed() == []
    assert all(v <= 0.02 for v in report.cells.values()) and report.comparisons["a vs b"] <= 0.02
    trials = store.trials()
    assert len(trials) == 2 * report.rounds and report.rounds > 3  # --trials is the minimum
    assert sorted(trials["round_index"].unique()) == list(range(1, report.rounds + 1))
    assert all(sorted(g["round_position"]) == [1, 2] for _r, g in trials.groupby("round_index"))
    assert [len(v.trial_ids) for v in result.variants] == [report.rounds] * 2
    lines = [line for line in progress.lines if line.startswith("round ")]
    assert lines and "target ±2.00%" in lines[-1] and "worst ±" in lines[-1]


def test_max_trials_stops_a_target_out_of_reach_and_flags_what_missed(tmp_path, profile, store):
    names = ["a", "b"]
    progress = Messages()
    result, _ = run(profile, store, names, make_artifacts(tmp_path, names), FakeDevice(noisy(3000)),
                    RunConfig(trials=3, precision="0.1%", max_trials=6), progress=progress)
    report = result.precision
    assert report.stopped == MAX_TRIALS and not report.met and report.missed()
    assert report.trials == {"a": 6, "b": 6}
    assert any(line.startswith("warning: precision ±0.10% not reached (max-trials)") for line in progress.lines)
    data = report.to_json()
    assert data["met"] is False and data["cells"]["a"]["trials"] == 6 and data["missed"] == report.missed()


def test_max_time_stops_starting_rounds(tmp_path, profile, store):
    result, _ = run(profile, store, ["a", "b"], make_artifacts(tmp_path, ["a", "b"]), FakeDevice(noisy(3000)),
                    RunConfig(trials=2, precision="0.1%", max_time_s=1e-9))
    assert result.precision.stopped == MAX_TIME and len(store.trials()) == 4


def test_without_precision_the_trials_are_fixed(tmp_path, profile, store):
    result, _ = run(profile, store, ["a", "b"], make_artifacts(tmp_path, ["a", "b"]), FakeDevice(noisy(3000)),
                    RunConfig(trials=2))
    assert result.precision is None and len(store.trials()) == 4


def test_precision_option_values():
    assert RunConfig(precision="2%").precision_target == pytest.approx(0.02)
    assert RunConfig(precision="0.005").precision_target == pytest.approx(0.005)
    for bad in ("0%", "100%", "two", "-1%"):
        with pytest.raises(UsageError, match="--precision"):
            RunConfig(precision=bad)
    with pytest.raises(UsageError, match="--max-trials"):
        RunConfig(trials=5, max_trials=4)
    assert RunConfig(precision="none").precision_target is None  # table's way to fixed trials


def test_only_the_comparisons_asked_for_must_reach_the_target(tmp_path, profile, store):
    """A table resolves its own comparisons, not every pair of its variants."""
    names = ["a", "b", "c"]
    result, _ = run(profile, store, names, make_artifacts(tmp_path, names), FakeDevice(noisy(500)),
                    RunConfig(trials=2, precision="50%", max_trials=3), comparisons=[("b", "a")])
    assert set(result.precision.comparisons) == {"b vs a"}


def test_assess_counts_missing_intervals_as_the_worst():
    report = assess(0.02, {"a": [5.0], "b": [5.0, 5.1, 5.2]}, {"a": [None], "b": [None] * 3}, [("a", "b")])
    assert report.worst()[1] is None and not report.met and "a" in report.missed()
