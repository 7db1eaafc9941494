"""Benchmark-seconds to resolve Table 5 at ±P: paired rounds against the ratio of medians.

    python benchmarks/bench_precision.py [--db FILE] [--rounds 30] [--target 1%] [--repeats 5]
                                         [--models-dir DIR] [--estimator median|mean]

Measures (or, with --db, reuses) one session of Table 5 on the emulator with many rounds of
fixed trials (`--precision none`), then replays its prefixes: after k rounds, what precision
does each method reach on every comparison the table makes? Both methods see the same
trials, so the answer is a ratio within one run, free of the machine's load on another day:
- fixed trials, ratio of medians (the tool before paired rounds): bootstrap CI of the ratio
  of the two medians over all k trials of each variant;
- paired: the geometric mean of the k within-round ratios, bootstrap CI over rounds.
It prints, for each method:
- the rounds (and benchmark-seconds: the session's benchmark time per round times k) until
  every comparison's half-width is within the target;
- for each comparison whose paper delta is 2% or more, the rounds until it is resolved
  (bench/verdict.py: its interval excludes 1, significant, no wider than the paper's delta);
- how many verdicts flip between `--repeats` disjoint blocks of rounds, among those resolved
  in two blocks or more;
- every comparison's verdict over the whole session ("not resolved at ±x%" below resolution).
--estimator picks each trial's latency from the stored columns: its runs' median
(inference_median_us, the tool's default) or their mean (inference_avg_us).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from mnv3bench.bench import paired, stats
from mnv3bench.bench.options import parse_precision
from mnv3bench.bench.verdict import judge
from mnv3bench.host import load_average
from mnv3bench.results import ResultStore
from mnv3bench.tables.compute import compute_table
from mnv3bench.tables.definitions import get_table

ESTIMATORS = {"median": "inference_median_us", "mean": "inference_avg_us"}
RESOLVE_DELTA = 0.02  # the goal: every comparison with a paper delta of 2% or more resolved
RESOLVE_BUDGET_S = 300.0  # ... in under 5 minutes of benchmark time


def measure(work: Path, rounds: int, models_dir: Path | None) -> Path:
    db = work / "r.db"
    env = {**os.environ, "CI": "1"}
    command = [sys.executable, "-m", "mnv3bench", "table", "5", "--device", "emulator", "--trials", str(rounds),
               "--precision", "none", "--db", str(db), "--models-dir", str(models_dir or work / "models"),
               "--reports-dir", str(work / "reports"), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"mnv3bench table 5 failed (exit {done.returncode}):\n{done.stderr}")
    return db


def newest_session(db: Path, estimator: str) -> pd.DataFrame:
    """The newest session's ok trials in rounds, latency_ms taken with `estimator` (ms)."""
    with ResultStore(db, read_only=True) as store:
        trials = store.trials(device="emulator", ok_only=True)
    trials = trials[trials["round_index"].notna()]
    if trials.empty:
        sys.exit(f"{db} has no trials in rounds: measure with this version of mnv3bench.")
    trials = trials[trials["session_id"] == trials["session_id"].max()].copy()
    column = ESTIMATORS[estimator]
    if trials[column].isna().any():
        sys.exit(f"some trials have no {column}: the {estimator} cannot be replayed.")
    trials["latency_ms"] = trials[column].astype(float) / 1000.0
    return trials


def pairs_of_table() -> list[tuple[str, str, float | None, str]]:
    """(subject, baseline, paper ratio, name) of every comparison Table 5 makes."""
    defn = get_table("5")
    frame = pd.DataFrame([{"id": i, "session_id": 1, "variant": v, "ok": True, "latency_ms": 1.0}
                          for i, v in enumerate(defn.variants())])
    result = compute_table(defn, frame, device="emulator")
    return [(c.variant, c.baseline_variant, c.paper_ratio, c.comparison) for c in result.comparisons
            if c.variant and c.baseline_variant]


def estimate(trials: pd.DataFrame, a: str, b: str, method: str) -> stats.Comparison:
    ta, tb = trials[trials["variant"] == a], trials[trials["variant"] == b]
    if method == paired.PAIRED:
        return paired.compare_paired(paired.pairs_by_round(
            ta["latency_ms"].tolist(), paired.round_keys(ta), tb["latency_ms"].tolist(), paired.round_keys(tb)))
    return stats.compare(ta["latency_ms"].tolist(), tb["latency_ms"].tolist())


def first_round(trials: pd.DataFrame, done) -> int | None:
    """The fewest rounds k (from 3) whose prefix satisfies done(prefix); None: never within the session."""
    for k in range(3, int(trials["round_index"].max()) + 1):
        if done(trials[trials["round_index"] <= k]):
            return k
    return None


def rounds_to_target(trials: pd.DataFrame, comparisons, method: str, target: float) -> int | None:
    def within(prefix: pd.DataFrame) -> bool:
        widths = [estimate(prefix, a, b, method).half_width for a, b, _p, _n in comparisons]
        return all(w is not None and w <= target for w in widths)
    return first_round(trials, within)


def rounds_to_resolve(trials: pd.DataFrame, a: str, b: str, paper_ratio: float, method: str) -> int | None:
    return first_round(trials, lambda prefix: judge(estimate(prefix, a, b, method), paper_ratio).resolved)


def flips(trials: pd.DataFrame, comparisons, method: str, repeats: int) -> tuple[int, int]:
    """(flipped verdicts, comparisons resolved in at least two blocks) over disjoint blocks of rounds."""
    n = int(trials["round_index"].max())
    size = n // repeats
    flipped = judged = 0
    for a, b, paper_ratio, _name in comparisons:
        if paper_ratio is None:
            continue
        kinds = set()
        resolved = 0
        for block in range(repeats):
            part = trials[(trials["round_index"] > block * size) & (trials["round_index"] <= (block + 1) * size)]
            verdict = judge(estimate(part, a, b, method), paper_ratio)
            if verdict.resolved:
                kinds.add(verdict.kind)
                resolved += 1
        judged += resolved >= 2
        flipped += len(kinds) > 1
    return flipped, judged


def seconds(k: int | None, per_round: float, rounds: int) -> str:
    return f"{k} rounds = {k * per_round:.0f} benchmark-s" if k else f"not within {rounds} rounds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="Reuse the newest session in this database.")
    parser.add_argument("--models-dir", type=Path, help="Built models to reuse when measuring.")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--target", default="1%")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--estimator", choices=sorted(ESTIMATORS), default="median")
    args = parser.parse_args()
    target = parse_precision(args.target)
    if target is None:
        sys.exit("--target must be a percentage, e.g. 1%")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load_average() or ())}")
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or measure(Path(tmp), args.rounds, args.models_dir)
        trials = newest_session(db, args.estimator)
    rounds = int(trials["round_index"].max())
    per_round = float((pd.to_datetime(trials["ended_at"]) - pd.to_datetime(trials["started_at"]))
                      .dt.total_seconds().sum()) / rounds
    comparisons = pairs_of_table()
    print(f"{rounds} rounds of {trials['variant'].nunique()} variants (session {int(trials['session_id'].max())}, "
          f"per-trial {args.estimator}); {per_round:.1f} benchmark-s per round")
    found = {}
    for method in (paired.RATIO_OF_MEDIANS, paired.PAIRED):
        k = found[method] = rounds_to_target(trials, comparisons, method, target)
        flipped, judged = flips(trials, comparisons, method, args.repeats)
        print(f"\n{method}: every comparison within ±{target:.1%} after {seconds(k, per_round, rounds)}; "
              f"{flipped} verdict(s) flipped among {judged} resolved in 2+ of {args.repeats} blocks "
              f"of {rounds // args.repeats} rounds")
        for a, b, paper_ratio, name in comparisons:
            if paper_ratio is not None and abs(paper_ratio - 1) >= RESOLVE_DELTA:
                r = rounds_to_resolve(trials, a, b, paper_ratio, method)
                ok = r is not None and r * per_round < RESOLVE_BUDGET_S
                print(f"  paper Δ {paper_ratio - 1:+.1%} {name}: resolved after {seconds(r, per_round, rounds)}"
                      f"{' (under 5 min)' if ok else ''}")
        print(f"  verdicts over all {rounds} rounds:")
        for a, b, paper_ratio, name in comparisons:
            c = estimate(trials, a, b, method)
            verdict = judge(c, paper_ratio).text if paper_ratio is not None else "no paper value"
            print(f"    {name}: {c.ratio:.3f} ±{c.half_width:.1%} (paper {paper_ratio or float('nan'):.3f}): {verdict}")
    # When neither reaches the target: the half-widths over the whole session, and the time the
    # ratio of medians would need to match paired (a half-width shrinks as 1/sqrt(rounds)).
    widths = {m: [estimate(trials, a, b, m).half_width for a, b, _p, _n in comparisons]
              for m in (paired.RATIO_OF_MEDIANS, paired.PAIRED)}
    shrink = float(np.exp(np.mean(np.log(np.asarray(widths[paired.PAIRED]) /
                                         np.asarray(widths[paired.RATIO_OF_MEDIANS])))))
    print(f"\nover all {rounds} rounds, paired half-width / ratio-of-medians half-width (geometric mean over "
          f"{len(comparisons)} comparisons): {shrink:.2f}, i.e. paired needs ~{shrink ** 2:.2f} of the time "
          f"for the same precision; worst ±{max(widths[paired.PAIRED]):.1%} paired vs "
          f"±{max(widths[paired.RATIO_OF_MEDIANS]):.1%}")
    if found[paired.PAIRED] and found[paired.RATIO_OF_MEDIANS]:
        print(f"\npaired / ratio of medians: {found[paired.PAIRED] / found[paired.RATIO_OF_MEDIANS]:.2f} of the time")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in load_average() or ())}")


if __name__ == "__main__":
    main()
