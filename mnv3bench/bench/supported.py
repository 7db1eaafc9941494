"""Which statistics a number of trials supports. Below a statistic's minimum it is absent, with
the reason, never shown as a number: one trial has no spread (a CV of 0.0% would claim a
perfectly steady device), and two trials give a bootstrap "interval" that is only their range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mnv3bench.bench.stats import Summary

# The CI's minimum is stats.MIN_TRIALS (the few-trials warning says the same number).
MIN_TRIALS_CV = 2


@dataclass(frozen=True)
class Supported:
    """A statistic's value, or None and why it is absent."""

    value: float | tuple[float, float] | None
    reason: str | None = None


def min_trials_ci() -> int:
    from mnv3bench.bench.stats import MIN_TRIALS

    return MIN_TRIALS


def supported_ci(summary: Summary) -> Supported:
    need = min_trials_ci()
    if summary.n < need:
        return Supported(None, f"a CI needs {need} trials")
    if summary.ci_low is None or summary.ci_high is None:
        return Supported(None, "no CI")
    return Supported((summary.ci_low, summary.ci_high))


def supported_cv(summary: Summary) -> Supported:
    if summary.n < MIN_TRIALS_CV:
        return Supported(None, f"a CV needs {MIN_TRIALS_CV} trials")
    return Supported(summary.cv)
