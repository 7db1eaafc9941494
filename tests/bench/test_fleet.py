"""Several phones at once (bench/fleet.py): which phone each profile gets, and sessions side by side
on fake phones, all writing to one database."""

from __future__ import annotations

import threading
import time

import pytest

from mnv3bench.bench.fleet import Phone, resolve_phones, run_fleet
from mnv3bench.bench.runner import NullProgress, RunConfig, run_session
from mnv3bench.device.profiles import load_profile
from mnv3bench.device.protocol import ShellResult
from mnv3bench.device.server_route import ServerDeviceEntry
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.testing import FakeDevice, FakeSensors, benchmark_output
from tests.bench.helpers import make_artifacts
from tests.helpers import rows

PIXELS = [load_profile(name) for name in ("pixel1", "pixel2", "pixel3")]
SERVER = "127.0.0.1:5037"


def _server(*entries: tuple[str, str, str]):
    """A stand-in for the adb server's device list: (serial, codename, state) each."""
    listed = [ServerDeviceEntry(serial, state, "Pixel", codename) for serial, codename, state in entries]
    return lambda: (SERVER, listed)


def test_each_profile_finds_its_phone_by_codename_and_says_which() -> None:
    lister = _server(("S3", "blueline", "device"), ("S1", "sailfish", "device"), ("S2", "walleye", "device"),
                     ("S9", "sailfish", "offline"))
    phones = resolve_phones(PIXELS, [], list_server=lister)
    assert [(p.name, p.serial) for p in phones] == [("pixel1", "S1"), ("pixel2", "S2"), ("pixel3", "S3")]
    assert phones[0].describe() == f"pixel1: S1 (codename sailfish on the adb server at {SERVER})"


def test_two_phones_of_one_profile_are_an_error_that_asks_for_serial() -> None:
    lister = _server(("S1", "sailfish", "device"), ("S1b", "marlin", "device"), ("S2", "walleye", "device"))
    with pytest.raises(MnvError, match="2 phones .* are a pixel1") as err:
        resolve_phones(PIXELS[:2], [], list_server=lister)
    assert "--serial" in str(err.value.hint)


def test_a_profile_with_no_phone_names_what_the_server_has() -> None:
    with pytest.raises(MnvError, match=r"no ready phone .* is a pixel3 .* S1 \(sailfish, device\)"):
        resolve_phones([PIXELS[0], PIXELS[2]], [], list_server=_server(("S1", "sailfish", "device")))


def test_serials_pair_with_devices_in_order_and_counts_must_match() -> None:
    phones = resolve_phones(PIXELS, ["A", "B", "C"], list_server=lambda: pytest.fail("no lookup with serials"))
    assert [(p.name, p.serial, p.found) for p in phones] == [
        ("pixel1", "A", "given with --serial"), ("pixel2", "B", "given with --serial"),
        ("pixel3", "C", "given with --serial")]
    with pytest.raises(UsageError, match="2 --serial for 3 --device"):
        resolve_phones(PIXELS, ["A", "B"])
    with pytest.raises(UsageError, match="given twice"):
        resolve_phones(PIXELS[:2], ["A", "A"])
    # Two phones of one profile are fine when each has its serial...
    assert len(resolve_phones([PIXELS[0], PIXELS[0]], ["A", "B"])) == 2
    # ...and ambiguous without.
    with pytest.raises(UsageError, match="--device pixel1 is given twice"):
        resolve_phones([PIXELS[0], PIXELS[0]], [])


def test_routes_that_cannot_find_several_phones_say_so() -> None:
    with pytest.raises(UsageError, match="--adb reaches one device"):
        resolve_phones(PIXELS, [], adb="192.168.1.20:5555")
    with pytest.raises(UsageError, match="--direct"):
        resolve_phones(PIXELS, [], direct=True)
    with pytest.raises(MnvError, match="none is running") as err:
        resolve_phones(PIXELS, [], list_server=lambda: None)
    assert "adb start-server" in str(err.value.hint)


def test_in_process_twins_need_no_lookup() -> None:
    phones = resolve_phones(PIXELS, [], adb="emulate:slow", list_server=lambda: pytest.fail("no lookup"))
    assert [(p.serial, p.found) for p in phones] == [(None, "in-process twin")] * 3


# -- sessions side by side on fake phones -------------------------------------------------------


def _runner(devices: dict[str, FakeDevice], threads: list[str]):
    """The fleet's SessionRunner seam: the real run_session, each profile on its own fake phone."""

    def runner(profile, variants, config, store, *, adb, serial, progress, models_dir, artifacts, command_line,
               device_options):
        threads.append(threading.current_thread().name)
        return run_session(profile, variants, config, store, device=devices[profile.name], sensors=FakeSensors(),
                           artifacts=artifacts, progress=progress, sleep=lambda s: None, command_line=command_line)

    return runner


def _slow_ok(seconds: float):
    def respond(graph, n):
        time.sleep(seconds)  # a phone busy benchmarking: the host waits, its CPU idles
        return ShellResult(benchmark_output(5000 + n), 0, False)

    return respond


def test_phones_run_side_by_side_into_one_database_and_one_failure_stops_only_its_phone(tmp_path) -> None:
    names = ["a", "b"]
    artifacts = make_artifacts(tmp_path, names)
    db = tmp_path / "results.db"

    def dies_at_trial_3(graph, n):
        return OSError("USB cable pulled") if n == 3 else _slow_ok(0.2)(graph, n)

    devices = {"pixel1": FakeDevice(_slow_ok(0.2), serial="P1"), "pixel2": FakeDevice(dies_at_trial_3, serial="P2"),
               "pixel3": FakeDevice(_slow_ok(0.2), serial="P3")}
    phones = [Phone(p, p.name.upper(), "given with --serial") for p in PIXELS]
    threads: list[str] = []
    started = time.perf_counter()
    result = run_fleet(phones, names, RunConfig(trials=3), db, _runner(devices, threads),
                       progress_for=lambda phone: NullProgress(), models_dir=tmp_path, artifacts=artifacts)
    elapsed = time.perf_counter() - started
    # Which phones failed, and why, first: a timing figure alone does not say.
    assert [o.ok for o in result.outcomes] == [True, False, True], [repr(o.error) for o in result.outcomes]
    # One after the other, the wall time would be at least the sum of the sessions' times.
    totals = [r.timings.total_s for r in result.results]
    assert elapsed < 0.75 * sum(totals), (elapsed, totals)
    assert len(set(threads)) == 3
    assert "USB cable pulled" in str(result.failed[0].error)
    by_serial = dict(rows(db, "SELECT device_serial, COUNT(*) FROM trials WHERE ok = 1 GROUP BY device_serial"))
    assert by_serial == {"P1": 6, "P2": 2, "P3": 6}

    # --resume finishes the phone that failed, and measures nothing again on the others.
    devices["pixel2"].respond = _slow_ok(0.0)
    done_before = {name: len(d.benchmarks) for name, d in devices.items()}
    again = run_fleet(phones, names, RunConfig(trials=3, resume=True), db, _runner(devices, []),
                      progress_for=lambda phone: NullProgress(), models_dir=tmp_path, artifacts=artifacts)
    assert not again.failed
    assert {name: len(d.benchmarks) - done_before[name] for name, d in devices.items()} == {
        "pixel1": 0, "pixel2": 4, "pixel3": 0}
    assert [len(v.trial_ids) for r in again.results for v in r.variants] == [3] * 6


def test_a_ctrl_c_during_the_wait_still_lets_interrupt_wait_for_the_session_in_flight(tmp_path) -> None:
    """CPython before 3.13 marks a running thread stopped when a signal interrupts Thread.join
    (bpo-45274's clean-up); a fleet that waited with join read the database while a phone was
    still storing its trial, and said it kept one trial fewer than it had."""
    import signal

    from mnv3bench.bench.fleet import start_fleet

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("only the main thread receives signals")
    release, stored = threading.Event(), threading.Event()

    def runner(profile, variants, config, store, **kw):
        release.wait(5)  # the trial in flight, still measuring when Ctrl-C comes
        stored.set()
        raise KeyboardInterrupt

    def ctrl_c() -> None:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # interrupts the blocked wait itself

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        fleet = start_fleet([Phone(PIXELS[0], "P1", "given with --serial")], ["a"], RunConfig(trials=1), tmp_path / "r.db", runner,
                            progress_for=lambda phone: NullProgress(), models_dir=tmp_path, artifacts=[], adb=None,
                            command_line="run")
        threading.Timer(0.1, ctrl_c).start()
        with pytest.raises(KeyboardInterrupt):
            fleet.wait(poll_s=5.0)
        threading.Timer(0.3, release.set).start()
        fleet.interrupt()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stored.is_set(), "interrupt returned before the session stored its trial"
    assert isinstance(fleet.outcomes[0].error, KeyboardInterrupt), repr(fleet.outcomes[0].error)
