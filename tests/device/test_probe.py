"""probe / check_profile / live readings against the emulator, and the parsers on phone text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mnv3bench.device.adb import AdbDevice, connect, load_signer
from mnv3bench.device.probe import (
    check_profile,
    cpu_freq_khz,
    cpu_temperature_c,
    detect_big_cores,
    parse_battery,
    parse_df_free_kb,
    probe,
)
from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator import start_in_process
from mnv3bench.errors import UsageError

PROFILE = load_profile("emulator")
EMU = PROFILE.emulator


@pytest.fixture
def device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdbDevice]:
    key = tmp_path / "adbkey"
    monkeypatch.setenv("MNV3BENCH_ADBKEY", str(key))
    monkeypatch.delenv("MNV3BENCH_ADB", raising=False)
    load_signer(key, notify=lambda m: None)
    server = start_in_process(PROFILE, root=tmp_path / "phone", trusted_keys=[Path(f"{key}.pub")])
    try:
        with connect(PROFILE, adb_address=server.address) as dev:
            yield dev
    finally:
        server.stop()


def test_probe_reads_the_emulated_phone(device: AdbDevice, tmp_path: Path) -> None:
    info = probe(device, PROFILE)
    assert info.device == EMU["product"] and info.model == PROFILE.models[0]
    assert info.fingerprint == EMU["fingerprint"] and info.abi == PROFILE.abi
    assert info.release == EMU["android_release"] and info.serial
    assert info.cpu_count == PROFILE.cpu_count
    assert info.cpu_max_freq_khz[PROFILE.pin_core] == EMU["big_max_freq_khz"]
    assert info.cpu_max_freq_khz[0] == EMU["little_max_freq_khz"]
    assert set(info.governors.values()) == {EMU["governor"]}
    assert info.cpu_temperature_c == EMU["cpu_temp_mc"] / 1000
    assert info.battery["level"] == EMU["battery_level"]
    assert info.battery["temperature_c"] == EMU["battery_temp_dc"] / 10
    # Free space is the emulated storage's quota less what the phone's root holds.
    held = sum(f.stat().st_size for f in (tmp_path / "phone").rglob("*") if f.is_file() and not f.is_symlink())
    assert info.free_kb == (EMU["storage_free_kb"] * 1024 - held) // 1024
    assert info.big_cores_detected == PROFILE.big_cores and info.notes == []
    assert check_profile(info, PROFILE) == []


def test_live_readings(device: AdbDevice) -> None:
    assert cpu_temperature_c(device) == EMU["cpu_temp_mc"] / 1000
    assert cpu_freq_khz(device, PROFILE.pin_core) == EMU["big_max_freq_khz"]
    assert cpu_freq_khz(device, 99) is None


def test_profile_mismatch_is_an_error_unless_forced(device: AdbDevice) -> None:
    info = probe(device, PROFILE)
    pixel3_same_abi = replace(load_profile("pixel3"), abi=PROFILE.abi)
    with pytest.raises(UsageError, match=r"not a Google Pixel 3 / 3 XL") as err:
        check_profile(info, pixel3_same_abi)
    assert "--force" in (err.value.hint or "")
    warnings = check_profile(info, pixel3_same_abi, force=True)
    assert any("--force" in w for w in warnings)


def test_abi_mismatch_is_an_error_even_forced(device: AdbDevice) -> None:
    info = probe(device, PROFILE)
    with pytest.raises(UsageError, match="ABI is x86_64 but profile 'emulator' expects arm64-v8a"):
        check_profile(info, replace(PROFILE, abi="arm64-v8a"), force=True)


def test_profile_big_cores_that_disagree_are_reported(device: AdbDevice) -> None:
    wrong = replace(PROFILE, big_cores=(0, 1), pin_core=0)
    info = probe(device, wrong)
    assert info.big_cores_detected == (4, 5, 6, 7)
    assert "profile says cpu0,cpu1" in info.notes[0] and "pin_core 0 is NOT one of them" in info.notes[0]
    assert info.notes[0] in check_profile(info, wrong)


def test_detect_big_cores_tri_cluster() -> None:
    pixel4 = {0: 1785600, 1: 1785600, 2: 1785600, 3: 1785600, 4: 2419200, 5: 2419200, 6: 2419200, 7: 2841600}
    assert detect_big_cores(pixel4) == (4, 5, 6, 7)
    assert detect_big_cores({0: 100, 1: 100}) == (0, 1)
    assert detect_big_cores({0: None}) == ()


def test_parsers_on_phone_text() -> None:
    battery = parse_battery("Current Battery Service state:\r\n  AC powered: false\n  USB powered: true\n"
                            "  status: 2\n  level: 57\n  temperature: 312\n")
    assert battery == {"level": 57, "temperature_c": 31.2, "powered": True, "status": 2, "charging": True}
    wrapped = ("Filesystem     1K-blocks    Used Available Use% Mounted on\n"
               "/dev/block/bootdevice/by-name/userdata\n      57000000 25000000 32000000  44% /data\n")
    assert parse_df_free_kb(wrapped) == 32000000
    assert parse_df_free_kb("df: /nope: No such file or directory") is None
