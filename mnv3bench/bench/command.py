"""The benchmark_model command line, pinned to one big core.

`taskset <mask>` keeps the single benchmark thread on the profile's pin core (one cpu,
not the whole cluster, so the scheduler cannot migrate it between unequal cores).
Every value is shell-quoted: the device shell sees exactly one argument per flag.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from mnv3bench.bench.options import OPTIONS, PINNED_FLAGS

if TYPE_CHECKING:
    from mnv3bench.bench.options import RunConfig
    from mnv3bench.device.profiles import DeviceProfile


def benchmark_flags(config: RunConfig) -> dict[str, str]:
    """The benchmark_model flags a RunConfig asks for, as the strings passed on the device:
    the pinned ones, then each option's flag in the option table's order.

    Stored with each trial (the `flags` column) so trials run with other flags never mix.
    """
    flags = {flag.name: flag.format(value) for flag, value in PINNED_FLAGS}
    for option in OPTIONS:
        text = option.flag_value(getattr(config, option.name))
        if option.flag is not None and text is not None:
            flags[option.flag.name] = text
    return flags


def benchmark_command(profile: DeviceProfile, remote_model: str, config: RunConfig) -> str:
    """`taskset <mask> <binary> --graph=<model> --num_threads=1 ...` for the device shell."""
    parts = ["taskset", profile.affinity_mask, profile.benchmark_binary, f"--graph={remote_model}"]
    parts += [f"--{key}={value}" for key, value in benchmark_flags(config).items()]
    return shlex.join(parts)
