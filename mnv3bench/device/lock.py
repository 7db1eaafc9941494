"""The device lock: two mnv3bench processes never benchmark on one phone at once.

Their runs would disturb each other's numbers. The lock is per user, not per results
database, so another --db cannot get around it. It is keyed by the device's identity, not
by the address as typed: the serial number the device reports (ro.serialno), or else the
address resolved to IP:port, so `127.1:6001`, `127.0.0.1:6001` and `localhost:6001` are one
device. Emulators also share the host's cores: two emulated phones pinned to one host core
would slow each other down, so an emulator run also waits for its host core (HostCoreLock).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

from mnv3bench.errors import MnvError
from mnv3bench.locks import FileLock, LockBusy

# What a device answers for ro.serialno when it has none worth the name.
_NO_SERIAL = {"", "unknown", "0123456789abcdef"}


def device_lock_key(reported_serial: str | None, address: str) -> str:
    """The lock key of one device: its own serial number, else its normalised address."""
    serial = (reported_serial or "").strip()
    if serial.lower() not in _NO_SERIAL:
        return f"serial-{serial}"
    return f"address-{normalise_address(address)}"


def normalise_address(address: str) -> str:
    """HOST:PORT with the host resolved to its IP ("localhost:6001" -> "127.0.0.1:6001");
    anything else (a USB serial) as it is."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return address
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:  # "127.1", "localhost", a host name: what the socket would connect to
            ip = ipaddress.ip_address(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])
        except (OSError, IndexError, ValueError):
            return f"{host.lower()}:{int(port)}"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:  # 127.0.0.1 and ::1 reach the same local server
        ip = ipaddress.ip_address("127.0.0.1")
    return f"{ip}:{int(port)}"


def emulator_host_cpu(pin_core: int) -> int:
    """The host cpu an emulated phone's pin core runs on: as emulator/phone.py maps it, the
    v-th cpu this process may use (v modulo their number)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return allowed[pin_core % len(allowed)]


def default_lock_dir() -> Path:
    """One place per user for device locks, whatever --db each run uses."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mnv3bench" / "locks"


class DeviceLock:
    """Held while a process uses one device; refused at once (with the holder's pid) if taken.

    A lock left by a killed run is taken over automatically (see mnv3bench.locks).
    """

    def __init__(self, lock_dir: Path, device_key: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", device_key)
        self.device_key = device_key
        self._lock = FileLock(Path(lock_dir) / f"device-{safe}.lock", blocking=False)

    @property
    def path(self) -> Path:
        return self._lock.path

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except LockBusy as busy:
            raise MnvError(
                f"Device {self.device_key} is in use by another mnv3bench process (pid {busy.holder_pid or 'unknown'}).",
                "Wait for it to finish (or stop it), then run again; two runs on one phone disturb each other's "
                "numbers.",
            ) from None

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> DeviceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class HostCoreLock:
    """Held while an emulator run measures on one host cpu; waits (saying so) while another
    run measures there, since their benchmarks would share the core."""

    def __init__(self, lock_dir: Path, host_cpu: int, notify: Callable[[str], None] = lambda _text: None) -> None:
        self.host_cpu = host_cpu
        self.notify = notify
        self._path = Path(lock_dir) / f"host-cpu-{host_cpu}.lock"
        self._lock: FileLock | None = None

    def __enter__(self) -> HostCoreLock:
        try:
            self._lock = FileLock(self._path, blocking=False)
            self._lock.acquire()
        except LockBusy as busy:
            self.notify(f"Waiting for host cpu {self.host_cpu}: an emulator run (pid {busy.holder_pid or 'unknown'}) "
                        "measures on it, and sharing the core would slow both")
            self._lock = FileLock(self._path, blocking=True)
            self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
