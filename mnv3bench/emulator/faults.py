"""Fault knobs of the host emulator: ways a real phone misbehaves, on demand.

The reliability tests (issue 6) start the emulator with some of these to prove that
mnv3bench survives each one. `mnv3bench emulator serve --fault KIND` exposes them.
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
}


class DropConnection(Exception):
    """Raised inside the emulated phone when a fault says the ADB link dies now."""


def check_faults(names: Iterable[str]) -> frozenset[str]:
    """Validate fault names (as typed by a user) and return them as a frozenset."""
    chosen = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise UsageError(
            f"unknown emulator fault {', '.join(repr(u) for u in unknown)}",
            hint="choose from: " + ", ".join(sorted(FAULTS)),
        )
    return chosen
