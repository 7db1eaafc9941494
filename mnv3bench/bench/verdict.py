"""Whether a measured ratio agrees with a claimed one, or cannot tell yet.

One rule for every report that sets a measurement beside a claim (the paper's tables,
a compare against a stated expectation). A direction counts only when the measurement
resolved it: the 95% interval excludes 1, the test is significant, and the interval is
no wider than the claimed difference. Anything else is "not resolved at ±x%", never an
agreement or a disagreement, so verdicts do not flip with a busy machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv3bench.bench.stats import Comparison

AGREES = "agrees"
DISAGREES = "disagrees"
NOT_RESOLVED = "not resolved"


@dataclass(frozen=True)
class Verdict:
    kind: str  # AGREES, DISAGREES or NOT_RESOLVED
    text: str  # what a report prints: "agrees", "not resolved at ±3.1%"
    direction_matches: bool  # the measured direction is the claimed one, resolved or not
    resolved: bool


def direction(ratio: float) -> str:
    if ratio < 1:
        return "faster"
    if ratio > 1:
        return "slower"
    return "same"


def judge(measured: Comparison, claimed_ratio: float) -> Verdict:
    """The verdict on `measured` (a/b) against a claimed ratio a/b."""
    matches = direction(measured.ratio) == direction(claimed_ratio)
    half = measured.half_width
    if half is None:
        return Verdict(NOT_RESOLVED, "not resolved (too few trials for an interval)", matches, False)
    low, high = measured.ratio_ci_low, measured.ratio_ci_high
    contains_one = low is not None and high is not None and low <= 1.0 <= high
    wider_than_claim = half > abs(claimed_ratio - 1.0)
    if contains_one or not measured.significant or wider_than_claim:
        return Verdict(NOT_RESOLVED, f"{NOT_RESOLVED} at ±{half:.1%}", matches, False)
    kind = AGREES if matches else DISAGREES
    return Verdict(kind, kind, matches, True)
