"""Open a profiled device for a command: connect, probe, check, and clean up afterwards.

`--device emulator` without --adb/--serial starts the host emulator in this process and
stops it on exit, so every command works on a machine with no phone at all. `--adb emulate`
does the same for any profile: `--device pixel6 --adb emulate` runs against an in-process
twin of a Pixel 6 (`--adb emulate:thermal-denied,cpuset-little` adds emulator faults).
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


def wants_in_process_emulator(profile: DeviceProfile, adb: str | None, serial: str | None) -> bool:
    if adb and (adb == EMULATE or adb.startswith(EMULATE + ":")):
        return True
    return profile.emulated and not adb and not serial and not os.environ.get("MNV3BENCH_ADB")


def _emulate_faults(adb: str | None) -> tuple[str, ...]:
    if not adb or not adb.startswith(EMULATE + ":"):
        return ()
    return tuple(f for f in adb.split(":", 1)[1].split(",") if f)


@contextmanager
def open_device(profile: DeviceProfile, adb: str | None = None, serial: str | None = None, force: bool = False,
                *, check: bool = True, keys_path: Path | None = None, notify: Notify = _stderr_notify,
                emulator_root: Path | None = None, faults: Iterable[str] = ()) -> Iterator[DeviceSession]:
    """Connected, probed device for `profile`; closed (and any emulator stopped) on exit.

    check=True raises UsageError when the device is not the profiled phone (unless force)
    or has the wrong ABI; doctor passes check=False to report those as checklist items.
    """
    server = None
    if wants_in_process_emulator(profile, adb, serial):
        from mnv3bench.emulator import start_in_process

        load_signer(keys_path, notify)  # the emulator trusts our public key, so it must exist
        key = key_path(keys_path)
        server = start_in_process(profile, root=emulator_root, faults=(*faults, *_emulate_faults(adb)),
                                  trusted_keys=[Path(f"{key}.pub")])
        adb = server.address
    try:
        device = connect(profile, adb_address=adb, serial=serial, keys_path=keys_path, notify=notify)
        try:
            info = probe(device, profile)
            warnings = check_profile(info, profile, force) if check else list(info.notes)
            yield DeviceSession(profile, device, info, warnings, server)
        finally:
            device.close()
    finally:
        if server is not None:
            server.stop()
