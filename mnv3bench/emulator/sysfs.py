"""The emulated phone's /sys and /proc: files generated from the device profile.

Only what the runner and the device probe read: cpufreq per cpu (with related_cpus and
cpu_capacity, from the profile's clusters), the online cpus, thermal zones, /proc/cpuinfo,
/proc/meminfo and /proc/self/cpuset, and `dumpsys thermalservice`'s text.

A profile that lists its phone's zones (`[[thermal.zones]]`: real names, units, HAL types,
the battery current-limit zones too) gets exactly those; the host emulator's profile gets
one CPU zone and one battery zone in millidegrees. Every fact comes from the profile.

Faults: "hot" starts the CPU zones HOT_START_C warm and cools them linearly to normal over
$MNV3BENCH_EMU_COOL_S seconds, throttling the big cores while above THROTTLE_C; "throttle"
caps the fastest cluster's scaling_max_freq for good; "thermal-denied" makes the zones'
files unreadable, as SELinux does for the shell user on user builds; "cpuset-little" puts
the shell in a cpuset without the fastest cluster (the phone's foreground cpuset).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from mnv3bench.device.thermal import HAL_TYPE_CPU, UNITS, ZoneFact
from mnv3bench.emulator.settings import mem_free_kb, setting

HOT_START_C = 85.0
THROTTLE_C = 60.0
THROTTLED_FRACTION = 0.7
DEFAULT_COOL_S = 6.0

CPU_ZONE_TYPE = "cpu-1-0-usr"
BATTERY_ZONE_TYPE = "battery"
THERMAL_DIR = "/sys/class/thermal"


def cool_down_seconds() -> float:
    """How long the "hot" fault takes to cool (env MNV3BENCH_EMU_COOL_S, default 6 s)."""
    try:
        return max(0.0, float(os.environ.get("MNV3BENCH_EMU_COOL_S", DEFAULT_COOL_S)))
    except ValueError:
        return DEFAULT_COOL_S


class VirtualSysfs:
    """Read-only virtual files under /sys and /proc, their contents computed on every read.

    The tree itself (which files and folders exist) is built once, on first use: it has a
    few files per cpu, and rebuilding it at each read made every `cat` cost O(cpu_count)."""

    def __init__(self, profile: Any, faults: frozenset[str] = frozenset(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.profile = profile
        self.emu: dict[str, Any] = dict(getattr(profile, "emulator", {}) or {})
        self.hot = "hot" in faults
        self.throttle = "throttle" in faults
        self.thermal_denied = "thermal-denied" in faults
        self.cpuset_little = "cpuset-little" in faults
        self._clock = clock
        self._start = clock()
        self._cool_s = cool_down_seconds()
        self.clusters = tuple(profile.clusters)
        self.fastest = tuple(profile.fastest_cluster.cpus)
        self.zones = self._zone_facts()
        self._tree: tuple[dict[str, Callable[[], str]], dict[str, list[str]]] | None = None
        self._tree_lock = threading.Lock()

    def _zone_facts(self) -> tuple[ZoneFact, ...]:
        listed = tuple(self.profile.thermal.zones)
        if listed:
            return listed
        return (ZoneFact(CPU_ZONE_TYPE, "millidegrees", self.normal_cpu_temp_mc(), HAL_TYPE_CPU),
                ZoneFact(BATTERY_ZONE_TYPE, "millidegrees", int(setting(self.emu, "battery_temp_dc")) * 100, 2))

    def is_cpu_zone(self, zone: ZoneFact) -> bool:
        return zone.celsius is not None and self.profile.thermal.is_cpu(zone.type)

    def zone_value(self, zone: ZoneFact) -> int:
        """A zone's temp file now, in its units: CPU zones follow the "hot" fault."""
        if not self.is_cpu_zone(zone) or not self.hot:
            return zone.value
        scale = UNITS[zone.units] or 0.001
        extra_c = (self.cpu_temp_mc() - self.normal_cpu_temp_mc()) / 1000.0
        return round(zone.value + extra_c / scale)

    def shell_cpus(self) -> set[int]:
        """The cpus the adb shell's cpuset allows (all, unless "cpuset-little")."""
        every = set(range(int(self.profile.cpu_count)))
        if not self.cpuset_little:
            return every
        foreground = self.profile.twin.get("foreground_cpus")
        return set(foreground) if foreground else every - set(self.fastest)

    def thermalservice_report(self) -> str:
        """`dumpsys thermalservice` as ThermalManagerService.dump prints it (HAL values in C)."""
        lines = ["IsStatusOverride: false", "ThermalEventListeners:", "\tcallbacks: 1",
                 "ThermalStatusListeners:", "\tcallbacks: 1",
                 f"Thermal Status: {1 if self.cpu_temp_mc() > THROTTLE_C * 1000 else 0}",
                 "Cached temperatures:", "HAL Ready: true", "HAL connection:",
                 "\tThermalHAL 2.0 connected: yes", "Current temperatures from HAL:"]
        for zone in self.zones:
            if zone.hal_type < 0:
                continue
            scale = UNITS.get(zone.units)
            value = self.zone_value(zone) * scale if scale else float(zone.value)
            lines.append(f"\tTemperature{{mValue={value:.6f}, mType={zone.hal_type}, mName={zone.type}, mStatus=0}}")
        lines.append("Current cooling devices from HAL:")
        for index, _cluster in enumerate(self.clusters):
            lines.append(f"\tCoolingDevice{{mValue=0, mType=2, mName=thermal-cpufreq-{index}}}")
        return "\n".join(lines) + "\n"

    # -- dynamic values ------------------------------------------------------------------

    def normal_cpu_temp_mc(self) -> int:
        return int(setting(self.emu, "cpu_temp_mc"))

    def cpu_temp_mc(self) -> int:
        """CPU zone temperature in millidegrees Celsius, now."""
        normal = self.normal_cpu_temp_mc()
        if not self.hot:
            return normal
        hot = int(HOT_START_C * 1000)
        if self._cool_s <= 0:
            return normal
        progress = min(1.0, (self._clock() - self._start) / self._cool_s)
        return int(round(hot + (normal - hot) * progress))

    def cluster(self, cpu: int) -> Any:
        return self.profile.cluster_of(cpu)

    def max_freq_khz(self, cpu: int) -> int:
        cluster = self.cluster(cpu)
        return int(cluster.max_freq_khz) if cluster is not None and cluster.max_freq_khz else 2000000

    def capacity(self, cpu: int) -> int:
        """cpu_capacity: 1024 for the fastest core, the others in proportion to their clock."""
        top = max(self.max_freq_khz(c) for c in range(int(self.profile.cpu_count)))
        return max(1, round(1024 * self.max_freq_khz(cpu) / top))

    def freq_cap_khz(self, cpu: int) -> int:
        """scaling_max_freq: the thermal framework lowers it on hot big cores."""
        max_khz = self.max_freq_khz(cpu)
        hot = cpu in tuple(self.profile.big_cores) and self.cpu_temp_mc() > THROTTLE_C * 1000
        if hot or (self.throttle and cpu in self.fastest):
            return int(max_khz * THROTTLED_FRACTION)
        return max_khz

    def cur_freq_khz(self, cpu: int) -> int:
        return self.freq_cap_khz(cpu)

    # -- the tree ------------------------------------------------------------------------

    def _files(self) -> dict[str, Callable[[], str]]:
        n = int(self.profile.cpu_count)
        files: dict[str, Callable[[], str]] = {
            "/sys/devices/system/cpu/possible": lambda: f"0-{n - 1}\n",
            "/sys/devices/system/cpu/present": lambda: f"0-{n - 1}\n",
            "/sys/devices/system/cpu/online": lambda: f"0-{n - 1}\n",
            "/proc/cpuinfo": self._cpuinfo,
            "/proc/meminfo": self._meminfo,
            "/proc/self/cpuset": lambda: "/foreground\n" if self.cpuset_little else "/\n",
        }
        for index, zone in enumerate(self.zones):
            base = f"{THERMAL_DIR}/thermal_zone{index}"
            files[f"{base}/type"] = lambda z=zone: self._thermal_file(z.type)
            files[f"{base}/temp"] = lambda z=zone: self._thermal_file(str(self.zone_value(z)))
        governor = str(setting(self.emu, "governor"))
        for cpu in range(n):
            base = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
            files[f"{base}/cpuinfo_max_freq"] = lambda c=cpu: f"{self.max_freq_khz(c)}\n"
            files[f"{base}/scaling_max_freq"] = lambda c=cpu: f"{self.freq_cap_khz(c)}\n"
            files[f"{base}/scaling_cur_freq"] = lambda c=cpu: f"{self.cur_freq_khz(c)}\n"
            files[f"{base}/scaling_governor"] = lambda g=governor: g + "\n"
            cluster = self.cluster(cpu)
            related = ",".join(map(str, cluster.cpus)) if cluster is not None else str(cpu)
            files[f"{base}/related_cpus"] = lambda r=related: r.replace(",", " ") + "\n"
            files[f"{base}/affected_cpus"] = lambda r=related: r.replace(",", " ") + "\n"
            files[f"/sys/devices/system/cpu/cpu{cpu}/cpu_capacity"] = lambda c=cpu: f"{self.capacity(c)}\n"
            files[f"/sys/devices/system/cpu/cpu{cpu}/online"] = lambda: "1\n"
        return files

    def _thermal_file(self, text: str) -> str:
        if self.thermal_denied:  # sysfs_thermal: no read rule for the shell domain
            raise PermissionError(errno.EACCES, "Permission denied")
        return text + "\n"

    def _cpuinfo(self) -> str:
        blocks = []
        for cpu in range(int(self.profile.cpu_count)):
            blocks.append(
                f"processor\t: {cpu}\n"
                f"model name\t: {self.profile.soc} (mnv3bench emulator)\n"
                f"cpu MHz\t\t: {self.cur_freq_khz(cpu) / 1000:.3f}\n"
            )
        return "\n".join(blocks) + f"\nHardware\t: {self.profile.soc}\n"

    def _meminfo(self) -> str:
        total_kb = int(setting(self.emu, "mem_total_kb"))
        free_kb = mem_free_kb(self.emu)
        return (
            f"MemTotal:       {total_kb} kB\n"
            f"MemFree:        {free_kb} kB\n"
            f"MemAvailable:   {free_kb} kB\n"
        )

    # -- the interface the shell uses ----------------------------------------------------

    @staticmethod
    def is_virtual(device_path: str) -> bool:
        """True for paths this tree owns (everything under /sys and /proc)."""
        return device_path in ("/sys", "/proc") or device_path.startswith(("/sys/", "/proc/"))

    def _built(self) -> tuple[dict[str, Callable[[], str]], dict[str, list[str]]]:
        """The files (path -> producer) and folders (path -> sorted names), built once."""
        with self._tree_lock:
            if self._tree is None:
                files = self._files()
                folders: dict[str, set[str]] = {}
                for path in files:
                    parts = path.split("/")
                    for depth in range(1, len(parts)):
                        folder = "/".join(parts[:depth]) or "/"
                        folders.setdefault(folder, set()).add(parts[depth])
                self._tree = files, {folder: sorted(names) for folder, names in folders.items()}
            return self._tree

    def read(self, device_path: str) -> str | None:
        """The file's content now, or None when it does not exist (or is a folder)."""
        producer = self._built()[0].get(device_path)
        try:
            return producer() if producer else None
        except PermissionError as exc:  # named like the kernel's EACCES: "cat: PATH: Permission denied"
            raise PermissionError(exc.errno, exc.strerror, device_path) from None

    def listdir(self, device_path: str) -> list[str] | None:
        """Names in a virtual folder, or None when it is not one."""
        names = self._built()[1].get(device_path.rstrip("/") or "/")
        return list(names) if names else None

    def is_dir(self, device_path: str) -> bool:
        return device_path in ("/sys", "/proc") or self.listdir(device_path) is not None
