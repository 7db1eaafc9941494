"""Where a session's time goes (SessionResult.timings), with the packaged fake device.

The fake device takes real wall time for pushes and benchmark runs, so each bucket must
hold what it claims: benchmark = the benchmark_model shell calls, waiting = cooldowns,
overhead = the rest of the trial loop, and the buckets never add up to more than total.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from mnv3bench.bench.runner import RunConfig, Timings, run_session
from mnv3bench.device.protocol import ShellResult
from mnv3bench.testing import FakeDevice, FakeSensors
from mnv3bench.testing import benchmark_output as good_output
from tests.bench.helpers import make_artifacts

BENCH_S = 0.08  # wall time of one fake benchmark_model run
PUSH_S = 0.05  # wall time of one fake push
COOLDOWN_S = 0.1


class SlowFakeDevice(FakeDevice):
    def push(self, local, remote, progress=None) -> None:
        time.sleep(PUSH_S)
        super().push(local, remote, progress)


def slow_benchmark(graph: str, n: int) -> ShellResult:
    time.sleep(BENCH_S)
    return ShellResult(good_output(5000 + n), 0, False)


def test_timings_split_push_benchmark_waiting_and_overhead(tmp_path, store):
    from mnv3bench.device.profiles import load_profile

    names = ["a", "b"]
    config = RunConfig(trials=2, cooldown_s=COOLDOWN_S)
    result = run_session(load_profile("pixel3"), [SimpleNamespace(name=n) for n in names], config, store,
                         device=SlowFakeDevice(slow_benchmark), artifacts=make_artifacts(tmp_path, names),
                         sensors=FakeSensors(), sleep=time.sleep)
    t = result.timings
    assert t.trials == 4
    assert t.build_s == 0.0  # artifacts were given: nothing was built
    assert 2 * PUSH_S <= t.push_s < 2 * PUSH_S + 1.0
    assert 4 * BENCH_S <= t.benchmark_s < 4 * BENCH_S + 1.0
    # Three cooldowns (none before the first trial) are waiting, not overhead.
    assert 3 * COOLDOWN_S <= t.waiting_s < 3 * COOLDOWN_S + 1.0
    assert 0 < t.overhead_s < t.waiting_s
    parts = t.build_s + t.push_s + t.benchmark_s + t.overhead_s + t.waiting_s
    assert parts <= t.total_s
    assert t.overhead_fraction == pytest.approx(t.overhead_s / t.benchmark_s)


def test_nothing_measured_has_no_overhead_fraction(tmp_path, store):
    from mnv3bench.device.profiles import load_profile

    profile = load_profile("pixel3")
    arts = make_artifacts(tmp_path, ["a"])
    run_session(profile, [SimpleNamespace(name="a")], RunConfig(trials=2), store, device=FakeDevice(),
                artifacts=arts, sensors=FakeSensors())
    again = run_session(profile, [SimpleNamespace(name="a")], RunConfig(trials=2, reuse=True), store,
                        device=FakeDevice(), artifacts=arts, sensors=FakeSensors())
    assert again.timings.trials == 0 and again.timings.benchmark_s == 0.0
    assert again.timings.overhead_fraction is None
    assert "% of benchmark time" not in again.timings.summary()


def test_summary_line_and_json():
    t = Timings(build_s=0.1, push_s=0.3, benchmark_s=120.4, overhead_s=2.1, total_s=123.5, trials=45)
    assert t.summary() == ("time: build 0.1 s, push 0.3 s, benchmark 120.4 s, overhead 2.1 s "
                           "(1.7% of benchmark time); 45 trial(s), total 123.5 s")
    assert t.to_json() == {"build_s": 0.1, "push_s": 0.3, "benchmark_s": 120.4, "overhead_s": 2.1,
                           "waiting_s": 0.0, "total_s": 123.5, "trials": 45, "overhead_fraction": 0.01744}
    assert "cooldown/thermal wait 5.0 s" in Timings(waiting_s=5.0).summary()


@pytest.fixture
def store(tmp_path):
    from mnv3bench.results import ResultStore

    with ResultStore(tmp_path / "results.db") as s:
        yield s
