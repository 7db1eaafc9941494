"""A host stand-in for TFLite's `benchmark_model`, running the .tflite on LiteRT.

    python -m mnv3bench.emulator.standin --graph=m.tflite --num_threads=1 --num_runs=50 ...

It follows benchmark_model's run logic (benchmark_model.cc: at least N runs *and* at
least min_secs, stopping at max_secs; warmup likewise) and prints benchmark_model's own
LiteRT-style log, line by line and flushed as produced, so that the real parser reads it
and the output streams over ADB while the benchmark runs. ERROR lines go to stderr, as
in the real tool.

The emulated phone passes three hidden inputs through the environment:
MNV3BENCH_EMU_HOST_GRAPH (the host path of the device --graph), MNV3BENCH_EMU_CPUS (host
cpus to pin to, applied before LiteRT starts any thread) and MNV3BENCH_EMU_FAULTS.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mnv3bench.bench.options import ModelFlag, model_flags

# benchmark_model flags the stand-in accepts besides those mnv3bench can pass (the option
# table's, bench/options.py), with benchmark_model's defaults and the descriptions it echoes.
_OWN_FLAGS = (
    ModelFlag("graph", str, "", "Graph"),
    ModelFlag("run_delay", float, -1.0, "Inter-run delay (seconds)"),
    ModelFlag("warmup_min_secs", float, 0.5, "Min warmup runs duration (seconds)"),
    ModelFlag("verbose", bool, False, "Log parameter values verbosely"),
    ModelFlag("report_peak_memory_footprint", bool, False, "Report the peak memory footprint"),
    ModelFlag("use_gpu", bool, False, "Use gpu"),
    ModelFlag("use_nnapi", bool, False, "Use NNAPI"),
    ModelFlag("use_hexagon", bool, False, "Use Hexagon"),
    ModelFlag("benchmark_name", str, "", "Benchmark name"),
    ModelFlag("op_profiling_output_mode", str, "stdout", "Op profiling output mode"),
    ModelFlag("op_profiling_output_file", str, "", "Op profiling output file"),
    ModelFlag("profiling_output_csv_file", str, "", "CSV File to export profiling data to"),
)
_FLAGS: dict[str, ModelFlag] = {flag.name: flag for flag in (*_OWN_FLAGS, *model_flags())}


class FlagError(ValueError):
    """A benchmark_model flag with a value of the wrong type."""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def parse_flags(argv: Sequence[str]) -> tuple[dict[str, Any], list[str], list[str]]:
    """benchmark_model's `--name=value` flags -> (values, names given, unconsumed args)."""
    values = {name: flag.default for name, flag in _FLAGS.items()}
    given: list[str] = []
    unconsumed: list[str] = []
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            unconsumed.append(arg)
            continue
        name, raw = arg[2:].split("=", 1)
        if name not in _FLAGS:
            unconsumed.append(arg)
            continue
        kind = _FLAGS[name].kind
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("true", "1")
            else:
                value = kind(raw)
        except ValueError:
            raise FlagError(f"Failed to parse --{name}={raw}: expected a {kind.__name__}") from None
        values[name] = value
        if name not in given:
            given.append(name)
    return values, given, unconsumed


@dataclass
class Stat:
    """tensorflow/core/util/stats_calculator.h's Stat<int64_t>, printed the same way."""

    samples: list[int]

    def __str__(self) -> str:
        s = self.samples
        if not s:
            return "count=0"
        ordered = sorted(s)
        pct = (f" p5={_percentile(ordered, 5)} median={_percentile(ordered, 50)}"
               f" p95={_percentile(ordered, 95)}")
        if min(s) == max(s):
            return f"count={len(s)} curr={s[-1]}" + ("(all same)" if len(s) > 1 else "") + pct
        return (f"count={len(s)} first={s[0]} curr={s[-1]} min={min(s)} max={max(s)}"
                f" avg={self.avg:g} std={self.std}" + pct)

    @property
    def avg(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else 0.0

    @property
    def std(self) -> int:
        # Population standard deviation truncated to an integer, as Stat<int64_t> does.
        n = len(self.samples)
        if n == 0:
            return 0
        var = sum(x * x for x in self.samples) / n - self.avg**2
        return int(max(0.0, var) ** 0.5)


def _percentile(ordered: list[int], p: float) -> int:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


class Log:
    """benchmark_model's TFLITE_LOG: `INFO: ` lines on stdout, ERROR on stderr, flushed."""

    @staticmethod
    def info(message: str = "") -> None:
        print(f"INFO: {message}" if message else "", flush=True)

    @staticmethod
    def warn(message: str) -> None:
        print(f"WARN: {message}", flush=True)

    @staticmethod
    def error(message: str) -> None:
        sys.stdout.flush()
        print(f"ERROR: {message}", file=sys.stderr, flush=True)


def _fail(message: str) -> int:
    Log.error(message)
    Log.error("Benchmarking failed.")
    return 1


def pin_to_env_cpus() -> None:
    cpus = os.environ.get("MNV3BENCH_EMU_CPUS", "")
    if cpus:
        try:
            os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
        except OSError as exc:  # the parent pins us too; say it, as the real tool would
            Log.warn(f"could not pin to cpus {cpus}: {exc}")


def _random_inputs(interpreter: Any) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = detail["shape"]
        if np.issubdtype(dtype, np.floating):
            data = rng.uniform(-1.0, 1.0, shape).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            data = rng.integers(max(info.min, -128), min(info.max, 127), shape, endpoint=True).astype(dtype)
        else:
            data = np.zeros(shape, dtype=dtype)
        interpreter.set_tensor(detail["index"], data)


def run_phase(invoke: Any, min_runs: int, min_secs: float, max_secs: float,
              run_delay: float, slowdown: float) -> Stat:
    """BenchmarkModel::Run: at least min_runs and min_secs, never past max_secs."""
    Log.info(f"Running benchmark for at least {min_runs} iterations and at least "
             f"{min_secs:g} seconds but terminate if exceeding {max_secs:g} seconds.")
    samples: list[int] = []
    start = time.perf_counter_ns()
    min_finish = start + int(min_secs * 1e9)
    max_finish = start + int(max_secs * 1e9)
    now = start
    while (len(samples) < min_runs or now < min_finish) and now <= max_finish:
        t0 = time.perf_counter_ns()
        invoke()
        elapsed = time.perf_counter_ns() - t0
        if slowdown > 1.0:  # the "slow" fault: the device takes `slowdown` times as long
            # The run lasts that long, and reports exactly that long: a stall preempted on a
            # busy host would otherwise add the host's noise on top of the fault.
            _stall(elapsed * (slowdown - 1.0))
            elapsed = int(elapsed * slowdown)
        samples.append(elapsed // 1000)
        if run_delay > 0:
            time.sleep(run_delay)
        now = time.perf_counter_ns()
    stat = Stat(samples)
    Log.info(str(stat))
    Log.info()
    return stat


def _stall(nanoseconds: float) -> None:
    """Wait this long; spin for short waits, which time.sleep would overshoot."""
    until = time.perf_counter_ns() + int(nanoseconds)
    if nanoseconds > 2e6:
        time.sleep((nanoseconds - 1e6) / 1e9)
    while time.perf_counter_ns() < until:
        pass


def fixed_time_output(graph: str, run_s: float) -> str:
    """What benchmark_model prints for one run of `run_s` seconds (the "fixed-time" fault):
    the shape of a real run, with every inference taking that long."""
    us = int(run_s * 1e6)
    lines = ["INFO: STARTING!", "INFO: Num threads: [1]", f"INFO: Graph: [{graph}]", f"INFO: Loaded model {graph}",
             "INFO: Initialized session in 0.1ms.",
             "INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if "
             "exceeding 150 seconds.",
             f"INFO: {Stat([us])}", "",
             f"INFO: Inference timings in us: Init: 100, First inference: {us}, Warmup (avg): {us:g}, "
             f"Inference (avg): {us:g}"]
    return "\n".join(lines) + "\n"


def _garbage_output(graph: str) -> int:
    # The "garbage" fault: looks like a run, has no stats lines, exits 0.
    Log.info(f"Loaded model {graph}")
    for line in ("~~ 0x7f3a: tensor arena relocated ~~", "#@!%&*()_+ 3.14159 ????",
                 "Running benchmark... done?", "inference: lots of it"):
        print(line, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    rss_at_start = _rss_mb()
    pin_to_env_cpus()
    faults = set(filter(None, os.environ.get("MNV3BENCH_EMU_FAULTS", "").split(",")))
    Log.info("STARTING!")
    try:
        params, given, unconsumed = parse_flags(list(sys.argv[1:] if argv is None else argv))
    except FlagError as exc:
        return _fail(str(exc))
    if "old-binary" in faults and "use_xnnpack" in given:  # a build from before the flag existed
        given.remove("use_xnnpack")
        unconsumed += [a for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--use_xnnpack")]
    Log.info(f"Log parameter values verbosely: [{int(params['verbose'])}]")
    for name in given:
        value = params[name]
        shown = int(value) if isinstance(value, bool) else (f"{value:g}" if isinstance(value, float) else value)
        Log.info(f"{_FLAGS[name].description}: [{shown}]")
    graph = params["graph"]
    Log.info("Signature to run: []")
    if params["num_threads"] > 0:
        Log.info(f"#threads used for CPU inference: [{params['num_threads']}]")
    if unconsumed:
        Log.warn("Unconsumed cmdline flags: " + " ".join(unconsumed))
    if "hang" in faults:  # prints the header, then nothing, until killed
        while True:
            time.sleep(3600)
    if not graph:
        return _fail("Please specify the name of your TF Lite input file with --graph")
    for accel in ("use_gpu", "use_nnapi", "use_hexagon"):
        if params[accel]:
            return _fail(f"--{accel}=true is not supported by the mnv3bench emulator's "
                         "benchmark_model stand-in (it runs on the host CPU only).")
    host_graph = os.environ.get("MNV3BENCH_EMU_HOST_GRAPH") or graph
    try:
        with open(host_graph, "rb") as handle:
            model_bytes = handle.read()
    except OSError:
        Log.error(f"Could not open '{graph}'.")
        return _fail(f"Failed to mmap model {graph}")
    if "garbage" in faults:
        return _garbage_output(graph)

    profiler = None
    if params["enable_op_profiling"]:
        # Self-check first: a LiteRT that ignores the options fails before any run.
        from mnv3bench.profile.host import open_session
        from mnv3bench.profile.litert_c import LiteRtError

        try:
            profiler = open_session(host_graph, params["num_threads"], builtin_kernels=not params["use_xnnpack"])
        except (LiteRtError, OSError) as exc:
            return _fail(f"Op profiling is not available: {exc}")

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from mnv3bench.delegation import analyse_interpreter

    t_init = time.perf_counter_ns()
    resolver = (OpResolverType.AUTO if params["use_xnnpack"]
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        interpreter = Interpreter(
            model_content=model_bytes,
            num_threads=params["num_threads"] if params["num_threads"] > 0 else None,
            experimental_op_resolver_type=resolver,
        )
        Log.info(f"Loaded model {graph}")
        # LiteRT itself logs "Created TensorFlow Lite XNNPACK delegate for CPU." on stderr.
        Log.info("Initialized TensorFlow Lite runtime.")
        interpreter.allocate_tensors()
        delegation = analyse_interpreter(interpreter)
        if delegation.delegate:  # the runtime's own line, as benchmark_model prints it
            Log.info(delegation.log_line())
        _random_inputs(interpreter)
    except (ValueError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _fail(f"Failed to load or prepare model {graph}: {first_line}")
    init_us = (time.perf_counter_ns() - t_init) // 1000
    rss_after_init = _rss_mb()
    Log.info(f"The input model file size (MB): {len(model_bytes) / 1e6:g}")
    Log.info(f"Initialized session in {init_us / 1000:g}ms.")

    if "crash" in faults:
        Log.info(f"Running benchmark for at least {params['warmup_runs']} iterations and at "
                 f"least {params['warmup_min_secs']:g} seconds but terminate if exceeding "
                 f"{params['max_secs']:g} seconds.")
        Log.error("Node number 3 (CONV_2D) failed to invoke.")
        return _fail("Invoke failed (the mnv3bench emulator's crash fault is on).")
    slowdown = 3.0 if "slow" in faults else 1.0
    try:
        warmup = run_phase(interpreter.invoke, params["warmup_runs"], params["warmup_min_secs"],
                           params["max_secs"], params["run_delay"], slowdown)
        regular = run_phase(interpreter.invoke, params["num_runs"], params["min_secs"],
                            params["max_secs"], params["run_delay"], slowdown)
    except (ValueError, RuntimeError) as exc:
        return _fail(f"Invoke failed: {exc}")

    first = warmup.samples[0] if warmup.samples else 0
    Log.info(f"Inference timings in us: Init: {init_us}, First inference: {first}, "
             f"Warmup (avg): {warmup.avg:g}, Inference (avg): {regular.avg:g}")
    Log.info("Note: as the benchmark tool itself affects memory footprint, the following is "
             "only APPROXIMATE to the actual memory footprint of the model at runtime. Take "
             "the information at your discretion.")
    Log.info(f"Memory footprint delta from the start of the tool (MB): "
             f"init={rss_after_init - rss_at_start:g} overall={_rss_mb() - rss_at_start:g}")
    if profiler is not None:
        return _print_op_profile(profiler, max(1, len(regular.samples)))
    return 0


def _print_op_profile(session: Any, runs: int) -> int:
    """The op tables, from runs of their own after the latency runs, as benchmark_model prints them."""
    from mnv3bench.profile.host import profile_ops
    from mnv3bench.profile.litert_c import LiteRtError
    from mnv3bench.profile.optable import REGULAR_HEADER, format_op_tables

    try:
        profile = profile_ops(session, runs)
    except LiteRtError as exc:
        return _fail(f"Op profiling failed: {exc}")
    Log.info(REGULAR_HEADER)
    for line in format_op_tables(profile.rows):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
