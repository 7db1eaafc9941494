"""Everything a run needs, checked before any work: a list of checks with status and fix.

`mnv3bench doctor` prints them all; the runner calls `require_ready` and stops before
building or pushing anything when one fails (missing binary, full storage, wrong ABI).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from mnv3bench.bench.command import PINNING_FIX, taskset_failure
from mnv3bench.device.probe import DeviceInfo, check_profile
from mnv3bench.device.profiles import DeviceProfile, cpu_list
from mnv3bench.device.protocol import Device
from mnv3bench.errors import MnvError

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_MB = 100
HOT_C = 45.0
LOW_BATTERY = 20
BINARY_CHECK_TIMEOUT_S = 30.0


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def setup_command(profile: DeviceProfile) -> str:
    return f"`mnv3bench device setup --device {profile.name} --benchmark-binary PATH`"


def run_checks(device: Device, profile: DeviceProfile, info: DeviceInfo, *, force: bool = False) -> list[Check]:
    checks = [Check("connection", OK, f"{info.manufacturer} {info.model} ({info.device}), serial {info.serial}, "
                                      f"Android {info.release} via {device.transport_name} {device.serial}")]
    checks.append(_profile_check(info, profile, force))
    checks.append(_abi_check(info, profile))
    checks.append(_cores_check(info, profile))
    checks.append(pinning_check(device, profile))
    checks.extend(binary_checks(device, profile))
    checks.append(_storage_check(info, profile))
    checks.append(_governor_check(info, profile))
    checks.append(_temperature_check(info))
    checks.append(_battery_check(info))
    return checks


def require_ready(checks: list[Check]) -> list[Check]:
    """Raise one MnvError naming every failed check and its fix; return the warnings."""
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        lines = [f"{c.name}: {c.detail}" for c in failed]
        fixes = [c.fix for c in failed if c.fix]
        raise MnvError("the device is not ready: " + "; ".join(lines),
                       "\n".join(fixes) or "Run `mnv3bench doctor` for details.")
    return [c for c in checks if c.status == WARN]


def _profile_check(info: DeviceInfo, profile: DeviceProfile, force: bool) -> Check:
    try:
        remarks = check_profile(info, profile, force=force)
    except MnvError as err:
        if "ABI" in err.message:  # reported by its own check
            return Check("profile", OK, f"{info.model} ({info.device}) matches profile '{profile.name}'")
        return Check("profile", FAIL, err.message, err.hint or "")
    forced = [r for r in remarks if "--force" in r]
    if forced:
        return Check("profile", WARN, forced[0], "Pick the matching --device profile.")
    return Check("profile", OK, f"{info.model} ({info.device}) matches profile '{profile.name}'")


def _abi_check(info: DeviceInfo, profile: DeviceProfile) -> Check:
    abis = [a for a in (info.abi, *info.abilist) if a]
    if profile.abi in abis:
        return Check("abi", OK, f"{info.abi} (profile expects {profile.abi})")
    return Check("abi", FAIL, f"device ABI {info.abi or '?'} ({', '.join(abis) or 'none reported'}); "
                              f"profile '{profile.name}' expects {profile.abi}",
                 f"Use a benchmark_model built for {info.abi or 'the device'} and a profile with abi = \"{info.abi}\".")


def _cores_check(info: DeviceInfo, profile: DeviceProfile) -> Check:
    freq = info.cpu_max_freq_khz.get(profile.pin_core)
    detail = (f"pinning cpu{profile.pin_core} (mask {profile.affinity_mask}, max {freq / 1e6:.2f} GHz)" if freq
              else f"pinning cpu{profile.pin_core} (mask {profile.affinity_mask}; max frequency unreadable)")
    if info.clusters_detected:
        detail += "; clusters " + " | ".join(cpu_list(c) for c in info.clusters_detected) + " (fastest last)"
    if info.notes:
        return Check("big cores", WARN, detail + "; " + "; ".join(info.notes),
                     "Check clusters/big_cores/pin_core in the profile against the phone's cpufreq "
                     "(related_cpus, cpuinfo_max_freq): pin a core of the fastest cluster.")
    return Check("big cores", OK, detail)


def pinning_check(device: Device, profile: DeviceProfile) -> Check:
    """Can the adb shell pin the core? `taskset MASK true`, and the shell's cpuset to explain why not."""
    result = device.shell(f"cat /proc/self/cpuset; taskset {profile.affinity_mask} true",
                          timeout_s=BINARY_CHECK_TIMEOUT_S)
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    cpuset = lines[0] if lines and lines[0].startswith("/") else "?"
    failure = taskset_failure(result.output)
    if result.ok:
        return Check("pinning", OK, f"taskset {profile.affinity_mask} pins cpu{profile.pin_core} "
                                    f"(adb shell cpuset {cpuset})")
    return Check("pinning", FAIL,
                 f"taskset cannot pin cpu{profile.pin_core} from the adb shell (its cpuset is {cpuset}): "
                 f"{failure or _first_line(result.output)}", PINNING_FIX)


def binary_checks(device: Device, profile: DeviceProfile) -> list[Check]:
    """The benchmark binary exists, is executable and runs (its --help prints its flags)."""
    binary = profile.benchmark_binary
    fix = f"Install it: {setup_command(profile)} (without PATH it says where to get the official build)."
    listing = device.shell(f"ls -l {shlex.quote(binary)}", timeout_s=BINARY_CHECK_TIMEOUT_S)
    mode = listing.output.strip().split()[0] if listing.output.strip() else ""
    if listing.exit_code != 0 or not mode.startswith("-"):
        return [Check("benchmark binary", FAIL, f"{binary} is missing on the device", fix)]
    if "x" not in mode[1:10]:
        return [Check("benchmark binary", FAIL, f"{binary} is not executable ({mode})",
                      f"Run {setup_command(profile)} again (it sets the mode), or `adb shell chmod 755 {binary}`.")]
    present = Check("benchmark binary", OK, f"{binary} ({mode})")
    ran = device.shell(f"{shlex.quote(binary)} --help", timeout_s=BINARY_CHECK_TIMEOUT_S)
    text = ran.output
    if ran.timed_out:
        return [present, Check("binary runs", FAIL, f"`{binary} --help` did not finish in {BINARY_CHECK_TIMEOUT_S:.0f} s",
                               "Reboot the phone or reinstall the binary: " + setup_command(profile))]
    if re.search(r"exec format error|not executable: (32|64)-bit|syntax error", text, re.IGNORECASE):
        return [present, Check("binary runs", FAIL, f"{binary} is built for another CPU ({_first_line(text)})",
                               f"Get the build for {profile.abi} (android_aarch64_benchmark_model for arm64-v8a) "
                               f"and run {setup_command(profile)}.")]
    if "CANNOT LINK EXECUTABLE" in text:
        return [present, Check("binary runs", FAIL, f"{binary} cannot start: {_first_line(text)}",
                               "Use the official statically linked prebuilt: " + setup_command(profile))]
    if ran.exit_code in (126, 127) or not re.search(r"graph", text, re.IGNORECASE):
        return [present, Check("binary runs", FAIL,
                               f"`{binary} --help` exited {ran.exit_code} without listing its flags: {_first_line(text)}",
                               fix)]
    return [present, Check("binary runs", OK, "`--help` lists the benchmark flags")]


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "(no output)")
    return line[:160]


def _storage_check(info: DeviceInfo, profile: DeviceProfile) -> Check:
    if info.free_kb is None:
        return Check("free space", WARN, f"could not read free space near {profile.work_dir} (df)",
                     "Check with `adb shell df -k /data/local/tmp`.")
    free_mb = info.free_kb / 1024
    if free_mb < MIN_FREE_MB:
        return Check("free space", FAIL, f"only {free_mb:.0f} MB free near {profile.work_dir} (need {MIN_FREE_MB} MB)",
                     f"Free space on the phone (delete files under {profile.work_dir} or other apps' data).")
    return Check("free space", OK, f"{free_mb / 1024:.1f} GB free near {profile.work_dir}")


def _governor_check(info: DeviceInfo, profile: DeviceProfile) -> Check:
    governor = info.governors.get(profile.pin_core)
    if governor is None:
        return Check("governor", WARN, f"cpu{profile.pin_core} governor unreadable",
                     "Check the phone's cpufreq if numbers look noisy (frequencies are still recorded per trial).")
    if governor == "powersave":
        return Check("governor", WARN, f"cpu{profile.pin_core} governor is powersave: the core runs slow",
                     "Turn off battery saver, or on a rooted phone set the governor to performance.")
    note = "" if governor == "performance" else " (frequency scales with load; each trial records it)"
    return Check("governor", OK, f"cpu{profile.pin_core} {governor}{note}")


def _temperature_check(info: DeviceInfo) -> Check:
    temp = info.cpu_temperature_c
    source = info.thermal_source
    where = f" (source: {source.describe()})" if source is not None else ""
    if info.emulator:  # mnv3bench's emulator invents its temperatures (device/probe.py)
        where += " (emulated: invented by mnv3bench's emulator, not measured)"
    if temp is None:
        why = info.temperature.note if info.temperature is not None and info.temperature.note else \
            "no CPU thermal zone readable"
        return Check("temperature", WARN, f"CPU temperature unknown: {why}{where}",
                     "Use --cooldown between trials instead of --thermal-gate, which cannot work here "
                     "(or fix the profile's [thermal] rules).")
    if temp >= HOT_C:
        return Check("temperature", WARN, f"CPU at {temp:.1f} C (hot: numbers will be throttled){where}",
                     "Let the phone cool, or run with --thermal-gate (waits until it is cool).")
    return Check("temperature", OK, f"CPU at {temp:.1f} C{where}")


def _battery_check(info: DeviceInfo) -> Check:
    battery = info.battery
    if not battery:
        return Check("battery", WARN, "`dumpsys battery` gave nothing readable", "")
    level = battery.get("level")
    temp = battery.get("temperature_c")
    detail = f"{level}%" + (f", {temp:.1f} C" if isinstance(temp, float) else "") + \
        (" (emulated)" if info.emulator else "")
    if battery.get("charging"):
        return Check("battery", WARN, detail + ", charging (charging heats the phone)",
                     "Charge first and measure on a full battery (or unplug), for steady numbers.")
    if isinstance(level, int) and level < LOW_BATTERY and not battery.get("powered"):
        return Check("battery", WARN, detail + ", low and not powered (battery saver may slow the cpus)",
                     "Charge the phone before a long sweep.")
    return Check("battery", OK, detail + (", powered" if battery.get("powered") else ""))
