"""How fast the emulated adbd moves a 20 MiB model: adb-shell push/pull and Debian's adb push.

    python benchmarks/adbd_transfer.py [--mib 20] [--repeats 3]

Prints the median seconds and MB/s of each. Runs entirely on loopback in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner

from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator import start_in_process


def timed(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(name: str, seconds: float, size: int) -> None:
    print(f"{name:<28} {seconds:6.3f} s  {size / seconds / 1e6:7.1f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        (home / ".android").mkdir(parents=True)
        key = home / ".android" / "adbkey"
        keygen(str(key))
        payload = tmp / "model.bin"
        payload.write_bytes(os.urandom(args.mib * 1024 * 1024))
        size = payload.stat().st_size

        with start_in_process(load_profile("emulator"), root=tmp / "root", trusted_keys=[Path(str(key) + ".pub")]) as server:
            device = AdbDeviceTcp("127.0.0.1", server.port, default_transport_timeout_s=30)
            device.connect(rsa_keys=[PythonRSASigner.FromRSAKeyPath(str(key))])
            remote = "/data/local/tmp/model.bin"
            report("adb-shell push", timed(lambda: device.push(str(payload), remote), args.repeats), size)
            report("adb-shell pull", timed(lambda: device.pull(remote, str(tmp / "back.bin")), args.repeats), size)
            device.close()

            adb = shutil.which("adb")
            if adb is None:
                print("Debian's adb not found: skipped")
                return
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                adb_port = probe.getsockname()[1]
            env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(adb_port))

            def run(*cmd: str) -> None:
                subprocess.run([adb, *cmd], env=env, check=True, capture_output=True, timeout=120)

            try:
                run("connect", server.address)
                time.sleep(0.2)
                report("adb push", timed(lambda: run("-s", server.address, "push", str(payload), remote), args.repeats), size)
                report("adb pull", timed(lambda: run("-s", server.address, "pull", remote, str(tmp / "back2.bin")), args.repeats), size)
            finally:
                subprocess.run([adb, "kill-server"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
