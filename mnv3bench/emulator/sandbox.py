"""The emulated phone's file system: device paths mapped into one host folder.

Every device path ("/data/local/tmp/m.tflite") maps to a file under the emulator's root
folder, chroot-style: ".." never climbs above the root, an absolute host path such as
/etc/passwd names a file *inside* the root, and a symlink whose target lies outside the
root is refused. Permission bits are kept here per device path, because the host file
system's modes (umask, noexec mounts, a user's own files) are not the phone's.

The root has a quota, as a phone has a disk: a write that would take it past the quota
fails with ENOSPC ("No space left on device"), and the free space the phone reports is the
quota minus what the root holds, never the host disk's. Messages for the client name device
paths only (`device_text`): the host folder behind the root is none of its business.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import stat as stat_module
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mnv3bench.errors import MnvError, UsageError

# Where the sandbox keeps its own bookkeeping; invisible and unreachable from the device.
_META_DIR = ".mnv3emu"
_DEFAULT_FILE_MODE = 0o644
_DEFAULT_DIR_MODE = 0o755


class SandboxError(MnvError):
    """A device path that would leave the emulator's root, or is otherwise unusable."""


@dataclass(frozen=True)
class DeviceStat:
    """What `stat` on the phone reports: st_mode (type + permission bits), size, mtime."""

    mode: int
    size: int
    mtime: int

    @property
    def is_dir(self) -> bool:
        return stat_module.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat_module.S_ISREG(self.mode)

    @property
    def permissions(self) -> int:
        return stat_module.S_IMODE(self.mode)


class SandboxFS:
    """Device paths -> host paths inside `root`, plus per-file permission bits."""

    def __init__(self, root: Path, quota_bytes: int | None = None) -> None:
        root = Path(root)
        self.quota_bytes = quota_bytes  # None: no quota (the host disk is the limit)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use {root} as the emulator's root folder: {exc.strerror or exc}",
                             "Give --root a folder you can write (or unset XDG_CACHE_HOME).") from exc
        self.root = Path(os.path.realpath(root))
        # Both spellings of the root (as given, and with symlinks resolved) are host paths.
        self._host_prefixes = sorted({str(self.root), os.path.abspath(root)}, key=len, reverse=True)
        self._lock = threading.Lock()
        self._modes_file = self.root / _META_DIR / "modes.json"
        self._modes: dict[str, int] = self._load_modes()

    # -- paths ---------------------------------------------------------------------------

    @staticmethod
    def normalize(device_path: str, cwd: str = "/") -> str:
        """Absolute, normalized device path; ".." stops at "/" as in a chroot."""
        if not isinstance(device_path, str) or device_path == "":
            raise SandboxError("empty device path", hint="Name a file such as /data/local/tmp/x.")
        if "\x00" in device_path:
            raise SandboxError(f"{device_path!r}: NUL byte in device path")
        joined = posixpath.join(cwd, device_path)
        parts: list[str] = []
        for part in joined.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return "/" + "/".join(parts)

    def resolve(self, device_path: str, cwd: str = "/") -> Path:
        """The host path for `device_path`, guaranteed to lie inside the root.

        Symlinks are resolved and their target checked; one that points out of the root
        raises SandboxError, as does the sandbox's own bookkeeping folder.
        """
        norm = self.normalize(device_path, cwd)
        if norm == "/" + _META_DIR or norm.startswith("/" + _META_DIR + "/"):
            raise SandboxError(f"{device_path}: Permission denied")
        host = self.root / norm.lstrip("/") if norm != "/" else self.root
        real = Path(os.path.realpath(host))
        if real != self.root and self.root not in real.parents:
            raise SandboxError(
                f"{device_path}: Permission denied (it leads outside the emulator's sandbox)",
                hint="Use a path under the emulated phone's root folder: it sees no other files.",
            )
        return real

    def device_path_of(self, host_path: Path) -> str:
        """The device path of a host path inside the root (inverse of resolve)."""
        rel = Path(os.path.realpath(host_path)).relative_to(self.root)
        return "/" + rel.as_posix() if str(rel) != "." else "/"

    # -- metadata ------------------------------------------------------------------------

    def _load_modes(self) -> dict[str, int]:
        try:
            data = json.loads(self._modes_file.read_text())
            return {str(k): int(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save_modes(self) -> None:
        self._modes_file.parent.mkdir(parents=True, exist_ok=True)
        # A temp name of its own: two emulators may share a root (two runs at once).
        fd, tmp = tempfile.mkstemp(dir=self._modes_file.parent, prefix="modes.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(self._modes, sort_keys=True))
        os.replace(tmp, self._modes_file)

    def set_mode(self, device_path: str, permissions: int) -> None:
        """Set the permission bits (e.g. 0o755) the phone reports for a path."""
        host = self.resolve(device_path)
        if not host.exists():
            raise SandboxError(f"{device_path}: No such file or directory")
        with self._lock:
            self._modes[self.device_path_of(host)] = permissions & 0o7777
            self._save_modes()

    def _forget(self, device_path: str) -> None:
        with self._lock:
            prefix = device_path.rstrip("/") + "/"
            for key in [k for k in self._modes if k == device_path or k.startswith(prefix)]:
                del self._modes[key]
            self._save_modes()

    # -- queries -------------------------------------------------------------------------

    def stat(self, device_path: str) -> DeviceStat | None:
        """The phone's view of a path, or None when it does not exist."""
        host = self.resolve(device_path)
        try:
            st = host.stat()
        except OSError:
            return None
        is_dir = stat_module.S_ISDIR(st.st_mode)
        with self._lock:
            bits = self._modes.get(self.device_path_of(host))
        if bits is None:
            bits = _DEFAULT_DIR_MODE if is_dir else _DEFAULT_FILE_MODE
        kind = stat_module.S_IFDIR if is_dir else stat_module.S_IFREG
        return DeviceStat(mode=kind | bits, size=0 if is_dir else st.st_size, mtime=int(st.st_mtime))

    def exists(self, device_path: str) -> bool:
        return self.stat(device_path) is not None

    def is_executable(self, device_path: str) -> bool:
        st = self.stat(device_path)
        return st is not None and st.is_file and bool(st.permissions & 0o111)

    def listdir(self, device_path: str) -> list[tuple[str, DeviceStat]]:
        """Entries of a directory, sorted by name (entries that escape are left out)."""
        host = self.resolve(device_path)
        if not host.is_dir():
            raise NotADirectoryError(device_path)
        norm = self.device_path_of(host)
        entries: list[tuple[str, DeviceStat]] = []
        for name in sorted(os.listdir(host)):
            if norm == "/" and name == _META_DIR:
                continue
            try:
                st = self.stat(posixpath.join(norm, name))
            except SandboxError:
                continue
            if st is not None:
                entries.append((name, st))
        return entries

    def device_text(self, text: str) -> str:
        """`text` with every host path inside the root written as the device path."""
        for prefix in self._host_prefixes:
            text = text.replace(prefix + "/", "/").replace(prefix, "/")
        return text

    def free_bytes(self) -> int | None:
        """What the quota leaves free (None when there is no quota)."""
        if self.quota_bytes is None:
            return None
        return max(0, self.quota_bytes - self.usage_bytes())

    def check_space(self, more_bytes: int) -> None:
        """OSError(ENOSPC) when the root would hold more than its quota with `more_bytes` more."""
        if self.quota_bytes is not None and self.usage_bytes() + more_bytes > self.quota_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def usage_bytes(self) -> int:
        """Bytes stored on the phone (for df and the quota)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

    # -- changes -------------------------------------------------------------------------

    def mkdir(self, device_path: str, parents: bool = True) -> None:
        host = self.resolve(device_path)
        host.mkdir(parents=parents, exist_ok=parents)

    def open_read(self, device_path: str) -> BinaryIO:
        return open(self.resolve(device_path), "rb")

    def open_write(self, device_path: str, permissions: int = _DEFAULT_FILE_MODE) -> BinaryIO:
        """Create or truncate a file (parent folders as needed, like adb push)."""
        host = self.resolve(device_path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host = self.resolve(device_path)  # re-check now that the parents exist
        handle = open(host, "wb")
        self.set_mode(device_path, permissions)
        return handle

    def write_bytes(self, device_path: str, data: bytes, permissions: int = _DEFAULT_FILE_MODE) -> None:
        with self.open_write(device_path, permissions) as handle:
            handle.write(data)

    def remove(self, device_path: str, recursive: bool = False) -> None:
        """Remove a file (or a folder tree with recursive). FileNotFoundError if absent."""
        norm = self.normalize(device_path)
        if norm == "/":
            raise SandboxError("/: refusing to remove the root")
        self.resolve(posixpath.dirname(norm))  # the folder holding it must be inside the root
        link = self.root / norm.lstrip("/")
        if link.is_symlink():  # rm removes the link itself, never what it points to
            link.unlink()
            self._forget(norm)
            return
        host = self.resolve(device_path)
        if host == self.root:
            raise SandboxError(f"{device_path}: refusing to remove the root")
        if host.is_dir():
            if not recursive:
                raise IsADirectoryError(device_path)
            import shutil

            shutil.rmtree(host)
        else:
            host.unlink()
        self._forget(norm)
