"""`mnv3bench doctor`, `device setup` and `devices` end to end against the emulator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnv3bench.cli import main
from mnv3bench.device.adb import load_signer
from mnv3bench.device.binary import BASE_URL_ENV, binary_identity
from mnv3bench.device.preflight import FAIL, binary_checks
from mnv3bench.device.profiles import load_profile
from mnv3bench.device.protocol import ShellResult
from mnv3bench.emulator import start_in_process
from mnv3bench.emulator.phone import BINARY_MARKER
from tests.device.helpers import dead_url, serving
from tests.helpers import unused_port

PROFILE = load_profile("emulator")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "keys" / "adbkey"
    monkeypatch.setenv("MNV3BENCH_ADBKEY", str(key))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the in-process emulator's files
    monkeypatch.delenv("MNV3BENCH_ADB", raising=False)
    load_signer(key, notify=lambda m: None)
    return key


def run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def no_binary_emulator(tmp_path: Path, isolated: Path) -> Iterator[str]:
    server = start_in_process(PROFILE, root=tmp_path / "phone", faults=("no-binary",),
                              trusted_keys=[Path(f"{isolated}.pub")])
    try:
        yield server.address
    finally:
        server.stop()


def test_doctor_on_the_in_process_emulator_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["doctor", "--device", "emulator"]) == 0
    out = capsys.readouterr().out
    for name in ("connection", "profile", "abi", "benchmark binary", "binary runs", "free space", "governor",
                 "temperature", "battery"):
        assert f"OK    {name}:" in out
    # The emulator's temperatures are its inventions, and doctor says so beside them.
    [temperature] = [line for line in out.splitlines() if "temperature:" in line]
    assert "emulated" in temperature


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["doctor", "--device", "emulator", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and {c["status"] for c in report["checks"]} == {"ok"}


def test_doctor_missing_binary_says_how_to_install(no_binary_emulator: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["doctor", "--device", "emulator", "--adb", no_binary_emulator]) == 1
    out = capsys.readouterr().out
    assert "FAIL  benchmark binary: /data/local/tmp/benchmark_model is missing" in out
    assert "mnv3bench device setup --device emulator --benchmark-binary PATH" in out
    assert f"--benchmark-binary PATH --adb {no_binary_emulator}`" in out  # the fix reaches the same device


def test_doctor_wrong_profile_fails_profile_and_abi(tmp_path: Path, isolated: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    server = start_in_process(PROFILE, root=tmp_path / "phone", trusted_keys=[Path(f"{isolated}.pub")])
    try:
        assert run(["doctor", "--device", "pixel3", "--adb", server.address]) == 1
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert "FAIL  profile: the connected device is a mnv3bench emulator (mnv3emu), not a Google Pixel 3" in out
    assert "FAIL  abi: device ABI x86_64" in out


def test_doctor_unreachable_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["doctor", "--device", "pixel3", "--adb", f"127.0.0.1:{unused_port()}"]) == 1
    assert "FAIL  connection: nothing accepts ADB connections" in capsys.readouterr().out


def test_setup_without_binary_offline_names_the_manual_route(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(BASE_URL_ENV, dead_url())
    assert run(["device", "setup", "--device", "pixel3", "--litert-version", "2.3.0"]) == 1
    err = capsys.readouterr().err
    assert "could not download the official benchmark_model" in err
    assert "/2.3.0/android_arm64/benchmark_model" in err and "--benchmark-binary PATH" in err


def test_setup_downloads_the_official_binary_installs_and_records_it(
        tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    version = importlib.metadata.version("ai-edge-litert")
    twin = start_in_process(load_profile("pixel3"), root=tmp_path / "phone", faults=("no-binary",),
                            trusted_keys=[Path(f"{isolated}.pub")])
    try:
        with serving({f"/{version}/android_arm64/benchmark_model": BINARY_MARKER}) as url:
            monkeypatch.setenv(BASE_URL_ENV, url)
            assert run(["device", "setup", "--device", "pixel3", "--adb", twin.address]) == 0
        captured = capsys.readouterr()
        assert "benchmark_model installed at /data/local/tmp/benchmark_model" in captured.out
        assert "reports no version" in captured.out and "downloaded from" in captured.err
        # Offline now: the cached copy is pushed again.
        monkeypatch.setenv(BASE_URL_ENV, dead_url())
        assert run(["device", "setup", "--device", "pixel3", "--adb", twin.address]) == 0
        assert "cached, from" in capsys.readouterr().err
        assert run(["doctor", "--device", "pixel3", "--adb", twin.address]) == 0
    finally:
        twin.stop()
    digest = hashlib.sha256(BINARY_MARKER).hexdigest()
    assert binary_identity(digest) == {"sha256": digest, "version": None,
                                       "url": f"{url}/{version}/android_arm64/benchmark_model"}


def test_setup_installs_and_verifies(no_binary_emulator: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(BINARY_MARKER)
    assert run(["device", "setup", "--device", "emulator", "--adb", no_binary_emulator,
                "--benchmark-binary", str(binary)]) == 0
    assert "benchmark_model installed at /data/local/tmp/benchmark_model" in capsys.readouterr().out
    assert run(["doctor", "--device", "emulator", "--adb", no_binary_emulator]) == 0


class _ScriptedShell:
    """A device whose shell answers from a table (the emulator runs any file at the path)."""

    serial = "fake"
    transport_name = "tcp"

    def __init__(self, answers: dict[str, ShellResult]):
        self.answers = answers

    def shell(self, command: str, *, timeout_s: float = 60.0) -> ShellResult:
        return next(r for prefix, r in self.answers.items() if command.startswith(prefix))


@pytest.mark.parametrize(("listing", "help_result", "expected"), [
    ("-rw-r--r-- 1 shell shell 10 x /data/local/tmp/benchmark_model", None, "is not executable"),
    ("-rwxr-xr-x 1 shell shell 10 x /data/local/tmp/benchmark_model",
     ShellResult("/system/bin/sh: /data/local/tmp/benchmark_model: can't execute: Exec format error\n", 126, False),
     "built for another CPU"),
    ("-rwxr-xr-x 1 shell shell 10 x /data/local/tmp/benchmark_model",
     ShellResult('CANNOT LINK EXECUTABLE "benchmark_model": library "libc++_shared.so" not found\n', 1, False),
     "cannot start"),
    ("-rwxr-xr-x 1 shell shell 10 x /data/local/tmp/benchmark_model", ShellResult("INFO: STARTING!", None, True),
     "did not finish"),
])
def test_binary_checks_catch_binaries_that_do_not_run(listing: str, help_result: ShellResult | None,
                                                      expected: str) -> None:
    answers = {"ls -l": ShellResult(listing + "\n", 0, False)}
    if help_result is not None:
        answers["/data/local/tmp/benchmark_model --help"] = help_result
    checks = binary_checks(_ScriptedShell(answers), load_profile("pixel3"))  # type: ignore[arg-type]
    assert checks[-1].status == FAIL and expected in checks[-1].detail
    assert "mnv3bench device setup --device pixel3" in checks[-1].fix or "chmod" in checks[-1].fix


def test_devices_lists_profiles_and_reachable(tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = start_in_process(PROFILE, root=tmp_path / "phone", trusted_keys=[Path(f"{isolated}.pub")])
    try:
        assert run(["devices", "--json", "--adb", server.address]) == 0
    finally:
        server.stop()
    listing = json.loads(capsys.readouterr().out)
    names = {p["name"]: p for p in listing["profiles"]}
    assert names["pixel3"]["paper_column"] == "P-3" and names["pixel3"]["affinity_mask"] == "10"
    assert listing["reachable"][0]["profile"] == "emulator"


def test_devices_without_any_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["devices"]) == 0
    out = capsys.readouterr().out
    assert "pixel1" in out and "P-1" in out and "No device reachable" in out


def test_full_storage_stops_preflight_before_any_work(tmp_path: Path, isolated: Path) -> None:
    from dataclasses import replace

    from mnv3bench.device.preflight import require_ready, run_checks
    from mnv3bench.device.session import open_device
    from mnv3bench.errors import MnvError

    full = replace(PROFILE, emulator={**PROFILE.emulator, "storage_free_kb": 50_000})
    server = start_in_process(full, root=tmp_path / "phone", trusted_keys=[Path(f"{isolated}.pub")])
    try:
        with open_device(full, adb=server.address) as session:
            checks = run_checks(session.device, full, session.info)
            with pytest.raises(MnvError) as err:
                require_ready(checks)
    finally:
        server.stop()
    assert "free space: only 49 MB free" in err.value.message
    assert "Free space on the phone" in (err.value.hint or "")


def test_open_device_starts_and_stops_the_emulator(isolated: Path) -> None:
    from mnv3bench.device.session import open_device

    with open_device(PROFILE) as session:
        assert session.emulator is not None and session.info.device == "mnv3emu"
        address = session.emulator.address
        assert session.device.shell("echo up").output == "up\n"
    import socket
    with pytest.raises(OSError):
        socket.create_connection(tuple(address.rsplit(":", 1)[0:1]) + (int(address.rsplit(":", 1)[1]),), timeout=1)
