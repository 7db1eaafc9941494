"""The emulated phone behind the emulated adbd: files, properties, shell, benchmark runs.

`EmulatedPhone` is what adbd/server.py serves. It owns a sandboxed file system (sandbox.py),
a virtual /sys and /proc (sysfs.py), the getprop values, and the benchmark_model
processes it starts: each one is `python -m mnv3bench.emulator.standin` in a child
process, pinned to the host cpus named by the taskset mask (virtual cpu v -> host cpu
v % os.cpu_count()), its stdout+stderr streamed to the ADB client as produced.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnv3bench.device.probe import EMULATOR_PROP
from mnv3bench.emulator.faults import (
    DOWNLOAD_NAME,
    DropConnection,
    active_faults,
    check_faults,
    fixed_run_s,
)
from mnv3bench.emulator.sandbox import SandboxError, SandboxFS
from mnv3bench.emulator.settings import setting, storage_free_kb
from mnv3bench.emulator.shell import Mount, Shell
from mnv3bench.emulator.sysfs import VirtualSysfs

BENCHMARK_NAME = "benchmark_model"
# Written at profile.benchmark_binary: the emulator runs the stand-in for it.
BINARY_MARKER = (b"#!mnv3bench-emulator\n# benchmark_model stand-in marker: the emulated phone "
                 b"runs `python -m mnv3bench.emulator.standin` for this file.\n")
_TERMINATE_GRACE_S = 2.0


def _die_with_parent_hook() -> Callable[[int], None] | None:
    """A preexec_fn that makes the child receive SIGKILL when its parent dies (Linux).

    The stand-in runs in its own session (so killpg reaches its whole group, and a Ctrl-C
    at the terminal reaches the runner first, which then kills it cleanly); but a session
    leader is reparented to init when the emulator's process is killed with kill -9, and
    would keep burning the pinned core under the next run's trials. PR_SET_PDEATHSIG closes
    that hole without any cooperation from the child, even on SIGKILL, and survives exec.
    Chosen over a watchdog pipe, which needs the child to poll it. The signal fires when
    the spawning *thread* ends, which is fine here: run_benchmark's thread waits for and
    reaps its child before returning. libc and prctl are resolved here, in the parent, so
    the forked child only makes one call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_pdeathsig(parent_pid: int) -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl: no signal will come
            os._exit(137)

    return set_pdeathsig


_DIE_WITH_PARENT = _die_with_parent_hook()
# The "drop-run" fault cuts the link once the benchmark has started its runs.
_DROP_RUN_AFTER = b"Running benchmark for"


@dataclass
class _Process:
    popen: subprocess.Popen[bytes]
    name: str
    cmdline: str


class EmulatedPhone:
    """A phone shaped by a device profile, living in the host folder `root`.

    It is the shell's ShellHost (shell.py) and the phone adbd serves (adbd/server.py)."""

    def __init__(self, root: Path, profile: Any, faults: frozenset[str] = frozenset()) -> None:
        self.profile = profile
        self.faults = check_faults(faults)
        self.emu: dict[str, Any] = dict(getattr(profile, "emulator", {}) or {})
        # The phone's free space is the root's quota: pushes past it fail as on a full phone.
        self.fs = SandboxFS(root, quota_bytes=storage_free_kb(self.emu) * 1024)
        self.sysfs = VirtualSysfs(profile, self.faults)
        self.cpu_count = int(profile.cpu_count)
        self.abi = str(profile.abi)
        self.props = self._make_props()
        self._procs: dict[int, _Process] = {}
        self._procs_lock = threading.Lock()
        self.benchmark_runs = 0  # measurements started so far: the N of scheduled faults
        self._install()

    # -- setup ---------------------------------------------------------------------------

    def _make_props(self) -> dict[str, str]:
        p, e = self.profile, self.emu
        prefix = "MNV3EMU" if getattr(p, "emulated", True) else "MNV3" + str(p.name).upper()
        serial = prefix + hashlib.sha256(str(self.fs.root).encode()).hexdigest()[:8].upper()
        abilist = {"arm64-v8a": "arm64-v8a,armeabi-v7a,armeabi", "x86_64": "x86_64,x86"}.get(p.abi, p.abi)
        return {
            "ro.product.model": str(p.models[0] if p.models else p.name),
            "ro.product.name": str(e.get("product", p.name)),
            "ro.product.device": str(p.codenames[0] if p.codenames else p.name),
            "ro.product.manufacturer": str(e.get("manufacturer", "mnv3bench")),
            "ro.product.brand": str(e.get("manufacturer", "mnv3bench")),
            "ro.product.board": str(p.codenames[0] if p.codenames else p.name),
            "ro.product.cpu.abi": str(p.abi),
            "ro.product.cpu.abilist": abilist,
            "ro.hardware": str(p.codenames[0] if p.codenames else p.name),
            "ro.soc.model": str(p.soc),
            "ro.build.fingerprint": str(e.get("fingerprint", "")),
            "ro.build.version.release": str(e.get("android_release", "14")),
            "ro.build.version.sdk": str(e.get("sdk", 34)),
            "ro.build.type": "userdebug",
            "ro.debuggable": "1",
            "ro.serialno": serial,
            "ro.boot.serialno": serial,
            "sys.boot_completed": "1",
            "ro.kernel.qemu": "0",
            **_twin_props(p, serial),
            # Set by every emulated phone, twins too: the runner reads it to know that the
            # benchmark computes on the host and the sensors are invented (device/probe.py).
            EMULATOR_PROP: "1",
        }

    def _install(self) -> None:
        for folder in ("/data/local/tmp", "/sdcard", "/system/bin"):
            self.fs.mkdir(folder)
        self.fs.set_mode("/data/local/tmp", 0o771)
        binary = self.profile.benchmark_binary
        if "no-binary" in self.faults:
            if self.fs.exists(binary):
                self.fs.remove(binary)
        elif not self.is_benchmark_binary(self.fs.normalize(binary)):
            # Missing, or a foreign binary pushed by `device setup` (which cannot run here):
            # a restarted emulator has its own stand-in again.
            self.fs.write_bytes(binary, BINARY_MARKER, permissions=0o755)
        if "download-name" in self.faults:
            folder = posixpath.dirname(self.fs.normalize(binary))
            self.fs.write_bytes(f"{folder}/{DOWNLOAD_NAME}", BINARY_MARKER, permissions=0o755)

    # -- the shell -----------------------------------------------------------------------

    def run_shell(self, command: str, write: Callable[[bytes], None],
                  cancelled: threading.Event) -> int:
        """Run `command` with the allow-listed interpreter; output goes to `write` as it
        is produced. Returns the exit status; raises DropConnection when a fault says so."""
        return Shell(self).run(command, write, cancelled)

    def is_benchmark_binary(self, device_path: str) -> bool:
        """True for a file the emulator runs as benchmark_model: named like it and holding
        the emulator's marker. Anything else (an Android binary pushed by `device setup`,
        a script) cannot run on this host, as on a phone with the wrong ABI."""
        named_right = (device_path == self.fs.normalize(self.profile.benchmark_binary)
                       or posixpath.basename(device_path) in (BENCHMARK_NAME, DOWNLOAD_NAME))
        if not named_right:
            return False
        try:
            with self.fs.open_read(device_path) as f:
                return f.read(len(BINARY_MARKER)) == BINARY_MARKER
        except (OSError, SandboxError):  # missing, a folder, unreadable: not our binary
            return False

    # -- benchmark processes -------------------------------------------------------------

    def host_cpus(self, virtual_cpus: set[int]) -> set[int]:
        """Host cpus for a set of virtual cpus: the v-th of the cpus this process may use
        (v modulo their number), so a cpuset-limited host still pins to a real, allowed core."""
        allowed = sorted(os.sched_getaffinity(0))
        return {allowed[v % len(allowed)] for v in virtual_cpus}

    def run_benchmark(self, device_path: str, args: list[str], out: Callable[[str], None],
                      cancelled: threading.Event, cpus: set[int] | None = None) -> int:
        """Run the benchmark_model stand-in with benchmark_model's `args`, streaming output."""
        run_number = None
        if any(a.startswith("--graph=") for a in args):  # a measurement, not a --help check
            with self._procs_lock:
                self.benchmark_runs += 1
                run_number = self.benchmark_runs
        faults = active_faults(self.faults, run_number)
        if "fixed-time" in faults and run_number is not None:
            return self._fixed_time_run(args, out, cancelled)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["MNV3BENCH_EMU_FAULTS"] = ",".join(sorted(faults))
        env["MNV3BENCH_EMU_HOST_GRAPH"] = str(self._host_graph(args))
        host_cpus = self.host_cpus(cpus) if cpus else None
        env["MNV3BENCH_EMU_CPUS"] = ",".join(map(str, sorted(host_cpus))) if host_cpus else ""
        # -I (isolated): no current folder or PYTHON* variables on the import path, and the
        # working folder outside the sandbox, so a pushed "numpy.py" is never imported.
        popen = subprocess.Popen(
            [sys.executable, "-I", "-m", "mnv3bench.emulator.standin", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.fs.root.parent, env=env, start_new_session=True,
            preexec_fn=functools.partial(_DIE_WITH_PARENT, os.getpid()) if _DIE_WITH_PARENT else None,
        )
        if host_cpus:
            try:  # the stand-in also pins itself first thing, before LiteRT starts threads
                os.sched_setaffinity(popen.pid, host_cpus)
            except OSError:
                pass
        cmdline = " ".join([device_path, *args])
        with self._procs_lock:
            self._procs[popen.pid] = _Process(popen, posixpath.basename(device_path), cmdline)
        try:
            return self._stream(popen, out, cancelled, drop_run="drop-run" in faults)
        finally:
            self._terminate(popen)
            with self._procs_lock:
                self._procs.pop(popen.pid, None)

    def _fixed_time_run(self, args: list[str], out: Callable[[str], None], cancelled: threading.Event) -> int:
        """The "fixed-time" fault: no stand-in process and no host CPU, only a wait the size of a run."""
        from mnv3bench.emulator.standin import fixed_time_output

        graph = next((a.split("=", 1)[1] for a in args if a.startswith("--graph=")), "")
        run_s = fixed_run_s()
        if cancelled.wait(run_s):
            return 143  # killed, as a benchmark_model stopped by SIGTERM
        out(fixed_time_output(graph, run_s))
        return 0

    def _host_graph(self, args: list[str]) -> Path:
        """Host path of --graph, always inside the sandbox (a missing file if it escapes)."""
        graph = next((a.split("=", 1)[1] for a in args if a.startswith("--graph=")), "")
        missing = self.fs.root / ".mnv3emu" / "no-such-graph"
        if not graph:
            return missing
        try:
            return self.fs.resolve(graph)
        except SandboxError:
            return missing

    def _stream(self, popen: subprocess.Popen[bytes], out: Callable[[str], None],
                cancelled: threading.Event, drop_run: bool) -> int:
        assert popen.stdout is not None
        fd = popen.stdout.fileno()
        seen = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                if cancelled.is_set():
                    self._terminate(popen)
                    break
                if not selector.select(timeout=0.1):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                out(chunk.decode("utf-8", "surrogateescape"))
                if drop_run:
                    seen = (seen + chunk)[-4096:]
                    if _DROP_RUN_AFTER in seen:
                        self._terminate(popen)
                        raise DropConnection("drop-run fault: the link dies mid-benchmark")
        code = popen.wait()
        return 128 - code if code < 0 else code   # killed by signal N -> 128+N, as sh

    def _terminate(self, popen: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if popen.poll() is not None:
            return
        try:
            os.killpg(popen.pid, sig)
            popen.wait(timeout=_TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
        except ProcessLookupError:
            pass

    def _signal(self, proc: _Process, sig: int) -> None:
        try:
            os.killpg(proc.popen.pid, sig)
        except ProcessLookupError:
            pass

    def kill_matching(self, name: str, *, full: bool = False, sig: int = signal.SIGTERM) -> int:
        """pkill: signal running benchmark processes by name (or command line with full)."""
        with self._procs_lock:
            victims = [p for p in self._procs.values()
                       if (name in p.cmdline if full else p.name == name[:15])]
        for proc in victims:
            self._signal(proc, sig)
        return len(victims)

    def kill_pid(self, pid: int, sig: int = signal.SIGTERM) -> bool:
        with self._procs_lock:
            proc = self._procs.get(pid)
        if proc is None:
            return False
        self._signal(proc, sig)
        return True

    def pids_named(self, name: str) -> list[int]:
        with self._procs_lock:
            return sorted(pid for pid, p in self._procs.items() if p.name == name)

    def running_pids(self) -> list[int]:
        with self._procs_lock:
            return sorted(self._procs)

    def shutdown(self) -> None:
        """Stop every benchmark process this phone started (emulator shutdown)."""
        with self._procs_lock:
            procs = list(self._procs.values())
        for proc in procs:
            self._terminate(proc.popen)

    # -- reports -------------------------------------------------------------------------

    def mounts(self) -> list[Mount]:
        """df rows; /data and the emulated sdcard share the profile's storage numbers.

        Available is the root's quota minus what it holds (never the host disk's space)."""
        total = int(setting(self.emu, "storage_total_kb"))
        available = (self.fs.free_bytes() or 0) // 1024
        used = total - available
        system_kb = 3_999_996
        return [
            Mount("/dev/root", "/", ("/",), system_kb, system_kb - 20_640, 20_640),
            Mount("/dev/block/dm-4", "/data", ("/data",), total, used, available),
            Mount("/dev/fuse", "/storage/emulated", ("/sdcard", "/storage/emulated"),
                  total, used, available),
        ]

    def battery_report(self) -> str:
        """`dumpsys battery` in Android's format."""
        level = int(self.emu.get("battery_level", 100))
        return (
            "Current Battery Service state:\n"
            "  AC powered: false\n"
            "  USB powered: true\n"
            "  Wireless powered: false\n"
            "  Max charging current: 500000\n"
            "  Max charging voltage: 5000000\n"
            "  Charge counter: 2770000\n"
            f"  status: {5 if level >= 100 else 2}\n"
            "  health: 2\n"
            "  present: true\n"
            f"  level: {level}\n"
            "  scale: 100\n"
            "  voltage: 4350\n"
            f"  temperature: {int(self.emu.get('battery_temp_dc', 250))}\n"
            "  technology: Li-ion\n"
        )


def _twin_props(profile: Any, serial: str) -> dict[str, str]:
    """A real phone's profile (not the host emulator's) adds its platform and build facts."""
    props = {"ro.board.platform": str(getattr(profile, "platform", "") or "")}
    twin = dict(getattr(profile, "twin", {}) or {})
    if getattr(profile, "emulated", True) or not twin:
        return props if props["ro.board.platform"] else {}
    device = str(profile.codenames[0])
    release, sdk = str(twin.get("android_release", "14")), str(twin.get("sdk", 34))
    return {
        **props,
        "ro.product.manufacturer": "Google", "ro.product.brand": "google", "ro.product.name": device,
        "ro.hardware": device if not props["ro.board.platform"].startswith("gs") else props["ro.board.platform"],
        "ro.build.version.release": release, "ro.build.version.sdk": sdk,
        "ro.build.type": "user", "ro.debuggable": "0",
        "ro.build.fingerprint": f"google/{device}/{device}:{release}/MNV3TWIN/1:user/release-keys",
        "ro.serialno": serial, "ro.boot.serialno": serial,
    }
