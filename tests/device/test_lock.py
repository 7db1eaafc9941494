"""The device lock is keyed by identity: one device, one key, whatever the address's spelling."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mnv3bench.device.lock import (
    DeviceLock,
    HostCoreLock,
    device_lock_key,
    emulator_host_cpu,
    normalise_address,
)
from mnv3bench.errors import MnvError


@pytest.mark.parametrize("spelling", ["127.1:6001", "127.0.0.1:6001", "localhost:6001", "[::1]:6001",
                                      "127.0.0.1:06001"])
def test_every_spelling_of_one_address_is_one_key(spelling):
    assert normalise_address(spelling) == "127.0.0.1:6001"
    assert device_lock_key(None, spelling) == device_lock_key("", "127.0.0.1:6001")


def test_the_reported_serial_number_wins_over_the_address():
    assert device_lock_key("8AAY0GCNA", "192.168.1.20:5555") == device_lock_key("8AAY0GCNA", "10.0.0.7:5555")
    assert device_lock_key("8AAY0GCNA", "x:1") != device_lock_key("OTHER", "x:1")
    # "unknown" (or the famous all-phones placeholder) identifies nothing: the address does.
    assert device_lock_key("unknown", "127.1:5") == device_lock_key(None, "localhost:5")


def test_a_usb_serial_is_kept_as_it_is():
    assert normalise_address("FA6AB0301234") == "FA6AB0301234"


def test_two_spellings_cannot_both_hold_the_lock(tmp_path):
    with DeviceLock(tmp_path, device_lock_key(None, "127.1:6001")):
        with pytest.raises(MnvError, match="in use"):
            DeviceLock(tmp_path, device_lock_key(None, "localhost:6001")).acquire()


def test_emulator_pin_cores_map_onto_the_host_cpus_this_process_may_use():
    import os

    allowed = sorted(os.sched_getaffinity(0))
    assert emulator_host_cpu(4) == allowed[4 % len(allowed)]
    assert emulator_host_cpu(len(allowed)) == emulator_host_cpu(0)


def test_a_second_emulator_on_the_same_host_core_waits_and_says_so(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from mnv3bench.device.lock import HostCoreLock; "
        f"lock = HostCoreLock({str(tmp_path)!r}, 0).__enter__(); print('held', flush=True); time.sleep(1.0)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    said: list[str] = []
    started = time.monotonic()
    with HostCoreLock(tmp_path, 0, said.append):
        waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert waited > 0.3  # it measured only after the other run let go of the core
    assert said and "host cpu 0" in said[0] and str(holder.pid) in said[0]
    with HostCoreLock(tmp_path, 1, said.append):  # another core is free at once
        pass
    assert len(said) == 1
