"""The emulated adbd against hostile local clients, on loopback, bounded in time and count.

Each test is one reproduction of a red-team finding (a client that never authenticates, a
flood of AUTH packets, a full file-descriptor table, streams that ignore flow control, ...)
and the limit that now holds. Limits are lowered with monkeypatch where the defaults would
make a test slow; the defaults themselves are checked to be sane.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from adb_shell import constants
from adb_shell.auth.sign_cryptography import CryptographySigner

from mnv3bench.emulator.adbd import connection
from mnv3bench.emulator.adbd import server as server_module
from mnv3bench.emulator.adbd.ratelimit import RateLimitedLog
from mnv3bench.emulator.adbd.server import EmulatorServer
from tests.emulator.helpers import (
    FakePhone,
    RawClient,
    adb_shell_client,
    server_still_serves,
)

pytestmark = pytest.mark.security


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes `sock` (EOF or reset) within `seconds`; data is drained."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def adbd_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("mnv3bench.emulator.adbd")]


@pytest.fixture
def trusted(host_key: Path) -> list[Path]:
    return [Path(str(host_key) + ".pub")]


@pytest.fixture
def served(phone: FakePhone, trusted: list[Path]) -> Iterator[EmulatorServer]:
    with EmulatorServer(phone, trusted_keys=trusted) as srv:
        yield srv


def test_the_default_limits_are_sane() -> None:
    assert 10 <= connection.HANDSHAKE_TIMEOUT_S <= 60
    assert 8 <= server_module.MAX_CONNECTIONS <= 64
    assert 8 <= connection.MAX_STREAMS <= 256
    assert connection.MAX_PAYLOAD <= connection.MAX_QUEUED_BYTES <= 4 * connection.MAX_PAYLOAD
    assert connection.MAX_CONNECTION_QUEUED_BYTES <= 32 * connection.MAX_PAYLOAD
    assert server_module.ACCEPT_BACKOFF_MAX_S <= 2


# --- the handshake ----------------------------------------------------------------------


def test_cnxn_after_cnxn_does_not_extend_the_handshake_deadline(phone: FakePhone, trusted: list[Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "HANDSHAKE_TIMEOUT_S", 1.0)
    with EmulatorServer(phone, trusted_keys=trusted) as srv:
        raw = RawClient(srv.port)
        started = time.monotonic()
        dropped = False
        try:
            for _ in range(12):  # a CNXN every 0.25 s for at most 3 s: it used to reset the deadline
                raw.send(constants.CNXN, 0x01000001, 4096, b"host::\0")
                if closed_within(raw.sock, 0.25):
                    dropped = True
                    break
        except OSError:
            dropped = True
        finally:
            raw.close()
        assert dropped and time.monotonic() - started < 2.0


def test_a_flood_of_auth_packets_is_cut_off_and_logs_a_few_lines(served: EmulatorServer,
                                                                  caplog: pytest.LogCaptureFixture,
                                                                  signer: CryptographySigner) -> None:
    caplog.set_level(logging.DEBUG, logger="mnv3bench.emulator.adbd")
    raw = RawClient(served.port)
    raw.send(constants.CNXN, 0x01000001, 4096, b"host::\0")
    key = b"QUFBQQ== attacker@host\0"
    sent = 0
    try:
        for _ in range(2000):  # at most 2000 packets, each of which used to log a warning
            raw.send(constants.AUTH, constants.AUTH_RSAPUBLICKEY, 0, key)
            sent += 1
    except OSError:
        pass
    assert closed_within(raw.sock, 5)
    raw.close()
    assert sent <= 2000
    assert len(adbd_records(caplog)) <= 2 * 5 + 4  # a few lines a second, and a summary
    server_still_serves(served, signer)


def test_rate_limited_log_counts_what_it_suppresses(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("mnv3bench.emulator.adbd.test"), per_second=3,
                             clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="mnv3bench.emulator.adbd.test")
    for i in range(1000):
        limited.log("flood", logging.WARNING, "line %d", i)
    limited.log("other", logging.WARNING, "another kind")
    now[0] = 1.5
    limited.flush()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["line 0", "line 1", "line 2", "another kind",
                        "suppressed 997 similar messages (flood) in the last second"]


# --- connections and streams ------------------------------------------------------------


def test_connections_past_the_cap_are_closed_and_trusted_clients_come_back(
        phone: FakePhone, trusted: list[Path], signer: CryptographySigner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 4)
    with EmulatorServer(phone, trusted_keys=trusted) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(4)]
        time.sleep(0.3)  # let the acceptor take all four
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            assert closed_within(extra, 3)  # the fifth used to be kept, without any bound
            for sock in idle:
                sock.close()
            deadline = time.monotonic() + 5
            while True:  # the slots free up as the server notices the closed sockets
                try:
                    server_still_serves(srv, signer)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            extra.close()


def test_streams_past_the_cap_are_refused(phone: FakePhone, trusted: list[Path], signer: CryptographySigner,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "MAX_STREAMS", 3)
    with EmulatorServer(phone, trusted_keys=trusted) as srv:
        raw = RawClient(srv.port)
        try:
            raw.handshake(signer)
            for local_id in (1, 2, 3):
                raw.open(local_id, "sync:")  # each waits for a request: the stream stays open
            raw.send(constants.OPEN, 4, 0, b"sync:\0")
            assert raw.read()[:3] == (constants.CLSE, 0, 4)  # refused; the others stay open
            raw.send(constants.CLSE, 1, 1)
            raw.read()  # the CLSE answering ours: a slot is free again
            raw.open(5, "sync:")
        finally:
            raw.close()
        server_still_serves(srv, signer)


def test_writes_that_ignore_flow_control_close_the_connection(served: EmulatorServer, signer: CryptographySigner,
                                                              phone: FakePhone) -> None:
    (phone.fs.root / "big").write_bytes(b"x" * 200_000)
    raw = RawClient(served.port)
    try:
        raw.send(constants.CNXN, 0x01000001, 4096, b"host::\0")  # small maxdata: the pull needs many OKAYs
        _, _, _, token = raw.read()
        raw.send(constants.AUTH, constants.AUTH_SIGNATURE, 0, signer.Sign(token))
        raw.read()
        remote = raw.open(1, "sync:")
        raw.send(constants.WRTE, 1, remote, b"RECV" + struct.pack("<I", 4) + b"/big")
        raw.read()  # OKAY for our request
        raw.read()  # the first WRTE of the file: the service now waits for our OKAY, which never comes
        payload = b"\0" * connection.MAX_PAYLOAD
        with pytest.raises(OSError):  # eight blocked megabytes used to be queued, 64 per stream
            for _ in range(8):
                raw.send(constants.WRTE, 1, remote, payload)
            if closed_within(raw.sock, 5):
                raise ConnectionResetError("closed")
    finally:
        raw.close()
    server_still_serves(served, signer)


# --- accept errors ----------------------------------------------------------------------


class _ExhaustedListener:
    """A listening socket whose accept fails with EMFILE until `healthy` (a full fd table)."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.calls = 0
        self.healthy = False

    def accept(self) -> tuple[socket.socket, object]:
        self.calls += 1
        if not self.healthy:
            raise OSError(errno.EMFILE, "Too many open files")
        return self.real.accept()

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_accept_errors_back_off_and_log_a_few_lines(served: EmulatorServer, signer: CryptographySigner,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mnv3bench.emulator.adbd")
    exhausted = _ExhaustedListener(served._listener)
    served._listener = exhausted
    pending = socket.create_connection(("127.0.0.1", served.port), timeout=5)  # waits in the backlog
    try:
        time.sleep(1.5)
        assert exhausted.calls <= 20  # it used to spin: hundreds of thousands of tries
        assert len(adbd_records(caplog)) <= 2 * 5 + 2
        exhausted.healthy = True
        time.sleep(server_module.ACCEPT_BACKOFF_MAX_S + 0.2)
        server_still_serves(served, signer)  # descriptors are back: clients are served again
    finally:
        pending.close()


def test_an_adb_shell_client_still_works_with_every_limit_in_place(served: EmulatorServer,
                                                                   signer: CryptographySigner) -> None:
    device = adb_shell_client(served, signer)
    try:
        for i in range(5):
            assert device.shell(f"echo {i}") == f"{i}\n"
    finally:
        device.close()
