"""One device interface over ADB (adb-shell): a phone by USB or TCP, or the host emulator.

adb-shell speaks the ADB protocol itself (no platform-tools server). Three of its sharp
edges are handled here rather than in every caller:
- `shell()` in adb-shell gives up after 10 s of silence; benchmark_model may print nothing
  for a minute. Each command gets read/transport timeouts longer than its own deadline,
  and the deadline is enforced here: on expiry the output so far comes back with
  timed_out=True and the connection is re-opened (closing it ends the device-side shell).
- The v1 `shell:` service reports no exit status, so an echo of `$?` behind a random
  marker is appended and stripped again.
- adb-shell's TCP transport spins until its read timeout when the peer hangs up, and may
  send packets partially on its non-blocking socket; `_TcpLink` fixes both.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import select
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adb_shell import exceptions as adb_exc
from adb_shell.adb_device import AdbDevice as _AdbShellDevice
from adb_shell.transport.tcp_transport import TcpTransport

from mnv3bench.device.protocol import (
    RECONNECT_HINT,
    Device,
    DeviceLinkError,
    PushProgress,
    ShellResult,
)
from mnv3bench.errors import MnvError, UsageError

try:
    from usb1 import USBError as _USBError
except ImportError:  # USB support is optional (adb-shell[usb])
    _USBError = None

if TYPE_CHECKING:
    from mnv3bench.device.profiles import DeviceProfile

Notify = Callable[[str], None]

DEFAULT_AUTH_TIMEOUT_S = 60.0  # time for a person to unlock the phone and tap "Allow"
_GRACE_S = 5.0  # adb-shell's own timeouts sit this far behind ours, so ours fire first
PUSH_SILENCE_TIMEOUT_S = 60.0


def _stderr_notify(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ConnectionLost(OSError):
    """The peer closed the TCP connection (recv returned nothing)."""



# Exceptions that mean the link is gone or garbled: translated into DeviceLinkError here,
# so no caller needs to know adb-shell, sockets or libusb. Anything else is a bug and propagates.
_LINK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # sockets, ConnectionLost, and TimeoutError
    adb_exc.AdbTimeoutError,
    adb_exc.TcpTimeoutException,
    adb_exc.UsbReadFailedError,
    adb_exc.UsbWriteFailedError,
    adb_exc.InvalidChecksumError,
    adb_exc.InvalidCommandError,
    adb_exc.InvalidResponseError,
    adb_exc.AdbConnectionError,
    adb_exc.AdbCommandFailureException,  # adbd answered FAIL: its side of the link is going away
) + ((_USBError,) if _USBError is not None else ())


class _TcpLink(TcpTransport):
    """adb-shell's TCP transport, with TCP_NODELAY, EOF detection, complete writes and abort()."""

    def connect(self, transport_timeout_s: float | None) -> None:
        super().connect(transport_timeout_s)
        # ADB's small request/answer packets otherwise wait on Nagle + delayed ACK:
        # measured ~44 ms per shell call without this, ~0.5 ms with it.
        if self._connection is not None:
            self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        conn = self._connection
        if conn is None:
            raise ConnectionLost("the connection is closed")
        readable, _, _ = select.select([conn], [], [], transport_timeout_s)
        if not readable:
            raise adb_exc.TcpTimeoutException(
                f"Reading from {self._host}:{self._port} timed out ({transport_timeout_s} seconds)")
        data = conn.recv(numbytes)
        if not data:
            raise ConnectionLost(f"{self._host}:{self._port} closed the connection")
        return data

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        conn = self._connection
        if conn is None:
            raise ConnectionLost("the connection is closed")
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [conn], [], transport_timeout_s)
            if not writable:
                raise adb_exc.TcpTimeoutException(
                    f"Sending to {self._host}:{self._port} timed out after {transport_timeout_s} seconds")
            sent = conn.send(view)
            view = view[sent:]
        return len(data)

    def abort(self) -> None:
        """Wake any thread blocked on this socket (shutdown, unlike close, does that)."""
        conn = self._connection
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ----------------------------------------------------------------------------- keys

def default_key_path() -> Path:
    env = os.environ.get("MNV3BENCH_ADBKEY")
    return Path(env).expanduser() if env else Path.home() / ".android" / "adbkey"


def key_path(keys_path: Path | None = None) -> Path:
    """The private key to sign with: the one given, else $MNV3BENCH_ADBKEY or ~/.android/adbkey."""
    return Path(keys_path).expanduser() if keys_path else default_key_path()


def load_signer(keys_path: Path | None = None, notify: Notify = _stderr_notify) -> Any:
    """The RSA signer for ADB auth, creating the platform-tools key pair when missing."""
    from adb_shell.auth.keygen import keygen, write_public_keyfile
    from adb_shell.auth.sign_cryptography import CryptographySigner

    path = key_path(keys_path)
    pub = Path(f"{path}.pub")
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            keygen(str(path))
            os.chmod(path, 0o600)
            notify(f"Created a new ADB key pair at {path} (+ .pub). The phone will ask to allow this computer.")
        elif not pub.exists():
            write_public_keyfile(str(path), str(pub))
        return CryptographySigner(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise MnvError(f"cannot use the ADB key {path}: {exc}",
                       "Check its permissions, or delete it (and its .pub) to have a new pair made; "
                       "MNV3BENCH_ADBKEY selects another key file.") from exc


# ----------------------------------------------------------------------------- addresses

def parse_address(address: str, default_port: int = 5555) -> tuple[str, int]:
    """"HOST:PORT", "HOST" (default_port) or "[v6]:PORT" -> (host, port)."""
    text = address.strip()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:\s]+)(?::(\d+))?", text)
    if not match:
        raise UsageError(f"bad ADB address {address!r}", "Write it as HOST:PORT, e.g. 192.168.1.20:5555.")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4) or default_port)
    if not 0 < port < 65536:
        raise UsageError(f"bad port in ADB address {address!r}", "Use a port between 1 and 65535.")
    return host, port


# ----------------------------------------------------------------------------- device

class AdbDevice:
    """The Device protocol (device/protocol.py) over ADB. Commands are serialized: one shell or push at a time."""

    def __init__(self, open_link: Callable[[], tuple[_AdbShellDevice, Any]], serial: str,
                 transport_name: str):
        self._open_link = open_link
        self.serial = serial
        self.transport_name = transport_name  # "tcp" | "usb"
        self._lock = threading.RLock()
        self._adb: _AdbShellDevice | None = None
        self._link: Any = None
        self._lost: str | None = None
        self._in_flight: threading.Event | None = None  # set when a timed-out command's read has ended
        self._adb, self._link = open_link()

    # -- connection state

    def _require(self) -> _AdbShellDevice:
        read_ended = self._in_flight
        if self._adb is None and read_ended is not None and read_ended.wait(_GRACE_S):
            self._reopen_after_timeout()
        if self._adb is None:
            raise DeviceLinkError(f"the connection to {self.serial} is closed" +
                                     (f" ({self._lost})" if self._lost else ""), RECONNECT_HINT)
        return self._adb

    def _drop(self, reason: str) -> None:
        self._lost = reason
        adb, self._adb = self._adb, None
        if adb is not None:
            try:
                adb.close()
            except Exception:  # closing a dead link may fail in many ways; it is closed either way
                pass

    def reconnect(self) -> None:
        with self._lock:
            self._drop("reconnecting")
            self._adb, self._link = self._open_link()
            self._lost = None

    def close(self) -> None:
        with self._lock:
            self._drop("closed")

    def __enter__(self) -> AdbDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shell

    def shell(self, command: str, *, timeout_s: float = 60.0) -> ShellResult:
        """Run `command`; never raises for a timeout (timed_out=True, partial output)."""
        with self._lock:
            adb = self._require()
            marker = f"MNV3RC{secrets.token_hex(4)}"
            full = f"{command.rstrip().rstrip(';')}; echo {marker} $?"
            chunks: queue.Queue[tuple[str, Any]] = queue.Queue()
            read_ended = threading.Event()
            link_timeout = timeout_s + _GRACE_S

            def pump() -> None:
                try:
                    for chunk in adb.streaming_shell(full, transport_timeout_s=link_timeout,
                                                     read_timeout_s=link_timeout, decode=False):
                        chunks.put(("data", chunk))
                    chunks.put(("end", None))
                except BaseException as exc:  # handed to the caller's thread
                    chunks.put(("error", exc))
                finally:
                    read_ended.set()

            threading.Thread(target=pump, name=f"adb-shell {self.serial}", daemon=True).start()
            received = bytearray()
            deadline = time.monotonic() + timeout_s
            while True:
                remaining = deadline - time.monotonic()
                try:
                    kind, value = chunks.get(timeout=max(remaining, 0.0)) if remaining > 0 else chunks.get_nowait()
                except queue.Empty:
                    return self._timed_out(read_ended, bytes(received))
                if kind == "data":
                    received += value
                elif kind == "end":
                    return split_status_marker(decode_output(bytes(received)), marker)
                else:
                    exc = value
                    if isinstance(exc, _LINK_ERRORS):
                        partial = decode_output(bytes(received))
                        self._drop(str(exc))
                        raise DeviceLinkError(
                            f"lost the connection to {self.serial} while running `{short_command(command)}`: {exc}",
                            RECONNECT_HINT, partial_output=partial) from exc
                    raise exc

    def _timed_out(self, read_ended: threading.Event, received: bytes) -> ShellResult:
        # Closing the connection ends the device-side shell (adbd hangs up its process);
        # a fresh connection keeps the device usable for the caller's clean-up (pkill).
        link = self._link
        if hasattr(link, "abort"):
            link.abort()
        self._drop("command timed out")
        # While the read is in flight (libusb has no abort), opening the device would close
        # the handle under it: reconnect once it has ended, here or in _require. Recorded
        # before waiting, so a Ctrl-C in the wait leaves it known. An Event, not Thread.join:
        # CPython before 3.13 marks a running thread stopped when Ctrl-C interrupts join().
        self._in_flight = read_ended
        self._lost = "command timed out; a read is still in flight"
        if read_ended.wait(5.0):
            self._reopen_after_timeout()
        return ShellResult(output=decode_output(received), exit_code=None, timed_out=True)

    def _reopen_after_timeout(self) -> None:
        self._in_flight = None
        try:
            self._adb, self._link = self._open_link()
            self._lost = None
        except MnvError as exc:
            self._lost = f"reconnect after a timeout failed: {exc.message}"

    # -- files

    def push(self, local: Path, remote: str, progress: PushProgress | None = None, *, mode: int = 0o644) -> None:
        """Copy a host file to the device; progress(sent_bytes, total_bytes)."""
        local = Path(local)
        try:
            total = local.stat().st_size
        except OSError as exc:
            raise UsageError(f"cannot read {local}: {exc.strerror or exc}", "Check the path.") from exc
        sent = 0

        def on_chunk(_path: str, nbytes: int, _total: int) -> None:
            nonlocal sent
            sent += nbytes
            if progress is not None:
                progress(sent, total)

        with self._lock:
            adb = self._require()
            try:
                adb.push(str(local), remote, st_mode=0o100000 | mode, progress_callback=on_chunk,
                         transport_timeout_s=PUSH_SILENCE_TIMEOUT_S, read_timeout_s=PUSH_SILENCE_TIMEOUT_S)
            except adb_exc.PushFailedError as exc:
                raise MnvError(f"the device refused the push of {local.name} to {remote}: {_push_reason(exc)}",
                               "Check free space (`mnv3bench doctor`) and that the folder is writable "
                               "(/data/local/tmp is, for the shell user).") from exc
            except _LINK_ERRORS as exc:
                self._drop(str(exc))
                raise DeviceLinkError(
                    f"lost the connection to {self.serial} while pushing {local.name} ({sent} of {total} bytes sent): {exc}",
                    RECONNECT_HINT) from exc

    def sha256(self, remote: str) -> str | None:
        """The file's sha256 on the device, or None when it does not exist."""
        return remote_sha256(self, remote)


def remote_sha256(device: Device, remote: str) -> str | None:
    """sha256sum on the device (either route): the hash, or None when the file does not exist."""
    result = device.shell(f"sha256sum {shlex.quote(remote)}", timeout_s=120.0)
    if result.exit_code == 127 and "not found" in result.output and "sha256sum" in result.output:
        # Without sha256sum every model would look missing and every push "damaged".
        raise MnvError(f"{device.serial} has no sha256sum, which mnv3bench needs to check pushed models",
                       "Use Android 8 or newer (its toybox has sha256sum), or install busybox "
                       "on the phone and link sha256sum into /system/xbin.")
    if result.exit_code != 0:
        return None
    match = re.match(r"\s*([0-9a-fA-F]{64})\b", result.output)
    return match.group(1).lower() if match else None


def _push_reason(exc: adb_exc.PushFailedError) -> str:
    raw = exc.args[0] if exc.args else exc
    if isinstance(raw, (bytes, bytearray)):
        return raw.decode("utf-8", "replace")
    return str(raw)


def decode_output(data: bytes) -> str:
    # Real adbd's v1 shell runs in a pty and turns \n into \r\n.
    return data.decode("utf-8", "replace").replace("\r\n", "\n")


def short_command(command: str, limit: int = 80) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."


def split_status_marker(text: str, marker: str) -> ShellResult:
    at = text.rfind(marker)
    if at < 0:  # the command ended the shell itself (e.g. `exit`), so no status
        return ShellResult(output=text, exit_code=None, timed_out=False)
    match = re.match(r" (-?\d+)", text[at + len(marker):])
    exit_code = int(match.group(1)) if match else None
    return ShellResult(output=text[:at], exit_code=exit_code, timed_out=False)


# ----------------------------------------------------------------------------- connect

def connect(profile: DeviceProfile | None = None, *, adb_address: str | None = None, serial: str | None = None,
            keys_path: Path | None = None, connect_timeout_s: float = 10.0,
            auth_timeout_s: float = DEFAULT_AUTH_TIMEOUT_S, notify: Notify = _stderr_notify) -> AdbDevice:
    """Open an ADB connection: TCP with adb_address (or $MNV3BENCH_ADB), else USB (serial or the first)."""
    # $MNV3BENCH_ADB is a default for TCP; an explicit --serial (USB) overrides it.
    address = adb_address or (None if serial else os.environ.get("MNV3BENCH_ADB")) or None
    if address and serial:
        raise UsageError("both --adb and --serial given", "Use --adb HOST:PORT for TCP or --serial for USB, not both.")
    signer = load_signer(keys_path, notify)
    if address:
        host, port = parse_address(address)
        opener = lambda: _open_tcp(host, port, signer, connect_timeout_s, auth_timeout_s, notify)  # noqa: E731
        return AdbDevice(opener, serial=f"{host}:{port}", transport_name="tcp")
    if profile is not None and profile.emulated:
        raise UsageError(f"profile '{profile.name}' is the host emulator: it has no USB device",
                         "Give --adb 127.0.0.1:PORT of a running `mnv3bench emulator serve`, "
                         "or let the command start one (omit --adb and --serial).")
    opener = lambda: _open_usb(serial, signer, connect_timeout_s, auth_timeout_s, notify)  # noqa: E731
    return AdbDevice(opener, serial=serial or "usb", transport_name="usb")


def _auth_waiter(notify: Notify, auth_timeout_s: float, where: str) -> tuple[Callable[[Any], None], list[bool]]:
    asked: list[bool] = []

    def on_prompt(_device: Any) -> None:
        asked.append(True)
        notify(f"Waiting up to {auth_timeout_s:.0f} s for {where} to accept this computer: unlock the phone and tap "
               "'Allow' on the 'Allow USB debugging?' prompt (tick 'Always allow from this computer').")

    return on_prompt, asked


def _auth_failed(where: str, key_hint: str) -> MnvError:
    return MnvError(f"{where} did not accept this computer's ADB key",
                    f"Unlock the phone, tap 'Allow' on the 'Allow USB debugging?' prompt and run again; "
                    f"if no prompt appears, revoke USB debugging authorizations in Developer options and retry. "
                    f"{key_hint}")


def _open_tcp(host: str, port: int, signer: Any, connect_timeout_s: float, auth_timeout_s: float,
              notify: Notify) -> tuple[_AdbShellDevice, _TcpLink]:
    where = f"{host}:{port}"
    link = _TcpLink(host, port)
    adb = _AdbShellDevice(link, default_transport_timeout_s=connect_timeout_s)
    on_prompt, asked = _auth_waiter(notify, auth_timeout_s, where)
    try:
        adb.connect(rsa_keys=[signer], transport_timeout_s=connect_timeout_s, auth_timeout_s=auth_timeout_s,
                    read_timeout_s=connect_timeout_s, auth_callback=on_prompt)
    except ConnectionRefusedError as exc:
        raise MnvError(f"nothing accepts ADB connections at {where} (connection refused)",
                       "Connect the phone by USB and run `adb tcpip 5555`, then use --adb PHONE_IP:5555; "
                       "for the emulator, start `mnv3bench emulator serve` and use the address it prints "
                       "(or omit --adb with --device emulator).") from exc
    except adb_exc.DeviceAuthError as exc:
        raise _auth_failed(where, f"Key: {default_key_path()}.") from exc
    except (socket.timeout, TimeoutError, adb_exc.TcpTimeoutException, adb_exc.AdbTimeoutError) as exc:
        adb.close()
        if asked:
            raise _auth_failed(where, "The prompt was not accepted in time.") from exc
        raise MnvError(f"no ADB answer from {where} within {connect_timeout_s:.0f} s",
                       "Check the IP address and that the phone is on the same network with ADB over TCP "
                       "enabled (`adb tcpip 5555` while on USB).") from exc
    except ConnectionLost as exc:
        adb.close()
        if asked:
            raise _auth_failed(where, "The device closed the connection after the key was offered.") from exc
        raise MnvError(f"{where} closed the ADB connection during the handshake",
                       "Check the device's ADB authorization: it refused this computer "
                       "(the emulator trusts only the keys it was started with).") from exc
    except OSError as exc:
        raise MnvError(f"cannot reach {where}: {exc.strerror or exc}",
                       "Check the address, the network, and that ADB over TCP is enabled on the phone.") from exc
    except (adb_exc.InvalidCommandError, adb_exc.InvalidResponseError, adb_exc.InvalidChecksumError) as exc:
        adb.close()
        if _STLS in str(exc) or str(_STLS_ID) in str(exc):
            raise MnvError(f"{where} asks for TLS (STLS): it is Android 11+ Wireless debugging, which mnv3bench's "
                           "ADB client does not speak",
                           "Connect the phone by USB once and run `adb tcpip 5555`, then use "
                           "--adb PHONE_IP:5555 (plain ADB over TCP); or pair it with platform-tools "
                           "(`adb pair`, `adb connect`) and reach it through the adb server route.") from exc
        raise MnvError(f"{where} does not speak ADB ({exc})",
                       "Check the port: a phone's ADB over TCP listens on 5555 after `adb tcpip 5555`; "
                       "`mnv3bench emulator serve` prints its own address.") from exc
    return adb, link


_STLS = "STLS"  # Wireless debugging's answer to CNXN: switch to TLS
_STLS_ID = int.from_bytes(b"STLS", "little")


def _open_usb(serial: str | None, signer: Any, connect_timeout_s: float, auth_timeout_s: float,
              notify: Notify) -> tuple[_AdbShellDevice, Any]:
    try:
        import usb1
        from adb_shell.adb_device import AdbDeviceUsb
    except ImportError as exc:
        raise MnvError("USB support is not installed", "Install it with pip install 'adb-shell[usb]' (needs libusb), "
                       "or use TCP: `adb tcpip 5555` then --adb PHONE_IP:5555.") from exc
    where = f"USB device {serial}" if serial else "the USB device"
    try:
        adb = AdbDeviceUsb(serial=serial, default_transport_timeout_s=connect_timeout_s)
    except adb_exc.UsbDeviceNotFoundError as exc:
        raise MnvError(f"no Android device in USB debugging mode found{f' with serial {serial}' if serial else ''}",
                       "Plug the phone in, enable Developer options > USB debugging, and check the serial "
                       "(`mnv3bench devices` lists what libusb sees); or use --adb HOST:PORT.") from exc
    except adb_exc.InvalidTransportError as exc:
        raise MnvError("USB support is not installed", "Install it with pip install 'adb-shell[usb]'.") from exc
    except usb1.USBError as exc:
        raise _usb_error(where, exc) from exc
    on_prompt, asked = _auth_waiter(notify, auth_timeout_s, where)
    try:
        adb.connect(rsa_keys=[signer], transport_timeout_s=connect_timeout_s, auth_timeout_s=auth_timeout_s,
                    read_timeout_s=connect_timeout_s, auth_callback=on_prompt)
    except usb1.USBError as exc:
        raise _usb_error(where, exc) from exc
    except adb_exc.DeviceAuthError as exc:
        raise _auth_failed(where, f"Key: {default_key_path()}.") from exc
    except (adb_exc.UsbReadFailedError, adb_exc.UsbWriteFailedError, adb_exc.AdbTimeoutError) as exc:
        adb.close()
        cause = getattr(exc, "usb_error", None) or (exc.args[1] if len(exc.args) > 1 else None)
        if isinstance(cause, usb1.USBError) and not isinstance(cause, usb1.USBErrorTimeout):
            raise _usb_error(where, cause) from exc
        if asked:
            raise _auth_failed(where, "The prompt was not accepted in time.") from exc
        raise MnvError(f"{where} did not answer the ADB handshake",
                       "Unplug and replug the phone; if platform-tools' adb is running, `adb kill-server` first.") from exc
    return adb, None


def _usb_error(where: str, exc: BaseException) -> MnvError:
    name = type(exc).__name__
    if "Access" in name or "Busy" in name:
        return MnvError(f"{where} is busy or not accessible ({name}): another program, usually the platform-tools "
                        "adb server, holds it",
                        "Run `adb kill-server` and try again, or use TCP: `adb tcpip 5555`, then "
                        "--adb PHONE_IP:5555. On Linux, a udev rule (android-udev-rules) grants access without root.")
    return MnvError(f"USB error talking to {where}: {exc}", "Replug the cable; try another port or cable.")


def list_usb_serials() -> tuple[list[str], str | None]:
    """Serials of ADB devices libusb sees, and a note when USB could not be scanned."""
    try:
        from adb_shell.transport.usb_transport import UsbTransport
    except ImportError:
        return [], "USB scan skipped: adb-shell's usb extra (libusb1) is not installed"
    if UsbTransport is None:
        return [], "USB scan skipped: libusb1 is not installed"
    try:
        serials = []
        for transport in UsbTransport.find_all_adb_devices():
            try:
                serials.append(str(transport.serial_number))
            except Exception as exc:  # a device we may not open (permissions); still worth listing
                serials.append(f"? ({type(exc).__name__}: no permission?)")
        return serials, None
    except Exception as exc:  # libusb missing or no USB bus (containers): not an error for listing
        return [], f"USB scan skipped: {exc}"
