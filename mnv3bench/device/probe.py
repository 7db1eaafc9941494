"""What a connected device is and what state it is in: props, cpus, temperatures, battery.

Everything comes from plain shell reads (getprop, sysfs, dumpsys, df) batched into few
commands, so probing a phone costs a few round trips. Clusters are detected on the phone
(cpufreq/related_cpus, else cpuinfo_max_freq and cpu_capacity) rather than trusted from
the profile, and the CPU temperature's source is chosen here once (device/thermal.py).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from mnv3bench.device.profiles import DeviceProfile, cpu_list
from mnv3bench.device.protocol import Device
from mnv3bench.device.thermal import (
    TempReading,
    ThermalRules,
    ThermalSource,
    choose_source,
    read_temperature,
)
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
    "emulator": "ro.mnv3bench.emulator",
}
# mnv3bench's emulator sets it on every phone it plays, the Pixel twins too; a real phone has
# no such property.
EMULATOR_PROP = PROPS["emulator"]


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
    # Detected clusters, slowest first (related_cpus, else equal max frequency and capacity).
    clusters_detected: tuple[tuple[int, ...], ...] = ()
    thermal_source: ThermalSource | None = None  # where CPU temperatures come from
    temperature: TempReading | None = None  # the CPU temperature at probe time
    address: str = ""  # the transport address (HOST:PORT or a USB serial); `serial` is ro.serialno
    # mnv3bench's emulator (EMULATOR_PROP): the benchmark computes on the host, the sensors are invented.
    emulator: bool = False

    @property
    def cpu_temperature_c(self) -> float | None:
        if self.temperature is not None:
            return self.temperature.celsius
        return _cpu_temp(self.thermal_zones)

    @property
    def fastest_cluster(self) -> tuple[int, ...]:
        return self.clusters_detected[-1] if self.clusters_detected else ()

    def cluster_of(self, cpu: int) -> tuple[int, ...] | None:
        return next((c for c in self.clusters_detected if cpu in c), None)

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
            "clusters_detected": [cpu_list(c) for c in self.clusters_detected],
            "thermal_source": self.thermal_source.describe() if self.thermal_source else None,
            "temperature": self.temperature.to_json() if self.temperature else None,
            "address": self.address, "emulator": self.emulator,
        }


# ----------------------------------------------------------------------------- batched reads

def _run(device: Device, command: str, what: str) -> str:
    result = device.shell(command, timeout_s=PROBE_TIMEOUT_S)
    if result.timed_out:
        raise MnvError(f"the device did not answer while reading {what} ({PROBE_TIMEOUT_S:.0f} s)",
                       "Check that the phone is awake and responsive; reconnect it and run `mnv3bench doctor`.")
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


def _cpu_words(text: str) -> tuple[int, ...]:
    """related_cpus: "4 5 6 7" (space separated), or a cpulist "4-7" on some kernels."""
    words = text.split()
    if words and all(w.isdigit() for w in words):
        return tuple(int(w) for w in words)
    return tuple(parse_cpu_range(text)) if text.strip() else ()


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
        base = f"{CPU_ROOT}/cpu{cpu}"
        reads[f"max{cpu}"] = f"cat {base}/cpufreq/cpuinfo_max_freq"
        reads[f"gov{cpu}"] = f"cat {base}/cpufreq/scaling_governor"
        reads[f"rel{cpu}"] = f"cat {base}/cpufreq/related_cpus"
        reads[f"cap{cpu}"] = f"cat {base}/cpu_capacity"
    for zone in zones:
        reads[f"{zone}.type"] = f"cat {THERMAL_ROOT}/{zone}/type 2>&1"
        reads[f"{zone}.temp"] = f"cat {THERMAL_ROOT}/{zone}/temp 2>&1"
    values = read_sections(device, reads, "cpu frequencies and temperatures") if reads else {}

    max_freq = {cpu: _int_or_none(values.get(f"max{cpu}", "")) for cpu in cpus}
    governors = {cpu: _word_or_none(values.get(f"gov{cpu}", "")) for cpu in cpus}
    related = {cpu: _cpu_words(values.get(f"rel{cpu}", "")) for cpu in cpus}
    capacity = {cpu: _int_or_none(values.get(f"cap{cpu}", "")) for cpu in cpus}
    thermal: dict[str, float] = {}
    types = {zone: values.get(f"{zone}.type", "") for zone in zones}
    temps = {zone: values.get(f"{zone}.temp", "") for zone in zones}
    rules = profile.thermal
    for zone in zones:
        kind = _word_or_none(types[zone]) or zone
        raw = _int_or_none(temps[zone])
        if raw is not None and kind not in thermal:
            thermal[kind] = rules.to_celsius(raw) if rules.is_cpu(kind) else millidegrees_to_c(raw)
    source = choose_source(lambda command: _run(device, command, "temperatures"), rules, zones, types, temps)

    info = DeviceInfo(
        model=props["model"], device=props["device"], manufacturer=props["manufacturer"],
        fingerprint=props["fingerprint"], abi=props["abi"],
        abilist=tuple(a for a in props["abilist"].split(",") if a) or ((props["abi"],) if props["abi"] else ()),
        serial=props["serial"] or device.serial, release=props["release"], sdk=props["sdk"],
        cpu_count=len(cpus), cpu_max_freq_khz=max_freq, governors=governors, thermal_zones=thermal,
        battery=parse_battery(layout["battery"]), free_kb=parse_df_free_kb(layout["df"]),
        big_cores_detected=detect_big_cores(max_freq),
        clusters_detected=detect_clusters(max_freq, related, capacity),
        thermal_source=source, address=device.serial, emulator=props["emulator"] == "1",
    )
    info.temperature = read_temperature(lambda command: _run(device, command, "temperatures"), source)
    info.notes.extend(cluster_notes(info, profile))
    return info


def detect_clusters(max_freq: dict[int, int | None], related: dict[int, tuple[int, ...]] | None = None,
                    capacity: dict[int, int | None] | None = None) -> tuple[tuple[int, ...], ...]:
    """The cpu clusters, slowest first: cpufreq/related_cpus when every cpu has it, else cpus
    grouped by equal cpuinfo_max_freq and cpu_capacity. Empty when nothing is readable."""
    related, capacity = related or {}, capacity or {}
    groups: dict[object, set[int]] = {}
    if max_freq and all(related.get(cpu) for cpu in max_freq):
        for cpu in max_freq:
            groups.setdefault(related[cpu], set()).add(cpu)
    else:
        known = {cpu: f for cpu, f in max_freq.items() if f}
        if not known:
            return ()
        for cpu, freq in known.items():
            groups.setdefault((freq, capacity.get(cpu)), set()).add(cpu)

    def speed(cpus: set[int]) -> tuple[int, int]:
        return (max((max_freq.get(c) or 0) for c in cpus), max((capacity.get(c) or 0) for c in cpus))

    return tuple(tuple(sorted(g)) for g in sorted(groups.values(), key=lambda g: (speed(g), min(g))))


def cluster_notes(info: DeviceInfo, profile: DeviceProfile) -> list[str]:
    """Where the phone and the profile disagree about clusters and the pinned core."""
    fastest = info.fastest_cluster
    if not fastest:
        return []
    where = f"(fix clusters/big_cores/pin_core in {profile.path or profile.name + '.toml'} if this phone is typical)"
    notes = []
    if set(fastest) != set(profile.big_cores):
        notes.append(f"the fastest cluster by cpuinfo_max_freq is {_cpus(fastest)}, the profile says "
                     f"{_cpus(profile.big_cores)}" + ("" if profile.pin_core in fastest else
                                                      f"; pin_core {profile.pin_core} is NOT one of them")
                     + f" {where}")
    detected = {frozenset(c) for c in info.clusters_detected}
    profiled = {frozenset(c.cpus) for c in profile.clusters}
    if len(profile.clusters) > 1 and detected != profiled:
        notes.append(f"the phone's clusters are {' | '.join(cpu_list(c) for c in info.clusters_detected)}, "
                     f"the profile's {' | '.join(c.label for c in profile.clusters)} {where}")
    return notes


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
            raise UsageError(message, "Pick the matching --device profile (see `mnv3bench devices`), "
                             "or pass --force to measure anyway under this profile's name.")
        warnings.append(message + " (--force: measuring anyway)")
    abis = {info.abi, *info.abilist} - {""}
    if profile.abi not in abis:
        raise UsageError(f"the device's ABI is {info.abi or '?'} but profile '{profile.name}' expects {profile.abi}",
                         f"Use a benchmark_model built for {info.abi or 'the device'} and a profile with "
                         f"abi = \"{info.abi}\".")
    if profile.pin_core >= info.cpu_count:
        raise UsageError(f"profile '{profile.name}' pins cpu{profile.pin_core} but the device has {info.cpu_count} cpus",
                         "Set pin_core and big_cores in the profile to cpus the device has.")
    warnings.extend(info.notes)
    return warnings


# ----------------------------------------------------------------------------- live readings

def cpu_temperature(device: Device, source: ThermalSource) -> TempReading:
    """The CPU temperature now from the source chosen at probe time: one shell call."""
    return read_temperature(lambda command: _run(device, command, "temperatures"), source)


def cpu_temperature_c(device: Device, rules: ThermalRules | None = None) -> float | None:
    """The hottest CPU zone now, in C (None when unknown), choosing the zones afresh."""
    shell = lambda command: _run(device, command, "temperatures")  # noqa: E731
    zones = [name for name in shell(f"ls {THERMAL_ROOT}").split() if name.startswith("thermal_zone")]
    reads: dict[str, str] = {}
    for zone in zones:
        reads[f"{zone}.type"] = f"cat {THERMAL_ROOT}/{zone}/type 2>&1"
        reads[f"{zone}.temp"] = f"cat {THERMAL_ROOT}/{zone}/temp 2>&1"
    values = read_sections(device, reads, "temperatures") if reads else {}
    source = choose_source(shell, rules or ThermalRules(), zones,
                           {z: values.get(f"{z}.type", "") for z in zones},
                           {z: values.get(f"{z}.temp", "") for z in zones})
    return read_temperature(shell, source).celsius


def cpu_freq_khz(device: Device, cpu: int) -> int | None:
    """scaling_cur_freq of one cpu now."""
    return _read_cpufreq(device, cpu, "scaling_cur_freq")


def cpu_freq_cap_khz(device: Device, cpu: int) -> int | None:
    """scaling_max_freq of one cpu now: below cpuinfo_max_freq while the phone throttles it."""
    return _read_cpufreq(device, cpu, "scaling_max_freq")


def _read_cpufreq(device: Device, cpu: int, name: str) -> int | None:
    result = device.shell(f"cat {CPU_ROOT}/cpu{int(cpu)}/cpufreq/{name}", timeout_s=PROBE_TIMEOUT_S)
    return None if result.timed_out or result.exit_code not in (0, None) else _int_or_none(result.output)
