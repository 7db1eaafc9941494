"""The file lock helper (mnv3bench.locks) and the device lock built on it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from mnv3bench.device.lock import DeviceLock
from mnv3bench.errors import MnvError
from mnv3bench.locks import FileLock, LockBusy


def test_non_blocking_lock_names_its_holder(tmp_path):
    path = tmp_path / "sub" / "x.lock"
    with FileLock(path, blocking=False) as held:
        assert held.held and path.read_text() == str(os.getpid())
        with pytest.raises(LockBusy) as busy:
            FileLock(path, blocking=False).acquire()
        assert busy.value.holder_pid == str(os.getpid()) and busy.value.path == path
    assert not held.held
    FileLock(path, blocking=False).acquire()  # free again


def test_blocking_lock_waits_for_the_holder(tmp_path):
    path = tmp_path / "model.tflite.lock"
    order: list[str] = []
    first = FileLock(path)
    first.acquire()

    def second() -> None:
        with FileLock(path):
            order.append("second")

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.2)
    order.append("first done")
    first.release()
    waiter.join(timeout=10)
    assert order == ["first done", "second"]


def test_device_lock_is_exclusive_and_released(tmp_path):
    first = DeviceLock(tmp_path, "pixel3-S1")
    first.acquire()
    with pytest.raises(MnvError, match=r"in use by another mnv3bench process \(pid \d+\)"):
        DeviceLock(tmp_path, "pixel3-S1").acquire()
    DeviceLock(tmp_path, "pixel3-S2").acquire()  # another phone is free
    first.release()
    with DeviceLock(tmp_path, "pixel3-S1"):
        pass


def test_stale_lock_from_a_dead_process_is_taken_over(tmp_path):
    code = ("import sys, os; from mnv3bench.device.lock import DeviceLock; "
            f"DeviceLock({str(tmp_path)!r}, 'pixel3-S1').acquire(); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    lock = DeviceLock(tmp_path, "pixel3-S1")
    assert lock.path.exists()  # the dead process left its file behind
    with lock:
        assert lock.path.read_text().strip() == str(__import__("os").getpid())
