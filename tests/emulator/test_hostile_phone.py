"""The emulated phone against a client that holds a trusted key, and against bad profiles.

A real EmulatedPhone (sandbox, shell, virtual sysfs) behind the real EmulatorServer, reached
with adb-shell on loopback: a quota on the root, device paths only in messages, a read-only
/sys and /proc through sync too, a linear shell parser with adbd's length limit, and the
[emulator] table of a profile checked on load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp

from mnv3bench.device.adb import load_signer
from mnv3bench.device.probe import parse_df_free_kb
from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator.adbd.server import EmulatorServer
from mnv3bench.emulator.phone import EmulatedPhone
from mnv3bench.emulator.settings import MAX_CPUS
from mnv3bench.emulator.shell import MAX_COMMAND_LENGTH, parse
from mnv3bench.emulator.sysfs import VirtualSysfs
from mnv3bench.errors import UsageError

pytestmark = pytest.mark.security

EMULATOR_TOML = Path(__file__).resolve().parents[2] / "mnv3bench" / "devices" / "emulator.toml"
QUOTA_KB = 2048


def sh(phone: EmulatedPhone, command: str) -> tuple[int, str]:
    chunks: list[bytes] = []
    rc = phone.run_shell(command, chunks.append, threading.Event())
    return rc, b"".join(chunks).decode()


@pytest.fixture(scope="module")
def small_disk_profile():
    profile = load_profile("emulator")
    return replace(profile, emulator={**profile.emulator, "storage_free_kb": QUOTA_KB})


@pytest.fixture
def phone(tmp_path: Path, small_disk_profile) -> EmulatedPhone:
    return EmulatedPhone(tmp_path / "root", small_disk_profile)


@pytest.fixture
def client(phone: EmulatedPhone, adb_key: Path) -> Iterator[AdbDeviceTcp]:
    with EmulatorServer(phone, trusted_keys=[Path(f"{adb_key}.pub")]) as server:
        device = AdbDeviceTcp("127.0.0.1", server.port, default_transport_timeout_s=10)
        device.connect(rsa_keys=[load_signer(adb_key)], auth_timeout_s=5)
        try:
            yield device
        finally:
            device.close()


# --- the shell parser -------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    "echo " + "a" * (MAX_COMMAND_LENGTH - 5),            # the red team's 1 MB word: 11.5 s of CPU
    'echo "' + "a" * (MAX_COMMAND_LENGTH - 7) + '"',     # the same inside double quotes
], ids=["word", "quoted"])
def test_a_one_mebibyte_command_parses_in_linear_time(command: str) -> None:
    started = time.process_time()
    program = parse(command)
    assert time.process_time() - started < 2.0
    assert len(program[0][1].words[1][0]) == len(command) - (5 if command[5] == "a" else 7)


def test_a_command_longer_than_adbds_limit_is_refused(phone: EmulatedPhone) -> None:
    rc, out = sh(phone, "echo " + "a" * MAX_COMMAND_LENGTH)
    assert rc == 2 and "command too long" in out and str(MAX_COMMAND_LENGTH) in out


def test_parsing_still_means_what_it_meant(phone: EmulatedPhone) -> None:
    assert sh(phone, "echo a\"b c\"'d'\\ e#f $? # gone") == (0, "ab cd e#f 0\n")
    assert sh(phone, "false; echo x$?y 2>&1 >/dev/null; echo shown") == (0, "shown\n")


# --- the disk quota ---------------------------------------------------------------------


def test_pushes_past_the_quota_fail_like_a_full_phone(client: AdbDeviceTcp, phone: EmulatedPhone,
                                                      tmp_path: Path) -> None:
    fits, too_big = tmp_path / "fits.bin", tmp_path / "too-big.bin"
    fits.write_bytes(b"f" * (QUOTA_KB * 1024 // 2))
    too_big.write_bytes(b"x" * (QUOTA_KB * 1024 * 2))
    client.push(str(fits), "/data/local/tmp/fits.bin")
    with pytest.raises(Exception, match="No space left on device"):  # adb-shell's push error
        client.push(str(too_big), "/data/local/tmp/too-big.bin")
    assert not phone.fs.exists("/data/local/tmp/too-big.bin")
    assert phone.fs.usage_bytes() <= QUOTA_KB * 1024
    assert not [p for p in phone.fs.root.rglob("*.adbd-tmp")]  # the partial file is gone
    assert client.shell("echo still-serving") == "still-serving\n"


def test_free_space_is_the_quota_minus_what_the_root_holds(client: AdbDeviceTcp, phone: EmulatedPhone,
                                                           tmp_path: Path) -> None:
    df = client.shell("df -k /data/local/tmp")
    before = parse_df_free_kb(df)
    assert before is not None and before <= QUOTA_KB  # not the host disk's gigabytes
    assert before == (QUOTA_KB * 1024 - phone.fs.usage_bytes()) // 1024
    model = tmp_path / "m.tflite"
    model.write_bytes(b"m" * 512 * 1024)
    client.push(str(model), "/data/local/tmp/m.tflite")
    after = parse_df_free_kb(client.shell("df -k /data/local/tmp"))
    assert after is not None and before - after in (512, 513)


# --- host paths -------------------------------------------------------------------------


def test_messages_name_device_paths_never_host_paths(client: AdbDeviceTcp, phone: EmulatedPhone,
                                                     tmp_path: Path) -> None:
    host = str(tmp_path)
    outputs = [client.shell(command) for command in (
        "mkdir /data/local/tmp/benchmark_model/x",      # used to say mkdir: /tmp/.../root/data/...
        "mkdir -p /data/local/tmp/benchmark_model/x",
        "rm -r /data/local/tmp/benchmark_model/x",
        "cat /data/local/tmp/benchmark_model/x",
        "ls /data/local/tmp/nope ../../..",
        "sha256sum /data",
        "/data/local/tmp",
    )]
    assert "/data/local/tmp/benchmark_model/x: Not a directory" in outputs[0]
    small = tmp_path / "small.bin"
    small.write_bytes(b"s")
    for target in ("/data/local/tmp/benchmark_model/x", "/data/local/tmp", "/.mnv3emu/modes.json"):
        try:
            client.push(str(small), target)
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            outputs.append(str(exc))
    assert len(outputs) > 7
    for text in outputs:
        assert host not in text and str(phone.fs.root) not in text, text


# --- /sys and /proc ---------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/sys/devices/system/cpu/cpu4/cpufreq/scaling_max_freq",
    "/sys/class/thermal/thermal_zone0/temp",
    "/proc/cpuinfo",
    "/proc/new-file",
])
def test_sync_cannot_write_the_virtual_sys_and_proc(client: AdbDeviceTcp, phone: EmulatedPhone,
                                                    tmp_path: Path, target: str) -> None:
    before = client.shell("cat /sys/devices/system/cpu/cpu4/cpufreq/scaling_max_freq")
    fake = tmp_path / "fake"
    fake.write_text("1\n")
    with pytest.raises(Exception, match="Permission denied"):  # adb-shell's push error
        client.push(str(fake), target)
    assert not (phone.fs.root / "sys").exists() and not (phone.fs.root / "proc").exists()
    assert client.shell("cat /sys/devices/system/cpu/cpu4/cpufreq/scaling_max_freq") == before


# --- the [emulator] table of a profile --------------------------------------------------


def _profile_with(tmp_path: Path, old: str, new: str) -> Path:
    text = EMULATOR_TOML.read_text()
    assert old in text
    path = tmp_path / "emulator.toml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("big_max_freq_khz = 2803200", "big_max_freq_khz = 1.5e300", r"'big_max_freq_khz' is 1\.5e\+300, expected an integer"),
    ("big_max_freq_khz = 2803200", "big_max_freq_khz = nan", "'big_max_freq_khz' is nan"),
    ("big_max_freq_khz = 2803200", 'big_max_freq_khz = "2803200"', "expected an integer"),
    ("big_max_freq_khz = 2803200", "big_max_freq_khz = 18446744073709551615", r"out of range 1\.\.10000000"),
    ("little_max_freq_khz = 1766400", "little_max_freq_khz = 0", r"out of range 1\.\.10000000"),
    ("battery_level = 100", "battery_level = 101", r"'battery_level' = 101 is out of range 0\.\.100"),
    ("battery_level = 100", "battery_level = true", "expected an integer"),
    ("cpu_temp_mc = 35000", "cpu_temp_mc = 35000.0", "expected an integer"),
    ("storage_free_kb = 32000000", "storage_free_kb = 99000000", "more than 'storage_total_kb'"),
    ("sdk = 34", "sdk = -1", r"out of range 1\.\.1000"),
    ('governor = "schedutil"', 'governor = "schedutil\\nperformance"', "one-line string"),
    ('governor = "schedutil"', "governor = 3", "one-line string"),
    ('governor = "schedutil"', 'governer = "schedutil"', "unknown key.*'governer'"),
    ("cpu_count = 8", "cpu_count = 1000000", rf"'cpu_count' = 1000000 is out of range 1\.\.{MAX_CPUS}"),
    ('benchmark_binary = "/data/local/tmp/benchmark_model"', 'benchmark_binary = "/"', "not the absolute path of a file"),
    ('benchmark_binary = "/data/local/tmp/benchmark_model"', 'benchmark_binary = "/data/local/tmp/"',
     "not the absolute path of a file"),
    ('benchmark_binary = "/data/local/tmp/benchmark_model"', 'benchmark_binary = "/data/local/tmp/.."',
     "not the absolute path of a file"),
])
def test_a_bad_emulator_table_exits_2_naming_file_key_range_and_fix(tmp_path: Path, old: str, new: str,
                                                                   expected: str) -> None:
    started = time.monotonic()
    with pytest.raises(UsageError, match=expected) as err:
        load_profile(_profile_with(tmp_path, old, new))
    assert err.value.exit_code == 2
    assert "emulator.toml" in err.value.message and err.value.hint.split()[0] in ("Write", "Set", "Remove", "Use")  # the fix
    assert time.monotonic() - started < 2  # cpu_count = 1000000 used to cost 2 GB and 26 s


def test_a_bad_profile_fails_the_cli_with_exit_2(tmp_path: Path, cli) -> None:
    path = _profile_with(tmp_path, "big_max_freq_khz = 2803200", "big_max_freq_khz = 1.5e300")
    result = cli("emulator", "serve", "--device", str(path))
    assert result.code == 2 and "big_max_freq_khz" in result.err and "Traceback" not in result.out + result.err


def test_the_virtual_sysfs_is_built_once(phone: EmulatedPhone, monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    original = VirtualSysfs._files
    monkeypatch.setattr(VirtualSysfs, "_files", lambda self: built.append(1) or original(self))
    sysfs = VirtualSysfs(phone.profile)
    for cpu in range(phone.cpu_count):
        assert sysfs.read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq")
    assert sysfs.listdir("/sys/devices/system/cpu")[:2] == ["cpu0", "cpu1"]
    assert sysfs.read("/proc/cpuinfo") and sysfs.is_dir("/sys/class/thermal")
    assert len(built) == 1  # it used to be rebuilt, all cpus' files, on every read
