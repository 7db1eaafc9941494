"""Open a profiled device for a command: connect, probe, check, and clean up afterwards.

`--device emulator` without --adb/--serial starts the host emulator in this process and
stops it on exit, so every command works on a machine with no phone at all. `--adb emulate`
does the same for any profile: `--device pixel6 --adb emulate` runs against an in-process
twin of a Pixel 6 (`--adb emulate:thermal-denied,cpuset-little` adds emulator faults).

Two routes reach a device, chosen automatically (connect_route):
- through the running adb server (device/server_route.py), where the user's USB phones and
  everything attached with `adb connect` already are;
- directly to the device's adbd with adb-shell (device/adb.py): --adb HOST:PORT, the
  in-process emulator, and USB when no adb server runs.
--adb-server HOST:PORT and --direct override the choice; the route taken is the Device's
transport_name ("adb-server", "tcp", "usb"), stored with each session.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnv3bench.device.adb import Notify, _stderr_notify, connect, key_path, load_signer
from mnv3bench.device.probe import DeviceInfo, check_profile, probe
from mnv3bench.device.profiles import DeviceProfile
from mnv3bench.device.protocol import Device
from mnv3bench.errors import UsageError


@dataclass
class DeviceSession:
    profile: DeviceProfile
    device: Device
    info: DeviceInfo
    warnings: list[str] = field(default_factory=list)  # profile/cores remarks to show the user
    emulator: Any = None  # the in-process EmulatorServer, when we started one

    @property
    def address(self) -> str:
        return self.device.serial


EMULATE = "emulate"  # --adb emulate[:FAULT,...]: an in-process twin of the profile's phone


def wants_in_process_emulator(profile: DeviceProfile, adb: str | None, serial: str | None,
                              adb_server: str | None = None) -> bool:
    if adb and (adb == EMULATE or adb.startswith(EMULATE + ":")):
        return True
    return profile.emulated and not adb and not serial and not adb_server and not os.environ.get("MNV3BENCH_ADB")


def connect_route(profile: DeviceProfile, adb: str | None, serial: str | None, *, adb_server: str | None = None,
                  direct: bool = False, keys_path: Path | None = None, notify: Notify = _stderr_notify) -> Device:
    """The device through the adb server when one runs (or --adb-server), else directly."""
    if direct and adb_server:
        raise UsageError("both --direct and --adb-server given",
                         "Give one of them: --direct talks to the device without a server, --adb-server names the server to use.")
    if adb and adb_server:
        raise UsageError("both --adb and --adb-server given",
                         "Give one of them: --adb HOST:PORT connects directly to a device; through a server, attach it with "
                         "`adb connect HOST:PORT` and give --serial HOST:PORT.")
    if not direct and not adb and not (os.environ.get("MNV3BENCH_ADB") and not serial):
        from mnv3bench.device.server_route import connect_through_server, find_server

        address = find_server(adb_server)
        if address is not None:
            return connect_through_server(address, serial)
    return connect(profile, adb_address=adb, serial=serial, keys_path=keys_path, notify=notify)


def _emulate_faults(adb: str | None) -> tuple[str, ...]:
    if not adb or not adb.startswith(EMULATE + ":"):
        return ()
    return tuple(f for f in adb.split(":", 1)[1].split(",") if f)


@contextmanager
def open_device(profile: DeviceProfile, adb: str | None = None, serial: str | None = None, force: bool = False,
                *, check: bool = True, keys_path: Path | None = None, notify: Notify = _stderr_notify,
                emulator_root: Path | None = None, faults: Iterable[str] = (), adb_server: str | None = None,
                direct: bool = False) -> Iterator[DeviceSession]:
    """Connected, probed device for `profile`; closed (and any emulator stopped) on exit.

    check=True raises UsageError when the device is not the profiled phone (unless force)
    or has the wrong ABI; doctor passes check=False to report those as checklist items.
    """
    server = None
    if wants_in_process_emulator(profile, adb, serial, adb_server):
        from mnv3bench.emulator import start_in_process

        load_signer(keys_path, notify)  # the emulator trusts our public key, so it must exist
        key = key_path(keys_path)
        server = start_in_process(profile, root=emulator_root, faults=(*faults, *_emulate_faults(adb)),
                                  trusted_keys=[Path(f"{key}.pub")])
        adb = server.address
    try:
        device = connect_route(profile, adb, serial, adb_server=adb_server, direct=direct, keys_path=keys_path,
                               notify=notify)
        try:
            info = probe(device, profile)
            warnings = check_profile(info, profile, force) if check else list(info.notes)
            yield DeviceSession(profile, device, info, warnings, server)
        finally:
            device.close()
    finally:
        if server is not None:
            server.stop()
