"""Helpers for the emulator's tests: a small phone behind the adbd, two kinds of client, a tiny model.

FakePhone has EmulatedPhone's interface (the real SandboxFS, a handful of shell commands), so
the adbd tests are about the protocol, not the shell. RawClient sends ADB packets by hand;
adb_shell_client is a polite client that no one here wrote.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from adb_shell import constants
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.adb_message import AdbMessage, unpack
from adb_shell.auth.sign_cryptography import CryptographySigner

from mnv3bench.emulator.adbd.server import EmulatorServer
from mnv3bench.emulator.faults import DropConnection
from mnv3bench.emulator.sandbox import SandboxFS
from mnv3bench.locks import FileLock

PROPS = {"ro.product.name": "mnv3emu", "ro.product.model": "mnv3bench emulator", "ro.product.device": "mnv3emu"}


class FakePhone:
    """EmulatedPhone's interface: fs, props, faults, run_shell (a handful of commands), shutdown."""

    def __init__(self, root: Path, faults: frozenset[str] = frozenset()):
        self.fs = SandboxFS(root)
        self.props = dict(PROPS)
        self.faults = faults
        self.gate = threading.Event()  # "gated" waits for it between its two lines
        self.cancel_seen = threading.Event()
        self.shut_down = False

    def shutdown(self) -> None:
        self.shut_down = True

    def run_shell(self, command: str, write: Callable[[bytes], None], cancelled: threading.Event) -> int:
        word, _, rest = command.partition(" ")
        if word == "echo":
            write(rest.encode() + b"\n")
            return 0
        if word == "gated":
            write(b"first\n")
            self.gate.wait(10)
            write(b"second\n")
            return 0
        if word == "forever":  # prints, then runs until the host closes the stream
            write(b"running\n")
            if cancelled.wait(10):
                self.cancel_seen.set()
            return 130
        if word == "bytes":
            write(os.urandom(int(rest)))
            return 0
        if word == "drop":
            write(b"partial\n")
            raise DropConnection("fault drop-run")
        write(f"sh: {word}: not found\n".encode())
        return 127


def adb_shell_client(server: EmulatorServer, signer: CryptographySigner, **kw: float) -> AdbDeviceTcp:
    device = AdbDeviceTcp("127.0.0.1", server.port, default_transport_timeout_s=5.0)
    device.connect(rsa_keys=[signer], auth_timeout_s=kw.get("auth_timeout_s", 5.0))
    return device


class RawClient:
    """ADB packets by hand, for what a polite client never does."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, command: bytes, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.sock.sendall(AdbMessage(command, arg0, arg1, data).pack() + data)

    def recv_exact(self, size: int) -> bytes:
        buf = b""
        while len(buf) < size:
            chunk = self.sock.recv(size - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def read(self) -> tuple[bytes, int, int, bytes]:
        command, arg0, arg1, length, _ = unpack(self.recv_exact(24))
        return constants.WIRE_TO_ID[command], arg0, arg1, self.recv_exact(length) if length else b""

    def handshake(self, signer: CryptographySigner) -> tuple[int, int, bytes]:
        self.send(constants.CNXN, 0x01000001, 1 << 20, b"host::features=\0")
        cmd, kind, _, token = self.read()
        assert (cmd, kind, len(token)) == (constants.AUTH, constants.AUTH_TOKEN, 20)
        self.send(constants.AUTH, constants.AUTH_SIGNATURE, 0, signer.Sign(token))
        cmd, version, maxdata, banner = self.read()
        assert cmd == constants.CNXN
        return version, maxdata, banner

    def open(self, local_id: int, service: str) -> int:
        self.send(constants.OPEN, local_id, 0, service.encode() + b"\0")
        cmd, remote_id, arg1, _ = self.read()
        assert (cmd, arg1) == (constants.OKAY, local_id), cmd
        return remote_id

    def close(self) -> None:
        self.sock.close()


def server_still_serves(server: EmulatorServer, signer: CryptographySigner) -> None:
    device = adb_shell_client(server, signer)
    try:
        assert device.shell("echo alive") == "alive\n"
    finally:
        device.close()


def build_tiny_tflite(directory: Path) -> Path:
    """A small conv net at 32x32, converted with the real TF Lite converter (cached; several
    processes may ask at once: one builds, under a lock, and the others wait for it)."""
    path = directory / "tiny.tflite"
    with FileLock(directory / ".tiny.tflite.lock"):
        if not path.exists():
            import keras
            import tensorflow as tf

            model = keras.Sequential([
                keras.Input((32, 32, 3)),
                keras.layers.Conv2D(8, 3, activation="relu"),
                keras.layers.DepthwiseConv2D(3),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(4),
            ])
            partial = path.with_suffix(".partial")
            partial.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
            partial.replace(path)
    return path
