"""Statistics over trials: a summary with its uncertainty, warnings with advice, comparisons.

One trial is one benchmark_model invocation; its number is the mean latency of its regular
runs. The summary is over those trial means. The confidence interval is a bootstrap
percentile interval of the median (fixed seed, so the same data gives the same interval):
the median is what we report, and the bootstrap assumes no normality of a handful of trials.
Comparisons use the ratio of medians (bootstrap CI) and a two-sided Mann-Whitney U test.
Warnings follow pyperf: each says what was seen and what to do about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

CI_LEVEL = 0.95
CI_METHOD = "bootstrap percentile 95% CI of the median"
COMPARE_TEST = "two-sided Mann-Whitney U"
BOOTSTRAP_RESAMPLES = 4999
BOOTSTRAP_SEED = 20190506  # MobileNetV3 arXiv v1 date; any fixed seed keeps CIs reproducible
CV_THRESHOLD = 0.05
SLOW_FIRST_RATIO = 1.10
MIN_TRIALS = 3
SIGNIFICANCE = 0.05


@dataclass
class Summary:
    """Trial means summarised, in milliseconds. ci_* are None with fewer than 2 trials."""

    n: int
    median: float
    mean: float
    std: float
    min: float
    ci_low: float | None
    ci_high: float | None
    cv: float  # std / mean (sample std, ddof=1; 0 for a single trial)
    ci_method: str = CI_METHOD

    @property
    def half_width(self) -> float | None:
        """The precision reached: the CI's half-width relative to the median (0.02 = ±2%)."""
        return relative_half_width(self.median, self.ci_low, self.ci_high)

    def to_json(self) -> dict:
        data = asdict(self)
        del data["n"]
        return data


@dataclass(frozen=True)
class StatWarning:
    """Something in the trials that makes the number less trustworthy, and the fix."""

    code: str
    message: str
    advice: str

    def __str__(self) -> str:
        return f"{self.message} {self.advice}"


@dataclass
class Comparison:
    """a versus b, ratio a/b (< 1: a is faster): the geometric mean of within-round ratios
    (method "paired", bench/paired.py), else median(a) / median(b)."""

    ratio: float
    ratio_ci_low: float | None
    ratio_ci_high: float | None
    p_value: float | None
    significant: bool
    n_a: int
    n_b: int
    test: str = COMPARE_TEST
    ci_method: str = "bootstrap percentile 95% CI of the ratio of medians"
    method: str = "ratio of medians"  # or "paired" (bench/paired.py)
    rounds: int = 0  # rounds that ran both variants (paired: the rounds the numbers come from)

    @property
    def half_width(self) -> float | None:
        """The precision reached: the interval's half-width relative to the ratio (0.02 = ±2%)."""
        return relative_half_width(self.ratio, self.ratio_ci_low, self.ratio_ci_high)


def relative_half_width(centre: float, low: float | None, high: float | None) -> float | None:
    """Half an interval's width relative to its centre (a median or a ratio); None without one."""
    if low is None or high is None or not centre > 0:
        return None
    return (high - low) / 2 / centre


def _clean(values: Sequence[float]) -> np.ndarray:
    data = np.asarray([float(v) for v in values], dtype=float)
    if data.size == 0:
        raise ValueError("no trials to summarise")
    if not np.all(np.isfinite(data)):
        raise ValueError("trial means must be finite numbers")
    return data


def summarize(trial_latencies_ms: Sequence[float]) -> Summary:
    """Median, mean, std, min, CV and a bootstrap CI of the median of the trial means."""
    data = _clean(trial_latencies_ms)
    mean = float(np.mean(data))
    std = float(np.std(data, ddof=1)) if data.size > 1 else 0.0
    ci_low = ci_high = None
    if data.size > 1:
        if np.ptp(data) == 0:
            ci_low = ci_high = float(data[0])
        else:
            from scipy import (
                stats as sps,  # here, not at the top: it costs 0.4 s to import
            )

            res = sps.bootstrap(
                (data,),
                np.median,
                confidence_level=CI_LEVEL,
                n_resamples=BOOTSTRAP_RESAMPLES,
                method="percentile",
                rng=np.random.default_rng(BOOTSTRAP_SEED),
            )
            ci_low = float(res.confidence_interval.low)
            ci_high = float(res.confidence_interval.high)
    return Summary(
        n=int(data.size),
        median=float(np.median(data)),
        mean=mean,
        std=std,
        min=float(np.min(data)),
        ci_low=ci_low,
        ci_high=ci_high,
        cv=std / mean if mean > 0 else math.nan,
    )


def diagnose(
    latencies_ms: Sequence[float],
    *,
    throttled: Sequence[bool] = (),
    freq_caps_khz: Sequence[int | None] = (),
    failed_trials: int = 0,
    cv_threshold: float = CV_THRESHOLD,
) -> list[StatWarning]:
    """pyperf-style checks on one variant's ok trials, in the order they ran."""
    found: list[StatWarning] = []
    data = np.asarray([float(v) for v in latencies_ms], dtype=float)
    if data.size < MIN_TRIALS:
        found.append(
            StatWarning(
                "few-trials",
                f"Only {data.size} successful trial(s); the confidence interval needs at least {MIN_TRIALS}.",
                "Run more trials (--trials 5 or more).",
            )
        )
    if failed_trials:
        found.append(
            StatWarning(
                "failed-trials",
                f"{failed_trials} trial(s) failed and are not in the numbers.",
                "Look at the raw output stored with them (mnv3bench keeps it in the results database).",
            )
        )
    if data.size > 1:
        mean = float(np.mean(data))
        cv = float(np.std(data, ddof=1)) / mean if mean > 0 else 0.0
        if cv > cv_threshold:
            found.append(
                StatWarning(
                    "high-cv",
                    f"Trials vary a lot: CV {cv:.1%} is above {cv_threshold:.0%}.",
                    "Let the phone cool down (--cooldown 30 or --thermal-gate 40), close other apps, "
                    "keep the screen off and run more trials.",
                )
            )
    if data.size >= MIN_TRIALS:
        rest = float(np.median(data[1:]))
        if rest > 0 and data[0] > SLOW_FIRST_RATIO * rest:
            found.append(
                StatWarning(
                    "slow-first-trial",
                    f"The first trial ({data[0]:.2f} ms) is {data[0] / rest - 1:.0%} slower than the rest "
                    f"(median {rest:.2f} ms).",
                    "Increase --warmup-runs, or add a throw-away trial; caches and clocks were still warming up.",
                )
            )
    n_throttled = sum(1 for t in throttled if t)
    if n_throttled:
        found.append(
            StatWarning(
                "throttled",
                f"Thermal throttling seen in {n_throttled} trial(s) (the pinned core was capped below its "
                "maximum clock, or the CPU ended above the thermal gate).",
                "Use --cooldown and --thermal-gate, take the phone out of its case, keep it off the charger.",
            )
        )
    # The cap (scaling_max_freq), not the current clock: read between runs, the current
    # clock is an idle core's, which the governor moves without changing the measurement.
    seen = {f for f in freq_caps_khz if f}
    if len(seen) > 1:
        found.append(
            StatWarning(
                "freq-changed",
                f"The pinned core's maximum clock changed during the run ({min(seen) / 1000:.0f}-"
                f"{max(seen) / 1000:.0f} MHz): the phone capped it for heat or power.",
                "Set the governor to performance (root) or cool down between trials; see `mnv3bench doctor`.",
            )
        )
    return found


def _ratio_of_medians(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(a, axis=axis) / np.median(b, axis=axis)


def compare(a_ms: Sequence[float], b_ms: Sequence[float]) -> Comparison:
    """Ratio of medians a/b with a bootstrap CI, and a Mann-Whitney U p-value.

    Significant only when p < 0.05 and the CI excludes 1, so a lucky test on a wide
    interval (or the other way round) does not count as a difference.
    """
    a, b = _clean(a_ms), _clean(b_ms)
    ratio = float(np.median(a) / np.median(b))
    lo = hi = p_value = None
    if a.size > 1 and b.size > 1:
        if np.ptp(a) == 0 and np.ptp(b) == 0:
            lo = hi = ratio
        else:
            from scipy import stats as sps

            res = sps.bootstrap(
                (a, b),
                _ratio_of_medians,
                confidence_level=CI_LEVEL,
                n_resamples=BOOTSTRAP_RESAMPLES,
                method="percentile",
                paired=False,
                rng=np.random.default_rng(BOOTSTRAP_SEED),
            )
            lo = float(res.confidence_interval.low)
            hi = float(res.confidence_interval.high)
        from scipy import stats as sps

        p_value = float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    significant = (
        p_value is not None and lo is not None and hi is not None and p_value < SIGNIFICANCE and not (lo <= 1.0 <= hi)
    )
    return Comparison(ratio, lo, hi, p_value, significant, int(a.size), int(b.size))


def min_p_value(n_a: int, n_b: int) -> float:
    """The smallest two-sided exact Mann-Whitney p-value possible with these sample sizes."""
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def describe(comparison: Comparison, name_a: str, name_b: str) -> str:
    """One sentence a reader can act on."""
    c = comparison
    if c.p_value is None:
        return f"Cannot tell whether {name_a} and {name_b} differ: each needs at least 2 successful trials."
    pct = abs(c.ratio - 1.0)
    faster = "faster" if c.ratio < 1 else "slower"
    ci = f"ratio {c.ratio:.3f}, 95% CI [{c.ratio_ci_low:.3f}, {c.ratio_ci_high:.3f}], p={c.p_value:.3g}"
    if c.significant:
        return f"{name_a} is {pct:.1%} {faster} than {name_b} ({ci}): the difference is significant."
    if min_p_value(c.n_a, c.n_b) >= SIGNIFICANCE:
        return (
            f"Cannot show a difference between {name_a} and {name_b} ({ci}): with {c.n_a} and {c.n_b} trials "
            f"the {COMPARE_TEST} test cannot reach p < {SIGNIFICANCE:g}; run at least 4 trials of each."
        )
    return (
        f"No significant difference between {name_a} and {name_b} ({ci}); "
        "run more trials to resolve a smaller difference."
    )
