"""Device profiles: one `mnv3bench/devices/<name>.toml` per phone (and one for the host emulator).

A profile says what a phone is (codenames, models, SoC, platform, ABI), its CPU clusters,
which core to pin the single-threaded benchmark to (one of the fastest cluster), how to
find its CPU temperature, where benchmark_model lives on it, and which column of the paper
it stands for. Profiles of real phones also describe what the emulator needs to play them
(`[[thermal.zones]]`, `[twin]`): facts about the phone, kept as data. Every key is checked on load: a broken profile fails with the file,
the key and the fix, never later with a KeyError in the middle of a run.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnv3bench.device.thermal import UNITS, ThermalRules, ZoneFact
from mnv3bench.emulator.settings import MAX_CPUS, check_emulator_table
from mnv3bench.errors import UsageError
from mnv3bench.tables.paper import PAPER_COLUMNS as PAPER_PHONE_COLUMNS

# A profile names the paper column its phone fills, or "" for a phone the paper did not measure.
PAPER_COLUMNS = (*PAPER_PHONE_COLUMNS, "")
_PAPER_COLUMN_CHOICES = ", ".join(f'"{c}"' for c in PAPER_PHONE_COLUMNS)


@dataclass(frozen=True)
class Cluster:
    """CPUs that share a clock (one cpufreq policy), and their cpuinfo_max_freq."""

    name: str
    cpus: tuple[int, ...]
    max_freq_khz: int | None = None

    @property
    def label(self) -> str:
        """"6-7" or "8": how a trial stores the cluster it ran on."""
        return cpu_list(self.cpus)


def cpu_list(cpus: tuple[int, ...] | list[int]) -> str:
    """(0, 1, 2, 3, 6) -> "0-3,6" (the kernel's cpulist format)."""
    ordered = sorted(cpus)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    codenames: tuple[str, ...]
    models: tuple[str, ...]
    soc: str
    abi: str
    cpu_count: int
    big_cores: tuple[int, ...]
    pin_core: int
    benchmark_binary: str
    work_dir: str
    paper_column: str = ""
    emulated: bool = False
    emulator: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    path: Path | None = field(default=None, compare=False)
    platform: str = ""  # ro.board.platform
    # The clusters, slowest first; a profile without [[clusters]] gets two from big_cores.
    clusters: tuple[Cluster, ...] = ()
    thermal: ThermalRules = field(default_factory=ThermalRules)
    # What the emulator needs to play this phone besides the facts above (see devices/*.toml).
    twin: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fastest_cluster(self) -> Cluster:
        """The cluster with the highest maximum frequency (big_cores when none is known)."""
        known = [c for c in self.clusters if c.max_freq_khz]
        if known:
            return max(known, key=lambda c: c.max_freq_khz or 0)
        return Cluster("big", tuple(self.big_cores))

    def cluster_of(self, cpu: int) -> Cluster | None:
        return next((c for c in self.clusters if cpu in c.cpus), None)

    @property
    def affinity_mask(self) -> str:
        """taskset mask pinning to pin_core alone, hex without 0x ("10" for cpu4)."""
        return format(1 << self.pin_core, "x")


# key -> (python type, description shown in the fix, example value as TOML)
_REQUIRED: dict[str, tuple[type, str, str]] = {
    "name": (str, "a string, the profile name", '"pixel3"'),
    "description": (str, "a string", '"Google Pixel 3 / 3 XL"'),
    "codenames": (list, "a list of ro.product.device codenames", '["blueline", "crosshatch"]'),
    "models": (list, "a list of ro.product.model names", '["Pixel 3", "Pixel 3 XL"]'),
    "soc": (str, "a string", '"Snapdragon 845"'),
    "abi": (str, "a string, ro.product.cpu.abi", '"arm64-v8a"'),
    "cpu_count": (int, "an integer number of cpus", "8"),
    "big_cores": (list, "a list of cpu indices", "[4, 5, 6, 7]"),
    "pin_core": (int, "an integer cpu index", "4"),
    "benchmark_binary": (str, "an absolute device path", '"/data/local/tmp/benchmark_model"'),
    "work_dir": (str, "an absolute device path", '"/data/local/tmp/mnv3bench"'),
}
_OPTIONAL: dict[str, tuple[type, str, str]] = {
    "paper_column": (str, f'one of {_PAPER_COLUMN_CHOICES} or ""', f'"{PAPER_PHONE_COLUMNS[-1]}"'),
    "emulated": (bool, "true or false", "false"),
    "emulator": (dict, "a table", "[emulator]"),
    "platform": (str, "a string, ro.board.platform", '"sdm845"'),
    "clusters": (list, "an array of tables", '[{ name = "big", cpus = [4, 5, 6, 7], max_freq_khz = 2649600 }]'),
    "thermal": (dict, "a table", '{ cpu_zones = ["BIG", "MID", "LITTLE"], units = "millidegrees" }'),
    "twin": (dict, "a table", "{ foreground_cpus = [0, 1, 2, 3, 4, 5] }"),
}
_CLUSTER_KEYS = {"name": str, "cpus": list, "max_freq_khz": int}
_THERMAL_KEYS = {"cpu_zones": list, "exclude": list, "units": str, "zones": list}
_TWIN_KEYS = {"foreground_cpus": list, "android_release": str, "sdk": int}
_ZONE_KEYS = {"type": str, "units": str, "value": int, "hal_type": int}


# The profiles ship inside the package (package data), so an installed wheel finds them too.
PACKAGED_DEVICES = Path(__file__).resolve().parents[1] / "devices"


def devices_dir() -> Path:
    """$MNV3BENCH_DEVICES, else the profiles that ship with the package (mnv3bench/devices/)."""
    env = os.environ.get("MNV3BENCH_DEVICES")
    if env:
        return Path(env)
    return PACKAGED_DEVICES


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _check_type(file: str, key: str, value: Any, spec: tuple[type, str, str]) -> None:
    expected, what, example = spec
    # bool is an int in Python; a profile saying `pin_core = true` is still wrong.
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise UsageError(
            f"{file}: key '{key}' is {_type_name(value)} ({value!r}), expected {what}",
            f"Write it like `{key} = {example}`.",
        )


def _int_list(file: str, key: str, values: list[Any], example: str) -> tuple[int, ...]:
    for item in values:
        if not isinstance(item, int) or isinstance(item, bool):
            raise UsageError(
                f"{file}: key '{key}' holds {item!r}, expected integers only",
                f"Write it like `{key} = {example}`.",
            )
    return tuple(values)


def _str_list(file: str, key: str, values: list[Any], example: str) -> tuple[str, ...]:
    if not values or not all(isinstance(item, str) and item for item in values):
        raise UsageError(
            f"{file}: key '{key}' must be a non-empty list of strings, got {values!r}",
            f"Write it like `{key} = {example}`.",
        )
    return tuple(values)


def _check_binary_path(file: str, binary: str) -> None:
    """benchmark_binary names a file: not "/", not a folder ("x/"), no NUL, no "." or ".."."""
    name = posixpath.basename(binary)
    if name in ("", ".", "..") or "\0" in binary or posixpath.normpath(binary) != binary.rstrip("/") or len(binary) > 1024:
        raise UsageError(f"{file}: key 'benchmark_binary' = {binary!r} is not the absolute path of a file",
                         f"Write it like `benchmark_binary = {_REQUIRED['benchmark_binary'][2]}`.")


def parse_profile(path: Path) -> DeviceProfile:
    """Read and validate one profile file."""
    file = _display(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{file}: cannot read the device profile ({exc.strerror or exc})",
                         "Check the path and its permissions.") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: not valid TOML ({exc})",
                         f"Correct the syntax (see {PACKAGED_DEVICES / 'pixel3.toml'} for a working profile).") from exc

    for key, spec in _REQUIRED.items():
        if key not in data:
            raise UsageError(f"{file}: missing key '{key}' ({spec[1]}, e.g. {spec[2]})",
                             f"Add `{key} = {spec[2]}`.")
        _check_type(file, key, data[key], spec)
    for key, spec in _OPTIONAL.items():
        if key in data:
            _check_type(file, key, data[key], spec)
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise UsageError(f"{file}: unknown key(s) {', '.join(repr(k) for k in unknown)}",
                         f"Remove them or correct the spelling; known keys: "
                         f"{', '.join(list(_REQUIRED) + list(_OPTIONAL))}.")

    cpu_count = data["cpu_count"]
    if not 1 <= cpu_count <= MAX_CPUS:
        raise UsageError(f"{file}: key 'cpu_count' = {cpu_count} is out of range 1..{MAX_CPUS}",
                         "Set it to the phone's number of cpus (e.g. 8).")
    big_cores = _int_list(file, "big_cores", data["big_cores"], _REQUIRED["big_cores"][2])
    if not big_cores or any(not 0 <= c < cpu_count for c in big_cores):
        raise UsageError(f"{file}: key 'big_cores' = {list(big_cores)} must list cpus in 0..{cpu_count - 1}",
                         "List the cpus with the highest cpuinfo_max_freq (see `mnv3bench doctor`).")
    pin_core = data["pin_core"]
    if pin_core not in big_cores:
        raise UsageError(f"{file}: key 'pin_core' = {pin_core} is not one of big_cores {list(big_cores)}",
                         f"Pin to a big core, e.g. `pin_core = {big_cores[0]}`.")
    for key in ("benchmark_binary", "work_dir"):
        if not data[key].startswith("/"):
            raise UsageError(f"{file}: key '{key}' = {data[key]!r} is not an absolute device path",
                             f"Write it like `{key} = {_REQUIRED[key][2]}`.")
    _check_binary_path(file, data["benchmark_binary"])
    paper_column = data.get("paper_column", "")
    if paper_column not in PAPER_COLUMNS:
        raise UsageError(f"{file}: key 'paper_column' = {paper_column!r} is not a column of the paper",
                         f'Use {_PAPER_COLUMN_CHOICES}, or "" for a phone the paper did not measure.')
    clusters = _clusters(file, data.get("clusters"), cpu_count, big_cores)
    if clusters and set(big_cores) != set(max(clusters, key=lambda c: c.max_freq_khz or 0).cpus):
        fastest = max(clusters, key=lambda c: c.max_freq_khz or 0)
        raise UsageError(f"{file}: key 'big_cores' = {list(big_cores)} is not the fastest cluster "
                         f"{list(fastest.cpus)} ({fastest.name}, {fastest.max_freq_khz} kHz)",
                         f"Set `big_cores = {list(fastest.cpus)}` and pin one of them.")
    thermal = _thermal(file, data.get("thermal", {}))
    emulated = data.get("emulated", False)
    emulator = check_emulator_table(file, data.get("emulator", {}))
    if emulated and not emulator:
        raise UsageError(f"{file}: emulated = true needs an [emulator] table",
                         f"Copy the [emulator] table from {PACKAGED_DEVICES / 'emulator.toml'}.")

    return DeviceProfile(
        name=data["name"],
        description=data["description"],
        codenames=_str_list(file, "codenames", data["codenames"], _REQUIRED["codenames"][2]),
        models=_str_list(file, "models", data["models"], _REQUIRED["models"][2]),
        soc=data["soc"],
        abi=data["abi"],
        cpu_count=cpu_count,
        big_cores=big_cores,
        pin_core=pin_core,
        benchmark_binary=data["benchmark_binary"],
        work_dir=data["work_dir"].rstrip("/") or "/",
        paper_column=paper_column,
        emulated=emulated,
        emulator=dict(emulator),
        path=path,
        platform=data.get("platform", ""),
        clusters=clusters or _two_clusters(cpu_count, big_cores, emulator),
        thermal=thermal,
        twin=dict(_table_keys(file, "twin", data.get("twin", {}), _TWIN_KEYS, _OPTIONAL["twin"][2])),
    )


def _table_keys(file: str, key: str, table: Any, spec: dict[str, type], example: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise UsageError(f"{file}: key '{key}' holds {table!r}, expected a table",
                         f"Write it like `{key} = {example}`.")
    unknown = sorted(set(table) - set(spec))
    if unknown:
        raise UsageError(f"{file}: key '{key}' has unknown key(s) {', '.join(map(repr, unknown))}",
                         f"Use only {', '.join(spec)}; e.g. `{key} = {example}`.")
    for name, kind in spec.items():
        if name in table and (not isinstance(table[name], kind) or isinstance(table[name], bool)):
            raise UsageError(f"{file}: key '{key}.{name}' is {_type_name(table[name])} ({table[name]!r}), "
                             f"expected {_type_name(kind())}", f"Write it like `{key} = {example}`.")
    return table


def _clusters(file: str, raw: list[Any] | None, cpu_count: int, big_cores: tuple[int, ...]) -> tuple[Cluster, ...]:
    if raw is None:
        return ()
    example = _OPTIONAL["clusters"][2]
    clusters = []
    for table in raw:
        table = _table_keys(file, "clusters", table, _CLUSTER_KEYS, example)
        if "cpus" not in table or "max_freq_khz" not in table:
            raise UsageError(f"{file}: every [[clusters]] entry needs cpus and max_freq_khz",
                             f"Write it like `clusters = {example}`.")
        cpus = _int_list(file, "clusters.cpus", table["cpus"], "[4, 5, 6, 7]")
        clusters.append(Cluster(str(table.get("name", f"cluster{len(clusters)}")), cpus, table["max_freq_khz"]))
    listed = sorted(c for cluster in clusters for c in cluster.cpus)
    if listed != list(range(cpu_count)):
        raise UsageError(f"{file}: the clusters' cpus {listed} must list every cpu 0..{cpu_count - 1} once",
                         "Give each cpu to one cluster (cpufreq/related_cpus on the phone lists them).")
    return tuple(sorted(clusters, key=lambda c: c.max_freq_khz or 0))


def _two_clusters(cpu_count: int, big_cores: tuple[int, ...], emulator: dict[str, Any]) -> tuple[Cluster, ...]:
    """little (the rest) and big (big_cores), for profiles that do not list clusters."""
    little = tuple(c for c in range(cpu_count) if c not in big_cores)
    big = Cluster("big", big_cores, emulator.get("big_max_freq_khz"))
    return (Cluster("little", little, emulator.get("little_max_freq_khz")), big) if little else (big,)


def _thermal(file: str, raw: dict[str, Any]) -> ThermalRules:
    example = _OPTIONAL["thermal"][2]
    raw = _table_keys(file, "thermal", raw, _THERMAL_KEYS, example)
    if not raw:
        return ThermalRules()
    units = raw.get("units", "millidegrees")
    if units not in UNITS:
        raise UsageError(f"{file}: key 'thermal.units' = {units!r} is not a unit",
                         f"Use one of {', '.join(map(repr, UNITS))} (what the CPU zones' temp files count in).")
    patterns = []
    for key in ("cpu_zones", "exclude"):
        values = raw.get(key, [])
        if key == "cpu_zones" and not values:
            raise UsageError(f"{file}: key 'thermal.cpu_zones' is missing or empty",
                             'List the CPU zone types (regular expressions), e.g. `cpu_zones = ["BIG"]`.')
        texts = _str_list(file, f"thermal.{key}", values, '["BIG", "MID", "LITTLE"]') if values else ()
        for text in texts:
            try:
                re.compile(text)
            except re.error as exc:
                raise UsageError(f"{file}: key 'thermal.{key}' holds a bad pattern {text!r} ({exc})",
                                 "Write a Python regular expression matching whole zone types.") from exc
        patterns.append(texts)
    zones = []
    for table in raw.get("zones", []):
        table = _table_keys(file, "thermal.zones", table, _ZONE_KEYS,
                            '{ type = "BIG", units = "millidegrees", value = 41000, hal_type = 0 }')
        zone_units = table.get("units", units)
        if "type" not in table or "value" not in table or zone_units not in (*UNITS, *ZoneFact.OTHER_UNITS):
            raise UsageError(f"{file}: a [[thermal.zones]] entry needs type, value and a known units",
                             f"Set units to one of {', '.join((*UNITS, *ZoneFact.OTHER_UNITS))}.")
        zones.append(ZoneFact(table["type"], zone_units, table["value"], table.get("hal_type", -1)))
    return ThermalRules(cpu_zones=patterns[0], exclude=patterns[1], units=units, zones=tuple(zones))


def _display(path: Path) -> str:
    """The path as the user would write it: relative to the cwd when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _looks_like_path(name_or_path: str | Path) -> bool:
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or text.endswith(".toml") or os.sep in text or "/" in text


def list_profiles(devices_dir: Path | None = None) -> list[DeviceProfile]:
    """Every profile in the devices folder, sorted by name; a broken file raises."""
    folder = devices_dir if devices_dir is not None else _default_dir()
    return [parse_profile(path) for path in sorted(folder.glob("*.toml"))]


def _default_dir() -> Path:
    return devices_dir()


def load_profile(name_or_path: str | Path, devices_dir: Path | None = None) -> DeviceProfile:
    """A profile by name (devices/<name>.toml) or by path to a .toml file."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise UsageError(f"device profile file {path} does not exist",
                             "Give a path to a .toml profile or a profile name (see `mnv3bench devices`).")
        return parse_profile(path)

    folder = devices_dir if devices_dir is not None else _default_dir()
    name = str(name_or_path)
    path = folder / f"{name}.toml"
    if path.is_file():
        profile = parse_profile(path)
        if profile.name != name:
            raise UsageError(f"{_display(path)}: key 'name' = {profile.name!r} differs from the file name",
                             f'Set `name = "{name}"` or rename the file to {profile.name}.toml.')
        return profile
    available = sorted(p.stem for p in folder.glob("*.toml"))
    close = difflib.get_close_matches(name, available, n=1)
    meant = f"Use --device {close[0]} if you meant that phone. " if close else ""
    listing = ", ".join(available) if available else f"none (no .toml files in {folder})"
    raise UsageError(f"unknown device profile '{name}'; available: {listing}",
                     f"{meant}Copy {PACKAGED_DEVICES / 'pixel3.toml'} to {name}.toml to profile a new phone and "
                     "pass its path as --device, or keep profiles in a folder named by MNV3BENCH_DEVICES.")
