"""The emulated phone's shell: allow-list, quoting, injection, each command's output."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from pathlib import Path

import pytest

from mnv3bench.device.probe import parse_df_free_kb
from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator.phone import EmulatedPhone
from mnv3bench.emulator.shell import ShellHost, ShellSyntaxError, parse


@pytest.fixture(scope="module")
def profile():
    return load_profile("emulator")


@pytest.fixture
def phone(tmp_path: Path, profile) -> EmulatedPhone:
    return EmulatedPhone(tmp_path / "root", profile)


def sh(phone: EmulatedPhone, command: str) -> tuple[int, str]:
    chunks: list[bytes] = []
    rc = phone.run_shell(command, chunks.append, threading.Event())
    return rc, b"".join(chunks).decode()


def test_the_phone_is_a_shell_host(phone: EmulatedPhone) -> None:
    assert isinstance(phone, ShellHost)


def test_unknown_commands_are_not_found(phone: EmulatedPhone) -> None:
    for cmd in ("id", "su", "sh -c id", "bash", "python3 -c 1", "busybox", "/bin/sh", "/system/bin/sh"):
        rc, out = sh(phone, cmd)
        assert rc == 127, cmd
        assert out == f"sh: {cmd.split()[0]}: not found\n"


def test_status_and_connectors(phone: EmulatedPhone) -> None:
    assert sh(phone, "false; echo $?") == (0, "1\n")
    assert sh(phone, "nosuch; echo \"rc=$?\"") == (0, "sh: nosuch: not found\nrc=127\n")
    assert sh(phone, "true && echo yes || echo no") == (0, "yes\n")
    assert sh(phone, "false && echo yes || echo no") == (0, "no\n")
    assert sh(phone, "false && echo never") == (1, "")
    assert sh(phone, "echo a\necho b") == (0, "a\nb\n")
    assert sh(phone, "echo ${?}; exit 3; echo after")[0] == 3


def test_quoting(phone: EmulatedPhone) -> None:
    assert sh(phone, "echo 'a;b' \"c && d\" e\\;f '$?'") == (0, "a;b c && d e;f $?\n")
    assert sh(phone, "echo \"x\"'y'z") == (0, "xyz\n")
    assert sh(phone, "echo $HOME end") == (0, " end\n")  # unset variables expand to nothing
    rc, out = sh(phone, "echo 'unterminated")
    assert rc == 2 and "unterminated" in out


@pytest.mark.parametrize("payload", [
    "echo `touch {canary}`", "echo $(touch {canary})", "echo \"$(touch {canary})\"",
    "echo \"`touch {canary}`\"", "ls | touch {canary}", "ls & touch {canary}",
    "cat /data/local/tmp/x;touch {canary}", "echo hi > {canary}",
    "mkdir -p '/data/local/tmp/;touch {canary}'", "sha256sum '/data/$(touch {canary})'",
    "rm -f \"/data/local/tmp/`touch {canary}`\"",
])
def test_injection_runs_nothing_on_the_host(phone: EmulatedPhone, tmp_path: Path, payload: str) -> None:
    canary = tmp_path / "canary"
    sh(phone, payload.format(canary=canary))
    assert not canary.exists()


def test_file_names_with_separators_stay_file_names(phone: EmulatedPhone) -> None:
    assert sh(phone, "mkdir -p '/data/local/tmp/a;b'") == (0, "")
    assert (phone.fs.root / "data/local/tmp/a;b").is_dir()
    rc, out = sh(phone, "ls /data/local/tmp")
    assert "a;b\n" in out


def test_parse_refuses_substitution_and_pipes() -> None:
    for bad in ("echo `id`", "echo $(id)", "a | b", "a &", "(a)", "&& a", "a ||"):
        with pytest.raises(ShellSyntaxError):
            parse(bad)


def test_redirections(phone: EmulatedPhone) -> None:
    assert sh(phone, "cat /nope 2>/dev/null; echo $?") == (0, "1\n")
    assert sh(phone, "cat /nope 2>&1") == (1, "cat: /nope: No such file or directory\n")
    assert sh(phone, "echo hidden >/dev/null") == (0, "")
    rc, out = sh(phone, "echo x > /data/local/tmp/f")
    assert rc == 1 and "not supported" in out and not (phone.fs.root / "data/local/tmp/f").exists()


def test_getprop(phone: EmulatedPhone, profile) -> None:
    assert sh(phone, "getprop ro.product.model") == (0, "mnv3bench emulator\n")
    assert sh(phone, "getprop ro.product.cpu.abi") == (0, "x86_64\n")
    assert sh(phone, "getprop ro.build.version.sdk") == (0, "34\n")
    assert sh(phone, "getprop ro.build.fingerprint")[1].strip() == profile.emulator["fingerprint"]
    assert sh(phone, "getprop no.such.prop") == (0, "\n")
    rc, out = sh(phone, "getprop")
    assert "[ro.product.device]: [mnv3emu]\n" in out and "[ro.serialno]: [MNV3EMU" in out


def test_files_commands(phone: EmulatedPhone) -> None:
    data = os.urandom(3000)
    phone.fs.write_bytes("/data/local/tmp/m.tflite", data)
    assert sh(phone, "sha256sum /data/local/tmp/m.tflite") == (
        0, f"{hashlib.sha256(data).hexdigest()}  /data/local/tmp/m.tflite\n")
    assert sh(phone, "sha256sum /data/local/tmp/none") == (
        1, "sha256sum: /data/local/tmp/none: No such file or directory\n")
    rc, out = sh(phone, "ls -l /data/local/tmp")
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("total ")
    assert lines[1].startswith("-rwxr-xr-x 1 shell shell ") and lines[1].endswith(" benchmark_model")
    assert lines[2].split()[0] == "-rw-r--r--" and lines[2].split()[4] == "3000"
    assert sh(phone, "ls /data/local/tmp") == (0, "benchmark_model\nm.tflite\n")
    assert sh(phone, "chmod 755 /data/local/tmp/m.tflite && ls -l /data/local/tmp/m.tflite")[1].startswith("-rwxr-xr-x")
    assert sh(phone, "chmod go-rx /data/local/tmp/m.tflite; ls -l /data/local/tmp/m.tflite")[1].startswith("-rwx------")
    assert sh(phone, "chmod +x /nope") == (1, "chmod: /nope: No such file or directory\n")
    assert sh(phone, "chmod zz /data/local/tmp/m.tflite") == (1, "chmod: bad mode 'zz'\n")
    assert sh(phone, "mkdir /a/b/c") == (1, "mkdir: '/a/b/c': No such file or directory\n")
    assert sh(phone, "mkdir -p /data/local/tmp/w/x && mkdir -p /data/local/tmp/w/x") == (0, "")
    assert sh(phone, "mkdir /data/local/tmp/w") == (1, "mkdir: '/data/local/tmp/w': File exists\n")
    assert sh(phone, "rm /data/local/tmp/nope") == (1, "rm: /data/local/tmp/nope: No such file or directory\n")
    assert sh(phone, "rm -f /data/local/tmp/nope /data/local/tmp/m.tflite") == (0, "")
    assert sh(phone, "rm -f /data/local/tmp/w") == (1, "rm: /data/local/tmp/w: Is a directory\n")
    assert sh(phone, "rm -rf /data/local/tmp/w; ls /data/local/tmp") == (0, "benchmark_model\n")
    assert sh(phone, "cat /data/local/tmp") == (1, "cat: /data/local/tmp: Is a directory\n")
    assert sh(phone, "test -x /data/local/tmp/benchmark_model && echo ok") == (0, "ok\n")
    assert sh(phone, "[ -e /data/local/tmp/none ] || echo missing") == (0, "missing\n")


def test_sandbox_holds_in_the_shell(phone: EmulatedPhone, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret\n")
    os.symlink(outside, phone.fs.root / "data/local/tmp/link")
    rc, out = sh(phone, f"cat /data/local/tmp/link {outside} ../../{outside}")
    assert rc == 1 and "host secret" not in out
    # rm removes the link itself (as on a phone), never the host file it points to.
    assert sh(phone, "rm -f /data/local/tmp/link; echo $?")[1].endswith("0\n")
    assert outside.read_text() == "host secret\n"
    assert not os.path.lexists(phone.fs.root / "data/local/tmp/link")
    assert sh(phone, "cat /etc/passwd")[0] == 1


def test_df(phone: EmulatedPhone, profile) -> None:
    rc, out = sh(phone, "df -k /data/local/tmp")
    header, row = out.splitlines()
    assert header.split() == ["Filesystem", "1K-blocks", "Used", "Available", "Use%", "Mounted", "on"]
    cells = row.split()
    total, used, avail = int(cells[1]), int(cells[2]), int(cells[3])
    assert total == profile.emulator["storage_total_kb"] and used + avail == total
    assert profile.emulator["storage_free_kb"] - 2 <= avail <= profile.emulator["storage_free_kb"]
    assert cells[-1] == "/data" and cells[4].endswith("%")
    assert parse_df_free_kb(out) == avail
    phone.fs.write_bytes("/sdcard/big", b"\0" * (1 << 20))
    assert parse_df_free_kb(sh(phone, "df /sdcard")[1]) == avail - 1024
    assert sh(phone, "df")[1].count("\n") == 4
    assert sh(phone, "df /nope")[0] == 1


def test_dumpsys_battery(phone: EmulatedPhone) -> None:
    rc, out = sh(phone, "dumpsys battery")
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "Current Battery Service state:"
    fields = dict(line.strip().split(": ", 1) for line in lines[1:])
    assert fields["AC powered"] == "false" and fields["USB powered"] == "true"
    assert fields["level"] == "100" and fields["temperature"] == "250" and fields["status"] == "5"
    assert sh(phone, "dumpsys window")[0] == 1


def test_small_commands(phone: EmulatedPhone) -> None:
    assert sh(phone, "uname -m") == (0, "x86_64\n")
    assert sh(phone, "nproc") == (0, "8\n")
    assert sh(phone, "echo -n a b") == (0, "a b")
    assert sh(phone, "pkill -f benchmark_model") == (1, "")
    assert sh(phone, "kill 1") == (1, "kill: 1: No such process\n")  # never a host process
    assert sh(phone, "taskset zz echo") == (1, "taskset: bad mask 'zz'\n")
    # toybox's text (toys/other/taskset.c: perror_exit("failed to set pid %d's affinity")).
    assert re.fullmatch(r"taskset: failed to set pid \d+'s affinity: Invalid argument\n", sh(phone, "taskset 100 echo x")[1])
    assert sh(phone, "taskset 100 echo x")[0] == 1
    assert sh(phone, "taskset 10 echo x") == (0, "x\n")
    t0 = time.monotonic()
    assert sh(phone, "sleep 0.1") == (0, "")
    assert time.monotonic() - t0 >= 0.1


def test_sleep_stops_when_cancelled(phone: EmulatedPhone) -> None:
    cancelled = threading.Event()
    threading.Timer(0.1, cancelled.set).start()
    t0 = time.monotonic()
    assert phone.run_shell("sleep 30; echo never", lambda b: None, cancelled) == 130
    assert time.monotonic() - t0 < 5


def test_running_files(phone: EmulatedPhone) -> None:
    phone.fs.write_bytes("/data/local/tmp/tool", b"x", permissions=0o755)
    rc, out = sh(phone, "/data/local/tmp/tool")
    assert rc == 126 and "cannot execute" in out
    assert sh(phone, "/data/local/tmp/none") == (127, "sh: /data/local/tmp/none: not found\n")
    assert sh(phone, "/sys/class/thermal/thermal_zone0/temp")[0] == 126
    assert sh(phone, "benchmark_model --graph=x") == (127, "sh: benchmark_model: not found\n")
    sh(phone, "chmod 644 /data/local/tmp/benchmark_model")
    assert sh(phone, "/data/local/tmp/benchmark_model") == (
        126, "sh: /data/local/tmp/benchmark_model: Permission denied\n")


def test_no_binary_fault(tmp_path: Path, profile) -> None:
    phone = EmulatedPhone(tmp_path / "root", profile, frozenset({"no-binary"}))
    assert sh(phone, "ls /data/local/tmp") == (0, "")
    assert sh(phone, f"{profile.benchmark_binary} --graph=x")[0] == 127


# -- the virtual /sys and /proc ----------------------------------------------------------


def test_sysfs_from_profile(phone: EmulatedPhone, profile) -> None:
    emu = profile.emulator
    cpu = "/sys/devices/system/cpu"
    assert sh(phone, f"cat {cpu}/possible {cpu}/online") == (0, "0-7\n0-7\n")
    for c in range(8):
        expected = emu["big_max_freq_khz"] if c in profile.big_cores else emu["little_max_freq_khz"]
        assert sh(phone, f"cat {cpu}/cpu{c}/cpufreq/cpuinfo_max_freq")[1] == f"{expected}\n"
        assert sh(phone, f"cat {cpu}/cpu{c}/cpufreq/scaling_cur_freq")[1] == f"{expected}\n"
        assert sh(phone, f"cat {cpu}/cpu{c}/cpufreq/scaling_governor")[1] == f"{emu['governor']}\n"
    assert sh(phone, "ls /sys/class/thermal") == (0, "thermal_zone0\nthermal_zone1\n")
    assert sh(phone, "cat /sys/class/thermal/thermal_zone0/type /sys/class/thermal/thermal_zone0/temp") == (
        0, f"cpu-1-0-usr\n{emu['cpu_temp_mc']}\n")
    assert sh(phone, "cat /sys/class/thermal/thermal_zone1/type")[1] == "battery\n"
    rc, out = sh(phone, "cat /proc/cpuinfo /proc/meminfo")
    assert out.count("processor\t:") == 8 and "MemTotal:" in out
    assert sh(phone, f"cat {cpu}/cpu9/cpufreq/cpuinfo_max_freq")[0] == 1
    assert sh(phone, "mkdir -p /sys/x")[0] == 1


def test_hot_fault_cools_over_time(tmp_path: Path, profile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNV3BENCH_EMU_COOL_S", "0.6")
    phone = EmulatedPhone(tmp_path / "root", profile, frozenset({"hot"}))
    temp = "cat /sys/class/thermal/thermal_zone0/temp"
    freq = "cat /sys/devices/system/cpu/cpu4/cpufreq/scaling_cur_freq"
    first = int(sh(phone, temp)[1])
    assert first > 75000                                   # above a typical gate
    assert int(sh(phone, freq)[1]) < profile.emulator["big_max_freq_khz"]   # throttled
    time.sleep(0.3)
    middle = int(sh(phone, temp)[1])
    assert profile.emulator["cpu_temp_mc"] < middle < first
    time.sleep(0.4)
    assert int(sh(phone, temp)[1]) == profile.emulator["cpu_temp_mc"]
    assert int(sh(phone, freq)[1]) == profile.emulator["big_max_freq_khz"]
