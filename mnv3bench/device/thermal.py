"""The CPU temperature of a phone: which zones, in which units, and from where.

Phones disagree on all three (see devices/*.toml for the facts and their sources):
- zone names: `tsens_tz_sensorN` (Pixel 1/2), `cpu0-gold-usr` (Pixel 3), `cpu-1-0-usr`
  (Pixel 4/5), `BIG`/`MID`/`LITTLE` (Tensor);
- units: millidegrees on most, tenths of a degree on Pixel 1/2's tsens zones;
- zones that are not temperatures at all: Tensor's battery current-limit zones
  (`ocp_cpu1`, `soft_ocp_cpu2`: mA) read 7-12 "degrees" to anyone who assumes they are.
- On user builds the shell user may not read /sys/class/thermal (SELinux: EACCES);
  `dumpsys thermalservice` then gives the HAL's temperatures in degrees.

So the zones are chosen once, at probe time, by the profile's rules (`choose_source`), and
each reading afterwards is one shell call (`read_temperature`). A value that is not a
plausible CPU temperature is unknown (None, with the reason), never a number.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

# units of a zone's temp file -> degrees C per count; "auto" guesses (millidegrees when >= 1000)
UNITS: dict[str, float | None] = {"millidegrees": 0.001, "decidegrees": 0.1, "degrees": 1.0, "auto": None}
PLAUSIBLE_C = (0.0, 125.0)  # a CPU outside this range is a misread, not a temperature
THERMAL_ROOT = "/sys/class/thermal"
DUMPSYS = "dumpsys thermalservice"
HAL_TYPE_CPU = 0  # android.os.Temperature.TYPE_CPU

# Without profile rules: zone types that usually measure the CPU, less the battery
# current-limit (BCL) zones and the battery's state of charge, which are not temperatures.
_GENERIC_CPU = re.compile(r"cpu|tsens|apc|cluster|soc_thermal|x86_pkg|mtktscpu", re.IGNORECASE)
_GENERIC_EXCLUDE = re.compile(r"ocp|bcl|vdroop|batoilo|smpl|ibat|vbat|^soc$|battery_cycle", re.IGNORECASE)
_DENIED = re.compile(r"permission denied", re.IGNORECASE)
_HAL_TEMPERATURE = re.compile(r"Temperature\{mValue=(-?[\d.]+(?:[eE]-?\d+)?), mType=(-?\d+), mName=([^,}]*)")


@dataclass(frozen=True)
class ZoneFact:
    """One thermal zone of a phone as the emulator plays it: its type, units and idle value."""

    OTHER_UNITS: ClassVar[tuple[str, ...]] = ("milliamps", "millivolts", "percent", "count")
    type: str
    units: str  # a key of UNITS, or one of OTHER_UNITS (not a temperature)
    value: int  # what its temp file holds, in its units
    hal_type: int = -1  # android.os.Temperature type in `dumpsys thermalservice` (-1: not listed)

    @property
    def celsius(self) -> float | None:
        scale = UNITS.get(self.units)
        return None if scale is None else self.value * scale


@dataclass(frozen=True)
class ThermalRules:
    """How a profile finds its CPU temperature; empty cpu_zones: a generic guess."""

    cpu_zones: tuple[str, ...] = ()  # regular expressions, each matching a whole zone type
    exclude: tuple[str, ...] = ()
    units: str = "auto"
    zones: tuple[ZoneFact, ...] = ()  # the phone's zones, for the emulator

    def is_cpu(self, zone_type: str) -> bool:
        if any(re.fullmatch(p, zone_type) for p in self.exclude):
            return False
        if self.cpu_zones:
            return any(re.fullmatch(p, zone_type) for p in self.cpu_zones)
        return bool(_GENERIC_CPU.search(zone_type)) and not _GENERIC_EXCLUDE.search(zone_type)

    def to_celsius(self, raw: int) -> float:
        scale = UNITS.get(self.units)
        if scale is None:
            return raw / 1000.0 if abs(raw) >= 1000 else float(raw)
        return raw * scale


@dataclass(frozen=True)
class ThermalSource:
    """Where readings come from, chosen once per session."""

    kind: str  # "sysfs" | "dumpsys" | "none"
    reason: str  # why this source, for doctor
    zones: tuple[tuple[str, str], ...] = ()  # sysfs: (temp file path, zone type)
    rules: ThermalRules = field(default_factory=ThermalRules)

    def describe(self) -> str:
        if self.kind == "sysfs":
            names = ", ".join(t for _p, t in self.zones)
            return f"sysfs zones {names} ({self.rules.units})"
        if self.kind == "dumpsys":
            return f"`{DUMPSYS}` (HAL CPU temperatures) because {self.reason}"
        return f"none: {self.reason}"


@dataclass(frozen=True)
class TempReading:
    """A CPU temperature, or None with the reason it is unknown."""

    celsius: float | None
    note: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"celsius": self.celsius, "note": self.note}


Shell = Callable[[str], str]  # runs one command on the device, returns its output


def plausible(celsius: float) -> bool:
    low, high = PLAUSIBLE_C
    return low < celsius <= high


def _best(values: list[tuple[str, float]], source: str) -> TempReading:
    """The hottest plausible value; None with the reason when there is none."""
    good = [(name, c) for name, c in values if plausible(c)]
    if good:
        return TempReading(max(c for _n, c in good))
    if not values:
        return TempReading(None, f"{source} gave no CPU temperature")
    shown = ", ".join(f"{name}={c:g} C" for name, c in values[:4])
    return TempReading(None, f"{source} read {shown}: not a plausible CPU temperature "
                             f"({PLAUSIBLE_C[0]:g}..{PLAUSIBLE_C[1]:g} C)")


def parse_thermalservice(text: str) -> list[tuple[str, int, float]]:
    """`dumpsys thermalservice` -> (name, type, value) of "Current temperatures from HAL"."""
    section = text.split("Current temperatures from HAL:", 1)
    body = section[1] if len(section) == 2 else ""
    # The section ends where the next heading (a line without leading whitespace) starts.
    lines = []
    for line in body.splitlines()[1:] if body.startswith("\n") else body.splitlines():
        if line and not line[0].isspace():
            break
        lines.append(line)
    found = []
    for match in _HAL_TEMPERATURE.finditer("\n".join(lines)):
        found.append((match.group(3).strip(), int(match.group(2)), float(match.group(1))))
    return found


def read_dumpsys(shell: Shell) -> TempReading:
    text = shell(DUMPSYS)
    cpus = [(name, value) for name, kind, value in parse_thermalservice(text) if kind == HAL_TYPE_CPU]
    return _best(cpus, "dumpsys thermalservice")


def choose_source(shell: Shell, rules: ThermalRules, zone_dirs: list[str],
                  types: dict[str, str], temps: dict[str, str]) -> ThermalSource:
    """Pick the CPU zones from one probe-time read of every zone's type and temp.

    zone_dirs: thermal_zoneN names; types/temps: each zone's file content (errors included).
    """
    denied = any(_DENIED.search(text) for text in (*types.values(), *temps.values()))
    chosen = tuple((f"{THERMAL_ROOT}/{zone}/temp", types.get(zone, "").strip()) for zone in zone_dirs
                   if rules.is_cpu(types.get(zone, "").strip()) and not _DENIED.search(temps.get(zone, "")))
    if chosen and not denied:
        return ThermalSource("sysfs", "the CPU zones are readable", chosen, rules)
    reason = ("reading /sys/class/thermal is denied (SELinux: EACCES)" if denied
              else "no thermal zone matches the profile's CPU zones" if zone_dirs
              else "the device lists no thermal zones")
    if parse_thermalservice(shell(DUMPSYS)):
        return ThermalSource("dumpsys", reason, (), rules)
    return ThermalSource("none", reason + f"; `{DUMPSYS}` lists no HAL temperatures", (), rules)


def read_temperature(shell: Shell, source: ThermalSource) -> TempReading:
    """One CPU temperature now: one shell call (a `cat` of the chosen zones, or dumpsys)."""
    if source.kind == "dumpsys":
        return read_dumpsys(shell)
    if source.kind != "sysfs":
        return TempReading(None, source.reason)
    text = shell("cat " + " ".join(shlex.quote(path) for path, _t in source.zones))
    if _DENIED.search(text):  # access changed since the probe (e.g. a reboot into another build)
        reading = read_dumpsys(shell)
        return reading if reading.celsius is not None else TempReading(None, "reading the CPU zones is denied")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    values = []
    for (_path, name), line in zip(source.zones, lines, strict=False):
        if re.fullmatch(r"-?\d+", line):
            values.append((name, source.rules.to_celsius(int(line))))
    return _best(values, "the CPU zones")
