"""One exclusive advisory file lock, for every place where two processes must take turns.

fcntl.flock belongs to the open file: it is dropped when the holder closes the file or
dies, so a lock left by a killed process is taken over without any clean-up. The file
records the holder's pid, only so that a refusal can say who holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnv3bench.errors import MnvError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; callers still work, unguarded
    fcntl = None  # type: ignore[assignment]


class LockBusy(MnvError):
    """Another process holds the lock (only raised by a non-blocking FileLock)."""

    def __init__(self, path: Path, holder_pid: str | None) -> None:
        super().__init__(f"{path} is locked by another process (pid {holder_pid or 'unknown'}).",
                         "Wait for that process to finish, or stop it, then try again.")
        self.path = path
        self.holder_pid = holder_pid


class FileLock:
    """An exclusive lock on `path` (created with its folder when missing).

    blocking=True waits for the holder to let go; blocking=False raises LockBusy at once.
    Use it as a context manager, or call acquire() and release().
    """

    def __init__(self, path: Path, *, blocking: bool = True) -> None:
        self.path = Path(path)
        self.blocking = blocking
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        if fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or None
            os.close(fd)
            raise LockBusy(self.path, holder) from None
        except BaseException:  # e.g. Ctrl-C while waiting
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
