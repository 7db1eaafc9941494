"""The computer mnv3bench runs on, recorded with every session.

On the emulator the host *is* the phone: its CPU model, its load and its frequency governor
decide the latency, and another busy process on the host makes a run slower. On a real phone
the host only drives adb, but the same facts cost nothing to keep.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CPU_ROOT = Path("/sys/devices/system/cpu")
# Other work on the host above this many runnable processes per core (besides the benchmark
# itself) leaves an emulated benchmark competing for its core: the run is flagged.
HIGH_LOAD_PER_CORE = 0.5


@dataclass(frozen=True)
class HostFacts:
    cpu_model: str | None
    cores: int | None
    load_start: tuple[float, float, float] | None  # os.getloadavg(): 1, 5 and 15 minutes
    governor: str | None  # e.g. "performance"; "powersave, performance" when cores differ

    def to_json(self) -> dict:
        return asdict(self)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or None


def governor(cpu_root: Path = CPU_ROOT) -> str | None:
    """The scaling governors of the host's cores, where readable (VMs and containers often hide them)."""
    found = set()
    for path in sorted(cpu_root.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            found.add(path.read_text().strip())
        except OSError:
            continue
    return ", ".join(sorted(g for g in found if g)) or None


def load_average() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):  # not on every platform
        return None
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def host_facts() -> HostFacts:
    return HostFacts(cpu_model(), os.cpu_count(), load_average(), governor())


def high_load(host: dict, host_end: dict | None) -> str | None:
    """Why the host was too busy for a fair emulated run, or None.

    The load at the start counts other work only; at the end it includes the benchmark's own
    process, so one is taken off.
    """
    cores = host.get("cores") or 0
    if not cores:
        return None
    seen = []
    start = host.get("load_start")
    if start:
        seen.append(("at the start", float(start[0])))
    end = (host_end or {}).get("load_end")
    if end:
        seen.append(("at the end, less the benchmark", max(0.0, float(end[0]) - 1.0)))
    limit = HIGH_LOAD_PER_CORE * cores
    busy = [f"{load:.2f} {when}" for when, load in seen if load > limit]
    if not busy:
        return None
    return f"host load {' and '.join(busy)} (1-minute load average) is above {limit:g} for {cores} core(s)"


def host_notes(sessions: Any, session_ids: list[int]) -> list[str]:
    """Table notes for the sessions a table used (a ResultStore.sessions() frame): where the
    sensors were emulated, the host they ran on, and whether that host was busy."""
    import json

    notes = []
    chosen = sessions[sessions["id"].isin(session_ids)] if "sensors_emulated" in sessions.columns else sessions[:0]
    for _, row in chosen.iterrows():
        if not row.get("sensors_emulated"):
            continue
        host = json.loads(row["host"]) if isinstance(row.get("host"), str) else {}
        host_end = json.loads(row["host_end"]) if isinstance(row.get("host_end"), str) else None
        where = ", ".join(p for p in (host.get("cpu_model"), f"{host['cores']} cores" if host.get("cores") else None,
                                      f"governor {host['governor']}" if host.get("governor") else None) if p)
        notes.append(f"Session {row['id']} ran on the emulator: its temperatures and frequencies are invented "
                     f"(emulated sensors), not measured" + (f"; host: {where}." if where else "."))
        busy = high_load(host, host_end)
        if busy:
            notes.append(f"Session {row['id']}: HIGH HOST LOAD: {busy}. Its latencies may be inflated by other "
                         "work on the host; rerun when the host is idle.")
    return notes
