"""The benchmark_model command line, pinned to one big core.

`taskset <mask>` keeps the single benchmark thread on the profile's pin core (one cpu,
not the whole cluster, so the scheduler cannot migrate it between unequal cores).
Every value is shell-quoted: the device shell sees exactly one argument per flag.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mnv3bench.device.profiles import DeviceProfile


def _num(value: float) -> str:
    """1.0 -> "1", 0.5 -> "0.5": benchmark_model parses both, the short form reads better."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def benchmark_flags(config: Any) -> dict[str, str]:
    """The benchmark_model flags a RunConfig asks for, as the strings passed on the device.

    Stored with each trial (the `flags` column) so trials run with other flags never mix.
    """
    flags = {
        "num_threads": "1",
        "warmup_runs": str(int(config.warmup_runs)),
        "num_runs": str(int(config.num_runs)),
        "min_secs": _num(float(config.min_secs)),
        "max_secs": _num(float(config.max_secs)),
    }
    if config.use_xnnpack is not None:
        flags["use_xnnpack"] = "true" if config.use_xnnpack else "false"
    if config.op_profiling:
        flags["enable_op_profiling"] = "true"
    return flags


def benchmark_command(profile: DeviceProfile, remote_model: str, config: Any) -> str:
    """`taskset <mask> <binary> --graph=<model> --num_threads=1 ...` for the device shell."""
    parts = ["taskset", profile.affinity_mask, profile.benchmark_binary, f"--graph={remote_model}"]
    parts += [f"--{key}={value}" for key, value in benchmark_flags(config).items()]
    return shlex.join(parts)
