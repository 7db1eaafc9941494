"""Is the emulator's benchmark_model stand-in honest? Compare it with LiteRT's own tool.

Same .tflite (keras MobileNetV3Small, random weights, 224x224, converted here), same
threads (1), same host core: alternate `python -m mnv3bench.emulator.standin` and
`python -m ai_edge_litert.tools.benchmark_litert_model` several times and report the
ratio of their mean latencies. Goal: within 3%.

    python benchmarks/bench_standin_vs_litert.py [--rounds 4] [--runs 100] [--core 1] [--large]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mnv3bench.bench.parser import parse_benchmark_output


def convert(path: Path, large: bool) -> Path:
    if path.exists():
        return path
    import keras
    import tensorflow as tf

    factory = keras.applications.MobileNetV3Large if large else keras.applications.MobileNetV3Small
    model = factory(input_shape=(224, 224, 3), weights=None)
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def standin_ms(model: Path, runs: int, warmup: int) -> tuple[float, float]:
    """(mean, median) latency in ms."""
    out = subprocess.run(
        [sys.executable, "-m", "mnv3bench.emulator.standin", f"--graph={model}", "--num_threads=1",
         f"--num_runs={runs}", "--min_secs=0", f"--warmup_runs={warmup}", "--warmup_min_secs=0"],
        capture_output=True, text=True, check=True)
    result = parse_benchmark_output(out.stdout + out.stderr)
    assert result.inference_avg_us is not None and result.inference_count == runs, out.stdout
    return result.inference_avg_us / 1000, result.inference_median_us / 1000


def litert_ms(model: Path, runs: int, warmup: int) -> tuple[float, float]:
    """(mean, median) latency in ms."""
    out = subprocess.run(
        [sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={model}",
         "--num_threads=1", f"--num_runs={runs}", f"--warmup_runs={warmup}"],
        capture_output=True, text=True, check=True)
    match = re.search(r"Inference \(avg\):\s+([\d.]+) ms \((\d+) runs\)", out.stdout)
    assert match and int(match.group(2)) == runs, out.stdout + out.stderr
    median = re.search(r"Inference \(median\):\s+([\d.]+) ms", out.stdout)
    assert median, out.stdout
    return float(match.group(1)), float(median.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--core", type=int, default=(os.cpu_count() or 1) - 1)
    ap.add_argument("--large", action="store_true", help="MobileNetV3Large instead of Small")
    args = ap.parse_args()

    name = "mnv3_large" if args.large else "mnv3_small"
    model = convert(Path(tempfile.gettempdir()) / f"bench_standin_{name}_224.tflite", args.large)
    os.sched_setaffinity(0, {args.core})   # both tools inherit the same single core
    print(f"model {model.name} ({model.stat().st_size / 1e6:.1f} MB), 1 thread, host core {args.core}, "
          f"{args.runs} runs x {args.rounds} rounds, alternating")
    ours, theirs, ours_med, theirs_med = [], [], [], []
    for round_no in range(1, args.rounds + 1):
        # Alternate which tool goes first so slow drift in machine load favours neither.
        first, second = (standin_ms, litert_ms) if round_no % 2 else (litert_ms, standin_ms)
        a, b = first(model, args.runs, args.warmup), second(model, args.runs, args.warmup)
        (mine, other) = (a, b) if first is standin_ms else (b, a)
        ours.append(mine[0]); ours_med.append(mine[1])
        theirs.append(other[0]); theirs_med.append(other[1])
        print(f"round {round_no}: mean stand-in {mine[0]:.3f} ms / benchmark_litert_model {other[0]:.3f} ms "
              f"(ratio {mine[0] / other[0]:.3f}); median {mine[1]:.3f} / {other[1]:.3f} ms "
              f"(ratio {mine[1] / other[1]:.3f})")
    ratio = statistics.mean(ours) / statistics.mean(theirs)
    median_ratio = statistics.median(ours_med) / statistics.median(theirs_med)
    print(f"mean latency: stand-in {statistics.mean(ours):.3f} ms, benchmark_litert_model "
          f"{statistics.mean(theirs):.3f} ms, ratio {ratio:.4f} "
          f"({'within' if abs(ratio - 1) <= 0.03 else 'OUTSIDE'} 3%)")
    print(f"median latency (robust to other load on the machine): ratio {median_ratio:.4f} "
          f"({'within' if abs(median_ratio - 1) <= 0.03 else 'OUTSIDE'} 3%)")


if __name__ == "__main__":
    main()
