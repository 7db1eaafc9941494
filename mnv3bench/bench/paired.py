"""Paired comparisons: two variants compared within the rounds that ran both.

A round runs every variant once (bench/runner.py), so within one round two variants share
the phone's state: its temperature, its clocks, the load of the machine beside it. The
ratio of their two trials in that round cancels that state, and slow drift with it. So a
comparison is estimated from the per-round ratios:
- the ratio is their geometric mean (the mean of the log ratios, exponentiated);
- its 95% interval is a bootstrap percentile interval over rounds (fixed seed);
- its significance is a two-sided Wilcoxon signed-rank test on the log ratios.

Trials without a partner in the round (reused from other sessions, or stored before
rounds were recorded) cannot be paired. When fewer than MIN_PAIRED_ROUNDS rounds pair, the
comparison falls back to the ratio of medians (stats.compare); every Comparison names the
method it used.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mnv3bench.bench import stats

if TYPE_CHECKING:  # a DataFrame arrives with the trials; importing pandas here would slow every command
    import pandas as pd

PAIRED = "paired"
RATIO_OF_MEDIANS = "ratio of medians"
PAIRED_TEST = "two-sided Wilcoxon signed-rank on per-round log ratios"
PAIRED_CI = "bootstrap percentile 95% CI over rounds of the geometric mean of per-round ratios"
# The fewest pairs with which the exact two-sided Wilcoxon test can reach p < 0.05
# (its smallest p-value is 2 / 2**n: 0.0625 for 5 pairs, 0.031 for 6).
MIN_PAIRED_ROUNDS = 6

RoundKey = Hashable  # (session_id, round_index): a round of one session


def round_keys(trials: pd.DataFrame) -> list[tuple[int, int] | None]:
    """Each stored trial's round, (session_id, round_index); None for one stored before rounds were."""
    import pandas as pd

    if "round_index" not in trials.columns or "session_id" not in trials.columns:
        return [None] * len(trials)
    return [None if pd.isna(r) or pd.isna(s) else (int(s), int(r))
            for s, r in zip(trials["session_id"], trials["round_index"], strict=True)]


def pairs_by_round(a_ms: Sequence[float], a_rounds: Sequence[RoundKey | None],
                   b_ms: Sequence[float], b_rounds: Sequence[RoundKey | None]) -> list[tuple[float, float]]:
    """(a, b) latencies of the rounds that ran both once, in round order; unpaired trials left out."""
    def by_round(ms: Sequence[float], rounds: Sequence[RoundKey | None]) -> dict[RoundKey, float]:
        seen: dict[RoundKey, list[float]] = {}
        for value, key in zip(ms, rounds, strict=True):
            if key is not None:
                seen.setdefault(key, []).append(float(value))
        # A round holds one trial per variant; a key seen twice is not a round, so not a pair.
        return {key: values[0] for key, values in seen.items() if len(values) == 1}

    a, b = by_round(a_ms, a_rounds), by_round(b_ms, b_rounds)
    return [(a[key], b[key]) for key in a if key in b]


def compare_paired(pairs: Sequence[tuple[float, float]]) -> stats.Comparison:
    """Geometric mean of a/b over rounds, a bootstrap CI over rounds and a Wilcoxon p-value."""
    if not pairs:
        raise ValueError("no paired rounds to compare")
    a = np.asarray([p[0] for p in pairs], dtype=float)
    b = np.asarray([p[1] for p in pairs], dtype=float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a > 0) and np.all(b > 0)):
        raise ValueError("paired latencies must be positive finite numbers")
    logs = np.log(a / b)
    ratio = float(np.exp(np.mean(logs)))
    lo = hi = p_value = None
    if logs.size > 1:
        from scipy import stats as sps  # here, not at the top: it costs 0.4 s to import

        if np.ptp(logs) == 0:
            lo = hi = ratio
        else:
            res = sps.bootstrap((logs,), np.mean, confidence_level=stats.CI_LEVEL,
                                n_resamples=stats.BOOTSTRAP_RESAMPLES, method="percentile",
                                rng=np.random.default_rng(stats.BOOTSTRAP_SEED))
            lo, hi = float(np.exp(res.confidence_interval.low)), float(np.exp(res.confidence_interval.high))
        # All ratios exactly 1: no difference at all, which the test cannot rank.
        p_value = 1.0 if not np.any(logs) else float(sps.wilcoxon(logs, alternative="two-sided").pvalue)
    significant = (p_value is not None and lo is not None and hi is not None
                   and p_value < stats.SIGNIFICANCE and not (lo <= 1.0 <= hi))
    n = int(logs.size)
    return stats.Comparison(ratio, lo, hi, p_value, significant, n, n, test=PAIRED_TEST, ci_method=PAIRED_CI,
                            method=PAIRED, rounds=n)


def compare_trials(a_ms: Sequence[float], a_rounds: Sequence[RoundKey | None],
                   b_ms: Sequence[float], b_rounds: Sequence[RoundKey | None]) -> stats.Comparison:
    """Paired when at least MIN_PAIRED_ROUNDS rounds ran both, else the ratio of medians of all trials."""
    pairs = pairs_by_round(a_ms, a_rounds, b_ms, b_rounds)
    if len(pairs) >= MIN_PAIRED_ROUNDS:
        return compare_paired(pairs)
    fallback = stats.compare(a_ms, b_ms)
    fallback.rounds = len(pairs)
    return fallback
