"""Host emulator: an emulated Android phone reached over real ADB on 127.0.0.1.

`start_in_process(profile)` is what `--device emulator` uses: a phone with a persistent
file system (pushed models stay between runs, as on a phone) behind an adbd on a free
loopback port. `mnv3bench emulator serve` runs the same server in the foreground.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mnv3bench.device.profiles import DeviceProfile
    from mnv3bench.emulator.adbd.server import EmulatorServer

# The adb server probes localhost:5555-5585 for emulators; keep out of its way.
ADB_EMULATOR_PORTS = range(5555, 5586)


def default_root(profile_name: str) -> Path:
    """Per-user persistent folder for an emulated phone's files ($XDG_CACHE_HOME honoured)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mnv3bench" / "emulator" / profile_name


def start_in_process(
    profile: DeviceProfile,
    root: Path | None = None,
    faults: Iterable[str] = (),
    *,
    port: int = 0,
    trusted_keys: list[Path] | None = None,
) -> EmulatorServer:
    """Create the emulated phone for `profile` and serve it on a free loopback port.

    `port` 0 picks a free one; `trusted_keys` defaults to the user's adbkey.pub.
    Returns the running server (address "127.0.0.1:P"); stop it with .stop() or use it
    as a context manager. Faults are validated (UsageError names the valid ones).
    """
    from mnv3bench.emulator.adbd.server import EmulatorServer
    from mnv3bench.emulator.faults import check_faults
    from mnv3bench.emulator.phone import EmulatedPhone

    chosen = check_faults(faults)
    phone = EmulatedPhone(Path(root) if root is not None else default_root(profile.name), profile, chosen)
    if port:
        server = EmulatorServer(phone, port=port, trusted_keys=trusted_keys)
        server.start()
        return server
    # Port 0 lets the kernel choose atomically; retry in the unlikely case it lands in the
    # adb emulator range.
    for _ in range(20):
        server = EmulatorServer(phone, trusted_keys=trusted_keys)
        server.start()
        if server.port not in ADB_EMULATOR_PORTS:
            return server
        server.stop()
    raise OSError("could not get a loopback port outside 5555-5585")
