"""Do verdicts flip between runs? `table 5 --device emulator --precision 2% --max-time 300`, N times.

    python benchmarks/bench_repeat.py [--runs 2] [--models-dir DIR] [--keep DIR] [-- more table flags]

Runs the command `--runs` times in a row, each into its own fresh database (no trial is
shared, so each run stands alone), and prints per comparison each run's ratio, half-width,
method and verdict, then the flips: comparisons resolved (agrees or disagrees) in at least
two runs whose verdicts differ. Also each run's benchmark time, the rounds it took, why it
stopped and the load average before and after. --keep DIR keeps each run's database, reports
and JSON there (run1/, run2/, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnv3bench.host import load_average

COMMAND = ["table", "5", "--device", "emulator", "--precision", "2%", "--max-time", "300", "--json"]


def run_once(work: Path, models_dir: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "mnv3bench", *COMMAND, "--db", str(work / "r.db"),
               "--models-dir", str(models_dir), "--reports-dir", str(work / "reports"), *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "CI": "1"}, check=False)
    if done.returncode != 0:
        sys.exit(f"mnv3bench table 5 failed (exit {done.returncode}):\n{done.stderr}")
    doc = json.loads(done.stdout)
    doc["_wall_s"] = time.perf_counter() - started
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, help="Built models to reuse (default: a temporary folder).")
    parser.add_argument("--keep", type=Path, help="Keep each run's database, reports and JSON in this folder.")
    args, extra = parser.parse_known_args()
    extra = [x for x in extra if x != "--"]
    docs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for i in range(args.runs):
            load = load_average()
            work = root / f"run{i + 1}"
            doc = run_once(work, args.models_dir or Path(tmp) / "models", extra)
            doc["_load"] = (load, load_average())
            docs.append(doc)
            (work / "table-5.json").write_text(json.dumps(doc, indent=2))
    print(f"$ mnv3bench {' '.join(COMMAND + extra)}   ({args.runs} runs, each with a fresh database)")
    for i, doc in enumerate(docs, start=1):
        p, t, summary = doc["precision"], doc["timings"], doc["agreement_summary"]
        print(f"run {i}: benchmark {t['benchmark_s']:.0f} s, wall {doc['_wall_s']:.0f} s, "
              f"stopped: {p['stopped']}, missed: {len(p['missed'])}; {summary['agrees']} agree, "
              f"{summary['disagrees']} disagree, {summary['not_resolved']} not resolved; "
              f"load {doc['_load'][0]} -> {doc['_load'][1]}")
    flipped = both = 0
    print("\ncomparison: " + " | ".join(f"run {i}" for i in range(1, len(docs) + 1)))
    for rows in zip(*(doc["agreement"] for doc in docs), strict=True):
        name = rows[0]["comparison"]
        cells = [f"{r['measured_ratio']:.3f} ±{r['precision']:.1%} {r['method']}: {r['verdict']}"
                 if r["measured_ratio"] is not None else "not measured" for r in rows]
        resolved = {r["verdict"] for r in rows if r.get("resolved")}
        if sum(bool(r.get("resolved")) for r in rows) >= 2:
            both += 1
            flipped += len(resolved) > 1
        print(f"  {name}: " + " | ".join(cells))
    print(f"\n{flipped} verdict(s) flipped among {both} comparisons resolved in 2+ runs")


if __name__ == "__main__":
    main()
