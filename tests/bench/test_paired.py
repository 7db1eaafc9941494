"""Paired comparisons over rounds, and the verdict rule every report shares."""

from __future__ import annotations

import numpy as np
import pytest

from mnv3bench.bench import paired, stats
from mnv3bench.bench.verdict import AGREES, DISAGREES, NOT_RESOLVED, judge


def drifting_rounds(n: int, ratio: float, drift: float = 0.03, noise: float = 0.002, seed: int = 1):
    """a and b in n rounds on a phone that warms up: each round slower than the last."""
    rng = np.random.default_rng(seed)
    base = 10.0 * (1 + drift) ** np.arange(n)
    b = base * (1 + rng.normal(0, noise, n))
    a = base * ratio * (1 + rng.normal(0, noise, n))
    keys = [(1, r) for r in range(1, n + 1)]
    return list(a), keys, list(b), keys


def test_paired_ratio_cancels_drift_that_swamps_the_ratio_of_medians():
    a, ka, b, kb = drifting_rounds(10, 1.02)
    c = paired.compare_trials(a, ka, b, kb)
    assert c.method == paired.PAIRED and c.rounds == 10 and c.n_a == c.n_b == 10
    assert c.ratio == pytest.approx(1.02, rel=0.003)
    assert c.ratio_ci_low < 1.02 < c.ratio_ci_high and c.ratio_ci_low > 1.0
    assert c.significant and c.p_value < 0.01
    assert c.half_width < 0.005
    unpaired = stats.compare(a, b)  # drift of 3% a round: the medians' interval spans 1
    assert not unpaired.significant and unpaired.half_width > 0.05


def test_paired_is_reproducible():
    a, ka, b, kb = drifting_rounds(8, 0.97)
    assert paired.compare_trials(a, ka, b, kb) == paired.compare_trials(a, ka, b, kb)


def test_too_few_rounds_or_unpaired_trials_fall_back_to_the_ratio_of_medians():
    a, ka, b, kb = drifting_rounds(paired.MIN_PAIRED_ROUNDS - 1, 1.02)
    c = paired.compare_trials(a, ka, b, kb)
    assert c.method == paired.RATIO_OF_MEDIANS and c.rounds == paired.MIN_PAIRED_ROUNDS - 1
    assert c.test == stats.COMPARE_TEST
    # Reused trials (no round) and rounds of another session have no partner.
    a, ka, b, kb = drifting_rounds(8, 1.02)
    c = paired.compare_trials(a, [None] * 8, b, kb)
    assert c.method == paired.RATIO_OF_MEDIANS and c.rounds == 0
    c = paired.compare_trials(a, [(2, r) for _s, r in ka], b, kb)
    assert c.method == paired.RATIO_OF_MEDIANS


def test_pairs_match_rounds_not_positions():
    pairs = paired.pairs_by_round([1.0, 2.0, 3.0], [(1, 1), (1, 2), None], [10.0, 20.0], [(1, 2), (1, 1)])
    assert pairs == [(1.0, 20.0), (2.0, 10.0)]


def test_identical_rounds_are_no_difference():
    c = paired.compare_paired([(5.0, 5.0)] * 7)
    assert (c.ratio, c.ratio_ci_low, c.ratio_ci_high, c.p_value, c.significant) == (1.0, 1.0, 1.0, 1.0, False)


def comparison(ratio, low, high, significant=True):
    return stats.Comparison(ratio, low, high, 0.001 if significant else 0.3, significant, 8, 8)


def test_verdicts_agree_disagree_or_not_resolved():
    assert judge(comparison(1.10, 1.08, 1.12), 1.119).text == AGREES
    v = judge(comparison(0.90, 0.88, 0.92), 1.041)
    assert (v.kind, v.direction_matches, v.resolved) == (DISAGREES, False, True)
    # The interval contains 1: never an agreement, however the point estimate falls.
    v = judge(comparison(1.038, 0.967, 1.182, significant=False), 1.119)
    assert v.kind == NOT_RESOLVED and v.text == "not resolved at ±10.4%" and v.direction_matches
    # Excludes 1, but wider than the paper's -1.8%: the paper's difference is below the resolution.
    v = judge(comparison(0.97, 0.94, 0.995), 0.982)
    assert v.kind == NOT_RESOLVED and v.text.startswith("not resolved at ±2.8%")
    assert judge(comparison(1.0, None, None, significant=False), 1.1).text.startswith(NOT_RESOLVED)
    assert "(not significant)" not in judge(comparison(1.02, 0.99, 1.05, significant=False), 1.04).text


def test_round_keys_from_stored_trials_leave_older_rows_unpaired():
    import pandas as pd

    frame = pd.DataFrame({"session_id": [3, 3, 1], "round_index": [1.0, 2.0, float("nan")]})
    assert paired.round_keys(frame) == [(3, 1), (3, 2), None]
    assert paired.round_keys(frame.drop(columns=["round_index"])) == [None] * 3
