"""Precision asked for (--precision): how close the session is to it, and when to stop.

After each round the runner asks `assess` for the half-widths reached: every variant's
median (its 95% CI half-width relative to the median) and every comparison's ratio (paired
when the rounds allow, bench/paired.py). Rounds continue until the worst of them is within
the target, or the time or trial budget runs out.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mnv3bench.bench import stats
from mnv3bench.bench.paired import RoundKey, compare_trials

REACHED = "reached"
MAX_TIME = "max-time"
MAX_TRIALS = "max-trials"


@dataclass
class PrecisionReport:
    """The half-widths reached (fractions; None: too few trials for an interval)."""

    target: float
    cells: dict[str, float | None]
    comparisons: dict[str, float | None]
    trials: dict[str, int]
    methods: dict[str, str] = field(default_factory=dict)  # comparison -> "paired" | "ratio of medians"
    rounds: int = 0
    stopped: str | None = None  # REACHED, MAX_TIME or MAX_TRIALS, once the session ends

    def _all(self) -> dict[str, float | None]:
        return {**self.cells, **self.comparisons}

    def worst(self) -> tuple[str, float | None]:
        """The name and half-width furthest from the target (None counts as furthest)."""
        items = list(self._all().items())
        if not items:
            return "", None
        return max(items, key=lambda kv: float("inf") if kv[1] is None else kv[1])

    @property
    def met(self) -> bool:
        return all(v is not None and v <= self.target for v in self._all().values())

    def missed(self) -> list[str]:
        """Cells and comparisons that did not reach the target."""
        return [name for name, v in self._all().items() if v is None or v > self.target]

    def progress_line(self) -> str:
        name, value = self.worst()
        shown = "no interval yet" if value is None else f"±{value:.2%}"
        return f"round {self.rounds}: worst {shown} ({name}), target ±{self.target:.2%}"

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "met": self.met, "stopped": self.stopped, "rounds": self.rounds,
                "cells": {v: {"precision": p, "trials": self.trials.get(v), "reached": p is not None and
                              p <= self.target} for v, p in self.cells.items()},
                "comparisons": {c: {"precision": p, "method": self.methods.get(c),
                                    "reached": p is not None and p <= self.target}
                                for c, p in self.comparisons.items()},
                "missed": self.missed()}


def all_pairs(variants: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair: what a run without a table's own comparisons must resolve."""
    return list(itertools.combinations(variants, 2))


def assess(target: float, latencies: Mapping[str, Sequence[float]], rounds: Mapping[str, Sequence[RoundKey | None]],
           pairs: Sequence[tuple[str, str]], done_rounds: int = 0) -> PrecisionReport:
    cells = {v: (stats.summarize(ms).half_width if len(ms) else None) for v, ms in latencies.items()}
    comparisons: dict[str, float | None] = {}
    methods: dict[str, str] = {}
    for a, b in pairs:
        if len(latencies.get(a, ())) and len(latencies.get(b, ())):
            c = compare_trials(latencies[a], rounds[a], latencies[b], rounds[b])
            comparisons[f"{a} vs {b}"], methods[f"{a} vs {b}"] = c.half_width, c.method
        else:
            comparisons[f"{a} vs {b}"] = None
    return PrecisionReport(target, cells, comparisons, {v: len(ms) for v, ms in latencies.items()}, methods,
                           done_rounds)
