"""The device seam: what the runner, preflight and doctor use from a connected device.

device/adb.py's AdbDevice implements it over ADB directly (a phone, or the host emulator),
device/server_route.py's ServerDevice through a running adb server;
mnv3bench.testing.FakeDevice implements it in memory, for this project's tests and for
users' own. The errors are part of the contract, so callers need to know no transport:
- a command that outlives its deadline is not an error: ShellResult.timed_out is set and
  the output so far comes back;
- a link that dies (socket, USB or ADB protocol failure) raises DeviceLinkError, already
  worded for the user, whatever the transport raised underneath. Any other exception is
  a bug and propagates as one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from mnv3bench.errors import MnvError

# What to do after a DeviceLinkError, for every implementation.
RECONNECT_HINT = ("Check the cable or Wi-Fi and that `adb devices` (or the emulator) still shows the device; "
                  "finished trials are stored, so run the same command again with --resume.")

# push progress: (bytes sent so far, total bytes)
PushProgress = Callable[[int, int], None]


@dataclass
class ShellResult:
    output: str
    exit_code: int | None  # None when the command timed out or ended the shell itself
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class DeviceLinkError(MnvError):
    """The connection to the device died; `partial_output` holds what a command printed first."""

    def __init__(self, message: str, hint: str | None = None, *, partial_output: str = ""):
        super().__init__(message, hint)
        self.partial_output = partial_output


@runtime_checkable
class Device(Protocol):
    """A connected device. Calls are serialized: one shell or push at a time."""

    serial: str  # how the user named it: a USB serial or the HOST:PORT address
    transport_name: str  # "tcp" | "usb" | "adb-server": the route (shown by doctor, stored with each session)

    def shell(self, command: str, *, timeout_s: float = 60.0) -> ShellResult:
        """Run `command` in the device's shell with its exit status; see the module docstring for timeouts."""
        ...

    def push(self, local: Path, remote: str, progress: PushProgress | None = None, *, mode: int = 0o644) -> None:
        """Copy a host file to `remote` with permission bits `mode`."""
        ...

    def sha256(self, remote: str) -> str | None:
        """The sha256 of a file on the device, or None when it does not exist."""
        ...

    def close(self) -> None:
        """Close the connection; later calls raise DeviceLinkError."""
        ...
