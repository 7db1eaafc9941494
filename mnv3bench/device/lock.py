"""The device lock: two mnv3bench processes never benchmark on one phone at once.

Their runs would disturb each other's numbers. The lock is per user, not per results
database, so another --db cannot get around it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mnv3bench.errors import MnvError
from mnv3bench.locks import FileLock, LockBusy


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
