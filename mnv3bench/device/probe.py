"""What a connected device is and what state it is in: props, cpus, temperatures, battery.

Everything comes from plain shell reads (getprop, sysfs, dumpsys, df) batched into few
commands, so probing a phone costs a few round trips. Big cores are detected from
cpuinfo_max_freq rather than trusted from the profile.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from mnv3bench.device.profiles import DeviceProfile
from mnv3bench.device.protocol import Device
from mnv3bench.errors import MnvError, UsageError

CPU_ROOT = "/sys/devices/system/cpu"
THERMAL_ROOT = "/sys/class/thermal"
PROBE_TIMEOUT_S = 30.0
# Thermal zone types that measure the CPU (Qualcomm: cpu-1-0-usr, cpu0-silver-usr,
# tsens_tz_sensorN on older Snapdragons; apc for the cluster; x86_pkg_temp on hosts).
_CPU_ZONE = re.compile(r"cpu|tsens|apc|cluster|soc_thermal|x86_pkg|mtktscpu", re.IGNORECASE)

PROPS = {
    "model": "ro.product.model",
    "device": "ro.product.device",
    "manufacturer": "ro.product.manufacturer",
    "fingerprint": "ro.build.fingerprint",
    "abi": "ro.product.cpu.abi",
    "abilist": "ro.product.cpu.abilist",
    "serial": "ro.serialno",
    "release": "ro.build.version.release",
    "sdk": "ro.build.version.sdk",
}


@dataclass
class DeviceInfo:
    model: str
    device: str
    manufacturer: str
    fingerprint: str
    abi: str
    abilist: tuple[str, ...]
    serial: str
    release: str
    sdk: str
    cpu_count: int
    cpu_max_freq_khz: dict[int, int | None]
    governors: dict[int, str | None]
    thermal_zones: dict[str, float]  # zone type -> degrees C (first zone of each type)
    battery: dict[str, object]  # level, temperature_c, powered, charging, status
    free_kb: int | None  # free space where the work dir lives
    big_cores_detected: tuple[int, ...]
    notes: list[str] = field(default_factory=list)  # things the user should know (e.g. big cores differ)

    @property
    def cpu_temperature_c(self) -> float | None:
        return _cpu_temp(self.thermal_zones)

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model, "device": self.device, "manufacturer": self.manufacturer,
            "fingerprint": self.fingerprint, "abi": self.abi, "abilist": list(self.abilist),
            "serial": self.serial, "release": self.release, "sdk": self.sdk, "cpu_count": self.cpu_count,
            "cpu_max_freq_khz": {str(k): v for k, v in self.cpu_max_freq_khz.items()},
            "governors": {str(k): v for k, v in self.governors.items()},
            "thermal_zones": self.thermal_zones, "cpu_temperature_c": self.cpu_temperature_c,
            "battery": self.battery, "free_kb": self.free_kb,
            "big_cores_detected": list(self.big_cores_detected), "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------- batched reads

def _run(device: Device, command: str, what: str) -> str:
    result = device.shell(command, timeout_s=PROBE_TIMEOUT_S)
    if result.timed_out:
        raise MnvError(f"the device did not answer while reading {what} ({PROBE_TIMEOUT_S:.0f} s)",
                       "Fix: check that the phone is awake and responsive; reconnect it and run `mnv3bench doctor`.")
    return result.output


def read_sections(device: Device, reads: dict[str, str], what: str) -> dict[str, str]:
    """Run several commands in one shell call; each one's output keyed by its name."""
    script = "; ".join(f"echo @@{key}; {command}" for key, command in reads.items())
    text = _run(device, script, what)
    sections: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("@@") and line[2:].strip() in reads:
            current = line[2:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return {key: sections.get(key, "").strip() for key in reads}


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def _word_or_none(text: str) -> str | None:
    text = text.strip()
    return text if re.fullmatch(r"[\w.-]+", text) else None


def parse_cpu_range(text: str) -> list[int]:
    """"0-3,6" -> [0, 1, 2, 3, 6] (the format of /sys/devices/system/cpu/possible)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not match:
            return []
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        cpus.extend(range(lo, hi + 1))
    return cpus


def millidegrees_to_c(raw: int) -> float:
    """Thermal zones report millidegrees on most phones, degrees on a few."""
    return raw / 1000.0 if abs(raw) >= 1000 else float(raw)


def _cpu_temp(zones: dict[str, float]) -> float | None:
    values = [t for name, t in zones.items() if _CPU_ZONE.search(name) and -30.0 < t < 150.0]
    return max(values) if values else None


def parse_battery(text: str) -> dict[str, object]:
    """`dumpsys battery` -> level (%), temperature_c, powered (any source), charging."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
    battery: dict[str, object] = {}
    if _int_or_none(fields.get("level", "")) is not None:
        battery["level"] = int(fields["level"])
    if _int_or_none(fields.get("temperature", "")) is not None:
        battery["temperature_c"] = int(fields["temperature"]) / 10.0  # tenths of a degree
    sources = [k for k in ("ac powered", "usb powered", "wireless powered", "dock powered") if k in fields]
    if sources:
        battery["powered"] = any(fields[k] == "true" for k in sources)
    status = _int_or_none(fields.get("status", ""))
    if status is not None:
        battery["status"] = status
        battery["charging"] = status == 2  # BatteryManager.BATTERY_STATUS_CHARGING (5 = full)
    return battery


def parse_df_free_kb(text: str) -> int | None:
    """Free KiB from `df -k PATH` (toybox and coreutils layouts)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if line.split()[:1] == ["Filesystem"]), None)
    if header_at is None:
        return None
    # "Mounted on" is two header words but one column.
    columns = lines[header_at].replace("Mounted on", "Mounted_on").split()
    column = next((i for i, name in enumerate(columns) if name.lower() in ("available", "avail", "free")), None)
    # A long filesystem name may wrap the row onto two lines: read the tokens as one row.
    row = " ".join(lines[header_at + 1:]).split()
    if column is None or len(row) < len(columns):
        return None
    return _int_or_none(row[column])


# ----------------------------------------------------------------------------- probe

def probe(device: Device, profile: DeviceProfile) -> DeviceInfo:
    """Read what the device is and its state (a handful of shell round trips)."""
    props = read_sections(device, {key: f"getprop {prop}" for key, prop in PROPS.items()}, "device properties")
    layout = read_sections(device, {
        "possible": f"cat {CPU_ROOT}/possible",
        "zones": f"ls {THERMAL_ROOT}",
        "battery": "dumpsys battery",
        "df": f"df -k {shlex.quote(_existing_parent(profile.work_dir))}",
    }, "cpus, thermal zones and battery")
    cpus = parse_cpu_range(layout["possible"]) or list(range(profile.cpu_count))
    zones = sorted((name for name in layout["zones"].split() if name.startswith("thermal_zone")),
                   key=lambda n: int(re.sub(r"\D", "", n) or 0))
    reads: dict[str, str] = {}
    for cpu in cpus:
        reads[f"max{cpu}"] = f"cat {CPU_ROOT}/cpu{cpu}/cpufreq/cpuinfo_max_freq"
        reads[f"gov{cpu}"] = f"cat {CPU_ROOT}/cpu{cpu}/cpufreq/scaling_governor"
    for zone in zones:
        reads[f"{zone}.type"] = f"cat {THERMAL_ROOT}/{zone}/type"
        reads[f"{zone}.temp"] = f"cat {THERMAL_ROOT}/{zone}/temp"
    values = read_sections(device, reads, "cpu frequencies and temperatures") if reads else {}

    max_freq = {cpu: _int_or_none(values.get(f"max{cpu}", "")) for cpu in cpus}
    governors = {cpu: _word_or_none(values.get(f"gov{cpu}", "")) for cpu in cpus}
    thermal: dict[str, float] = {}
    for zone in zones:
        kind = _word_or_none(values.get(f"{zone}.type", "")) or zone
        raw = _int_or_none(values.get(f"{zone}.temp", ""))
        if raw is not None and kind not in thermal:
            thermal[kind] = millidegrees_to_c(raw)

    info = DeviceInfo(
        model=props["model"], device=props["device"], manufacturer=props["manufacturer"],
        fingerprint=props["fingerprint"], abi=props["abi"],
        abilist=tuple(a for a in props["abilist"].split(",") if a) or ((props["abi"],) if props["abi"] else ()),
        serial=props["serial"] or device.serial, release=props["release"], sdk=props["sdk"],
        cpu_count=len(cpus), cpu_max_freq_khz=max_freq, governors=governors, thermal_zones=thermal,
        battery=parse_battery(layout["battery"]), free_kb=parse_df_free_kb(layout["df"]),
        big_cores_detected=detect_big_cores(max_freq),
    )
    if info.big_cores_detected and set(info.big_cores_detected) != set(profile.big_cores):
        info.notes.append(
            f"big cores by cpuinfo_max_freq are {_cpus(info.big_cores_detected)}, the profile says "
            f"{_cpus(profile.big_cores)}" + ("" if profile.pin_core in info.big_cores_detected else
                                            f"; pin_core {profile.pin_core} is NOT one of them")
            + f" (fix big_cores/pin_core in {profile.path or profile.name + '.toml'} if this phone is typical)")
    return info


def _existing_parent(path: str) -> str:
    """df needs a path that exists; the work dir may not yet, /data/local/tmp does."""
    parent = path.rsplit("/", 1)[0]
    return parent or "/"


def _cpus(cores: tuple[int, ...]) -> str:
    return ",".join(f"cpu{c}" for c in cores)


def detect_big_cores(max_freq: dict[int, int | None]) -> tuple[int, ...]:
    """The cpus faster than the slowest (little) cluster, by cpuinfo_max_freq.

    On a tri-cluster SoC (Pixel 4: little cpu0-3, big cpu4-6, prime cpu7) that is the big
    cluster plus the prime core, matching how profiles list big_cores. When every cpu has
    the same maximum there are no little cores and all count as big.
    """
    known = {cpu: f for cpu, f in max_freq.items() if f}
    if not known:
        return ()
    slowest = min(known.values())
    big = [cpu for cpu, f in known.items() if f > slowest]
    return tuple(sorted(big or known))


def check_profile(info: DeviceInfo, profile: DeviceProfile, force: bool = False) -> list[str]:
    """Raise when the device is not the profiled phone (unless force); return warnings."""
    warnings: list[str] = []
    known = {c.lower() for c in profile.codenames}
    models = {m.lower() for m in profile.models}
    if info.device.lower() not in known and info.model.lower() not in models:
        message = (f"the connected device is a {info.model or '?'} ({info.device or '?'}), "
                   f"not a {profile.description} ({', '.join(profile.codenames)})")
        if not force:
            raise UsageError(message, "Fix: pick the matching --device profile (see `mnv3bench devices`), "
                             "or pass --force to measure anyway under this profile's name.")
        warnings.append(message + " (--force: measuring anyway)")
    abis = {info.abi, *info.abilist} - {""}
    if profile.abi not in abis:
        raise UsageError(f"the device's ABI is {info.abi or '?'} but profile '{profile.name}' expects {profile.abi}",
                         f"Fix: use a benchmark_model built for {info.abi or 'the device'} and a profile with "
                         f"abi = \"{info.abi}\".")
    if profile.pin_core >= info.cpu_count:
        raise UsageError(f"profile '{profile.name}' pins cpu{profile.pin_core} but the device has {info.cpu_count} cpus",
                         "Fix: set pin_core and big_cores in the profile to cpus the device has.")
    warnings.extend(info.notes)
    return warnings


# ----------------------------------------------------------------------------- live readings

def cpu_temperature_c(device: Device) -> float | None:
    """The hottest CPU thermal zone now, in C (None when the device exposes none)."""
    zones_out = _run(device, f"ls {THERMAL_ROOT}", "thermal zones")
    zones = [name for name in zones_out.split() if name.startswith("thermal_zone")]
    if not zones:
        return None
    reads: dict[str, str] = {}
    for zone in zones:
        reads[f"{zone}.type"] = f"cat {THERMAL_ROOT}/{zone}/type"
        reads[f"{zone}.temp"] = f"cat {THERMAL_ROOT}/{zone}/temp"
    values = read_sections(device, reads, "temperatures")
    temps: dict[str, float] = {}
    for zone in zones:
        raw = _int_or_none(values[f"{zone}.temp"])
        if raw is not None:
            temps[f"{values[f'{zone}.type']}#{zone}"] = millidegrees_to_c(raw)
    return _cpu_temp(temps)


def cpu_freq_khz(device: Device, cpu: int) -> int | None:
    """scaling_cur_freq of one cpu now."""
    return _read_cpufreq(device, cpu, "scaling_cur_freq")


def cpu_freq_cap_khz(device: Device, cpu: int) -> int | None:
    """scaling_max_freq of one cpu now: below cpuinfo_max_freq while the phone throttles it."""
    return _read_cpufreq(device, cpu, "scaling_max_freq")


def _read_cpufreq(device: Device, cpu: int, name: str) -> int | None:
    result = device.shell(f"cat {CPU_ROOT}/cpu{int(cpu)}/cpufreq/{name}", timeout_s=PROBE_TIMEOUT_S)
    return None if result.timed_out or result.exit_code not in (0, None) else _int_or_none(result.output)
