"""The Device protocol through a running adb server (Android Studio's, platform-tools', a farm's).

Every Android developer already runs an adb server, and it holds the USB phones: going
through it leaves the user's IDE working, and reaches what `adb connect` attached (a phone
on Wi-Fi, DeviceFarmer/STF, AWS Device Farm, Android device streaming) by its serial.

The server protocol is spoken by adbutils (openatx/adbutils): the client connection,
`host:devices-l`, `host:tport:serial:` transports and sync push. Two of its behaviours are
not what a measurement needs, so this module works around them:
- its shell() returns nothing on a timeout and raises when the command ends the shell; here
  a command gets the same deadline semantics as the direct route (partial output,
  timed_out=True), and the exit status behind a random marker;
- its connection, when no server answers, starts one (`adb start-server`) as a side effect;
  `find_server` checks for a server first with a plain socket, so mnv3bench never starts one.
Each command uses its own connection to the server, so a timeout needs no reconnect: closing
the connection makes the server close the device-side shell.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mnv3bench.device.adb import (
    decode_output,
    parse_address,
    remote_sha256,
    short_command,
    split_status_marker,
)
from mnv3bench.device.protocol import (
    RECONNECT_HINT,
    DeviceLinkError,
    PushProgress,
    ShellResult,
)
from mnv3bench.errors import MnvError, UsageError

if TYPE_CHECKING:
    import adbutils

DEFAULT_SERVER_PORT = 5037
ROUTE_NAME = "adb-server"
_PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ServerDeviceEntry:
    """One line of `adb devices -l`: what the server knows of a device."""

    serial: str
    state: str  # "device" when usable; "offline", "unauthorized", ...
    model: str
    codename: str  # ro.product.device, as the server reports it


def default_server_address() -> ServerAddress:
    """Where platform-tools' own client looks: $ANDROID_ADB_SERVER_HOST/PORT, else 127.0.0.1:5037."""
    host = os.environ.get("ANDROID_ADB_SERVER_HOST") or "127.0.0.1"
    port_text = os.environ.get("ANDROID_ADB_SERVER_PORT") or str(DEFAULT_SERVER_PORT)
    try:
        port = int(port_text)
    except ValueError as exc:
        raise UsageError(f"ANDROID_ADB_SERVER_PORT={port_text!r} is not a port number",
                         "Set it to the adb server's port (5037 by default), or unset it.") from exc
    return ServerAddress(host, port)


def server_answers(address: ServerAddress, timeout_s: float = _PROBE_TIMEOUT_S) -> bool:
    """True when an adb server answers `host:version` at `address` (never starts one)."""
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout_s) as conn:
            conn.sendall(b"000chost:version")
            return conn.recv(4) == b"OKAY"
    except OSError:
        return False


def find_server(explicit: str | None = None) -> ServerAddress | None:
    """The adb server to use: `explicit` (--adb-server HOST:PORT, which must answer), else the
    default one when it is running, else None."""
    if explicit:
        host, port = parse_address(explicit, default_port=DEFAULT_SERVER_PORT)
        address = ServerAddress(host, port)
        if not server_answers(address):
            raise MnvError(f"no adb server answers at {address}",
                           "Start it with `adb start-server` (ANDROID_ADB_SERVER_PORT picks its port), "
                           "check --adb-server, or use --direct to talk to the device without a server.")
        return address
    address = default_server_address()
    return address if server_answers(address) else None


def _client(address: ServerAddress) -> adbutils.AdbClient:
    import adbutils

    return adbutils.AdbClient(host=address.host, port=address.port, socket_timeout=30)


def list_server_devices(address: ServerAddress) -> list[ServerDeviceEntry]:
    """Every device the server knows, in any state."""
    import adbutils

    try:
        infos = _client(address).list(extended=True)
    except (adbutils.AdbError, OSError) as exc:
        raise MnvError(f"the adb server at {address} did not list its devices: {exc}",
                       "Check `adb devices`; restart the server with `adb kill-server; adb start-server`.") from exc
    return [ServerDeviceEntry(i.serial, i.state, i.tags.get("model", ""), i.tags.get("device", "")) for i in infos]


def pick_serial(address: ServerAddress, serial: str | None) -> str:
    """The serial to use: the given one (which must be ready), or the only ready device."""
    entries = list_server_devices(address)
    if serial:
        entry = next((e for e in entries if e.serial == serial), None)
        if entry is None:
            known = ", ".join(e.serial for e in entries) or "none"
            raise MnvError(f"the adb server at {address} has no device {serial} (it has: {known})",
                           f"Check the serial with `mnv3bench devices`; attach a device on the network with "
                           f"`adb connect {serial if ':' in serial else 'HOST:PORT'}`.")
        _require_ready(entry, address)
        return serial
    ready = [e for e in entries if e.state == "device"]
    if len(ready) == 1:
        return ready[0].serial
    if not ready:
        states = ", ".join(f"{e.serial} ({e.state})" for e in entries)
        raise MnvError(f"the adb server at {address} has no device ready" + (f": {states}" if states else ""),
                       "Plug a phone in with USB debugging on (and accept the prompt), or attach one with "
                       "`adb connect HOST:PORT`; `mnv3bench devices` shows what the server sees.")
    raise UsageError(f"the adb server at {address} has {len(ready)} devices: {', '.join(e.serial for e in ready)}",
                     "Pick one with --serial SERIAL (`mnv3bench devices` shows which profile each matches).")


def _require_ready(entry: ServerDeviceEntry, address: ServerAddress) -> None:
    if entry.state == "device":
        return
    fixes = {"unauthorized": "Unlock the phone and tap 'Allow' on the 'Allow USB debugging?' prompt",
             "offline": "Replug the phone, or `adb disconnect` and `adb connect` it again"}
    raise MnvError(f"{entry.serial} is {entry.state} on the adb server at {address}",
                   f"{fixes.get(entry.state, 'Check it with `adb devices -l`')}, then run again.")


class ServerDevice:
    """The Device protocol (device/protocol.py) through an adb server. One command at a time."""

    transport_name = ROUTE_NAME

    def __init__(self, address: ServerAddress, serial: str):
        self.address = address
        self.serial = serial
        self._client = _client(address)
        self._device = self._client.device(serial)
        self._closed = False

    def _require(self) -> adbutils.AdbDevice:
        if self._closed:
            raise DeviceLinkError(f"the connection to {self.serial} is closed", RECONNECT_HINT)
        return self._device

    def _link_lost(self, doing: str, exc: BaseException, partial: str = "") -> DeviceLinkError:
        return DeviceLinkError(f"lost the connection to {self.serial} (through the adb server at {self.address}) "
                               f"while {doing}: {exc}",
                               RECONNECT_HINT, partial_output=partial)

    def _open(self, service: str, timeout_s: float) -> adbutils.AdbConnection:
        conn = self._require().open_transport(timeout=timeout_s)
        # Small request/answer packets otherwise wait on Nagle + delayed ACK.
        conn.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.send_command(service)
        conn.check_okay()
        return conn

    def shell(self, command: str, *, timeout_s: float = 60.0) -> ShellResult:
        import adbutils
        import adbutils.errors

        marker = f"MNV3RC{secrets.token_hex(4)}"
        full = f"{command.rstrip().rstrip(';')}; echo {marker} $?"
        deadline = time.monotonic() + timeout_s
        received = bytearray()
        try:
            conn = self._open(f"shell:{full}", timeout_s)
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise self._link_lost(f"starting `{short_command(command)}`", exc) from exc
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ShellResult(decode_output(bytes(received)), exit_code=None, timed_out=True)
                conn.conn.settimeout(remaining)
                try:
                    chunk = conn.conn.recv(65536)
                except (socket.timeout, TimeoutError):
                    return ShellResult(decode_output(bytes(received)), exit_code=None, timed_out=True)
                except OSError as exc:
                    raise self._link_lost(f"running `{short_command(command)}`", exc,
                                          decode_output(bytes(received))) from exc
                if not chunk:
                    break
                received += chunk
        finally:
            conn.close()  # on a timeout this makes the server end the device-side shell
        result = split_status_marker(decode_output(bytes(received)), marker)
        if result.exit_code is None and not self._still_attached():
            # The server closes our stream when the device goes away: not the command's own exit.
            raise self._link_lost(f"running `{short_command(command)}`", ConnectionError("the device went away"),
                                  result.output)
        return result

    def _still_attached(self) -> bool:
        import adbutils
        import adbutils.errors

        try:
            return self._device.get_state() == "device"
        except (adbutils.AdbError, OSError, EOFError):
            return False

    def push(self, local: Path, remote: str, progress: PushProgress | None = None, *, mode: int = 0o644) -> None:
        import adbutils
        import adbutils.errors

        local = Path(local)
        try:
            total = local.stat().st_size
            source = local.open("rb")
        except OSError as exc:
            raise UsageError(f"cannot read {local}: {exc.strerror or exc}", "Check the path.") from exc
        reader = _CountingReader(source, total, progress)
        try:
            self._require().sync.push(reader, remote, mode=mode)
        except adbutils.errors.AdbSyncError as exc:
            raise MnvError(f"the device refused the push of {local.name} to {remote}: {exc}",
                           "Check free space (`mnv3bench doctor`) and that the folder is writable "
                           "(/data/local/tmp is, for the shell user).") from exc
        except adbutils.AdbError as exc:
            if str(exc).startswith("FAIL"):
                raise MnvError(f"the device refused the push of {local.name} to {remote}: {exc}",
                               "Check free space and that the folder is writable.") from exc
            raise self._link_lost(f"pushing {local.name} ({reader.sent} of {total} bytes sent)", exc) from exc
        except (OSError, EOFError) as exc:
            raise self._link_lost(f"pushing {local.name} ({reader.sent} of {total} bytes sent)", exc) from exc
        finally:
            source.close()

    def sha256(self, remote: str) -> str | None:
        return remote_sha256(self, remote)

    def close(self) -> None:
        self._closed = True


class _CountingReader:
    """A file for adbutils' sync push that reports progress as it is read."""

    def __init__(self, source: IO[bytes], total: int, progress: PushProgress | None):
        self._source, self._total, self._progress = source, total, progress
        self.sent = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.sent += len(data)
        if data and self._progress is not None:
            self._progress(self.sent, self._total)
        return data


def connect_through_server(address: ServerAddress, serial: str | None) -> ServerDevice:
    return ServerDevice(address, pick_serial(address, serial))
