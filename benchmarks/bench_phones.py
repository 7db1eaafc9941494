"""How well the workers of `run --device A --device B --device C` overlap: three phones vs one.

    python benchmarks/bench_phones.py [--trials 5] [--run-s 1.0] [--models-dir DIR]

Runs `mnv3bench run` in a subprocess, first with one Pixel twin, then with three
(`--device pixel1 --device pixel2 --device pixel3`), each twin in-process (`--adb emulate`)
with the emulator's "fixed-time" fault: every benchmark run waits --run-s seconds and
computes nothing, so the host's two cores are not what gets measured. Prints the wall time
of each command, the sessions' own time (from the progress lines on stderr) and the ratios
three / one. Goal: at most 1.2. The small model is built into a temp folder first unless
--models-dir holds it. Everything else lives in a temp folder, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANT = "small-hswish-fused-r96"
PIXELS = ("pixel1", "pixel2", "pixel3")


def run(devices: tuple[str, ...], args: argparse.Namespace, tmp: Path, models: Path) -> tuple[float, float]:
    """(wall seconds of the command, seconds its sessions took as it reports them)."""
    env = dict(os.environ, CI="1", MNV3BENCH_EMU_RUN_S=str(args.run_s), XDG_CACHE_HOME=str(tmp / "cache"),
               MNV3BENCH_ADBKEY=str(tmp / "adbkey"), PYTHONPATH=str(REPO))
    env.pop("MNV3BENCH_ADB", None)
    command = [sys.executable, "-m", "mnv3bench", "run", *[a for d in devices for a in ("--device", d)],
               "--adb", "emulate:fixed-time", VARIANT, "--trials", str(args.trials),
               "--db", str(tmp / f"{len(devices)}.db"), "--models-dir", str(models)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    # One phone: "...; 5 trial(s), total 6.1 s"; several: "3 phones in 6.3 s".
    found = re.search(r"(\d+) phones in ([\d.]+) s", done.stderr) or re.search(r"total ([\d.]+) s", done.stderr)
    return wall, float(found.groups()[-1]) if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--run-s", type=float, default=1.0, help="seconds each benchmark run takes on a twin")
    parser.add_argument("--models-dir", type=Path, help="a models dir that holds (or will hold) the small model")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        models = args.models_dir or tmp / "models"
        sys.path.insert(0, str(REPO))
        from mnv3bench.model.builds import ensure_models

        ensure_models([VARIANT], models_dir=models)
        one_wall, one_sessions = run(PIXELS[:1], args, tmp, models)
        three_wall, three_sessions = run(PIXELS, args, tmp, models)
    print(f"{args.trials} trials x {args.run_s:g} s per benchmark run, fixed-time twins")
    print(f"one phone:    wall {one_wall:6.2f} s, sessions {one_sessions:6.2f} s")
    print(f"three phones: wall {three_wall:6.2f} s, sessions {three_sessions:6.2f} s")
    print(f"three / one:  wall {three_wall / one_wall:.3f}, sessions {three_sessions / one_sessions:.3f} "
          "(goal: at most 1.2)")


if __name__ == "__main__":
    main()
