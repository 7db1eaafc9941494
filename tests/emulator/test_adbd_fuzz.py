"""Hypothesis throws random, truncated and misordered ADB packets and sync requests at one
server; after every example the server must still serve a well-behaved client."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from adb_shell import constants
from adb_shell.adb_message import AdbMessage
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnv3bench.device.adb import load_signer
from mnv3bench.emulator.adbd.server import EmulatorServer
from tests.emulator.helpers import FakePhone, RawClient, server_still_serves

pytestmark = pytest.mark.fuzz

COMMANDS = [constants.CNXN, constants.AUTH, constants.OPEN, constants.OKAY, constants.WRTE, constants.CLSE]
SYNC_IDS = [b"SEND", b"RECV", b"STAT", b"LIST", b"DATA", b"DONE", b"QUIT", b"FAIL", b"DENT", b"XXXX"]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatorServer, CryptographySigner, FakePhone]]:
    base = tmp_path_factory.mktemp("adbd-fuzz")
    keygen(str(base / "adbkey"))
    signer = load_signer(base / "adbkey")
    phone = FakePhone(base / "phone")
    (base / "phone" / "sdcard").mkdir()
    (base / "phone" / "sdcard" / "f.txt").write_bytes(b"content")
    with EmulatorServer(phone, trusted_keys=[base / "adbkey.pub"]) as server:
        yield server, signer, phone


def packet(command: bytes, arg0: int, arg1: int, data: bytes, checksum_ok: bool) -> bytes:
    raw = bytearray(AdbMessage(command, arg0, arg1, data).pack())
    if not checksum_ok:
        raw[16:20] = struct.pack("<I", (sum(data) + 1) & 0xFFFFFFFF)
    return bytes(raw) + data


u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
packets = st.builds(
    packet,
    st.sampled_from(COMMANDS),
    u32 | st.integers(0, 3),
    u32 | st.integers(0, 3),
    st.binary(max_size=64) | st.sampled_from([b"shell:echo x\0", b"sync:\0", b"shell:\0", b"bogus\0"]),
    st.sampled_from([True, True, True, False]),  # mostly valid, so packets reach the streams
)


def sync_request(sync_id: bytes, length: int | None, body: bytes) -> bytes:
    return struct.pack("<4sI", sync_id, len(body) if length is None else length) + body


sync_requests = st.builds(
    sync_request,
    st.sampled_from(SYNC_IDS),
    st.none() | st.integers(0, 70000) | u32,
    st.binary(max_size=40) | st.sampled_from([b"/sdcard/f.txt", b"/sdcard", b"/../../etc/passwd", b"/sdcard/n,33188"]),
)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the server hung up on us: allowed


def _drain(raw: RawClient) -> None:
    raw.sock.settimeout(0.05)
    try:
        while raw.sock.recv(65536):
            pass
    except OSError:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pre_auth=st.lists(packets, max_size=4), truncate=st.integers(0, 30), authed=st.booleans(), after=st.lists(packets, max_size=4))
def test_random_packets_never_crash_the_server(fuzzed, pre_auth, truncate, authed, after) -> None:
    server, signer, _ = fuzzed
    raw = RawClient(server.port)
    try:
        if authed:
            raw.handshake(signer)
        stream = b"".join(pre_auth if not authed else after)
        _send_quietly(raw.sock, stream[: max(0, len(stream) - truncate)])
        _drain(raw)
    finally:
        raw.close()
    server_still_serves(server, signer)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(sync_requests, min_size=1, max_size=5), split=st.integers(1, 50), truncate=st.integers(0, 10))
def test_random_sync_requests_never_crash_the_server(fuzzed, requests, split, truncate) -> None:
    server, signer, phone = fuzzed
    raw = RawClient(server.port)
    try:
        raw.handshake(signer)
        remote = raw.open(1, "sync:")
        stream = b"".join(requests)
        stream = stream[: max(0, len(stream) - truncate)]
        for i in range(0, len(stream), split):
            _send_quietly(raw.sock, packet(constants.WRTE, 1, remote, stream[i : i + split], True))
        _drain(raw)
    finally:
        raw.close()
    server_still_serves(server, signer)
    # The file the requests may read is intact, and no half-pushed temp file stays behind.
    assert (Path(phone.fs.root) / "sdcard" / "f.txt").read_bytes() == b"content"
    deadline = time.monotonic() + 5
    while list(Path(phone.fs.root).rglob("*.adbd-tmp")):
        assert time.monotonic() < deadline, list(Path(phone.fs.root).rglob("*.adbd-tmp"))
        time.sleep(0.02)
