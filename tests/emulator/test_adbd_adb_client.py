"""The emulated adbd against Debian's `adb` (platform-tools), the client every phone knows.

Each test gets its own HOME (so adb makes its own ~/.android/adbkey, which the emulator
trusts) and its own adb server port; the adb server is killed afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mnv3bench.device.adb import load_signer
from mnv3bench.emulator.adbd.server import EmulatorServer
from tests.emulator.helpers import FakePhone, adb_shell_client
from tests.helpers import unused_port

ADB = shutil.which("adb") or "/usr/bin/adb"
pytestmark = [
    pytest.mark.adb,
    pytest.mark.skipif(not os.access(ADB, os.X_OK), reason="Debian's adb is not installed (apt-get install adb)"),
]

Adb = Callable[..., subprocess.CompletedProcess[str]]


def _adb_for(home: Path) -> Adb:
    env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(unused_port()))
    env.pop("ADB_VENDOR_KEYS", None)

    def adb(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([ADB, *args], env=env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"adb {' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result

    return adb


@pytest.fixture
def adb(tmp_path: Path) -> Iterator[Adb]:
    home = tmp_path / "home"
    home.mkdir()
    run = _adb_for(home)
    run("start-server")  # creates $HOME/.android/adbkey(.pub)
    yield run
    run("kill-server", check=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EmulatorServer, FakePhone]]:
    phone = FakePhone(tmp_path / "phone")
    with EmulatorServer(phone, trusted_keys=[tmp_path / "home" / ".android" / "adbkey.pub"]) as server:
        yield server, phone


def _connect(adb: Adb, server: EmulatorServer) -> None:
    assert f"connected to {server.address}" in adb("connect", server.address).stdout
    deadline = time.monotonic() + 10
    while adb("-s", server.address, "get-state", check=False).stdout.strip() != "device":
        assert time.monotonic() < deadline, adb("devices", "-l").stdout
        time.sleep(0.05)


def test_connect_lists_the_device_with_its_banner(adb: Adb, served: tuple[EmulatorServer, FakePhone]) -> None:
    server, _ = served
    _connect(adb, server)
    listing = adb("devices", "-l").stdout
    line = next(l for l in listing.splitlines() if l.startswith(server.address))
    assert "device product:mnv3emu model:mnv3bench_emulator device:mnv3emu" in line


def test_shell(adb: Adb, served: tuple[EmulatorServer, FakePhone]) -> None:
    server, _ = served
    _connect(adb, server)
    assert adb("-s", server.address, "shell", "echo", "hi").stdout == "hi\n"
    assert adb("-s", server.address, "shell", "frobnicate").stdout == "sh: frobnicate: not found\n"


def test_push_20mb_then_pull(adb: Adb, served: tuple[EmulatorServer, FakePhone], tmp_path: Path) -> None:
    server, phone = served
    _connect(adb, server)
    local = tmp_path / "model.tflite"
    payload = os.urandom(20 * 1024 * 1024)
    local.write_bytes(payload)

    started = time.perf_counter()
    adb("-s", server.address, "push", str(local), "/data/local/tmp/mnv3bench/model.tflite")
    push_s = time.perf_counter() - started
    print(f"adb push of 20 MiB over loopback: {push_s:.2f} s")  # shown with -s; no timing assertion

    on_phone = phone.fs.resolve("/data/local/tmp/mnv3bench/model.tflite").read_bytes()
    assert hashlib.sha256(on_phone).hexdigest() == hashlib.sha256(payload).hexdigest()

    # adb stats the target first and pushes into a directory by basename.
    adb("-s", server.address, "push", str(local), "/data/local/tmp/mnv3bench/")
    listing = adb("-s", server.address, "ls", "/data/local/tmp/mnv3bench").stdout
    assert [line.split()[-1] for line in listing.splitlines()] == [".", "..", "model.tflite"]

    pulled = tmp_path / "pulled.tflite"
    adb("-s", server.address, "pull", "/data/local/tmp/mnv3bench/model.tflite", str(pulled))
    assert pulled.read_bytes() == payload

    missing = adb("-s", server.address, "pull", "/data/local/tmp/nope", str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0
    assert "does not exist" in missing.stdout + missing.stderr


def test_adb_and_adb_shell_at_once(adb: Adb, served: tuple[EmulatorServer, FakePhone], tmp_path: Path) -> None:

    server, _ = served
    _connect(adb, server)
    # adb-shell signs with the same key adb made, as mnv3bench does with ~/.android/adbkey.
    signer = load_signer(tmp_path / "home" / ".android" / "adbkey")
    device = adb_shell_client(server, signer)
    assert device.shell("echo from adb-shell") == "from adb-shell\n"
    assert adb("-s", server.address, "shell", "echo", "from", "adb").stdout == "from adb\n"
    assert device.shell("echo still here") == "still here\n"
    device.close()


def test_a_key_the_emulator_does_not_trust_stays_unauthorized(tmp_path: Path) -> None:
    phone = FakePhone(tmp_path / "phone")
    other = tmp_path / "other.pub"
    from adb_shell.auth.keygen import keygen

    keygen(str(tmp_path / "other"))
    (tmp_path / "home").mkdir()
    adb = _adb_for(tmp_path / "home")
    adb("start-server")
    try:
        with EmulatorServer(phone, trusted_keys=[other]) as server:
            adb("connect", server.address, check=False)
            deadline = time.monotonic() + 10
            while "unauthorized" not in adb("devices").stdout:
                assert time.monotonic() < deadline, adb("devices").stdout
                time.sleep(0.1)
            assert adb("-s", server.address, "shell", "echo", "hi", check=False).returncode != 0
    finally:
        adb("kill-server", check=False)
