"""`mnv3bench emulator serve` and `start_in_process`, with the real EmulatedPhone behind them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp

from mnv3bench.cli import main
from mnv3bench.device.adb import load_signer
from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator import ADB_EMULATOR_PORTS, default_root, start_in_process
from tests.helpers import ctrl_c_reaches_it


def test_unknown_fault_is_a_usage_error_listing_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "serve", "--fault", "melt"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "melt" in err
    for kind in ("drop-push", "drop-run", "hang", "crash", "garbage", "no-binary", "hot", "slow"):
        assert kind in err


def test_port_in_the_adb_emulator_range_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "serve", "--port", "5557"])
    assert exit_info.value.code == 2
    assert "5555-5585" in capsys.readouterr().err


def test_start_in_process_uses_a_persistent_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adb_shell.auth.keygen import keygen

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    keygen(str(tmp_path / "adbkey"))
    signer = load_signer(tmp_path / "adbkey")
    profile = load_profile("emulator")
    local = tmp_path / "m.tflite"
    local.write_bytes(b"tflite bytes")
    with start_in_process(profile, trusted_keys=[tmp_path / "adbkey.pub"]) as server:
        assert server.address == f"127.0.0.1:{server.port}"
        assert server.port not in ADB_EMULATOR_PORTS
        device = AdbDeviceTcp("127.0.0.1", server.port, default_transport_timeout_s=5)
        device.connect(rsa_keys=[signer], auth_timeout_s=2)
        device.push(str(local), "/data/local/tmp/mnv3bench/m.tflite")
        device.close()
    # A second emulator of the same profile finds the model, as a phone would.
    assert default_root("emulator") == tmp_path / "cache" / "mnv3bench" / "emulator" / "emulator"
    with start_in_process(profile, trusted_keys=[tmp_path / "adbkey.pub"]) as server:
        device = AdbDeviceTcp("127.0.0.1", server.port, default_transport_timeout_s=5)
        device.connect(rsa_keys=[signer], auth_timeout_s=2)
        assert device.stat("/data/local/tmp/mnv3bench/m.tflite")[1] == len(b"tflite bytes")
        device.close()


def _wait_or_dump_threads(proc: subprocess.Popen[str], timeout: float) -> int:
    """proc's exit status; if it is still running after `timeout`, fail with its threads' stacks
    (they showed a main thread waiting on, never interrupted: SIGINT was ignored, inherited
    from a suite started in the background; see ctrl_c_reaches_it)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"still running {timeout:g} s after Ctrl-C; its threads:\n{err}") from None


def test_serve_in_the_foreground_until_ctrl_c(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "adbkey"  # absent: serve must create it on a fresh machine
    # PYTHONFAULTHANDLER: if it does not stop, SIGABRT makes it print where each thread is.
    env = dict(os.environ, MNV3BENCH_ADBKEY=str(key), HOME=str(tmp_path / "home"), PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnv3bench", "emulator", "serve", "--root", str(tmp_path / "root")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_it,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"serving ADB on (127\.0\.0\.1:(\d+))", first)
        assert match, first + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        address, port = match.group(1), int(match.group(2))
        assert f"mnv3bench run --device emulator --adb {address}" in proc.stdout.readline()
        assert f"adb connect {address}" in proc.stdout.readline()
        assert key.exists() and Path(str(key) + ".pub").exists()

        device = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=5)
        device.connect(rsa_keys=[load_signer(key)], auth_timeout_s=2)
        assert device.shell("getprop ro.product.device").strip() == "mnv3emu"
        local = tmp_path / "x.bin"
        local.write_bytes(os.urandom(100_000))
        device.push(str(local), "/sdcard/x.bin")
        assert (tmp_path / "root" / "sdcard" / "x.bin").read_bytes() == local.read_bytes()
        device.close()

        proc.send_signal(signal.SIGINT)
        assert _wait_or_dump_threads(proc, 10) == 0
        assert "stopped" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
