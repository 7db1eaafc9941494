"""Order and drift: does a trial's latency depend on when it ran?

Two effects the rounds can show, both measured as the trend of log latency within each
variant (so variants of different speed pool together, and none passes its speed off as one):
- position: trials later in a round are slower (the previous trial heated the core) or
  faster (caches and clocks still warm);
- drift: latency moves from the first round to the last (the phone warming up, or load
  beside the emulator changing).
Randomized rounds keep the medians fair under both, and paired comparisons cancel drift,
but both widen intervals; each warning gives the size and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mnv3bench.bench.stats import StatWarning

if TYPE_CHECKING:
    import pandas as pd

# Warn when an effect is both clear (p below this) and large enough to matter.
ORDER_P = 0.01
POSITION_EFFECT = 0.01  # 1% from the first place in a round to the last
DRIFT_EFFECT = 0.02  # 2% from the first round to the last
MIN_ROUNDS = 3


@dataclass(frozen=True)
class OrderedTrial:
    variant: str
    round_index: int
    position: int
    latency_ms: float


def _within_variant(trials: Sequence[OrderedTrial], values: Sequence[float]) -> np.ndarray:
    """Each value less its variant's mean: compares trials of one variant with each other only,
    so a variant that happened to run late more often does not pass its speed off as an effect."""
    data = np.asarray(values, dtype=float)
    out = np.empty_like(data)
    for v in {t.variant for t in trials}:
        idx = np.asarray([t.variant == v for t in trials])
        out[idx] = data[idx] - data[idx].mean()
    return out


def _trend(trials: Sequence[OrderedTrial], x: Sequence[float]) -> tuple[float, float] | None:
    """(slope of log latency on x within variants, its p-value); None when nothing varies."""
    xs = _within_variant(trials, x)
    ys = _within_variant(trials, np.log([t.latency_ms for t in trials]))
    if np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return None
    from scipy import stats as sps  # here, not at the top: it costs 0.4 s to import

    fit = sps.linregress(xs, ys)
    return float(fit.slope), float(fit.pvalue)


def order_warnings(trials: Sequence[OrderedTrial]) -> list[StatWarning]:
    """Warnings for a position effect within rounds and for drift across rounds."""
    rounds = {t.round_index for t in trials}
    if len(rounds) < MIN_ROUNDS or len({t.variant for t in trials}) < 2:
        return []
    found: list[StatWarning] = []
    positions = np.asarray([t.position for t in trials], dtype=float)
    trend = _trend(trials, positions)
    if trend is not None:
        slope, p = trend
        effect = float(np.expm1(slope * (positions.max() - positions.min())))
        if p < ORDER_P and abs(effect) >= POSITION_EFFECT:
            found.append(StatWarning(
                "position-effect",
                f"Latency depends on the place in the round: the last trial of a round is {effect:+.1%} against "
                f"the first (p={p:.2g}).",
                "The trial before heats (or warms) the core for the next: add --cooldown or more --warmup-runs. "
                "Rounds are shuffled, so medians stay fair, but the intervals widen."))
    index = np.asarray([t.round_index for t in trials], dtype=float)
    trend = _trend(trials, index)
    if trend is not None:
        slope, p = trend
        effect = float(np.expm1(slope * (index.max() - index.min())))
        if p < ORDER_P and abs(effect) >= DRIFT_EFFECT:
            found.append(StatWarning(
                "drift",
                f"Latency drifted {effect:+.1%} from the first round to the last (p={p:.2g}): the phone warmed up "
                "or the load beside it changed.",
                "Use --thermal-gate or --cooldown and keep the machine quiet; paired comparisons (6 rounds or more) "
                "cancel drift, the medians of a cell do not."))
    return found


def ordered_trials(trials: pd.DataFrame) -> list[OrderedTrial]:
    """The ok trials of a ResultStore.trials() frame that ran in rounds, one session at a time
    by the caller's choice; trials without a round are left out."""
    if "round_index" not in trials.columns or "round_position" not in trials.columns:
        return []
    rows = trials[trials["round_index"].notna() & trials["round_position"].notna() & trials["latency_ms"].notna()]
    return [OrderedTrial(str(v), int(r), int(p), float(ms))
            for v, r, p, ms in zip(rows["variant"], rows["round_index"], rows["round_position"], rows["latency_ms"],
                                   strict=True)]


def session_order_warnings(trials: pd.DataFrame) -> list[StatWarning]:
    """order_warnings for each session's rounds (rounds of two sessions are not one sequence)."""
    if "session_id" not in trials.columns:
        return []
    found: list[StatWarning] = []
    for _session, group in trials.groupby("session_id", sort=True):
        found += order_warnings(ordered_trials(group))
    return found
