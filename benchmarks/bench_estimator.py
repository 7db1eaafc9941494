"""Per-trial median of runs or mean of runs: which gives tighter intervals for the same time?

    python benchmarks/bench_estimator.py --db FILE [--rounds K]

Replays the newest session in FILE (a Table 5 session in rounds, e.g. the one
bench_precision.py measured) twice over the same trials: each trial's latency once as its
runs' median (inference_median_us), once as their mean (inference_avg_us), both stored for
every trial. Same trials, so the same benchmark time; only the estimator differs. Prints,
per comparison Table 5 makes, the paired ratio's 95% half-width with each (over the first K
rounds, default all), each variant's CV across trials with each, and the geometric mean of
median/mean half-width ratios (below 1: the median is tighter).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_precision import estimate, newest_session, pairs_of_table

from mnv3bench.bench import paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--rounds", type=int, help="Only the first K rounds (default: all).")
    args = parser.parse_args()
    by = {name: newest_session(args.db, name) for name in ("median", "mean")}
    if args.rounds:
        by = {name: t[t["round_index"] <= args.rounds] for name, t in by.items()}
    rounds = int(by["median"]["round_index"].max())
    print(f"session {int(by['median']['session_id'].max())}: {rounds} rounds, the same trials with either estimator")
    print("\ncomparison: paired half-width, median of runs vs mean of runs")
    ratios = []
    for a, b, _paper, name in pairs_of_table():
        med, mean = (estimate(by[e], a, b, paired.PAIRED).half_width for e in ("median", "mean"))
        ratios.append(med / mean)
        print(f"  {name}: ±{med:.2%} vs ±{mean:.2%} ({med / mean:.2f})")
    print("\nvariant: CV across trials, median of runs vs mean of runs")
    for variant, group in by["median"].groupby("variant"):
        cv = {e: float(np.std(t["latency_ms"], ddof=1) / np.mean(t["latency_ms"]))
              for e, t in ((e, by[e][by[e]["variant"] == variant]) for e in ("median", "mean"))}
        print(f"  {variant}: {cv['median']:.2%} vs {cv['mean']:.2%}")
    print(f"\nhalf-width median/mean, geometric mean over {len(ratios)} comparisons: "
          f"{float(np.exp(np.mean(np.log(ratios)))):.2f}; median tighter in {sum(r < 1 for r in ratios)}")


if __name__ == "__main__":
    main()
