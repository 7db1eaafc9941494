"""Packaged fakes of mnv3bench's seams, for its own tests and for users' tests.

FakeDevice implements the Device protocol (mnv3bench.device.protocol) in memory and
FakeSensors the runner's Sensors protocol, so `run_session(..., device=FakeDevice(),
sensors=FakeSensors(), artifacts=...)` measures without a phone, an emulator or
TensorFlow (hyperfine's mock executor is the model). tests/test_protocols.py checks that
each fake keeps matching the protocol it stands in for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from mnv3bench.device.probe import DeviceInfo
from mnv3bench.device.profiles import DeviceProfile
from mnv3bench.device.protocol import (
    RECONNECT_HINT,
    Device,
    DeviceLinkError,
    PushProgress,
    ShellResult,
)
from mnv3bench.device.thermal import TempReading

# respond(graph, n) -> the n-th benchmark run's result (n counts from 1), or an exception to
# raise: an OSError stands for a dropped link and arrives as DeviceLinkError, as from a real device.
Respond = Callable[[str, int], "ShellResult | BaseException"]

FAKE_MAX_FREQ_KHZ = 2803200


def benchmark_output(avg_us: float) -> str:
    """What benchmark_model prints for a run whose regular runs averaged `avg_us` microseconds."""
    return (
        "INFO: Num threads: [1]\n"
        "INFO: Initialized session in 12.3ms.\n"
        "INFO: count=1 curr=9000\n"
        f"INFO: count=50 first={avg_us + 50:g} curr={avg_us:g} min={avg_us - 10:g} max={avg_us + 90:g} "
        f"avg={avg_us:g} std=12\n"
        f"INFO: Inference timings in us: Init: 12300, First inference: 9000, Warmup (avg): 9000, "
        f"Inference (avg): {avg_us:g}\n"
    )


class FakeDevice:
    """Holds pushed files by hash; answers benchmark commands (`taskset ...`) from a script.

    Every other command succeeds with no output. What happened is kept for assertions:
    `commands` (every shell command), `pushes` (remote paths), `benchmarks` (the --graph of
    each benchmark run, in order) and `files` (remote path -> sha256).
    """

    transport_name = "fake"

    def __init__(self, respond: Respond | None = None, serial: str = "FAKE123", corrupt_push: bool = False) -> None:
        self.serial = serial
        self.files: dict[str, str] = {}
        self.commands: list[str] = []
        self.pushes: list[str] = []
        self.benchmarks: list[str] = []
        self.respond: Respond = respond or (lambda graph, n: ShellResult(benchmark_output(5000 + n), 0, False))
        self.corrupt_push = corrupt_push  # each push lands one byte short, as on a failing flash
        self.closed = False

    def shell(self, command: str, *, timeout_s: float = 60.0) -> ShellResult:
        self._require_open(f"running `{command}`")
        self.commands.append(command)
        if not command.startswith("taskset "):
            return ShellResult("", 0, False)
        graph = next(p for p in command.split() if p.startswith("--graph=")).split("=", 1)[1]
        if graph not in self.files:
            raise AssertionError(f"benchmarked {graph}, a model that is not on the device")
        self.benchmarks.append(graph)
        reply = self.respond(graph, len(self.benchmarks))
        if isinstance(reply, OSError):
            raise DeviceLinkError(f"Lost the connection to {self.serial} while running `{command}`: {reply}",
                                  RECONNECT_HINT) from reply
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def push(self, local: Path, remote: str, progress: PushProgress | None = None, *, mode: int = 0o644) -> None:
        self._require_open(f"pushing {Path(local).name}")
        data = Path(local).read_bytes()
        self.pushes.append(remote)
        if progress:
            progress(len(data), len(data))
        self.files[remote] = hashlib.sha256(data[:-1] if self.corrupt_push else data).hexdigest()

    def sha256(self, remote: str) -> str | None:
        self._require_open(f"hashing {remote}")
        return self.files.get(remote)

    def close(self) -> None:
        self.closed = True

    def _require_open(self, doing: str) -> None:
        if self.closed:
            raise DeviceLinkError(f"the connection to {self.serial} is closed (while {doing})", RECONNECT_HINT)


class FakeSensors:
    """Scripted readings: each list is consumed one value per read, its last value repeating.

    Without a script a reading is steady: 30 C, and the pin core at its full clock.
    """

    def __init__(self, temps: list[float] | None = None, freqs: list[int] | None = None,
                 caps: list[int] | None = None) -> None:
        self.temps = list(temps or [])
        self.freqs = list(freqs or [])
        self.caps = list(caps or [])

    def info(self, device: Device, profile: DeviceProfile) -> DeviceInfo:
        return DeviceInfo(
            model="Fake Phone", device="fake", manufacturer="mnv3bench", fingerprint="fake/fp:14",
            abi=profile.abi, abilist=(profile.abi,), serial=device.serial, release="14", sdk="34",
            cpu_count=profile.cpu_count, cpu_max_freq_khz={profile.pin_core: FAKE_MAX_FREQ_KHZ}, governors={},
            thermal_zones={}, battery={}, free_kb=None, big_cores_detected=tuple(profile.big_cores),
        )

    def temperature_c(self, device: Device) -> float | None:
        return _next(self.temps, 30.0)

    def temperature(self, device: Device) -> TempReading:
        return TempReading(self.temperature_c(device))

    def freq_khz(self, device: Device, cpu: int) -> int | None:
        return _next(self.freqs, FAKE_MAX_FREQ_KHZ)

    def freq_cap_khz(self, device: Device, cpu: int) -> int | None:
        return _next(self.caps, FAKE_MAX_FREQ_KHZ)


def _next(script: list, default: float) -> float:
    return script.pop(0) if len(script) > 1 else (script[0] if script else default)
