"""The emulated phone's /sys and /proc: files generated from the device profile.

Only what the runner and the device probe read: cpufreq per cpu, the online cpus,
thermal zones (one for the CPU, one for the battery), /proc/cpuinfo and /proc/meminfo.
With the "hot" fault the CPU zone starts at HOT_START_C and cools linearly to the
profile's normal temperature over $MNV3BENCH_EMU_COOL_S seconds; while it is above
THROTTLE_C the big cores report a throttled scaling_cur_freq, as a phone would.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from mnv3bench.emulator.settings import mem_free_kb, setting

HOT_START_C = 85.0
THROTTLE_C = 60.0
THROTTLED_FRACTION = 0.7
DEFAULT_COOL_S = 6.0

CPU_ZONE_TYPE = "cpu-1-0-usr"
BATTERY_ZONE_TYPE = "battery"


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
        self._clock = clock
        self._start = clock()
        self._cool_s = cool_down_seconds()
        self._tree: tuple[dict[str, Callable[[], str]], dict[str, list[str]]] | None = None
        self._tree_lock = threading.Lock()

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

    def max_freq_khz(self, cpu: int) -> int:
        big = cpu in tuple(self.profile.big_cores)
        key = "big_max_freq_khz" if big else "little_max_freq_khz"
        return int(setting(self.emu, key))

    def freq_cap_khz(self, cpu: int) -> int:
        """scaling_max_freq: the thermal framework lowers it on hot big cores."""
        max_khz = self.max_freq_khz(cpu)
        if cpu in tuple(self.profile.big_cores) and self.cpu_temp_mc() > THROTTLE_C * 1000:
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
            "/sys/class/thermal/thermal_zone0/type": lambda: CPU_ZONE_TYPE + "\n",
            "/sys/class/thermal/thermal_zone0/temp": lambda: f"{self.cpu_temp_mc()}\n",
            "/sys/class/thermal/thermal_zone1/type": lambda: BATTERY_ZONE_TYPE + "\n",
            "/sys/class/thermal/thermal_zone1/temp":
                lambda: f"{int(setting(self.emu, 'battery_temp_dc')) * 100}\n",
            "/proc/cpuinfo": self._cpuinfo,
            "/proc/meminfo": self._meminfo,
        }
        governor = str(setting(self.emu, "governor"))
        for cpu in range(n):
            base = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
            files[f"{base}/cpuinfo_max_freq"] = lambda c=cpu: f"{self.max_freq_khz(c)}\n"
            files[f"{base}/scaling_max_freq"] = lambda c=cpu: f"{self.freq_cap_khz(c)}\n"
            files[f"{base}/scaling_cur_freq"] = lambda c=cpu: f"{self.cur_freq_khz(c)}\n"
            files[f"{base}/scaling_governor"] = lambda g=governor: g + "\n"
            files[f"/sys/devices/system/cpu/cpu{cpu}/online"] = lambda: "1\n"
        return files

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
        return producer() if producer else None

    def listdir(self, device_path: str) -> list[str] | None:
        """Names in a virtual folder, or None when it is not one."""
        names = self._built()[1].get(device_path.rstrip("/") or "/")
        return list(names) if names else None

    def is_dir(self, device_path: str) -> bool:
        return device_path in ("/sys", "/proc") or self.listdir(device_path) is not None
