"""The emulated adbd against adb-shell, a client no one here wrote, and a raw packet client.

The phone behind the server is a small stand-in with the EmulatedPhone interface (the real
SandboxFS, a few shell commands), so these tests are about the protocol, not the shell.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from adb_shell import constants, exceptions
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.adb_message import AdbMessage
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner

from mnv3bench.device.adb import load_signer
from mnv3bench.emulator.adbd.auth import parse_android_pubkey
from mnv3bench.emulator.adbd.server import EmulatorServer
from mnv3bench.errors import UsageError
from tests.emulator.helpers import (
    FakePhone,
    RawClient,
    adb_shell_client,
    server_still_serves,
)


@pytest.fixture
def server(phone: FakePhone, host_key: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(phone, trusted_keys=[Path(str(host_key) + ".pub")]) as srv:
        yield srv


# --- handshake and auth --------------------------------------------------------------------


def test_refuses_non_loopback_hosts(phone: FakePhone) -> None:
    with pytest.raises(UsageError, match="loopback"):
        EmulatorServer(phone, host="0.0.0.0")


def test_handshake_banner_version_and_maxdata(server: EmulatorServer, signer: CryptographySigner) -> None:
    raw = RawClient(server.port)
    version, maxdata, banner = raw.handshake(signer)
    raw.close()
    assert version == 0x01000001
    assert maxdata == 1048576
    assert banner == b"device::ro.product.name=mnv3emu;ro.product.model=mnv3bench emulator;ro.product.device=mnv3emu;features="


def test_parses_the_android_public_key_keygen_writes(host_key: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(host_key.read_bytes(), password=None)
    parsed = parse_android_pubkey(Path(str(host_key) + ".pub").read_text())
    assert parsed.public_numbers() == private.public_key().public_numbers()


def test_untrusted_key_is_refused(server: EmulatorServer, tmp_path: Path) -> None:
    other = tmp_path / "other" / "adbkey"
    other.parent.mkdir()
    keygen(str(other))
    stranger = load_signer(other)
    device = AdbDeviceTcp("127.0.0.1", server.port, default_transport_timeout_s=2.0)
    # adb-shell signs, is offered a fresh token, sends its public key and waits for a
    # prompt nobody answers.
    with pytest.raises((exceptions.TcpTimeoutException, exceptions.DeviceAuthError, OSError)):
        device.connect(rsa_keys=[stranger], auth_timeout_s=0.5)
    device.close()
    with pytest.raises(exceptions.DeviceAuthError):
        AdbDeviceTcp("127.0.0.1", server.port).connect(rsa_keys=None)


def test_no_streams_before_auth(server: EmulatorServer) -> None:
    raw = RawClient(server.port)
    raw.send(constants.OPEN, 1, 0, b"shell:echo hi\0")
    with pytest.raises((EOFError, ConnectionResetError)):
        raw.read()  # the server hangs up on an unauthenticated OPEN
    raw.close()


# --- shell ----------------------------------------------------------------------------------


def test_shell_with_adb_shell(server: EmulatorServer, signer: CryptographySigner) -> None:
    device = adb_shell_client(server, signer)
    assert device.shell("echo hi there") == "hi there\n"
    assert device.shell("rm -rf /") == "sh: rm: not found\n"
    assert "no interactive shell" in device.shell("")
    big = device.shell("bytes 3000000", decode=False)  # > maxdata: several WRTEs
    assert len(big) == 3000000
    device.close()


def test_shell_output_streams_as_produced(server: EmulatorServer, signer: CryptographySigner, phone: FakePhone) -> None:
    device = adb_shell_client(server, signer)
    chunks = device.streaming_shell("gated", decode=True)
    assert next(chunks) == "first\n"  # arrives while the command is still running
    assert not phone.gate.is_set()
    phone.gate.set()
    assert "".join(chunks) == "second\n"
    device.close()


def test_host_closing_a_shell_stream_cancels_the_command(server: EmulatorServer, signer: CryptographySigner, phone: FakePhone) -> None:
    raw = RawClient(server.port)
    raw.handshake(signer)
    remote = raw.open(7, "shell:forever")
    cmd, _, _, data = raw.read()
    assert (cmd, data) == (constants.WRTE, b"running\n")
    raw.send(constants.OKAY, 7, remote)
    raw.send(constants.CLSE, 7, remote)
    assert raw.read()[:3] == (constants.CLSE, remote, 7)  # CLSE is answered with CLSE
    assert phone.cancel_seen.wait(5)
    raw.close()


def test_unknown_service_is_refused(server: EmulatorServer, signer: CryptographySigner) -> None:
    raw = RawClient(server.port)
    raw.handshake(signer)
    raw.send(constants.OPEN, 3, 0, b"reboot:\0")
    assert raw.read()[:3] == (constants.CLSE, 0, 3)
    raw.close()


def test_drop_connection_from_the_phone_kills_the_link(server: EmulatorServer, signer: CryptographySigner) -> None:
    device = adb_shell_client(server, signer)
    started = time.monotonic()
    with pytest.raises(ConnectionResetError):  # a reset, at once: no waiting for a timeout
        device.shell("drop", read_timeout_s=5)
    assert time.monotonic() - started < 2
    device.close()
    server_still_serves(server, signer)


# --- sync -----------------------------------------------------------------------------------


def test_a_pushed_mode_never_gives_the_host_file_setuid_or_world_write(server: EmulatorServer,
                                                                       signer: CryptographySigner, phone: FakePhone,
                                                                       tmp_path: Path) -> None:
    local = tmp_path / "x.bin"
    local.write_bytes(b"x")
    device = adb_shell_client(server, signer)
    device.push(str(local), "/data/local/tmp/x.bin", st_mode=0o104777)
    host_mode = phone.fs.resolve("/data/local/tmp/x.bin").stat().st_mode
    assert host_mode & 0o7777 == 0o755


def test_push_pull_stat_list_roundtrip(server: EmulatorServer, signer: CryptographySigner, phone: FakePhone, tmp_path: Path) -> None:
    payload = os.urandom(5 * 1024 * 1024 + 123)
    local = tmp_path / "model.tflite"
    local.write_bytes(payload)
    progress: list[tuple[str, int, int]] = []
    device = adb_shell_client(server, signer)
    device.push(str(local), "/data/local/tmp/mnv3bench/model.tflite", st_mode=0o100755, mtime=1_700_000_000,
                progress_callback=lambda path, n, total: progress.append((path, n, total)))
    assert sum(n for _, n, _ in progress) == len(payload)
    assert progress[-1][2] == len(payload)

    host_file = phone.fs.resolve("/data/local/tmp/mnv3bench/model.tflite")
    assert hashlib.sha256(host_file.read_bytes()).digest() == hashlib.sha256(payload).digest()

    mode, size, mtime = device.stat("/data/local/tmp/mnv3bench/model.tflite")
    assert (mode, size, mtime) == (0o100755, len(payload), 1_700_000_000)
    assert device.stat("/data/local/tmp/missing") == (0, 0, 0)

    names = {entry.filename.decode(): entry for entry in device.list("/data/local/tmp/mnv3bench")}
    assert set(names) == {".", "..", "model.tflite"}
    assert names["model.tflite"].size == len(payload)

    pulled = tmp_path / "pulled.tflite"
    device.pull("/data/local/tmp/mnv3bench/model.tflite", str(pulled))
    assert pulled.read_bytes() == payload
    device.close()


def test_push_that_escapes_the_sandbox_fails_cleanly(server: EmulatorServer, signer: CryptographySigner, phone: FakePhone, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tmp_dir = phone.fs.resolve("/data/local/tmp")
    tmp_dir.mkdir(parents=True)
    (tmp_dir / "link").symlink_to(outside)
    local = tmp_path / "x.bin"
    local.write_bytes(b"x" * 1000)
    device = adb_shell_client(server, signer)
    with pytest.raises(exceptions.PushFailedError, match="outside"):
        device.push(str(local), "/data/local/tmp/link/x.bin")
    assert list(outside.iterdir()) == []
    with pytest.raises(exceptions.AdbCommandFailureException):
        device.pull("/data/local/tmp/absent.bin", str(tmp_path / "absent.bin"))
    device.close()
    server_still_serves(server, signer)


def test_drop_push_fault_leaves_no_file(tmp_path: Path, host_key: Path, signer: CryptographySigner) -> None:
    phone = FakePhone(tmp_path / "phone", faults=frozenset({"drop-push"}))
    local = tmp_path / "model.tflite"
    local.write_bytes(os.urandom(300_000))
    with EmulatorServer(phone, trusted_keys=[Path(str(host_key) + ".pub")]) as server:
        device = adb_shell_client(server, signer)
        started = time.monotonic()
        with pytest.raises(ConnectionResetError):
            device.push(str(local), "/data/local/tmp/model.tflite", read_timeout_s=5)
        assert time.monotonic() - started < 2
        device.close()
        target_dir = phone.fs.resolve("/data/local/tmp")
        assert not target_dir.exists() or list(target_dir.iterdir()) == []
        server_still_serves(server, signer)


def test_sync_requests_may_span_and_share_wrtes(server: EmulatorServer, signer: CryptographySigner, phone: FakePhone) -> None:
    """The official client packs SEND+DATA+DONE in one write and splits big ones anywhere."""
    raw = RawClient(server.port)
    raw.handshake(signer)
    remote = raw.open(5, "sync:")
    path = b"/sdcard/a.txt,33188"
    stream = (struct.pack("<4sI", b"SEND", len(path)) + path + struct.pack("<4sI", b"DATA", 5) + b"hello"
              + struct.pack("<4sI", b"DONE", 1234) + struct.pack("<4sI", b"STAT", 13) + b"/sdcard/a.txt")
    replies = b""

    def take(packet: tuple[bytes, int, int, bytes]) -> bytes:
        nonlocal replies
        cmd, _, _, data = packet
        if cmd == constants.WRTE:
            replies += data
            raw.send(constants.OKAY, 5, remote)
        return cmd

    for i in range(0, len(stream), 7):  # 7-byte WRTEs: every request crosses a boundary
        raw.send(constants.WRTE, 5, remote, stream[i : i + 7])
        while take(raw.read()) != constants.OKAY:
            pass
    while len(replies) < 8 + 16:
        assert take(raw.read()) == constants.WRTE
    assert replies[:8] == struct.pack("<4sI", b"OKAY", 0)
    assert struct.unpack("<4s3I", replies[8:]) == (b"STAT", 0o100644, 5, 1234)
    raw.send(constants.WRTE, 5, remote, struct.pack("<4sI", b"QUIT", 0))
    assert raw.read()[0] == constants.OKAY
    assert raw.read()[0] == constants.CLSE
    raw.close()
    assert phone.fs.resolve("/sdcard/a.txt").read_bytes() == b"hello"


# --- robustness ------------------------------------------------------------------------------


def test_several_clients_at_once(server: EmulatorServer, signer: CryptographySigner, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            data = os.urandom(400_000 + i)
            local = tmp_path / f"in{i}"
            local.write_bytes(data)
            device = adb_shell_client(server, signer)
            assert device.shell(f"echo client {i}") == f"client {i}\n"
            device.push(str(local), f"/data/local/tmp/c{i}.bin")
            device.pull(f"/data/local/tmp/c{i}.bin", str(tmp_path / f"out{i}"))
            assert (tmp_path / f"out{i}").read_bytes() == data
            device.close()
        except BaseException as exc:  # reported below with the client's number
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


def test_garbage_and_vanishing_clients_do_not_take_the_server_down(
    server: EmulatorServer, signer: CryptographySigner, phone: FakePhone
) -> None:
    # Pure garbage.
    raw = RawClient(server.port)
    raw.sock.sendall(os.urandom(200))
    raw.close()
    # A header that promises a huge payload, then silence.
    raw = RawClient(server.port)
    raw.sock.sendall(struct.pack("<6I", 0x4E584E43, 0, 0, 1 << 30, 0, 0x4E584E43 ^ 0xFFFFFFFF))
    raw.close()
    # Connect and vanish before a word.
    socket.create_connection(("127.0.0.1", server.port)).close()
    # Vanish in the middle of a push: no half file may appear.
    raw = RawClient(server.port)
    raw.handshake(signer)
    remote = raw.open(9, "sync:")
    path = b"/data/local/tmp/half.bin,33188"
    raw.send(constants.WRTE, 9, remote, struct.pack("<4sI", b"SEND", len(path)) + path
             + struct.pack("<4sI", b"DATA", 65536) + b"z" * 30000)
    raw.read()
    raw.close()
    # Bad checksum.
    raw = RawClient(server.port)
    message = AdbMessage(constants.CNXN, 0x01000000, 4096, b"host::\0")
    header = bytearray(message.pack())
    header[16:20] = struct.pack("<I", 12345)
    raw.sock.sendall(bytes(header) + b"host::\0")
    with pytest.raises((EOFError, ConnectionResetError)):
        raw.read()
    raw.close()

    server_still_serves(server, signer)
    deadline = time.monotonic() + 5
    half_dir = phone.fs.resolve("/data/local/tmp")
    while time.monotonic() < deadline and half_dir.exists() and any(half_dir.iterdir()):
        time.sleep(0.05)
    assert not half_dir.exists() or list(half_dir.iterdir()) == []


def test_stop_closes_open_connections(phone: FakePhone, host_key: Path, signer: CryptographySigner) -> None:
    server = EmulatorServer(phone, trusted_keys=[Path(str(host_key) + ".pub")])
    host, port = server.start()
    assert (host, server.address) == ("127.0.0.1", f"127.0.0.1:{port}")
    raw = RawClient(port)
    raw.handshake(signer)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert phone.shut_down  # its benchmark processes are stopped too, not orphaned
    with pytest.raises((EOFError, ConnectionResetError)):
        raw.read()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_a_trusted_key_file_with_a_line_of_nuls_still_trusts_its_good_keys(host_key: Path, tmp_path: Path) -> None:
    from mnv3bench.emulator.adbd.auth import load_trusted_keys

    mixed = tmp_path / "adb_keys"
    mixed.write_text("\0\0\0\n" + Path(str(host_key) + ".pub").read_text())
    assert len(load_trusted_keys([mixed])) == 1


def test_a_client_trickling_bytes_cannot_outlast_the_handshake_deadline(phone: FakePhone, host_key: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import mnv3bench.emulator.adbd.connection as connection

    monkeypatch.setattr(connection, "HANDSHAKE_TIMEOUT_S", 1.0)
    server = EmulatorServer(phone, trusted_keys=[Path(str(host_key) + ".pub")])
    _, port = server.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 4:
                try:
                    sock.sendall(b"C")  # one byte of a header every 0.3 s: never a whole packet
                    time.sleep(0.3)
                    sock.settimeout(0.01)
                    if sock.recv(1) == b"":
                        closed = True
                        break
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
                    break
            assert closed and time.monotonic() - started < 3
    finally:
        server.stop()
