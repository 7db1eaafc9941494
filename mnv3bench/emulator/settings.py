"""The `[emulator]` table of a device profile: each key's type, range and default, as data.

The emulated phone reads its twin's numbers from this table (frequencies, temperatures,
storage, getprop strings). A profile is a file anyone can hand over, so every value is
checked on load like the rest of the profile (device/profiles.py calls
`check_emulator_table`): the right type, finite, in a range a phone can have. A bad value
exits 2 naming the file, the key, the valid range and the fix, instead of a traceback (or
gigabytes of memory) in the middle of a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mnv3bench.errors import UsageError

# Largest number of cpus a profile may give a phone (device/profiles.py checks cpu_count):
# phones have up to 10-12; 64 fits the hex taskset mask of one machine word. The virtual
# sysfs has a few files per cpu, so the bound also bounds its size.
MAX_CPUS = 64
_MAX_TEXT = 200  # getprop values and the like: short, printable, one line


@dataclass(frozen=True)
class Setting:
    kind: type          # int or str
    default: Any
    low: int = 0        # ints: the valid range, inclusive
    high: int = 0
    what: str = ""      # shown in the error
    example: str = ""   # TOML, shown in the fix


_KHZ = 10_000_000  # 10 GHz: above any phone's cpu
_PIB_IN_KB = 1 << 40  # a size no phone reaches
# Without storage_free_kb, the root may hold half of /data, and never more than this: a
# profile that says nothing must not let a client fill the host disk.
DEFAULT_QUOTA_KB = 4_000_000

SETTINGS: dict[str, Setting] = {
    "product": Setting(str, "", what="ro.product.name", example='"mnv3emu"'),
    "manufacturer": Setting(str, "mnv3bench", what="ro.product.manufacturer", example='"Google"'),
    "android_release": Setting(str, "14", what="ro.build.version.release", example='"14"'),
    "sdk": Setting(int, 34, 1, 1000, "ro.build.version.sdk", "34"),
    "fingerprint": Setting(str, "", what="ro.build.fingerprint", example='"google/blueline/..."'),
    "governor": Setting(str, "schedutil", what="the cpufreq governor", example='"schedutil"'),
    "little_max_freq_khz": Setting(int, 2_000_000, 1, _KHZ, "the little cores' max frequency in kHz", "1766400"),
    "big_max_freq_khz": Setting(int, 2_000_000, 1, _KHZ, "the big cores' max frequency in kHz", "2803200"),
    "cpu_temp_mc": Setting(int, 35_000, -40_000, 150_000, "the CPU zone's temperature in millidegrees C",
                           "35000"),
    "battery_level": Setting(int, 100, 0, 100, "the battery level in percent", "100"),
    "battery_temp_dc": Setting(int, 250, -400, 1000, "the battery temperature in tenths of a degree C",
                               "250"),
    "storage_total_kb": Setting(int, 57_000_000, 1, _PIB_IN_KB, "the /data partition's size in KiB", "57000000"),
    # The emulated phone's disk quota: pushes past it fail with "No space left on device".
    "storage_free_kb": Setting(int, None, 0, _PIB_IN_KB, "free space on /data in KiB (the root's quota)",
                               "32000000"),
    "mem_total_kb": Setting(int, 3_800_000, 1, _PIB_IN_KB, "MemTotal in KiB", "3800000"),
    "mem_free_kb": Setting(int, None, 0, _PIB_IN_KB, "MemFree in KiB", "1900000"),
}


def setting(table: dict[str, Any], key: str) -> Any:
    """The value of `key` in an [emulator] table, or its default."""
    return table.get(key, SETTINGS[key].default)


def storage_free_kb(table: dict[str, Any]) -> int:
    """The phone's free space on /data before anything is pushed: the root's quota."""
    total = int(setting(table, "storage_total_kb"))
    given = table.get("storage_free_kb")
    return min(total // 2, DEFAULT_QUOTA_KB) if given is None else int(given)


def mem_free_kb(table: dict[str, Any]) -> int:
    given = table.get("mem_free_kb")
    return int(setting(table, "mem_total_kb")) // 2 if given is None else int(given)


def check_emulator_table(file: str, table: dict[str, Any]) -> dict[str, Any]:
    """Validate an [emulator] table (UsageError naming file, key, range and fix); returns it."""
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise UsageError(f"{file}: unknown key(s) in [emulator]: {', '.join(repr(k) for k in unknown)}",
                         f"Remove them or correct the spelling; known keys: {', '.join(SETTINGS)}.")
    for key, value in table.items():
        spec = SETTINGS[key]
        fix = f"Write it like `{key} = {spec.example}` in [emulator]."
        if spec.kind is int:
            # bool is an int in Python, a float may be 1.5e300 or nan: only a TOML integer will do.
            if not isinstance(value, int) or isinstance(value, bool):
                raise UsageError(f"{file}: [emulator] key '{key}' is {value!r}, expected an integer "
                                 f"({spec.what}) in {spec.low}..{spec.high}", fix)
            if not spec.low <= value <= spec.high:
                raise UsageError(f"{file}: [emulator] key '{key}' = {value} is out of range "
                                 f"{spec.low}..{spec.high} ({spec.what})", fix)
        elif not isinstance(value, str) or len(value) > _MAX_TEXT or not value.isprintable():
            raise UsageError(f"{file}: [emulator] key '{key}' is {value!r}, expected a one-line string "
                             f"of at most {_MAX_TEXT} printable characters ({spec.what})", fix)
    for part, whole in (("storage_free_kb", "storage_total_kb"), ("mem_free_kb", "mem_total_kb")):
        if part in table and table[part] > setting(table, whole):
            raise UsageError(f"{file}: [emulator] key '{part}' = {table[part]} is more than "
                             f"'{whole}' = {setting(table, whole)}",
                             f"Set {part} to at most {whole}.")
    return dict(table)
