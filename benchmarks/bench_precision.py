"""Benchmark-seconds to resolve Table 5 at ±P: paired rounds against the ratio of medians.

    python benchmarks/bench_precision.py [--db FILE] [--rounds 30] [--target 1%] [--repeats 5]

Measures (or, with --db, reuses) one session of Table 5 on the emulator with many rounds,
then replays its prefixes: after k rounds, what precision does each method reach on every
comparison the table makes? Both methods see the same trials, so the answer is a ratio
within one run, free of the machine's load on another day:
- fixed trials, ratio of medians (the tool before paired rounds): bootstrap CI of the ratio
  of the two medians over all k trials of each variant;
- paired: the geometric mean of the k within-round ratios, bootstrap CI over rounds.
For each method it prints the rounds (and benchmark-seconds: the session's benchmark time per
round times k) until every comparison's half-width is within the target, and how many
verdicts flip between `--repeats` disjoint blocks of rounds among those both blocks resolved.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from mnv3bench.bench import paired, stats
from mnv3bench.bench.options import parse_precision
from mnv3bench.bench.verdict import judge
from mnv3bench.results import ResultStore
from mnv3bench.tables.compute import compute_table
from mnv3bench.tables.definitions import get_table


def measure(work: Path, rounds: int) -> Path:
    db = work / "r.db"
    env = {**os.environ, "HOME": str(work / "home"), "CI": "1"}
    command = [sys.executable, "-m", "mnv3bench", "table", "5", "--device", "emulator", "--trials", str(rounds),
               "--db", str(db), "--models-dir", str(work / "models"), "--reports-dir", str(work / "reports"),
               "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"mnv3bench table 5 failed (exit {done.returncode}):\n{done.stderr}")
    return db


def newest_session(db: Path) -> pd.DataFrame:
    with ResultStore(db, read_only=True) as store:
        trials = store.trials(device="emulator", ok_only=True)
    trials = trials[trials["round_index"].notna()]
    if trials.empty:
        sys.exit(f"{db} has no trials in rounds: measure with this version of mnv3bench.")
    return trials[trials["session_id"] == trials["session_id"].max()]


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


def rounds_to_target(trials: pd.DataFrame, comparisons, method: str, target: float) -> int | None:
    for k in range(3, int(trials["round_index"].max()) + 1):
        prefix = trials[trials["round_index"] <= k]
        widths = [estimate(prefix, a, b, method).half_width for a, b, _p, _n in comparisons]
        if all(w is not None and w <= target for w in widths):
            return k
    return None


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="Reuse the newest session in this database.")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--target", default="1%")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    target = parse_precision(args.target)
    if target is None:
        sys.exit("--target must be a percentage, e.g. 1%")
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or measure(Path(tmp), args.rounds)
        trials = newest_session(db)
    rounds = int(trials["round_index"].max())
    with ResultStore(db, read_only=True) as store:
        sessions = store.sessions()
    seconds_per_round = (pd.to_datetime(trials["ended_at"]) - pd.to_datetime(trials["started_at"])).dt.total_seconds()
    per_round = float(seconds_per_round.sum()) / rounds
    comparisons = pairs_of_table()
    print(f"{rounds} rounds of {trials['variant'].nunique()} variants; {per_round:.1f} benchmark-s per round "
          f"(session {int(trials['session_id'].max())} of {len(sessions)})")
    found = {}
    for method in (paired.RATIO_OF_MEDIANS, paired.PAIRED):
        k = rounds_to_target(trials, comparisons, method, target)
        found[method] = k
        where = f"{k} rounds = {k * per_round:.0f} benchmark-s" if k else f"not within {rounds} rounds"
        flipped, judged = flips(trials, comparisons, method, args.repeats)
        print(f"{method}: every comparison within ±{target:.1%} after {where}; "
              f"{flipped} verdict(s) flipped among {judged} resolved in 2+ of {args.repeats} blocks")
    if found[paired.PAIRED] and found[paired.RATIO_OF_MEDIANS]:
        print(f"paired / ratio of medians: {found[paired.PAIRED] / found[paired.RATIO_OF_MEDIANS]:.2f} of the time")


if __name__ == "__main__":
    main()
