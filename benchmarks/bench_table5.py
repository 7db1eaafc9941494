"""Time to Table 5 on the emulator: from a clean model cache, then with a warm one.

    python benchmarks/bench_table5.py [--root DIR] [-- extra `mnv3bench table` flags]

Runs `mnv3bench table 5 --device emulator --json` twice in subprocesses, as a user would:
cold (empty --models-dir: all nine V3-Large models are built on both cores, converted and
verified) and warm (the same models dir, a fresh database, so every trial is measured
again). Without extra flags the tool's defaults apply (today adaptive rounds: --precision 2%
within --max-time 300; `-- --precision none` gives the fixed 5 trials per variant of the
numbers in benchmarks/README.md; benchmark_model --num_runs=50 --min_secs=1). HOME is a temp folder: the adb key and the emulated phone are
the script's own.

Prints wall seconds of each, warm/cold (goal: under 0.25), and where the session's time
went, from the timings the runner reports: build, push, benchmark (the benchmark_model
runs), overhead (the rest of the trial loop; goal: well under 10% of benchmark time) and
the rest (process start, connecting, rendering the reports).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def table5(work: Path, db: Path, models: Path, extra: list[str]) -> tuple[float, dict[str, Any]]:
    """(wall seconds, the session timings) of one `mnv3bench table 5 --device emulator`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_CACHE_HOME", "MNV3BENCH_ADBKEY", "MNV3BENCH_ADB", "MNV3BENCH_DEVICES")}
    env.update(HOME=str(work / "home"), CI="1")
    command = [sys.executable, "-m", "mnv3bench", "table", "5", "--device", "emulator", "--db", str(db),
               "--models-dir", str(models), "--reports-dir", str(work / "reports"), "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"mnv3bench table 5 failed (exit {done.returncode}):\n{done.stderr}")
    return wall, json.loads(done.stdout)["timings"]


def describe(name: str, wall: float, t: dict[str, Any]) -> str:
    rest = wall - t["build_s"] - t["push_s"] - t["benchmark_s"] - t["overhead_s"] - t["waiting_s"]
    share = {k: t[f"{k}_s"] / wall for k in ("build", "push", "benchmark", "overhead")}
    per_trial_ms = 1000 * t["overhead_s"] / t["trials"] if t["trials"] else float("nan")
    bench_per_trial = t["benchmark_s"] / t["trials"] if t["trials"] else float("nan")
    return (f"{name}: {wall:.1f} s wall; build {t['build_s']:.1f} s ({share['build']:.0%}), "
            f"push {t['push_s']:.1f} s ({share['push']:.0%}), benchmark {t['benchmark_s']:.1f} s "
            f"({share['benchmark']:.0%}), overhead {t['overhead_s']:.1f} s ({share['overhead']:.0%}), "
            f"rest {rest:.1f} s ({rest / wall:.0%})\n"
            f"  {t['trials']} trials: benchmark {bench_per_trial:.2f} s/trial, overhead {per_trial_ms:.0f} ms/trial "
            f"= {t['overhead_fraction']:.1%} of benchmark time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="where the temporary folder goes")
    parser.add_argument("extra", nargs="*", help="flags passed on to `mnv3bench table` (after --)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-table5-", dir=args.root))
    try:
        (work / "home").mkdir()
        models = work / "models"
        print(f"cpus: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}; "
              f"flags: {' '.join(args.extra) or '(tool defaults)'}", flush=True)
        cold_wall, cold = table5(work, work / "cold.db", models, args.extra)
        print(describe("cold", cold_wall, cold), flush=True)
        warm_wall, warm = table5(work, work / "warm.db", models, args.extra)
        print(describe("warm", warm_wall, warm), flush=True)
        ratio = warm_wall / cold_wall
        print(f"warm/cold: {ratio:.2f} ({'meets' if ratio < 0.25 else 'misses'} the goal of < 0.25); "
              f"load average now {os.getloadavg()[0]:.2f}")
        json.dump({"cold_s": cold_wall, "warm_s": warm_wall, "warm_over_cold": ratio, "cold": cold, "warm": warm,
                   "flags": args.extra}, sys.stdout)
        print()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
