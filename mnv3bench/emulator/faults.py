"""Fault knobs of the host emulator: ways a real phone misbehaves, on demand.

The reliability tests start the emulator with some of these to prove that mnv3bench
survives each one. `mnv3bench emulator serve --fault KIND` exposes them.

The faults of a benchmark run (RUN_FAULTS) can be scheduled: `KIND@N` strikes only the
N-th benchmark run (`--graph=` given; a `--help` check does not count), so a test can
say "trial 2 loses the link" without racing the runner.
"""

from __future__ import annotations

from collections.abc import Iterable

from mnv3bench.errors import UsageError

# name -> one line that says what the emulated phone does when the fault is on
FAULTS: dict[str, str] = {
    "drop-push": "the ADB connection closes in the middle of a file push",
    "drop-run": "the ADB connection closes after the first lines of benchmark output",
    "hang": "benchmark_model prints its header, then nothing, and never exits until killed",
    "crash": "benchmark_model prints an ERROR line and exits with status 1",
    "garbage": "benchmark_model prints output without any stats lines and exits 0",
    "no-binary": "there is no benchmark_model binary on the device",
    "hot": "the CPU thermal zone starts hot (85 C) and cools to normal over "
    "$MNV3BENCH_EMU_COOL_S seconds (default 6)",
    "slow": "the device is about 3x slower: each benchmark run takes three times as long",
    "fixed-time": "benchmark_model computes nothing: it waits $MNV3BENCH_EMU_RUN_S seconds (default 1) and "
    "reports that as its latency, so several twins measure side by side without sharing the host's cores",
    # What real phones do (the twins of devices/pixel*.toml play them from the profile's facts):
    "cpuset-little": "the adb shell's cpuset leaves out the fastest cluster (the phone's foreground "
    "cpuset), so `taskset` to the pinned core fails as toybox does",
    "thermal-denied": "reading /sys/class/thermal is denied (SELinux on user builds: EACCES); "
    "`dumpsys thermalservice` still answers",
    "download-name": "benchmark_model is installed under its download name, "
    "android_aarch64_benchmark_model, next to the profile's path",
    "stls": "the phone answers the ADB handshake with STLS (Android 11+ Wireless debugging)",
    "old-binary": "benchmark_model is an old build that does not know --use_xnnpack "
    "(it prints `Unconsumed cmdline flags` and ignores it)",
    "throttle": "the fastest cluster's scaling_max_freq is capped below its maximum (thermal throttling)",
}


RUN_FAULTS = frozenset({"drop-run", "hang", "crash", "garbage", "slow", "old-binary", "fixed-time"})
# The name benchmark_model's prebuilt has when downloaded (TFLite's nightly pre-built binaries).
DOWNLOAD_NAME = "android_aarch64_benchmark_model"


class DropConnection(Exception):
    """Raised inside the emulated phone when a fault says the ADB link dies now."""


def _split(name: str) -> tuple[str, int | None]:
    kind, at, number = name.partition("@")
    if not at:
        return kind, None
    return kind, int(number) if number.isdigit() and int(number) > 0 else -1


def check_faults(names: Iterable[str]) -> frozenset[str]:
    """Validate fault names (as typed by a user) and return them as a frozenset."""
    chosen = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(n for n in chosen if _split(n)[0] not in FAULTS)
    if unknown:
        raise UsageError(
            f"unknown emulator fault {', '.join(repr(u) for u in unknown)}",
            hint="Choose from: " + ", ".join(sorted(FAULTS))
            + f"; {', '.join(sorted(RUN_FAULTS))} also as KIND@N (only the N-th benchmark run).",
        )
    for name in chosen:
        kind, number = _split(name)
        if number is not None and (kind not in RUN_FAULTS or number < 1):
            raise UsageError(
                f"emulator fault {name!r} cannot be scheduled",
                hint=f"Put @N only after {', '.join(sorted(RUN_FAULTS))}, with N a benchmark run number from 1.",
            )
    return chosen


def active_faults(faults: Iterable[str], run_number: int | None) -> frozenset[str]:
    """The fault kinds in force for benchmark run `run_number` (None: not a counted run)."""
    active = set()
    for name in faults:
        kind, number = _split(name)
        if number is None or (run_number is not None and number == run_number):
            active.add(kind)
    return frozenset(active)


def fixed_run_s() -> float:
    """How long a benchmark run takes under the "fixed-time" fault ($MNV3BENCH_EMU_RUN_S, default 1 s)."""
    import os

    try:
        return max(0.0, float(os.environ.get("MNV3BENCH_EMU_RUN_S", "1")))
    except ValueError:
        return 1.0
