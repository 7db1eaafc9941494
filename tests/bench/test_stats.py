"""Statistics: known data, CIs that contain the median, warnings that fire, comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnv3bench.bench import stats
from mnv3bench.bench.command import benchmark_command, benchmark_flags
from mnv3bench.bench.runner import RunConfig
from mnv3bench.device.profiles import load_profile


def test_summary_of_known_data():
    s = stats.summarize([10.0, 12.0, 11.0, 13.0, 14.0])
    assert (s.n, s.median, s.mean, s.min) == (5, 12.0, 12.0, 10.0)
    assert s.std == pytest.approx(np.sqrt(2.5))
    assert s.cv == pytest.approx(np.sqrt(2.5) / 12.0)
    assert 10.0 <= s.ci_low <= 12.0 <= s.ci_high <= 14.0
    assert s.ci_low < s.ci_high
    assert "bootstrap" in s.ci_method and "median" in s.ci_method


def test_summary_is_reproducible_and_degenerate_cases():
    data = [5.1, 5.3, 5.0, 5.6, 5.2, 5.4]
    assert stats.summarize(data) == stats.summarize(data)
    one = stats.summarize([3.0])
    assert (one.ci_low, one.ci_high, one.std, one.cv) == (None, None, 0.0, 0.0)
    same = stats.summarize([2.0, 2.0, 2.0])
    assert (same.ci_low, same.ci_high) == (2.0, 2.0)
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.summarize([1.0, float("nan")])


@pytest.mark.fuzz
@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=0.1, max_value=1000, allow_nan=False), min_size=2, max_size=12))
def test_ci_contains_the_median(values):
    s = stats.summarize(values)
    assert s.ci_low - 1e-9 <= s.median <= s.ci_high + 1e-9
    assert s.min <= s.median


def codes(warnings):
    return {w.code for w in warnings}


def test_quiet_data_raises_no_warning():
    assert stats.diagnose([10.0, 10.1, 10.05, 9.98, 10.02], freq_caps_khz=[2803200] * 5) == []


def test_warnings_fire_with_advice():
    noisy = stats.diagnose([10.0, 13.0, 9.0, 12.5, 8.0])
    assert "high-cv" in codes(noisy)
    assert "cool" in next(w for w in noisy if w.code == "high-cv").advice
    slow_first = stats.diagnose([12.0, 10.0, 10.1, 9.9, 10.0])
    assert "slow-first-trial" in codes(slow_first)
    assert "--warmup-runs" in str(next(w for w in slow_first if w.code == "slow-first-trial"))
    assert "few-trials" in codes(stats.diagnose([10.0, 10.1]))
    assert "throttled" in codes(stats.diagnose([10.0, 10.1, 10.0], throttled=[False, True, False]))
    changed = stats.diagnose([10.0, 10.1, 10.0], freq_caps_khz=[2803200, 2803200, 1900800])
    assert "freq-changed" in codes(changed)
    assert "failed-trials" in codes(stats.diagnose([10.0, 10.1, 10.0], failed_trials=1))


def test_compare_detects_a_real_difference():
    fast = [10.0, 10.2, 9.9, 10.1, 10.05]
    slow = [12.0, 12.3, 11.9, 12.1, 12.2]
    c = stats.compare(fast, slow)
    assert c.ratio == pytest.approx(10.05 / 12.1)
    assert c.ratio_ci_low < c.ratio < c.ratio_ci_high < 1.0
    assert c.p_value < 0.05 and c.significant
    sentence = stats.describe(c, "fused", "naive")
    assert "faster" in sentence and "significant" in sentence and "fused" in sentence


def test_compare_finds_no_difference_in_noise():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 0.3, 5), rng.normal(10, 0.3, 5)
    c = stats.compare(a, b)
    assert not c.significant and c.ratio_ci_low <= 1.0 <= c.ratio_ci_high
    assert "No significant difference" in stats.describe(c, "a", "b")


def test_compare_says_when_too_few_trials_for_the_test():
    c = stats.compare([10.0, 10.1, 10.2], [20.0, 20.1, 20.2])
    assert c.p_value == pytest.approx(0.1) and not c.significant
    assert "at least 4 trials" in stats.describe(c, "a", "b")
    assert stats.min_p_value(4, 4) < 0.05 <= stats.min_p_value(3, 3)


def test_compare_with_one_trial_cannot_decide():
    c = stats.compare([10.0], [12.0, 12.1])
    assert c.p_value is None and not c.significant
    assert "Cannot tell" in stats.describe(c, "a", "b")


def test_benchmark_command_pins_one_core_and_quotes():
    profile = load_profile("pixel3")
    cmd = benchmark_command(profile, "/data/local/tmp/mnv3bench/large hswish.tflite",
                            RunConfig(num_runs=20, warmup_runs=2, min_secs=1, max_secs=60))
    assert cmd == ("taskset 10 /data/local/tmp/benchmark_model '--graph=/data/local/tmp/mnv3bench/large hswish.tflite'"
                   " --num_threads=1 --warmup_runs=2 --num_runs=20 --min_secs=1 --max_secs=60 --use_xnnpack=true")
    on = benchmark_command(profile, "/m.tflite", RunConfig(use_xnnpack=False, op_profiling=True, min_secs=0.5))
    assert on.endswith("--min_secs=0.5 --max_secs=150 --use_xnnpack=false --enable_op_profiling=true")
    assert benchmark_flags(RunConfig(use_xnnpack=True))["use_xnnpack"] == "true"
    evil = benchmark_command(profile, "/m;rm -rf /.tflite", RunConfig())
    assert "'--graph=/m;rm -rf /.tflite'" in evil
