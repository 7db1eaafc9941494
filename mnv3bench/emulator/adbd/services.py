"""The services an OPEN can ask for: `shell:` (v1, output only) and `sync:` (v1 files).

`services_for(phone)` is the server's lookup from a service name to the function that runs
it on a stream. What a command does is the phone's business (`ServicePhone.run_shell`, its
sandboxed `fs`); a service only turns stream bytes into calls on the phone and back.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from adb_shell import constants

from mnv3bench.emulator.adbd.connection import (
    AbortConnection,
    Service,
    Stream,
    StreamClosed,
)
from mnv3bench.emulator.faults import DropConnection
from mnv3bench.emulator.sandbox import SandboxError, SandboxFS
from mnv3bench.emulator.sysfs import VirtualSysfs
from mnv3bench.errors import MnvError

# No shell_v2 / stat_v2 / sendrecv_v2: the official client then falls back to `shell:`
# and sync v1, which is what we implement.
FEATURES: tuple[str, ...] = ()
# Sync protocol limits, as in AOSP's file_sync_protocol.h.
SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024
# A push checks the root's quota again after this many bytes (and once more before the file
# appears): between checks it may run over by at most this much, on disk and only until
# the push fails and its temporary file is removed.
QUOTA_CHECK_BYTES = 1024 * 1024
SYNC_WIRE = constants.FILESYNC_ID_TO_WIRE


class ServicePhone(Protocol):
    """What the services need from the phone (EmulatedPhone in phone.py)."""

    fs: SandboxFS            # resolve, stat, listdir, set_mode; raises SandboxError
    faults: frozenset[str]   # "drop-push" cuts the link during a push

    def run_shell(self, command: str, write: Callable[[bytes], None], cancelled: threading.Event) -> int:
        """Run a command line, writing its output as produced; may raise DropConnection."""


def services_for(phone: ServicePhone) -> Callable[[str], Service | None]:
    """The lookup a server gives its connections: service name -> what runs it, or None."""

    def lookup(service: str) -> Service | None:
        if service.startswith("shell:"):
            return lambda stream: shell_service(phone, stream)
        if service == "sync:":
            return lambda stream: sync_service(phone, stream)
        return None

    return lookup


def shell_service(phone: ServicePhone, stream: Stream) -> None:
    """`shell:<cmd>` v1: the command's output as it is produced, then CLSE (no exit status)."""
    command = stream.service[len("shell:") :]
    if not command.strip():
        stream.write(b"mnv3bench emulator: no interactive shell; run `adb shell <command>`.\n")
        return
    threading.Thread(target=stream.discard_input, name=f"{stream.service[:20]}-stdin", daemon=True).start()

    def write(data: bytes) -> None:
        if data and not stream.cancelled.is_set():
            try:
                stream.write(data)
            except StreamClosed:
                stream.cancelled.set()  # the phone sees `cancelled` and stops

    try:
        phone.run_shell(command, write, stream.cancelled)
    except DropConnection as exc:  # a fault: the link dies as a phone's would
        raise AbortConnection(str(exc) or type(exc).__name__) from exc


def sync_service(phone: ServicePhone, stream: Stream) -> None:
    session = SyncSession(phone, stream)
    try:
        session.run()
    finally:
        if not stream.cancelled.is_set():
            try:
                session.flush()
            except StreamClosed:
                pass


class SyncSession:
    """sync v1 over one stream: requests are a byte stream across WRTE payloads."""

    def __init__(self, phone: ServicePhone, stream: Stream):
        self.stream = stream
        self.phone = phone
        self._out = bytearray()

    # Replies are batched into WRTEs of up to maxdata, flushed when a reply is complete.
    def reply(self, sync_id: bytes, *fields: int, data: bytes = b"") -> None:
        self._out += struct.pack(f"<I{len(fields)}I", SYNC_WIRE[sync_id], *fields) + data
        if len(self._out) >= self.stream.max_write:
            self.flush()

    def flush(self) -> None:
        if self._out:
            out, self._out = bytes(self._out), bytearray()
            self.stream.write(out)

    def fail(self, message: str) -> None:
        # Whatever an error said, the client sees device paths only, never the host's.
        encoded = self.phone.fs.device_text(message).encode()
        self.reply(constants.FAIL, len(encoded), data=encoded)
        self.flush()

    def run(self) -> None:
        while True:
            sync_id, length = struct.unpack("<4sI", self.stream.read(8))
            if sync_id == constants.QUIT:
                return
            if sync_id not in (constants.SEND, constants.RECV, constants.STAT, constants.LIST):
                self.fail(f"unknown sync command {sync_id!r}")
                return
            if length > SYNC_PATH_MAX:
                self.fail(f"path too long ({length} bytes, at most {SYNC_PATH_MAX})")
                return
            arg = self.stream.read(length).decode("utf-8", errors="replace")
            if sync_id == constants.SEND:
                if not self.send(arg):
                    return
            elif sync_id == constants.RECV:
                self.recv(arg)
            elif sync_id == constants.STAT:
                self.stat(arg)
            else:
                self.list(arg)
            self.flush()

    def _resolve(self, device_path: str) -> Path:
        return self.phone.fs.resolve(device_path)

    def stat(self, device_path: str) -> None:
        # The phone's view (permission bits kept by the sandbox); zeros mean "no such file".
        try:
            st = self.phone.fs.stat(device_path)
        except (SandboxError, OSError):
            st = None
        if st is None:
            self.reply(constants.STAT, 0, 0, 0)
        else:
            self.reply(constants.STAT, st.mode & 0xFFFFFFFF, st.size & 0xFFFFFFFF, st.mtime & 0xFFFFFFFF)

    def list(self, device_path: str) -> None:
        # Like readdir on a phone: "." and ".." first, then the entries; DONE even on error.
        try:
            own = self.phone.fs.stat(device_path)
            entries = self.phone.fs.listdir(device_path) if own is not None and own.is_dir else []
        except (SandboxError, OSError):
            own, entries = None, []
        if own is not None and own.is_dir:
            parent = self.phone.fs.stat(device_path.rstrip("/") + "/..") or own
            entries = [(".", own), ("..", parent), *entries]
        for name, st in entries:
            encoded = name.encode("utf-8", errors="surrogateescape")
            self.reply(constants.DENT, st.mode & 0xFFFFFFFF, st.size & 0xFFFFFFFF, st.mtime & 0xFFFFFFFF,
                       len(encoded), data=encoded)
        self.reply(constants.DONE, 0, 0, 0, 0)

    def recv(self, device_path: str) -> None:
        try:
            handle = open(self._resolve(device_path), "rb")
        except (SandboxError, OSError) as exc:
            self.fail(_reason(exc))
            return
        with handle:
            while True:
                try:
                    chunk = handle.read(SYNC_DATA_MAX)
                except OSError as exc:
                    self.fail(_reason(exc))
                    return
                if not chunk:
                    break
                self.reply(constants.DATA, len(chunk), data=chunk)
        self.reply(constants.DONE, 0)

    def send(self, spec: str) -> bool:
        """SEND path,mode; DATA...; DONE mtime. The file appears, atomically, only on DONE.

        Returns False when the stream should end (a bad request)."""
        device_path, _, mode_text = spec.rpartition(",")
        if not device_path:
            device_path, mode_text = spec, ""
        try:
            mode = int(mode_text) if mode_text else 0o100644
        except ValueError:
            mode = 0o100644
        error: str | None = None
        target: Path | None = None
        tmp: Path | None = None
        handle = None
        try:
            if VirtualSysfs.is_virtual(self.phone.fs.normalize(device_path)):
                # /sys and /proc belong to the kernel: the shell user cannot create files there.
                raise PermissionError(13, "Permission denied")
            target = self._resolve(device_path)
            if target.is_dir():
                raise IsADirectoryError(21, "Is a directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.adbd-tmp")
            self.phone.fs.check_space(0)
            handle = open(tmp, "wb")
        except (SandboxError, OSError) as exc:
            error = f"couldn't create file: {_reason(exc)}"
        try:
            received = 0
            unchecked = 0  # bytes written since the last look at the quota
            while True:
                sync_id, length = struct.unpack("<4sI", self.stream.read(8))
                if sync_id == constants.DONE:
                    mtime = length
                    break
                if sync_id != constants.DATA:
                    self.fail(f"invalid data message {sync_id!r} during SEND")
                    return False
                if length > SYNC_DATA_MAX:
                    self.fail(f"data chunk of {length} bytes exceeds {SYNC_DATA_MAX}")
                    return False
                data = self.stream.read(length)
                received += length
                if handle is not None and error is None:
                    try:
                        unchecked += len(data)
                        if unchecked >= QUOTA_CHECK_BYTES:
                            handle.flush()
                            self.phone.fs.check_space(len(data))
                            unchecked = 0
                        handle.write(data)
                    except OSError as exc:
                        error = f"write failed: {_reason(exc)}"
                if "drop-push" in self.phone.faults and received > 0:
                    raise AbortConnection("fault drop-push: link lost during a push")
            if error is None and handle is not None and tmp is not None and target is not None:
                try:
                    handle.close()
                    # The whole file, now on disk, fits or fails (a file it replaces is freed).
                    replaced = target.stat().st_size if target.is_file() else 0
                    self.phone.fs.check_space(-replaced)
                    # adbd keeps only rwx bits (mode & 0777); the host file never gets
                    # setuid, sticky or world-writable bits from a client.
                    os.chmod(tmp, (stat.S_IMODE(mode) & 0o755) or 0o644)
                    os.utime(tmp, (mtime, mtime))
                    os.replace(tmp, target)
                    tmp = None
                    # The sandbox keeps the phone's permission bits (the host's may differ).
                    self.phone.fs.set_mode(device_path, (mode & 0o777) or 0o644)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:  # as the write itself would have failed on a phone
                        error = f"write failed: {_reason(exc)}"
                    else:
                        error = f"couldn't finish file: {_reason(exc)}"
                except SandboxError as exc:
                    error = f"couldn't finish file: {_reason(exc)}"
        finally:
            if handle is not None:
                handle.close()
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        if error is not None:
            self.fail(error)
        else:
            self.reply(constants.OKAY, 0)
        return True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MnvError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
