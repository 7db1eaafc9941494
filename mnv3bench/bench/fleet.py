"""Measure the same variants on several phones at once: one worker per phone, above the runner.

`run --device pixel1 --device pixel2 --device pixel3` (and `table`) come here. The work per
phone is exactly one call of the per-device runner (bench/runner.py's `run_session`), so a
phone's session is the session a single `run` would have made: its own device lock, thermal
gate, cooldown and progress line, its trials stored the moment they end. This module only
finds each profile its phone, builds the models once, runs the sessions side by side and
gathers what each one gave.

Why threads: a session's time is spent waiting for the phone over ADB (and the host's
cores are not what is measured), so one thread per phone overlaps them. SQLite connections
belong to the thread that opened them, so each worker opens its own ResultStore on the one
database file; WAL mode and the store's busy timeout let the writers take turns, each trial
in its own short transaction.

A failure on one phone (a dropped link, a missing binary, a failed trial without
--keep-going) ends that phone's session only: it is kept as that phone's outcome, the
others go on, and the caller reports it at the end. Its finished trials are stored, so
running the same command again with --resume (`table`: --reuse) measures only the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mnv3bench.errors import MnvError, UsageError

if TYPE_CHECKING:
    from mnv3bench.bench.options import RunConfig
    from mnv3bench.bench.runner import Progress, SessionResult
    from mnv3bench.device.profiles import DeviceProfile
    from mnv3bench.device.server_route import ServerDeviceEntry
    from mnv3bench.model.cache import ModelArtifact
    from mnv3bench.results import ResultStore


@dataclass(frozen=True)
class Phone:
    """A profile and the phone found for it."""

    profile: DeviceProfile
    serial: str | None  # None: the profile's own in-process twin (--adb emulate, the emulator)
    found: str  # how the phone was chosen, for the user: "given with --serial", ...

    @property
    def name(self) -> str:
        return self.profile.name

    def describe(self) -> str:
        return f"{self.name}: {self.serial or 'in-process twin'} ({self.found})"


@dataclass
class PhoneOutcome:
    """What one phone's session gave: its result, or the error that ended it."""

    phone: Phone
    result: SessionResult | None = None
    error: BaseException | None = None
    # Set when the session's thread is done with the store. Waited on instead of Thread.join:
    # CPython before 3.13 marks a running thread stopped when a Ctrl-C interrupts join()
    # (threading.Thread._wait_for_tstate_lock, bpo-45274), so is_alive() would lie after one.
    finished: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class FleetResult:
    outcomes: list[PhoneOutcome]

    @property
    def results(self) -> list[SessionResult]:
        return [o.result for o in self.outcomes if o.result is not None]

    @property
    def failed(self) -> list[PhoneOutcome]:
        return [o for o in self.outcomes if not o.ok]


class SessionRunner(Protocol):
    """The per-device runner's entry point (bench/runner.py's run_session), as the fleet calls it."""

    def __call__(self, profile: DeviceProfile, variants: Sequence[Any], config: RunConfig, store: ResultStore, *,
                 adb: str | None, serial: str | None, progress: Progress, models_dir: Path,
                 artifacts: Sequence[ModelArtifact] | None, command_line: str,
                 device_options: dict[str, Any] | None) -> SessionResult: ...


ServerLister = Callable[[], tuple[str, "list[ServerDeviceEntry]"] | None]  # (server address, its devices) or None


# -- which phone for which profile -----------------------------------------------------------


def resolve_phones(profiles: Sequence[DeviceProfile], serials: Sequence[str], *, adb: str | None = None,
                   adb_server: str | None = None, direct: bool = False,
                   list_server: ServerLister | None = None) -> list[Phone]:
    """One phone per profile, in order.

    Serials given pair with the profiles in order. Without them each profile finds its phone
    among the adb server's ready devices by codename (ro.product.device); a profile played by
    an in-process twin (`--adb emulate`, `--device emulator`) needs none. No match, or more
    than one, is an error that names what the server has and asks for --serial.
    """
    from mnv3bench.device.session import EMULATE, wants_in_process_emulator

    names = [p.name for p in profiles]
    if adb and adb != EMULATE and not adb.startswith(EMULATE + ":"):
        raise UsageError("--adb reaches one device, and several --device need one phone each.",
                         "Attach the phones to the adb server (`adb connect HOST:PORT`) and let each profile find "
                         "its phone, or give one --serial per --device.")
    if serials:
        if len(serials) != len(profiles):
            raise UsageError(f"{len(serials)} --serial for {len(profiles)} --device.",
                             "Give one --serial per --device, in the same order (the first serial is the first "
                             "device's phone), or no --serial to have each profile find its phone by codename.")
        if len(set(serials)) != len(serials):
            raise UsageError(f"a serial is given twice: {', '.join(serials)}.", "Give each phone's serial once.")
        return [Phone(p, s, "given with --serial") for p, s in zip(profiles, serials, strict=True)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--device {twice[0]} is given twice.",
                         "Give one --serial per --device, in the same order, for two phones of one profile.")
    twins = {p.name for p in profiles if wants_in_process_emulator(p, adb, None, adb_server)}
    if len(twins) == len(profiles):
        return [Phone(p, None, "in-process twin") for p in profiles]
    if direct:
        raise UsageError("--direct cannot find phones by codename (only the adb server lists them).",
                         "Give one --serial per --device, in the same order, or drop --direct.")
    found = (list_server or _server_devices(adb_server))()
    if found is None:
        raise MnvError("several --device find their phones through the adb server, and none is running.",
                       "Start it with `adb start-server` (it holds the USB phones; attach others with `adb connect "
                       "HOST:PORT`), or give one --serial per --device, in the same order.")
    address, entries = found
    return [Phone(p, None, "in-process twin") if p.name in twins else _match(p, address, entries)
            for p in profiles]


def _match(profile: DeviceProfile, address: str, entries: list[ServerDeviceEntry]) -> Phone:
    ready = [e for e in entries if e.state == "device" and e.codename in profile.codenames]
    if len(ready) == 1:
        entry = ready[0]
        return Phone(profile, entry.serial, f"codename {entry.codename} on the adb server at {address}")
    codenames = "/".join(profile.codenames)
    if not ready:
        have = ", ".join(f"{e.serial} ({e.codename or '?'}, {e.state})" for e in entries) or "no device"
        raise MnvError(f"no ready phone on the adb server at {address} is a {profile.name} (codename {codenames}); "
                       f"it has: {have}.",
                       "Plug the phone in with USB debugging on (or `adb connect HOST:PORT` it); `mnv3bench devices` "
                       "shows each device's codename and profile. Or give one --serial per --device.")
    raise MnvError(f"{len(ready)} phones on the adb server at {address} are a {profile.name} (codename {codenames}): "
                   f"{', '.join(e.serial for e in ready)}.",
                   "Give one --serial per --device, in the same order, to say which, e.g. "
                   f"`--device {profile.name} --serial {ready[0].serial}`.")


def _server_devices(adb_server: str | None) -> ServerLister:
    def listed() -> tuple[str, list[ServerDeviceEntry]] | None:
        from mnv3bench.device.server_route import find_server, list_server_devices

        address = find_server(adb_server)
        return None if address is None else (str(address), list_server_devices(address))

    return listed


# -- the sessions, side by side --------------------------------------------------------------


class Stopped(KeyboardInterrupt):
    """Raised in a worker at its next trial when the command was interrupted."""


class _StoppableProgress:
    """A phone's progress, which stops its session before the next trial once `stop` is set.

    The runner treats it as Ctrl-C: the trial in flight is stored first, the device is
    released, and no benchmark is left running."""

    def __init__(self, inner: Progress, stop: threading.Event) -> None:
        self.inner, self.stop = inner, stop

    def message(self, text: str) -> None:
        self.inner.message(text)

    def precision(self, line: str) -> None:
        self.inner.precision(line)

    def build(self, variant: str, state: str, detail: str) -> None:
        self.inner.build(variant, state, detail)

    def push(self, variant: str, sent: int, total: int) -> None:
        self.inner.push(variant, sent, total)

    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None:
        if self.stop.is_set():
            raise Stopped()
        self.inner.trial_started(variant, trial_index, done, total)

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None:
        self.inner.trial_finished(variant, trial_index, ok, latency_ms, error)


@dataclass
class Fleet:
    """Running sessions, one thread each; `wait` gathers them."""

    outcomes: list[PhoneOutcome]
    stop: threading.Event

    def wait(self, poll_s: float = 0.2) -> FleetResult:
        """Every phone's outcome once all sessions ended. Waits in short steps so that the
        main thread still receives Ctrl-C (then call `interrupt`)."""
        for outcome in self.outcomes:
            while not outcome.finished.wait(poll_s):
                pass
        return FleetResult(self.outcomes)

    def interrupt(self) -> FleetResult:
        """Stop every session before its next trial, and wait for each to store its trial in
        flight: only then does what is stored say what each phone kept. Each trial ends in
        bounded time (the device's timeouts); a second Ctrl-C leaves sooner."""
        self.stop.set()
        return self.wait()


def start_fleet(phones: Sequence[Phone], variants: Sequence[Any], config: RunConfig, db_path: Path,
                runner: SessionRunner, *, progress_for: Callable[[Phone], Progress], models_dir: Path,
                artifacts: Sequence[ModelArtifact], adb: str | None, command_line: str,
                device_options: dict[str, Any] | None = None,
                open_store: Callable[[Path], ResultStore] | None = None,
                comparisons: Sequence[tuple[str, str]] | None = None) -> Fleet:
    """Start one session per phone, each in its own thread with its own store connection.
    `comparisons`: what --precision must resolve (the runner's default: every pair)."""
    from mnv3bench.results import ResultStore

    open_store = open_store or ResultStore
    stop = threading.Event()
    outcomes = [PhoneOutcome(phone) for phone in phones]

    def work(outcome: PhoneOutcome) -> None:
        phone = outcome.phone
        try:
            with open_store(db_path) as store:
                outcome.result = runner(
                    phone.profile, list(variants), config, store,
                    adb=adb if phone.serial is None else None, serial=phone.serial,
                    progress=_StoppableProgress(progress_for(phone), stop), models_dir=models_dir,
                    artifacts=artifacts, command_line=command_line, device_options=device_options,
                    **({"comparisons": comparisons} if comparisons is not None else {}))
        except BaseException as exc:  # noqa: BLE001 - kept as this phone's outcome; the others go on
            outcome.error = exc
        finally:
            outcome.finished.set()

    for outcome in outcomes:
        threading.Thread(target=work, args=(outcome,), name=f"mnv3bench-{outcome.phone.name}", daemon=True).start()
    return Fleet(outcomes, stop)


def run_fleet(phones: Sequence[Phone], variants: Sequence[Any], config: RunConfig, db_path: Path,
              runner: SessionRunner, *, progress_for: Callable[[Phone], Progress], models_dir: Path,
              artifacts: Sequence[ModelArtifact], adb: str | None = None, command_line: str = "run",
              device_options: dict[str, Any] | None = None,
              comparisons: Sequence[tuple[str, str]] | None = None) -> FleetResult:
    """Every phone's session to its end, for callers without a display (the CLI uses
    start_fleet to handle Ctrl-C)."""
    fleet = start_fleet(phones, variants, config, db_path, runner, progress_for=progress_for, models_dir=models_dir,
                        artifacts=artifacts, adb=adb, command_line=command_line, device_options=device_options,
                        comparisons=comparisons)
    try:
        return fleet.wait()
    except KeyboardInterrupt:
        fleet.interrupt()
        raise


def failure_text(outcome: PhoneOutcome) -> str:
    """One line for a phone whose session failed."""
    error = outcome.error
    if isinstance(error, KeyboardInterrupt):
        return f"{outcome.phone.name}: interrupted"
    if isinstance(error, MnvError):
        return f"{outcome.phone.name}: {error.message}"
    return f"{outcome.phone.name}: {type(error).__name__}: {error}"
