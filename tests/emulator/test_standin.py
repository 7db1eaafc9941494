"""The benchmark_model stand-in: real LiteRT runs, benchmark_model's output and run logic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mnv3bench.bench.parser import parse_benchmark_output
from mnv3bench.emulator.standin import Stat, parse_flags


def standin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "mnv3bench.emulator.standin", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


FAST = ["--num_threads=1", "--min_secs=0", "--warmup_min_secs=0", "--warmup_runs=2"]


def test_output_parses_and_counts_follow_the_flags(tiny_tflite: Path) -> None:
    run = standin(f"--graph={tiny_tflite}", "--num_runs=7", *FAST)
    assert run.returncode == 0, run.stderr
    result = parse_benchmark_output(run.stdout + run.stderr)
    assert not result.error
    assert result.inference_count == 7 and result.num_threads == 1
    assert result.graph == str(tiny_tflite)
    assert 0 < result.inference_min_us <= result.inference_avg_us <= result.inference_max_us
    assert result.first_inference_us > 0 and result.init_us > 0 and result.memory_overall_mb is not None
    lines = run.stdout.splitlines()
    assert lines[0] == "INFO: STARTING!"
    assert "INFO: Num threads: [1]" in lines and "INFO: Min num runs: [7]" in lines
    assert any(line.startswith("INFO: The input model file size (MB): ") for line in lines)
    assert any(line.startswith("INFO: count=2 ") for line in lines)            # warmup
    assert any(line.startswith("INFO: count=7 first=") and " p95=" in line for line in lines)
    assert any(line.startswith("INFO: Inference timings in us: Init: ") for line in lines)


def test_min_secs_extends_and_max_secs_stops_the_runs(tiny_tflite: Path) -> None:
    long = parse_benchmark_output(standin(f"--graph={tiny_tflite}", "--num_runs=1", "--min_secs=0.3",
                                          "--warmup_runs=1", "--warmup_min_secs=0").stdout)
    assert long.inference_count > 1 and long.inference_count * long.inference_avg_us >= 0.25e6
    capped = parse_benchmark_output(standin(f"--graph={tiny_tflite}", "--num_runs=100000000",
                                            "--max_secs=0.2", "--warmup_runs=1", "--warmup_min_secs=0").stdout)
    assert 1 < capped.inference_count < 100000000


def test_xnnpack_off_with_an_op_profile_of_builtin_kernels(tiny_tflite: Path) -> None:
    run = standin(f"--graph={tiny_tflite}", "--num_runs=3", "--use_xnnpack=false",
                  "--enable_op_profiling=true", *FAST)
    assert run.returncode == 0, run.stderr
    assert "INFO: Use xnnpack: [0]" in run.stdout
    assert "Created TensorFlow Lite XNNPACK delegate" not in run.stderr
    assert "WARN:" not in run.stdout
    lines = run.stdout.splitlines()
    # Latency first, from runs without the profiler; the tables after, as benchmark_model prints them.
    assert lines.index("INFO: Operator-wise Profiling Info for Regular Benchmark Runs:") > max(
        i for i, line in enumerate(lines) if line.startswith("INFO: count="))
    result = parse_benchmark_output(run.stdout)
    assert not result.error and result.inference_count == 3
    types = [row["node_type"] for row in result.op_profile_rows]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"} <= set(types)
    assert all(row["avg_ms"] >= 0 and row["times_called"] == 1 for row in result.op_profile_rows)
    assert [row["index"] for row in result.op_profile_rows] == list(range(len(types)))
    assert any("conv2d" in row["name"].lower() for row in result.op_profile_rows)
    assert result.op_profile_top and result.op_profile_by_type


def test_op_profile_with_xnnpack_names_the_delegate_operators(tiny_tflite: Path) -> None:
    run = standin(f"--graph={tiny_tflite}", "--num_runs=2", "--enable_op_profiling=true", *FAST)
    assert run.returncode == 0, run.stderr
    rows = parse_benchmark_output(run.stdout).op_profile_rows
    assert rows and any(row["name"].startswith("Delegate/") for row in rows)
    assert any("Convolution" in row["node_type"] for row in rows)


def test_missing_graph_fails_like_benchmark_model(tmp_path: Path) -> None:
    run = standin(f"--graph={tmp_path / 'none.tflite'}", "--num_runs=1")
    assert run.returncode == 1
    assert f"ERROR: Could not open '{tmp_path / 'none.tflite'}'." in run.stderr
    assert parse_benchmark_output(run.stdout + run.stderr).error
    no_graph = standin("--num_runs=1")
    assert no_graph.returncode == 1 and "--graph" in no_graph.stderr


def test_unreadable_model_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all" * 10)
    run = standin(f"--graph={bad}", "--num_runs=1")
    assert run.returncode == 1 and "ERROR: " in run.stderr
    assert parse_benchmark_output(run.stdout + run.stderr).error


def test_bad_flag_value_and_unknown_flags(tiny_tflite: Path) -> None:
    run = standin(f"--graph={tiny_tflite}", "--num_runs=many")
    assert run.returncode == 1 and "--num_runs=many" in run.stderr
    run = standin(f"--graph={tiny_tflite}", "--num_runs=2", "--frobnicate=1", *FAST)
    assert run.returncode == 0 and "WARN: Unconsumed cmdline flags: --frobnicate=1" in run.stdout


def test_affinity_from_the_environment(tiny_tflite: Path) -> None:
    # The phone passes host cpus; the stand-in pins itself before LiteRT starts.
    code = ("import os; from mnv3bench.emulator import standin; standin.pin_to_env_cpus();"
            " print(sorted(os.sched_getaffinity(0)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "MNV3BENCH_EMU_CPUS": "0"}).stdout
    assert out.strip() == "[0]"


def test_stat_line_format() -> None:
    assert str(Stat([])) == "count=0"
    assert str(Stat([5])) == "count=1 curr=5 p5=5 median=5 p95=5"
    assert str(Stat([5, 5])) == "count=2 curr=5(all same) p5=5 median=5 p95=5"
    assert str(Stat([10, 20, 30, 1_500_000])) == (
        "count=4 first=10 curr=1500000 min=10 max=1500000 avg=375015 std=649510 p5=10 median=30 p95=1500000")
    assert f"{Stat([1_240_270, 1_240_280]).avg:g}" == "1.24028e+06"


def test_parse_flags() -> None:
    values, given, unconsumed = parse_flags(["--graph=a", "--use_xnnpack=false", "--num_runs=3", "x"])
    assert values["graph"] == "a" and values["use_xnnpack"] is False and values["num_runs"] == 3
    assert values["min_secs"] == 1.0 and values["max_secs"] == 150.0 and values["warmup_runs"] == 1
    assert given == ["graph", "use_xnnpack", "num_runs"] and unconsumed == ["x"]


def test_old_binary_fault_leaves_use_xnnpack_unconsumed(tiny_tflite: Path) -> None:
    run = standin(f"--graph={tiny_tflite}", "--num_runs=3", "--use_xnnpack=true", *FAST,
                  env={"MNV3BENCH_EMU_FAULTS": "old-binary"})
    assert "WARN: Unconsumed cmdline flags: --use_xnnpack=true" in run.stdout + run.stderr
    assert "Use xnnpack" not in run.stdout
