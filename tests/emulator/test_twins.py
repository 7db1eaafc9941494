"""The Pixel twins: the emulator plays each phone from its profile's facts (no model needed)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from mnv3bench.device.profiles import load_profile
from mnv3bench.device.thermal import parse_thermalservice
from mnv3bench.emulator.faults import DOWNLOAD_NAME
from mnv3bench.emulator.phone import EmulatedPhone

PIXELS = [f"pixel{n}" for n in range(1, 10)]


def sh(phone: EmulatedPhone, command: str) -> tuple[int, str]:
    chunks: list[bytes] = []
    rc = phone.run_shell(command, chunks.append, threading.Event())
    return rc, b"".join(chunks).decode()


def twin(tmp_path: Path, name: str, *faults: str) -> EmulatedPhone:
    return EmulatedPhone(tmp_path / name, load_profile(name), frozenset(faults))


@pytest.mark.parametrize("name", PIXELS)
def test_each_twin_reproduces_its_phone(tmp_path: Path, name: str) -> None:
    profile = load_profile(name)
    phone = twin(tmp_path, name)
    assert sh(phone, "nproc") == (0, f"{profile.cpu_count}\n")
    assert sh(phone, "cat /sys/devices/system/cpu/possible") == (0, f"0-{profile.cpu_count - 1}\n")
    for cluster in profile.clusters:
        cpu = cluster.cpus[-1]
        base = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
        assert sh(phone, f"cat {base}/cpuinfo_max_freq") == (0, f"{cluster.max_freq_khz}\n")
        assert sh(phone, f"cat {base}/related_cpus")[1].split() == [str(c) for c in cluster.cpus]
    zones = sorted(sh(phone, "ls /sys/class/thermal")[1].split(), key=lambda z: int(z.removeprefix("thermal_zone")))
    types = [sh(phone, f"cat /sys/class/thermal/{z}/type")[1].strip() for z in zones]
    assert types == [z.type for z in profile.thermal.zones]
    for zone, fact in zip(zones, profile.thermal.zones, strict=True):
        assert sh(phone, f"cat /sys/class/thermal/{zone}/temp") == (0, f"{fact.value}\n")
    assert sh(phone, "getprop ro.product.device") == (0, f"{profile.codenames[0]}\n")
    assert sh(phone, "getprop ro.board.platform") == (0, f"{profile.platform}\n")
    assert re.fullmatch(rf"MNV3{name.upper()}[0-9A-F]{{8}}\n", sh(phone, "getprop ro.serialno")[1])
    hal = parse_thermalservice(sh(phone, "dumpsys thermalservice")[1])
    cpu = [(n, v) for n, kind, v in hal if kind == 0]
    assert cpu and all(0 < v < 125 for _n, v in cpu)


def test_pixel1_counts_tenths_and_tensor_has_bcl_zones(tmp_path: Path) -> None:
    p1 = twin(tmp_path, "pixel1")
    assert "tsens_tz_sensor3" in sh(p1, "cat /sys/class/thermal/thermal_zone2/type")[1]
    assert sh(p1, "cat /sys/class/thermal/thermal_zone2/temp") == (0, "372\n")  # 37.2 C, in tenths
    p6 = twin(tmp_path, "pixel6")
    types = [sh(p6, f"cat /sys/class/thermal/thermal_zone{i}/type")[1].strip() for i in range(18)]
    assert {"BIG", "MID", "LITTLE", "ocp_cpu1", "soft_ocp_cpu2", "soc"} <= set(types)
    # The current-limit zone reads like 11.9 degrees to a naive reader: it is 11900 mA.
    assert sh(p6, f"cat /sys/class/thermal/thermal_zone{types.index('ocp_cpu2')}/temp") == (0, "11900\n")


def test_the_plain_emulator_is_unchanged(tmp_path: Path) -> None:
    phone = EmulatedPhone(tmp_path / "emu", load_profile("emulator"))
    assert sh(phone, "ls /sys/class/thermal") == (0, "thermal_zone0\nthermal_zone1\n")
    assert sh(phone, "cat /sys/class/thermal/thermal_zone0/type") == (0, "cpu-1-0-usr\n")
    assert sh(phone, "getprop ro.serialno")[1].startswith("MNV3EMU")
    assert sh(phone, "getprop ro.board.platform") == (0, "\n")


def test_thermal_sysfs_denied_by_selinux(tmp_path: Path) -> None:
    phone = twin(tmp_path, "pixel7", "thermal-denied")
    assert sh(phone, "ls /sys/class/thermal")[0] == 0  # the folder is listable (sysfs:dir r_dir_perms)
    assert sh(phone, "cat /sys/class/thermal/thermal_zone0/temp") == \
        (1, "cat: /sys/class/thermal/thermal_zone0/temp: Permission denied\n")
    assert "mType=0, mName=BIG" in sh(phone, "dumpsys thermalservice")[1]


def test_cpuset_that_leaves_out_the_big_cores(tmp_path: Path) -> None:
    phone = twin(tmp_path, "pixel6", "cpuset-little")
    assert sh(phone, "cat /proc/self/cpuset") == (0, "/foreground\n")
    rc, out = sh(phone, "taskset 40 true")  # cpu6, the X1: outside the foreground cpuset 0-5
    assert rc == 1 and re.fullmatch(r"taskset: failed to set pid \d+'s affinity: Invalid argument\n", out)
    assert sh(phone, "taskset 10 true") == (0, "")  # cpu4 is allowed
    assert sh(EmulatedPhone(tmp_path / "plain", load_profile("pixel6")), "cat /proc/self/cpuset") == (0, "/\n")


def test_throttle_caps_the_fastest_cluster(tmp_path: Path) -> None:
    phone = twin(tmp_path, "pixel9", "throttle")
    base = "/sys/devices/system/cpu/cpu7/cpufreq"
    assert int(sh(phone, f"cat {base}/scaling_max_freq")[1]) < int(sh(phone, f"cat {base}/cpuinfo_max_freq")[1])
    assert sh(phone, "cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq") == (0, "1950000\n")


def test_download_name_and_toybox_pkill(tmp_path: Path) -> None:
    phone = twin(tmp_path, "pixel8", "download-name")
    assert phone.fs.exists(f"/data/local/tmp/{DOWNLOAD_NAME}")
    assert sh(phone, "pkill -x benchmark_model") == (1, "")  # no match: toybox says nothing, exits 1
    assert sh(phone, "pidof benchmark_model") == (1, "")
