"""AdbDevice against the host emulator: real adb-shell over loopback, keys in tmp dirs."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnv3bench.device.adb import connect, load_signer, parse_address
from mnv3bench.device.profiles import load_profile
from mnv3bench.device.protocol import DeviceLinkError
from mnv3bench.emulator import start_in_process
from mnv3bench.errors import MnvError, UsageError
from tests.helpers import unused_port

PROFILE = load_profile("emulator")


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "keys" / "adbkey"
    monkeypatch.setenv("MNV3BENCH_ADBKEY", str(key))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MNV3BENCH_ADB", raising=False)
    load_signer(key, notify=lambda m: None)
    return key


def _emulator(tmp_path: Path, keys: Path, faults: tuple[str, ...] = ()):
    return start_in_process(PROFILE, root=tmp_path / "phone", faults=faults, trusted_keys=[Path(f"{keys}.pub")])


@pytest.fixture
def emulator(tmp_path: Path, keys: Path) -> Iterator[str]:
    server = _emulator(tmp_path, keys)
    try:
        yield server.address
    finally:
        server.stop()


def test_missing_key_is_created_and_user_told(tmp_path: Path) -> None:
    messages: list[str] = []
    key = tmp_path / "new" / "adbkey"
    load_signer(key, notify=messages.append)
    assert key.exists() and Path(f"{key}.pub").exists()
    assert messages and str(key) in messages[0]
    messages.clear()
    load_signer(key, notify=messages.append)  # second time: reused, silent
    assert messages == []


def test_shell_exit_codes_and_marker_stripped(emulator: str) -> None:
    with connect(PROFILE, adb_address=emulator) as device:
        ok = device.shell("echo hello")
        assert (ok.output, ok.exit_code, ok.timed_out) == ("hello\n", 0, False)
        failed = device.shell("cat /no/such/file")
        assert failed.exit_code not in (0, None) and "MNV3RC" not in failed.output
        assert device.shell("false").exit_code == 1
        assert device.shell("true && echo a; false || echo b").output == "a\nb\n"


def test_hung_command_returns_partial_output_timed_out(tmp_path: Path, keys: Path) -> None:
    server = _emulator(tmp_path, keys, faults=("hang",))
    try:
        with connect(PROFILE, adb_address=server.address) as device:
            start = time.monotonic()
            result = device.shell(f"taskset 10 {PROFILE.benchmark_binary} --graph=/data/local/tmp/x.tflite "
                                  "--num_threads=1", timeout_s=2.0)
            assert result.timed_out and result.exit_code is None
            assert 1.9 < time.monotonic() - start < 10
            assert "STARTING" in result.output  # the header printed before the hang arrived
            # The connection was re-opened: the device is still usable for clean-up.
            assert device.shell("echo still here").output == "still here\n"
    finally:
        server.stop()


@pytest.mark.slow
def test_silent_command_longer_than_adb_shell_default_read_timeout(emulator: str) -> None:
    # adb-shell's 10 s default read timeout would kill this; ours follows timeout_s.
    with connect(PROFILE, adb_address=emulator) as device:
        result = device.shell("sleep 11; echo done", timeout_s=20)
        assert (result.output, result.exit_code, result.timed_out) == ("done\n", 0, False)


def test_push_progress_and_sha256(emulator: str, tmp_path: Path) -> None:
    payload = tmp_path / "model.tflite"
    payload.write_bytes(bytes(range(256)) * 5000)  # 1.28 MB, several sync chunks
    seen: list[tuple[int, int]] = []
    with connect(PROFILE, adb_address=emulator) as device:
        device.shell("mkdir -p /data/local/tmp/mnv3bench")
        device.push(payload, "/data/local/tmp/mnv3bench/model.tflite", progress=lambda s, t: seen.append((s, t)))
        assert seen[-1] == (payload.stat().st_size, payload.stat().st_size)
        assert len(seen) > 1 and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
        assert device.sha256("/data/local/tmp/mnv3bench/model.tflite") == hashlib.sha256(payload.read_bytes()).hexdigest()
        assert device.sha256("/data/local/tmp/mnv3bench/absent.tflite") is None


def test_link_lost_mid_command_raises_disconnected_with_partial_output(tmp_path: Path, keys: Path) -> None:
    # A pulled cable: the emulator goes away while benchmark_model is running (silent).
    server = _emulator(tmp_path, keys, faults=("hang",))
    device = connect(PROFILE, adb_address=server.address)
    pull_cable = threading.Timer(1.0, server.stop)
    pull_cable.start()
    try:
        start = time.monotonic()
        with pytest.raises(DeviceLinkError) as err:
            device.shell(f"{PROFILE.benchmark_binary} --graph=/data/local/tmp/x.tflite", timeout_s=60)
        assert time.monotonic() - start < 10  # noticed at once, not at the 60 s deadline
        assert "lost the connection" in err.value.message and "--resume" in (err.value.hint or "")
        assert "STARTING" in err.value.partial_output
        assert err.value.exit_code == 1
        with pytest.raises(DeviceLinkError):  # later commands say so too, no hang
            device.shell("echo x")
    finally:
        pull_cable.cancel()
        device.close()
        server.stop()


def test_drop_during_push(tmp_path: Path, keys: Path) -> None:
    server = _emulator(tmp_path, keys, faults=("drop-push",))
    payload = tmp_path / "big.bin"
    payload.write_bytes(b"\0" * 2_000_000)
    try:
        with connect(PROFILE, adb_address=server.address) as device:
            with pytest.raises(DeviceLinkError, match="while pushing big.bin"):
                device.push(payload, "/data/local/tmp/big.bin")
    finally:
        server.stop()


def test_untrusted_key_is_refused_with_advice(tmp_path: Path, keys: Path) -> None:
    other = tmp_path / "other" / "adbkey"
    load_signer(other, notify=lambda m: None)
    server = start_in_process(PROFILE, root=tmp_path / "phone", trusted_keys=[Path(f"{other}.pub")])
    messages: list[str] = []
    try:
        with pytest.raises(MnvError) as err:
            # Nobody answers the prompt: a short wait for it proves as much as a long one.
            connect(PROFILE, adb_address=server.address, auth_timeout_s=1, connect_timeout_s=3,
                    notify=messages.append)
        assert "did not accept" in err.value.message or "closed" in err.value.message
        assert "Allow" in (err.value.hint or "") or "authorization" in (err.value.hint or "")
        assert any("Allow USB debugging" in m for m in messages)  # the user was told to look at the phone
    finally:
        server.stop()


def test_a_port_that_is_not_adb_is_an_error_not_a_traceback(keys: Path) -> None:
    # Something else listens there (say, an SSH server): it answers with its own banner.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2 not an adbd at all\r\n")
                time.sleep(1)

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(MnvError) as err:
            connect(PROFILE, adb_address=f"127.0.0.1:{listener.getsockname()[1]}", connect_timeout_s=3)
    assert "does not speak ADB" in err.value.message and "5555" in (err.value.hint or "")


def test_connection_refused_says_how_to_fix(keys: Path) -> None:
    with pytest.raises(MnvError) as err:
        connect(PROFILE, adb_address=f"127.0.0.1:{unused_port()}")
    assert "connection refused" in err.value.message
    assert "adb tcpip 5555" in (err.value.hint or "")


def test_address_parsing() -> None:
    assert parse_address("192.168.1.20:5555") == ("192.168.1.20", 5555)
    assert parse_address("phone.local") == ("phone.local", 5555)
    assert parse_address("[::1]:6000") == ("::1", 6000)
    with pytest.raises(UsageError):
        parse_address("host:99999")
    with pytest.raises(UsageError):
        parse_address("a b:1")


def test_emulator_profile_without_address_is_a_usage_error(keys: Path) -> None:
    with pytest.raises(UsageError, match="host emulator"):
        connect(PROFILE)


def test_a_phone_without_sha256sum_is_told_not_mistaken_for_missing_files() -> None:
    from mnv3bench.device.adb import AdbDevice
    from mnv3bench.device.protocol import ShellResult

    device = object.__new__(AdbDevice)  # only its shell() answer matters here
    device.serial = "old-phone"
    device.shell = lambda command, timeout_s=60.0: ShellResult("/system/bin/sh: sha256sum: not found\n", 127, False)
    with pytest.raises(MnvError) as err:
        AdbDevice.sha256(device, "/data/local/tmp/model.tflite")
    assert "no sha256sum" in err.value.message and "Android 8" in (err.value.hint or "")


def test_an_explicit_serial_overrides_mnv3bench_adb(monkeypatch: pytest.MonkeyPatch, keys: Path) -> None:
    monkeypatch.setenv("MNV3BENCH_ADB", "127.0.0.1:1")
    # USB is then chosen: without a phone (or libusb) that is an MnvError about USB, never
    # "both --adb and --serial given".
    with pytest.raises(MnvError) as err:
        connect(load_profile("pixel3"), serial="NO-SUCH-PHONE", connect_timeout_s=1)
    assert "both --adb and --serial" not in err.value.message
