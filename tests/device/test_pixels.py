"""What real phones need, each finding against the Pixel twin where it happens (over real ADB)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from mnv3bench.bench.command import flag_problem, kill_command, taskset_failure
from mnv3bench.device.adb import AdbDevice, connect
from mnv3bench.device.preflight import FAIL, OK, pinning_check, run_checks
from mnv3bench.device.probe import probe
from mnv3bench.device.profiles import load_profile
from mnv3bench.device.protocol import ShellResult
from mnv3bench.device.thermal import ThermalRules, ThermalSource, read_temperature
from mnv3bench.errors import MnvError

PIXELS = [f"pixel{n}" for n in range(1, 10)]


@pytest.fixture
def twin(emulator: Callable[..., object], adb_key: Path, tmp_path: Path) -> Callable[..., object]:
    @contextmanager
    def open_twin(name: str, *faults: str) -> Iterator[tuple[object, AdbDevice]]:
        profile = load_profile(name)
        server = emulator(faults, root=tmp_path / f"{name}-{'-'.join(faults)}", profile=profile)
        with connect(profile, adb_address=server.address, keys_path=adb_key, notify=lambda m: None) as dev:
            yield server, dev

    return open_twin


@pytest.mark.parametrize("name", PIXELS)
def test_probe_finds_clusters_pin_core_temperature_and_serial(twin, name: str) -> None:
    profile = load_profile(name)
    with twin(name) as (server, dev):
        info = probe(dev, profile)
    assert [set(c) for c in info.clusters_detected] == [set(c.cpus) for c in profile.clusters]
    assert profile.pin_core in info.fastest_cluster and info.notes == []
    assert info.thermal_source.kind == "sysfs" and 20 < info.cpu_temperature_c < 60
    assert info.serial == server.phone.props["ro.serialno"] and info.address == server.address
    assert info.serial != info.address


def test_pixel1_tenths_are_degrees_not_hundreds(twin) -> None:
    with twin("pixel1") as (_server, dev):
        info = probe(dev, load_profile("pixel1"))
    assert info.cpu_temperature_c == pytest.approx(37.5)  # the hottest of 372, 368, 375, 370 tenths


def test_tensor_current_limit_zones_are_not_cpu_temperatures(twin) -> None:
    with twin("pixel6") as (_server, dev):
        info = probe(dev, load_profile("pixel6"))
        generic = read_temperature(lambda c: dev.shell(c).output,
                                   replace(info.thermal_source, zones=(("/sys/class/thermal/thermal_zone10/temp",
                                                                        "ocp_cpu2"),), rules=ThermalRules()))
    assert {t for _p, t in info.thermal_source.zones} == {"BIG", "MID", "LITTLE"}
    assert info.cpu_temperature_c == pytest.approx(39.5)
    # Read as millidegrees, ocp_cpu2's 11900 mA would be 11.9 C: plausible-looking, so it must
    # never be chosen; the rules leave it out (and the generic rules too).
    assert not ThermalRules().is_cpu("ocp_cpu2") and not load_profile("pixel6").thermal.is_cpu("soft_ocp_cpu1")
    assert generic.celsius == pytest.approx(11.9)  # what a naive reading would store


def test_a_tensor_profile_copied_from_pixel3_is_reported(twin) -> None:
    wrong = replace(load_profile("pixel6"), big_cores=(4, 5, 6, 7), pin_core=4)
    with twin("pixel6") as (_server, dev):
        info = probe(dev, wrong)
        checks = {c.name: c for c in run_checks(dev, wrong, info)}
    assert "fastest cluster by cpuinfo_max_freq is cpu6,cpu7" in info.notes[0]
    assert "pin_core 4 is NOT one of them" in info.notes[0]
    assert checks["big cores"].status == "warn" and "fastest cluster" in checks["big cores"].fix


def test_thermal_sysfs_denied_reads_dumpsys_and_doctor_says_so(twin) -> None:
    profile = load_profile("pixel8")
    with twin("pixel8", "thermal-denied") as (_server, dev):
        info = probe(dev, profile)
        checks = {c.name: c for c in run_checks(dev, profile, info)}
    assert info.thermal_source.kind == "dumpsys" and "denied" in info.thermal_source.reason
    assert info.cpu_temperature_c == pytest.approx(39.5)
    assert checks["temperature"].status == OK and "dumpsys thermalservice" in checks["temperature"].detail


def test_each_reading_is_one_shell_call(twin) -> None:
    profile = load_profile("pixel4")
    with twin("pixel4") as (_server, dev):
        info = probe(dev, profile)
        calls: list[str] = []
        reading = read_temperature(lambda c: calls.append(c) or dev.shell(c).output, info.thermal_source)
    assert len(calls) == 1 and calls[0].startswith("cat ") and calls[0].count("thermal_zone") == 8
    assert reading.celsius == pytest.approx(38.6)


def test_an_implausible_value_is_unknown_with_the_reason() -> None:
    source = ThermalSource("sysfs", "", (("/z0/temp", "tsens_tz_sensor3"),), ThermalRules(units="decidegrees"))
    reading = read_temperature(lambda c: "3720\n", source)  # 372 C: a unit mistake, not a temperature
    assert reading.celsius is None and "not a plausible CPU temperature" in reading.note
    assert read_temperature(lambda c: "0\n", source).celsius is None


def test_doctor_names_the_pinning_problem(twin) -> None:
    profile = load_profile("pixel7")
    with twin("pixel7", "cpuset-little") as (_server, dev):
        check = pinning_check(dev, profile)
    assert check.status == FAIL and "cpuset is /foreground" in check.detail
    assert "failed to set pid" in check.detail and "adb shell's cpuset" in check.fix
    with twin("pixel7") as (_server, dev):
        assert pinning_check(dev, profile).status == OK


def test_run_output_classifiers() -> None:
    assert taskset_failure("taskset: failed to set pid 4242's affinity: Invalid argument\n")
    assert taskset_failure("benchmark_model exited\n") is None
    assert "ignored flags" in flag_problem("WARN: Unconsumed cmdline flags: --use_xnnpack=true\n")
    assert "delegate was not applied" in flag_problem("ERROR: Failed to apply XNNPACK delegate.\n")
    assert flag_problem("INFO: XNNPACK delegate created.\nINFO: Replacing 90 out of 90 node(s)\n") is None
    assert kill_command("/data/local/tmp/android_aarch64_benchmark_model") == \
        "pkill -x android_aarch64_benchmark_model; pidof android_aarch64_benchmark_model"


def test_stls_on_connect_is_a_clear_error(emulator, adb_key: Path, tmp_path: Path) -> None:
    profile = load_profile("pixel9")
    server = emulator(("stls",), root=tmp_path / "p9", profile=profile)
    with pytest.raises(MnvError) as err:
        connect(profile, adb_address=server.address, keys_path=adb_key, notify=lambda m: None)
    assert "STLS" in err.value.message and "Wireless debugging" in err.value.message
    assert "adb tcpip 5555" in err.value.hint


def test_after_a_usb_timeout_reconnect_waits_for_the_read_in_flight() -> None:
    """libusb cannot abort a read: the handle is reopened only once that read has returned."""
    release = threading.Event()
    opened: list[float] = []
    reads_in_flight: list[int] = [0]

    class StuckUsb:
        def streaming_shell(self, command, **_kw):
            if "sleep" in command:
                reads_in_flight[0] += 1
                release.wait(20)  # a bulk read that ignores every close
                reads_in_flight[0] -= 1
                return
            yield f"ok\n{command.split('echo ')[-1].replace(' $?', '')} 0\n".encode()

        def close(self):
            pass

    def open_link():
        assert reads_in_flight[0] == 0, "reopened the USB handle while a read was in flight"
        opened.append(time.monotonic())
        return StuckUsb(), None

    dev = AdbDevice(open_link, serial="usb", transport_name="usb")
    result = dev.shell("sleep 100", timeout_s=0.2)
    assert result.timed_out and len(opened) == 1  # not reopened: the read is still blocked
    if threading.current_thread() is threading.main_thread():
        # A Ctrl-C while the next command waits for that read must not make it look ended
        # (CPython before 3.13 marks a thread stopped when a signal interrupts its join).
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()
            with pytest.raises(KeyboardInterrupt):
                dev.shell("echo interrupted", timeout_s=10)
        finally:
            signal.signal(signal.SIGINT, previous)
        assert len(opened) == 1
    threading.Timer(0.3, release.set).start()
    assert dev.shell("echo hi", timeout_s=10).output.startswith("ok")
    assert len(opened) == 2


def test_a_fake_shell_result_is_not_a_pinning_failure() -> None:
    assert taskset_failure(ShellResult("", 0, False).output) is None
