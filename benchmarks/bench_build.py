"""Time to build the Table 5 models: cold (empty cache) and warm, with 1 and 2 worker processes.

    python benchmarks/bench_build.py [--models-dir-root DIR] [--variants NAME ...]

Cold runs start from an empty models directory, so every model is built, converted and
verified; warm runs repeat the same call on the filled cache (hash checks only, no
TensorFlow). Prints seconds per configuration and the jobs=1 / jobs=2 ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mnv3bench.model.builds import ensure_models
from mnv3bench.variants import parse_variant

# Table 5's rows (fused and "no-opt" naive columns), as catalog names; large-relu has
# no h-swish, so the two columns share one model.
TABLE5 = [
    "large-hswish-fused", "large-hswish-naive",
    "large-0.85-hswish-fused", "large-0.85-hswish-naive",
    "large-relu", "large-relu",
    "large-hswish@16-fused", "large-hswish@16-naive",
    "large-hswish@112-fused", "large-hswish@112-naive",
]


def timed(names: list[str], models_dir: Path, jobs: int) -> float:
    started = time.perf_counter()
    ensure_models(names, models_dir=models_dir, jobs=jobs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir-root", type=Path, default=None, help="where the temporary caches go")
    parser.add_argument("--variants", nargs="+", default=TABLE5)
    args = parser.parse_args()
    unique = list(dict.fromkeys(parse_variant(n).name for n in args.variants))
    print(f"{len(args.variants)} names -> {len(unique)} distinct models; cpus: {os.cpu_count()}", flush=True)

    results: dict[str, float] = {}
    for jobs in (1, 2):
        root = Path(tempfile.mkdtemp(prefix=f"bench-build-j{jobs}-", dir=args.models_dir_root))
        try:
            results[f"cold jobs={jobs}"] = timed(args.variants, root, jobs)
            print(f"cold jobs={jobs}: {results[f'cold jobs={jobs}']:.1f} s", flush=True)
            results[f"warm jobs={jobs}"] = timed(args.variants, root, jobs)
            print(f"warm jobs={jobs}: {results[f'warm jobs={jobs}']:.3f} s", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    cold_ratio = results["cold jobs=1"] / results["cold jobs=2"]
    print(f"cold speed-up jobs=2 vs jobs=1: {cold_ratio:.2f}x")
    print(f"warm vs cold (jobs=2): {results['cold jobs=2'] / results['warm jobs=2']:.0f}x faster")
    print(f"per model cold: jobs=1 {results['cold jobs=1'] / len(unique):.1f} s, jobs=2 {results['cold jobs=2'] / len(unique):.1f} s")
    json.dump(results | {"models": len(unique), "cold_speedup_jobs2": cold_ratio}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
