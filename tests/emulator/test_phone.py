"""The emulated phone end to end: the stand-in run through the shell, pinning, faults."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mnv3bench.bench.parser import parse_benchmark_output
from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator.faults import FAULTS, DropConnection, check_faults
from mnv3bench.emulator.phone import BINARY_MARKER, EmulatedPhone
from mnv3bench.errors import UsageError

MODEL = "/data/local/tmp/mnv3bench/tiny.tflite"
FAST = "--num_threads=1 --num_runs=5 --min_secs=0 --warmup_runs=1 --warmup_min_secs=0"


@pytest.fixture(scope="module")
def profile():
    return load_profile("emulator")


def make_phone(tmp_path: Path, profile, tiny: Path, faults: set[str] = set()) -> EmulatedPhone:
    phone = EmulatedPhone(tmp_path / "root", profile, frozenset(faults))
    with phone.fs.open_write(MODEL) as handle:
        handle.write(tiny.read_bytes())
    return phone


def bench_command(profile, extra: str = "") -> str:
    return f"taskset {profile.affinity_mask} {profile.benchmark_binary} --graph={MODEL} {FAST} {extra}"


class Recorder:
    """A `write` callback that keeps each chunk with the time it arrived."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, bytes]] = []
        self.arrived = threading.Event()

    def __call__(self, data: bytes) -> None:
        self.chunks.append((time.monotonic(), data))
        self.arrived.set()

    @property
    def text(self) -> str:
        return b"".join(c for _t, c in self.chunks).decode()


def run_in_thread(phone: EmulatedPhone, command: str, cancelled: threading.Event):
    recorder, result = Recorder(), {}

    def target() -> None:
        try:
            result["rc"] = phone.run_shell(command, recorder, cancelled)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            result["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, recorder, result


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_phone_init_and_props(tmp_path: Path, profile) -> None:
    phone = EmulatedPhone(tmp_path / "root", profile)
    assert phone.fs.is_executable(profile.benchmark_binary)
    assert phone.fs.stat("/sdcard").is_dir
    assert phone.props["ro.product.model"] == "mnv3bench emulator"
    assert phone.props["ro.product.name"] == "mnv3emu" and phone.props["ro.product.device"] == "mnv3emu"
    assert phone.props["ro.product.manufacturer"] == "mnv3bench"
    assert phone.props["ro.build.version.release"] == "14" and phone.props["ro.build.version.sdk"] == "34"
    assert phone.props["ro.serialno"].startswith("MNV3EMU")
    again = EmulatedPhone(tmp_path / "root", profile, frozenset({"no-binary"}))
    assert not again.fs.exists(profile.benchmark_binary)


def test_fault_names() -> None:
    assert set(FAULTS) == {"drop-push", "drop-run", "hang", "crash", "garbage", "no-binary", "hot", "slow",
                           # what real phones do: played by the Pixel twins
                           "cpuset-little", "thermal-denied", "download-name", "stls", "old-binary", "throttle",
                           # twins that measure side by side without the host's cores (benchmarks/bench_phones.py)
                           "fixed-time"}
    assert all(FAULTS.values())
    assert check_faults(["hang", " slow "]) == {"hang", "slow"}
    with pytest.raises(UsageError, match="'melt'"):
        check_faults(["melt"])


def test_benchmark_through_the_shell_parses(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite)
    recorder = Recorder()
    rc = phone.run_shell(bench_command(profile) + "; echo MARK $?", recorder, threading.Event())
    assert rc == 0
    assert recorder.text.rstrip().endswith("MARK 0")
    result = parse_benchmark_output(recorder.text)
    assert not result.error and result.inference_count == 5 and result.graph == MODEL
    assert len(recorder.chunks) > 1                       # streamed, not one blob at the end
    assert phone.running_pids() == []


def test_fixed_time_runs_take_the_time_asked_and_use_no_stand_in(tmp_path: Path, profile, tiny_tflite: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("MNV3BENCH_EMU_RUN_S", "0.3")
    phone = make_phone(tmp_path, profile, tiny_tflite, {"fixed-time"})
    recorder = Recorder()
    started = time.perf_counter()
    assert phone.run_shell(bench_command(profile), recorder, threading.Event()) == 0
    assert 0.3 <= time.perf_counter() - started < 2.0
    result = parse_benchmark_output(recorder.text)
    assert not result.error and result.inference_avg_us == 300000 and result.graph == MODEL
    assert phone.running_pids() == []  # no stand-in process was started


def test_graph_outside_the_sandbox_is_not_read(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite)
    recorder = Recorder()
    rc = phone.run_shell(f"{profile.benchmark_binary} --graph={tiny_tflite} --num_runs=1",
                         recorder, threading.Event())
    assert rc == 1 and f"Could not open '{tiny_tflite}'" in recorder.text   # host path maps inside root


def test_pinning_streaming_and_cancel(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"hang"})
    cancelled = threading.Event()
    thread, recorder, result = run_in_thread(phone, bench_command(profile), cancelled)
    wait_for(lambda: phone.running_pids() and "Graph:" in recorder.text)
    (pid,) = phone.running_pids()
    expected = {v % os.cpu_count() for v in range(profile.cpu_count) if int(profile.affinity_mask, 16) >> v & 1}
    assert os.sched_getaffinity(pid) == expected
    assert thread.is_alive()                     # header arrived while the benchmark still runs
    time.sleep(0.3)
    assert "Running benchmark" not in recorder.text and thread.is_alive()   # hung
    cancelled.set()
    thread.join(10)
    assert not thread.is_alive() and result["rc"] == 128 + 15
    assert phone.running_pids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_pkill_from_another_shell(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"hang"})
    thread, recorder, result = run_in_thread(phone, bench_command(profile) + "; echo rc=$?", threading.Event())
    wait_for(lambda: phone.running_pids())
    chunks: list[bytes] = []
    assert phone.run_shell("pidof benchmark_model", chunks.append, threading.Event()) == 0
    assert chunks == [f"{phone.running_pids()[0]}\n".encode()]
    assert phone.run_shell("pkill -f benchmark_model", lambda b: None, threading.Event()) == 0
    thread.join(10)
    assert result["rc"] == 0 and recorder.text.rstrip().endswith("rc=143")


def test_crash_fault(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"crash"})
    recorder = Recorder()
    assert phone.run_shell(bench_command(profile), recorder, threading.Event()) == 1
    assert "ERROR: " in recorder.text
    result = parse_benchmark_output(recorder.text)
    assert result.error and result.inference_avg_us is None


def test_garbage_fault(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"garbage"})
    recorder = Recorder()
    assert phone.run_shell(bench_command(profile), recorder, threading.Event()) == 0
    assert "count=" not in recorder.text and recorder.text.count("\n") > 3
    assert parse_benchmark_output(recorder.text).inference_avg_us is None


def test_drop_run_fault(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"drop-run"})
    recorder = Recorder()
    with pytest.raises(DropConnection):
        phone.run_shell(bench_command(profile, "--min_secs=5"), recorder, threading.Event())
    assert "Running benchmark" in recorder.text and "Inference timings" not in recorder.text
    assert phone.running_pids() == []


def test_slow_fault_triples_latency(tmp_path: Path, profile, small_model: Path) -> None:
    # A model whose runs last about a millisecond, and the median run. With the tiny model
    # (microseconds a run) timer and scheduling noise outweighed the fault on a loaded
    # machine: mean ratios of 15 and fastest-run ratios of 1.9 were both seen.
    model = next(small_model.glob("*.tflite"))

    def median(faults: set[str], attempt: int) -> float:
        name = "-".join(sorted(faults) or ["normal"])
        phone = make_phone(tmp_path / f"{name}-{attempt}", profile, model, faults)
        recorder = Recorder()
        phone.run_shell(bench_command(profile, "--num_runs=50"), recorder, threading.Event())
        return parse_benchmark_output(recorder.text).inference_median_us

    # Pairs measured back to back, and the middle ratio of five: other work on the host comes
    # and goes (per-run medians of one phone varied twofold on a busy machine), so each ratio
    # compares runs under the same load, and one lucky or unlucky pair must not decide.
    pairs = [(median(set(), attempt), median({"slow"}, attempt)) for attempt in range(5)]
    ratio = sorted(slow / normal for normal, slow in pairs)[2]
    assert 2.0 < ratio < 5.0, pairs


def test_no_binary_fault_then_push_and_chmod(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"no-binary"})
    recorder = Recorder()
    assert phone.run_shell(bench_command(profile), recorder, threading.Event()) == 127
    assert recorder.text == f"sh: {profile.benchmark_binary}: not found\n"
    phone.fs.write_bytes(profile.benchmark_binary, b"\x7fELF pushed by the user", permissions=0o644)
    assert phone.run_shell(bench_command(profile), lambda b: None, threading.Event()) == 126
    phone.run_shell(f"chmod +x {profile.benchmark_binary}", lambda b: None, threading.Event())
    # An Android binary cannot run on the host: the emulator says so, as a phone with the
    # wrong ABI would, instead of running its stand-in for any file.
    recorder = Recorder()
    assert phone.run_shell(bench_command(profile), recorder, threading.Event()) == 126
    assert "Exec format error" in recorder.text
    phone.fs.write_bytes(profile.benchmark_binary, BINARY_MARKER, permissions=0o755)
    assert phone.run_shell(bench_command(profile), lambda b: None, threading.Event()) == 0


def test_write_failure_kills_the_benchmark(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"hang"})

    def broken(_data: bytes) -> None:
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        phone.run_shell(bench_command(profile), broken, threading.Event())
    assert phone.running_pids() == []


def test_scheduled_fault_strikes_only_its_run(tmp_path: Path, profile, tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, {"crash@2"})
    codes = []
    for _ in range(3):
        codes.append(phone.run_shell(bench_command(profile), lambda b: None, threading.Event()))
    assert codes == [0, 1, 0]
    # A --help check (as preflight does) is not a benchmark run: it does not count.
    phone.run_shell(f"{profile.benchmark_binary} --help", lambda b: None, threading.Event())
    assert phone.benchmark_runs == 3


@pytest.mark.parametrize("name", ["crash@0", "hot@1", "no-binary@2", "hang@x"])
def test_only_run_faults_take_a_positive_schedule(name: str) -> None:
    from mnv3bench.emulator.faults import check_faults

    with pytest.raises(UsageError):
        check_faults([name])


@pytest.mark.parametrize("module", ["/resource.py", "/numpy.py", "/data/local/tmp/resource.py"])
def test_a_pushed_python_module_is_never_imported_by_the_stand_in(tmp_path: Path, profile, tiny_tflite: Path,
                                                                   module: str) -> None:
    canary = tmp_path / "CANARY"
    phone = make_phone(tmp_path / "phone", profile, tiny_tflite, set())
    phone.fs.write_bytes(module, f"open({str(canary)!r}, 'w').write('host code ran')\n".encode())
    assert phone.run_shell(bench_command(profile), lambda b: None, threading.Event()) == 0
    assert not canary.exists()


def test_a_foreign_binary_is_replaced_by_the_stand_in_when_the_emulator_restarts(tmp_path: Path, profile,
                                                                                 tiny_tflite: Path) -> None:
    phone = make_phone(tmp_path, profile, tiny_tflite, set())
    phone.fs.write_bytes(profile.benchmark_binary, b"\x7fELF an android binary", permissions=0o755)
    restarted = EmulatedPhone(tmp_path / "root", profile)
    assert restarted.run_shell(bench_command(profile), lambda b: None, threading.Event()) == 0
