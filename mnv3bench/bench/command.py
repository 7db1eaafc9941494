"""The benchmark_model command line, pinned to one big core.

`taskset <mask>` keeps the single benchmark thread on the profile's pin core (one cpu,
not the whole cluster, so the scheduler cannot migrate it between unequal cores).
Every value is shell-quoted: the device shell sees exactly one argument per flag.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from mnv3bench.bench.options import OPTIONS, PINNED_FLAGS, parse_extra_flags

if TYPE_CHECKING:
    from mnv3bench.bench.options import RunConfig
    from mnv3bench.device.profiles import DeviceProfile


def benchmark_flags(config: RunConfig) -> dict[str, str]:
    """The benchmark_model flags a RunConfig asks for, as the strings passed on the device:
    the pinned ones, then each option's flag in the option table's order.

    Stored with each trial (the `flags` column) so trials run with other flags never mix.
    """
    flags = {flag.name: flag.format(getattr(config, flag.name, value)) for flag, value in PINNED_FLAGS}
    for option in OPTIONS:
        text = option.flag_value(getattr(config, option.name))
        if option.flag is not None and text is not None:
            flags[option.flag.name] = text
    flags.update(parse_extra_flags(config.extra_flags))
    return flags


def benchmark_command(profile: DeviceProfile, remote_model: str, config: RunConfig) -> str:
    """`taskset <mask> <binary> --graph=<model> --num_threads=1 ...` for the device shell."""
    parts = ["taskset", profile.affinity_mask, profile.benchmark_binary, f"--graph={remote_model}"]
    parts += [f"--{key}={value}" for key, value in benchmark_flags(config).items()]
    return shlex.join(parts)


# toybox: "taskset: failed to set pid 123's affinity: Invalid argument" when the shell's
# cpuset leaves out every cpu of the mask (util-linux says "failed to set pid 123's affinity").
_TASKSET_FAILED = re.compile(r"^.*taskset: failed to set pid.*affinity.*$|^.*taskset: sched_setaffinity.*$",
                             re.MULTILINE)
PINNING_FIX = ("Reboot the phone so that adbd starts in the root cpuset, `/` (the adb shell's cpuset leaves out "
               "the pinned core: `adb shell cat /proc/self/cpuset` shows it); on a rooted phone `adb root` lifts "
               "it. Otherwise pin a core the shell may use (pin_core in the profile).")


def taskset_failure(output: str) -> str | None:
    """taskset's own error line when it could not pin the benchmark, else None."""
    match = _TASKSET_FAILED.search(output)
    return match.group(0).strip() if match else None


def kill_command(binary: str) -> str:
    """Stop a hung benchmark by the binary's real name, then list what survived (by PID).

    -x matches the process name exactly. Not -f: on a phone the command runs inside
    `sh -c "pkill -f benchmark_model; ..."`, whose own command line matches and dies. The
    name is the binary's own basename (a prebuilt kept under its download name,
    android_aarch64_benchmark_model, is not "benchmark_model"); a name longer than the
    kernel's 15-character comm may match nothing, so `pidof` (which also reads the command
    line) lists any survivor for a `kill -9 PID`.
    """
    name = shlex.quote(binary.rstrip("/").rsplit("/", 1)[-1])
    return f"pkill -x {name}; pidof {name}"


# benchmark_model's own words when it ignored a flag, or ran without the delegate asked for.
_UNCONSUMED = re.compile(r"Unconsumed cmdline flags:?\s*(.*)")
_DELEGATE_FAILED = re.compile(r"Failed to apply (?:the )?\S+ delegate[^\n]*|"
                              r"Failed to apply the default TensorFlow Lite delegate[^\n]*")


def flag_problem(output: str) -> str | None:
    """Why a run that printed its numbers still does not measure what its flags say, or None."""
    unconsumed = _UNCONSUMED.search(output)
    if unconsumed:
        return (f"benchmark_model ignored flags it does not know ({unconsumed.group(1).strip() or '?'}): "
                "the stored flags would claim them; update benchmark_model (`mnv3bench device setup`)")
    failed = _DELEGATE_FAILED.search(output)
    if failed:
        return f"the delegate was not applied ({failed.group(0).strip()})"
    return None
