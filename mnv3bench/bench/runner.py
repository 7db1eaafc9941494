"""Run a benchmark session: build, push, then rounds of trials (every variant once a round, in
a random order), K rounds or until --precision is reached, each trial stored.

The order of work, and why:
1. Open the device, preflight, take its lock: a wrong phone, a missing benchmark binary
   or full storage fail before minutes of building.
2. Build (ensure_models; cached models are reused without TensorFlow).
3. Push each model only when the device lacks those exact bytes (sha256), and check the
   hash after pushing: a half-pushed model is never benchmarked.
4. Trials in rounds: each round runs every variant once, in an order drawn at random from
   the session's seed (stored with it; `--seed` repeats an order). Slow drift, such as a
   phone warming up, hits all variants alike (asv's interleaved rounds), and no variant
   always runs first or after the same neighbour. Each trial stores its round and place,
   so comparisons can pair the trials of one round (bench/paired.py).
5. Each trial is stored the moment it ends. A trial that times out, crashes or prints no
   latency is stored as failed with its raw output, never as a number.

The device is anything that implements device/protocol.py's Device. A dropped link
arrives as DeviceLinkError, already worded for the user (with --resume in its hint), and
ends the session; any other exception is a bug and propagates as one.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import mnv3bench
from mnv3bench.bench import stats
from mnv3bench.bench.command import (
    PINNING_FIX,
    benchmark_command,
    benchmark_flags,
    flag_problem,
    kill_command,
    taskset_failure,
)
from mnv3bench.bench.drift import OrderedTrial, order_warnings
from mnv3bench.bench.options import RunConfig
from mnv3bench.bench.precision import (
    MAX_TIME,
    MAX_TRIALS,
    REACHED,
    PrecisionReport,
    all_pairs,
    assess,
)
from mnv3bench.delegation import left_out_on_device
from mnv3bench.device.binary import binary_identity
from mnv3bench.device.lock import (
    DeviceLock,
    HostCoreLock,
    default_lock_dir,
    device_lock_key,
    emulator_host_cpu,
)
from mnv3bench.device.protocol import Device
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.host import host_facts, load_average
from mnv3bench.results import ResultStore, SessionRecord, TrialRecord, utc_now

if TYPE_CHECKING:  # names for types only: importing convert or pandas here would slow every command
    import pandas as pd

    from mnv3bench.device.probe import DeviceInfo
    from mnv3bench.device.profiles import DeviceProfile
    from mnv3bench.device.thermal import TempReading
    from mnv3bench.model.cache import ModelArtifact
    from mnv3bench.variants import Variant

# What stops a hung run of the usual binary (see bench/command.py's kill_command).
BENCHMARK_PROCESS = "benchmark_model"
KILL_COMMAND = kill_command(BENCHMARK_PROCESS)
# Both a phone's toybox and the emulator's shell answer this; empty output means none runs.
RUNNING_COMMAND = f"pidof {BENCHMARK_PROCESS}"


@dataclass
class VariantResult:
    variant: str
    model_sha256: str
    summary: stats.Summary | None
    warnings: list[stats.StatWarning]
    trial_ids: list[int]  # every ok trial in the summary, stored earlier (resume/reuse) or now
    measured: int  # trials run in this session (ok or failed)
    failed: int  # failed trials in this session
    reused: int  # ok trials taken from earlier sessions


@dataclass
class Timings:
    """Where a session's wall time went, in seconds: what a speed goal is measured against.

    benchmark: the device shell calls that ran benchmark_model, summed over trials.
    overhead: the rest of the trial loop (sensor reads, parsing, storing, progress).
    waiting: cooldown sleeps and thermal-gate waits, which the user asked for.
    total: the whole session, including connecting and probing the device.
    """

    build_s: float = 0.0
    push_s: float = 0.0
    benchmark_s: float = 0.0
    overhead_s: float = 0.0
    waiting_s: float = 0.0
    total_s: float = 0.0
    trials: int = 0

    @property
    def overhead_fraction(self) -> float | None:
        """Overhead as a fraction of benchmark time; None when nothing was benchmarked."""
        return self.overhead_s / self.benchmark_s if self.benchmark_s > 0 else None

    def to_json(self) -> dict[str, Any]:
        fraction = self.overhead_fraction
        return {
            "build_s": round(self.build_s, 6), "push_s": round(self.push_s, 6),
            "benchmark_s": round(self.benchmark_s, 6), "overhead_s": round(self.overhead_s, 6),
            "waiting_s": round(self.waiting_s, 6), "total_s": round(self.total_s, 6), "trials": self.trials,
            "overhead_fraction": None if fraction is None else round(fraction, 5),
        }

    def summary(self) -> str:
        """One line for stderr and report notes."""
        fraction = self.overhead_fraction
        share = "" if fraction is None else f" ({fraction:.1%} of benchmark time)"
        text = (f"time: build {self.build_s:.1f} s, push {self.push_s:.1f} s, benchmark {self.benchmark_s:.1f} s, "
                f"overhead {self.overhead_s:.1f} s{share}")
        if self.waiting_s:
            text += f", cooldown/thermal wait {self.waiting_s:.1f} s"
        return text + f"; {self.trials} trial(s), total {self.total_s:.1f} s"


@dataclass
class SessionResult:
    session_id: int
    device_profile: str
    device_serial: str
    variants: list[VariantResult] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    seed: int | None = None  # the rounds' order seed (--seed repeats it)
    precision: PrecisionReport | None = None  # with --precision: what was reached, and why it stopped

    def to_json(self) -> list[dict[str, Any]]:
        # A list per variant, the documented shape. The session's timings are printed on
        # stderr and kept in table reports; they are not a property of one variant.
        return [
            {
                "variant": v.variant,
                "device": self.device_profile,
                "trials": len(v.trial_ids),
                "latency_ms": v.summary.to_json() if v.summary else None,
                "warnings": [f"{w.message} {w.advice}" for w in v.warnings],
            }
            for v in self.variants
        ]


class Progress(Protocol):
    """What the runner reports while it works; the CLI draws it, tests record it."""

    def message(self, text: str) -> None: ...
    def build(self, variant: str, state: str, detail: str) -> None:
        """A model's build state, as model/builds.py's ProgressCallback reports it."""
        ...
    def push(self, variant: str, sent: int, total: int) -> None: ...
    def precision(self, line: str) -> None:
        """After each adaptive round: the precision reached so far (PrecisionReport.progress_line)."""
        ...
    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None: ...
    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None: ...


class NullProgress:
    def message(self, text: str) -> None:
        pass

    def build(self, variant: str, state: str, detail: str) -> None:
        pass

    def push(self, variant: str, sent: int, total: int) -> None:
        pass

    def precision(self, line: str) -> None:
        pass

    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None:
        pass

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None:
        pass


class Sensors(Protocol):
    """Device readings the runner needs (mnv3bench.testing.FakeSensors scripts them)."""

    def info(self, device: Device, profile: DeviceProfile) -> DeviceInfo: ...
    def temperature_c(self, device: Device) -> float | None: ...
    def temperature(self, device: Device) -> TempReading:
        """The CPU temperature, or None with the reason it is unknown."""
        ...
    def freq_khz(self, device: Device, cpu: int) -> int | None: ...
    def freq_cap_khz(self, device: Device, cpu: int) -> int | None: ...


class ProbeSensors:
    """The readings of device/probe.py; temperatures from the source the probe chose."""

    def __init__(self) -> None:
        self._thermal: dict[str, Any] = {}  # device serial -> ThermalSource

    def info(self, device: Device, profile: DeviceProfile) -> DeviceInfo:
        from mnv3bench.device.probe import probe

        info = probe(device, profile)
        self.remember(device, info)
        return info

    def remember(self, device: Device, info: DeviceInfo) -> None:
        if info.thermal_source is not None:
            self._thermal[device.serial] = info.thermal_source

    def temperature(self, device: Device) -> TempReading:
        from mnv3bench.device.probe import cpu_temperature
        from mnv3bench.device.thermal import TempReading

        source = self._thermal.get(device.serial)
        if source is None:
            from mnv3bench.device.probe import cpu_temperature_c

            return TempReading(cpu_temperature_c(device))
        return cpu_temperature(device, source)

    def temperature_c(self, device: Device) -> float | None:
        return self.temperature(device).celsius

    def freq_khz(self, device: Device, cpu: int) -> int | None:
        from mnv3bench.device.probe import cpu_freq_khz

        return cpu_freq_khz(device, cpu)

    def freq_cap_khz(self, device: Device, cpu: int) -> int | None:
        from mnv3bench.device.probe import cpu_freq_cap_khz

        return cpu_freq_cap_khz(device, cpu)


@dataclass
class _Plan:
    """One variant's work: its model on the device and the trial indices still to run."""

    variant: str
    artifact: ModelArtifact
    remote: str
    todo: list[int]
    prior_ok: pd.DataFrame | None  # ok trials stored before this session (resume/reuse)


@dataclass(frozen=True)
class _Setup:
    """What every trial of one session shares: where it runs, how, and what it is recorded with."""

    device: Device
    profile: DeviceProfile
    info: DeviceInfo
    config: RunConfig
    sensors: Sensors
    flags: dict[str, str]  # benchmark_model flags, core mask and binary hash: what identifies a measurement
    tf_version: str | None
    binary: dict[str, str | None]  # the benchmark_model used: sha256 and the version it reports (None: none)

    @property
    def pin_core_max_khz(self) -> int | None:
        return self.info.cpu_max_freq_khz.get(self.profile.pin_core)

    @property
    def pin_cluster(self) -> str | None:
        """The pinned core's cluster as the phone reports it (else as the profile says), e.g. "6-7"."""
        from mnv3bench.device.profiles import cpu_list

        detected = self.info.cluster_of(self.profile.pin_core)
        if detected:
            return cpu_list(detected)
        cluster = self.profile.cluster_of(self.profile.pin_core)
        return cluster.label if cluster is not None else None


def run_session(
    profile: DeviceProfile,
    variants: Sequence[Variant | str],
    config: RunConfig,
    store: ResultStore,
    *,
    adb: str | None = None,
    serial: str | None = None,
    progress: Progress | None = None,
    models_dir: Path | None = None,  # None: locations.default_models_dir()
    device: Device | None = None,
    artifacts: Sequence[ModelArtifact] | None = None,
    sensors: Sensors | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    command_line: str = "run",
    device_options: dict[str, Any] | None = None,
    comparisons: Sequence[tuple[str, str]] | None = None,
) -> SessionResult:
    """Measure every variant `config.trials` times on the device; see the module docstring.

    `comparisons`: the (subject, baseline) pairs --precision must resolve (a table's own
    comparisons); every pair of the variants when None.

    `device`, `artifacts` and `sensors` replace the real connection, build and probes
    (mnv3bench.testing has fakes of the device and the sensors). `device_options` go to
    device.session.open_device (e.g. emulator faults or root, keys_path).
    """
    started = time.perf_counter()
    timings = Timings()
    progress = progress or NullProgress()
    sensors = sensors or ProbeSensors()
    names = [v if isinstance(v, str) else v.name for v in variants]
    if len(set(names)) != len(names):
        raise UsageError(f"A variant is listed twice: {', '.join(names)}.", "Give each --variant once.")
    lock_dir = default_lock_dir()
    with _device(profile, device, adb, serial, config.force, sensors, progress, device_options, lock_dir) as opened:
        dev, info = opened
        if artifacts is None:
            from mnv3bench.model.builds import ensure_models

            progress.message(f"Building {len(variants)} model(s) (cached models are reused)")
            build_started = time.perf_counter()
            artifacts = ensure_models(
                list(variants), models_dir=models_dir,
                progress=progress.build,
            )
            timings.build_s = time.perf_counter() - build_started
        artifacts = list(artifacts)
        binary_sha256 = dev.sha256(profile.benchmark_binary) or "missing"
        flags = _session_flags(config, profile, binary_sha256)
        if config.resume and not config.force_new:
            config = _resumable(config, flags, store, profile, dev, info, names, progress)
            flags = _session_flags(config, profile, binary_sha256)
        setup = _Setup(dev, profile, info, config, sensors, flags,
                       tf_version=next((a.tf_version for a in artifacts), None),
                       binary=binary_identity(binary_sha256))
        pairs = list(comparisons) if comparisons is not None else all_pairs(names)
        result = _run_on_device(setup, names, artifacts, store, progress, sleep, clock, command_line, timings, pairs)
    timings.total_s = time.perf_counter() - started
    result.timings = timings
    return result


@contextlib.contextmanager
def _device(profile: DeviceProfile, device: Device | None, adb: str | None, serial: str | None, force: bool,
            sensors: Sensors, progress: Progress, options: dict[str, Any] | None,
            lock_dir: Path) -> Iterator[tuple[Device, DeviceInfo]]:
    """(device, DeviceInfo), locked for this process: the given one, or a real connection
    that passed preflight (the lock comes first, so preflight never disturbs another run)."""
    if device is not None:
        info = sensors.info(device, profile)
        with DeviceLock(lock_dir, device_lock_key(identity(device, info), device.serial)):
            yield device, info
        return
    from mnv3bench.device.preflight import require_ready, run_checks
    from mnv3bench.device.session import open_device

    with open_device(profile, adb=adb, serial=serial, force=force, **(options or {})) as session:
        if isinstance(sensors, ProbeSensors):
            sensors.remember(session.device, session.info)
        # The phone's serial, not its address: two USB phones never share a lock, and a
        # phone that moved to another IP is still the same phone.
        with contextlib.ExitStack() as locks:
            locks.enter_context(DeviceLock(lock_dir, device_lock_key(identity(session.device, session.info),
                                                                     session.device.serial)))
            if on_host_emulator(profile, session.info) or session.emulator is not None:
                locks.enter_context(HostCoreLock(lock_dir, emulator_host_cpu(profile.pin_core), progress.message))
            for remark in session.warnings:
                progress.message(f"note: {remark}")
            # Before any build or push: a missing binary or full storage fails now, with its fix.
            for check in require_ready(run_checks(session.device, profile, session.info, force=force)):
                fix = f" ({check.fix})" if check.fix else ""
                progress.message(f"warning: {check.name}: {check.detail}{fix}")
            yield session.device, session.info


def _session_flags(config: RunConfig, profile: DeviceProfile, binary_sha256: str | None) -> dict[str, Any]:
    """What identifies a measurement besides the model: the benchmark_model flags, the core it
    is pinned to and the benchmark binary itself (a new build or another core must not mix with
    stored trials under --resume, --reuse or compare)."""
    return {**benchmark_flags(config), "taskset": profile.affinity_mask, "binary_sha256": binary_sha256}


def _resumable(config: RunConfig, flags: dict[str, str], store: ResultStore, profile: DeviceProfile, dev: Device,
               info: DeviceInfo, names: list[str], progress: Progress) -> RunConfig:
    """--resume: the config that continues the last session (its flags for options left at their
    defaults); a UsageError naming the flags given that differ from its (bench/resume.py)."""
    from mnv3bench.bench.resume import resume_config

    last = store.last_session(device_profile=profile.name, device_fingerprint=info.fingerprint,
                              device_serial=None if profile.emulated else identity(dev, info), variants=names)
    if last is None or last["flags"] == flags:
        return config
    resumed, changes = resume_config(config, last["id"], last["flags"], flags, last["command"])
    progress.message(f"--resume: continuing session {last['id']} with its flags ("
                     + "; ".join(c.text() for c in changes) + ")")
    return resumed


def on_host_emulator(profile: DeviceProfile, info: DeviceInfo) -> bool:
    """mnv3bench's emulator, playing itself or a phone's twin (in-process or `emulator serve`):
    its benchmark computes on a host core and its sensor values are invented."""
    return profile.emulated or info.emulator


def identity(device: Device, info: DeviceInfo) -> str:
    """Who the phone is: ro.serialno, else (no serial readable) the transport address."""
    return info.serial or device.serial


def _run_on_device(setup: _Setup, names: list[str], artifacts: list[ModelArtifact], store: ResultStore,
                   progress: Progress, sleep: Callable[[float], None], clock: Callable[[], float],
                   command_line: str, timings: Timings, pairs: list[tuple[str, str]]) -> SessionResult:
    dev, profile, info, config, flags = setup.device, setup.profile, setup.info, setup.config, setup.flags
    fingerprint = info.fingerprint
    serial = identity(dev, info)
    # The host emulator's serial comes from its folder; its fingerprint names it.
    identity_serial = None if profile.emulated else serial

    plans: list[_Plan] = []
    resumed_from: int | None = None
    for name, artifact in zip(names, artifacts, strict=True):
        prior, newest = None, None
        if config.resume or config.reuse:
            prior, newest = store.matching_ok_trials(
                variant=name, model_sha256=artifact.sha256, device_profile=profile.name,
                device_fingerprint=fingerprint, device_serial=identity_serial, flags=flags,
                scope="all" if config.reuse else "resume",
            )
            if config.resume and newest is not None:
                resumed_from = max(resumed_from or 0, newest)
        if prior is not None and len(prior):
            if config.reuse:
                done = len(prior)
                top = int(prior["trial_index"].max())
                todo = list(range(top + 1, top + 1 + max(0, config.trials - done)))
            else:
                have = set(int(i) for i in prior["trial_index"])
                todo = [i for i in range(1, config.trials + 1) if i not in have]
        else:
            todo = list(range(1, config.trials + 1))
        remote = f"{profile.work_dir.rstrip('/')}/{name}.tflite"
        plans.append(_Plan(name, artifact, remote, todo, prior))

    seed = config.seed if config.seed is not None else secrets.randbits(32)
    session_id = store.start_session(SessionRecord(
        command=command_line, device_profile=profile.name, device_serial=serial, device_model=info.model,
        device_fingerprint=fingerprint, flags=flags, variants=names, tool_version=mnv3bench.__version__,
        tf_version=setup.tf_version, resumed_from=resumed_from,
        device_info={**info.to_json(), "route": dev.transport_name,  # adb-server | tcp | usb
                     "benchmark_binary": setup.binary},
        builds_on={p.variant: [int(i) for i in p.prior_ok["id"]] for p in plans
                   if p.prior_ok is not None and len(p.prior_ok)},
        device_address=dev.serial, seed=seed,
        host=host_facts().to_json(), sensors_emulated=on_host_emulator(profile, info),
    ))

    to_measure = [p for p in plans if p.todo]
    if len(to_measure) < len(plans):
        skipped = [p.variant for p in plans if not p.todo]
        progress.message(f"Already measured (stored): {', '.join(skipped)}")
    push_started = time.perf_counter()
    for plan in to_measure:
        _ensure_pushed(dev, profile, plan, progress)
    timings.push_s = time.perf_counter() - push_started

    if to_measure:
        _kill_stale_benchmark(dev, progress)
    new_trials: dict[str, list[TrialRecord]] = {p.variant: [] for p in plans}
    new_ids: dict[str, list[int]] = {p.variant: [] for p in plans}
    rng = random.Random(seed)
    order = _round_order(plans, rng)
    trials_started = time.perf_counter()

    def measure(plan: _Plan, trial_index: int, round_index: int, position: int, done: int, total: int) -> None:
        loop_started = time.perf_counter()
        if done and config.cooldown_s:
            progress.message(f"Cooling down {config.cooldown_s:g} s")
            sleep(config.cooldown_s)
        if config.thermal_gate_c is not None:
            _wait_for_thermal_gate(setup, progress, sleep, clock)
        waited = time.perf_counter() - loop_started
        progress.trial_started(plan.variant, trial_index, done, total)
        record, benchmark_s = _run_trial(setup, plan, trial_index, session_id)
        record.round_index, record.round_position = round_index, position
        trial_id = store.record_trial(record)
        new_trials[plan.variant].append(record)
        new_ids[plan.variant].append(trial_id)
        progress.trial_finished(plan.variant, trial_index, record.ok, record.latency_ms, record.error_message)
        timings.trials += 1
        timings.waiting_s += waited
        timings.benchmark_s += benchmark_s
        timings.overhead_s += time.perf_counter() - loop_started - waited - benchmark_s
        if not record.ok and not config.keep_going:
            raise MnvError(
                f"Trial {trial_index} of {plan.variant} failed: {record.error_message} "
                f"(stored as trial {trial_id} with its raw output).",
                "Fix the cause and run again with --resume, or pass --keep-going to carry on past failed trials.",
            )

    for done, (plan, trial_index, round_index, position) in enumerate(order):
        measure(plan, trial_index, round_index, position, done, len(order))

    report = None
    target = config.precision_target
    if target is not None and plans:
        # Adaptive: more rounds of every variant until the precision is reached or a budget ends.
        for plan in plans:
            if not plan.todo:
                _ensure_pushed(dev, profile, plan, progress)
        round_index = max((len(p.todo) for p in plans), default=0)
        done = len(order)
        while True:
            report = _assess(target, plans, new_trials, session_id, round_index, pairs)
            progress.precision(report.progress_line())
            if report.met:
                report.stopped = REACHED
                break
            if max(_trials_of(plan, new_trials) for plan in plans) >= config.trials_cap:
                report.stopped = MAX_TRIALS
                break
            if config.max_time_s is not None and time.perf_counter() - trials_started >= config.max_time_s:
                report.stopped = MAX_TIME
                break
            round_index += 1
            in_round = list(plans)
            rng.shuffle(in_round)
            end = done + len(in_round)  # the trials planned so far: this round's last
            for position, plan in enumerate(in_round, start=1):
                measure(plan, _next_index(plan, new_trials), round_index, position, done, end)
                done += 1
        if not report.met:
            progress.message(f"warning: precision ±{target:.2%} not reached ({report.stopped}) for: "
                             + ", ".join(report.missed()))

    ordered = [OrderedTrial(t.variant, t.round_index, t.round_position, t.latency_ms)  # type: ignore[arg-type]
               for records in new_trials.values() for t in records if t.ok and t.round_index is not None]
    for warning in order_warnings(ordered):
        progress.message(f"warning: {warning}")
    store.end_session(session_id, {"load_end": load_average()})
    result = SessionResult(session_id, profile.name, serial, seed=seed, precision=report)
    for plan in plans:
        result.variants.append(_variant_result(plan, new_trials[plan.variant], new_ids[plan.variant]))
    return result


def _round_order(plans: Sequence[_Plan], rng: random.Random) -> list[tuple[_Plan, int, int, int]]:
    """(plan, trial index, round, position) in running order: round r runs the r-th trial
    still to do of every variant that has one, shuffled by `rng` (seeded with the session's seed)."""
    order = []
    for r in range(max((len(p.todo) for p in plans), default=0)):
        in_round = [plan for plan in plans if r < len(plan.todo)]
        rng.shuffle(in_round)
        order += [(plan, plan.todo[r], r + 1, position) for position, plan in enumerate(in_round, start=1)]
    return order


def _trials_of(plan: _Plan, new_trials: dict[str, list[TrialRecord]]) -> int:
    """Trials of the variant so far: stored before (resume/reuse) and run now."""
    return (0 if plan.prior_ok is None else len(plan.prior_ok)) + len(new_trials[plan.variant])


def _next_index(plan: _Plan, new_trials: dict[str, list[TrialRecord]]) -> int:
    used = [t.trial_index for t in new_trials[plan.variant]]
    if plan.prior_ok is not None and len(plan.prior_ok):
        used += [int(i) for i in plan.prior_ok["trial_index"]]
    return max(used, default=0) + 1


def _assess(target: float, plans: Sequence[_Plan], new_trials: dict[str, list[TrialRecord]], session_id: int,
            rounds_done: int, pairs: Sequence[tuple[str, str]]) -> PrecisionReport:
    """The precision reached by every variant's ok trials, stored before and run now."""
    from mnv3bench.bench.paired import round_keys

    latencies: dict[str, list[float]] = {}
    keys: dict[str, list[Any]] = {}
    for plan in plans:
        ms: list[float] = []
        ks: list[Any] = []
        if plan.prior_ok is not None and len(plan.prior_ok):
            ms += [float(v) for v in plan.prior_ok["latency_ms"]]
            ks += round_keys(plan.prior_ok)
        for t in new_trials[plan.variant]:
            if t.ok:
                ms.append(float(t.latency_ms))  # type: ignore[arg-type]
                ks.append((session_id, t.round_index))
        latencies[plan.variant], keys[plan.variant] = ms, ks
    return assess(target, latencies, keys, pairs, rounds_done)


def _ensure_pushed(dev: Device, profile: DeviceProfile, plan: _Plan, progress: Progress) -> None:
    """Push the model unless the device already holds the same bytes; verify after."""
    want = plan.artifact.sha256
    if dev.sha256(plan.remote) == want:
        progress.message(f"{plan.variant}: model already on the device (sha256 matches)")
        return
    dev.shell(f"mkdir -p {shlex.quote(profile.work_dir)}", timeout_s=30)
    dev.push(Path(plan.artifact.path), plan.remote,
             progress=lambda sent, total: progress.push(plan.variant, sent, total))
    got = dev.sha256(plan.remote)
    if got != want:
        raise MnvError(
            f"The model pushed for {plan.variant} does not match the built file "
            f"(device sha256 {got or 'missing'}, expected {want}); it will not be benchmarked.",
            f"Check the free space in {profile.work_dir} (`mnv3bench doctor --device {profile.name}`) and run "
            "again with --resume.",
        )


def _wait_for_thermal_gate(setup: _Setup, progress: Progress, sleep: Callable[[float], None],
                           clock: Callable[[], float]) -> None:
    config = setup.config
    gate = float(config.thermal_gate_c)  # type: ignore[arg-type]
    start = clock()
    told = False
    emulated = " (emulated)" if on_host_emulator(setup.profile, setup.info) else ""  # an invented reading
    while True:
        reading = setup.sensors.temperature(setup.device)
        temp = reading.celsius
        if temp is None:
            raise MnvError(
                "--thermal-gate needs the CPU temperature, but the device reports none"
                + (f" ({reading.note})." if reading.note else "."),
                "Run without --thermal-gate and use --cooldown SECONDS instead.",
            )
        if temp < gate:
            return
        waited = clock() - start
        if waited >= config.thermal_timeout_s:
            raise MnvError(
                f"The CPU stayed at {temp:.1f} C{emulated}, above the thermal gate of {gate:g} C, for "
                f"{config.thermal_timeout_s:g} s.",
                "Let the phone cool (screen off, out of its case, off the charger), raise --thermal-gate or "
                "--thermal-timeout, then run again with --resume.",
            )
        if not told:
            progress.message(f"Waiting for the CPU to cool below {gate:g} C (now {temp:.1f} C{emulated})")
            told = True
        sleep(min(config.thermal_poll_s, max(0.0, config.thermal_timeout_s - waited)))


def _run_trial(setup: _Setup, plan: _Plan, trial_index: int, session_id: int) -> tuple[TrialRecord, float]:
    """The stored record of one trial, and the seconds the benchmark_model shell call took."""
    from mnv3bench.bench.parser import (
        BenchmarkOutput,
        mark_failed,
        parse_benchmark_output,
        trial_latency_us,
    )

    dev, profile, config, sensors = setup.device, setup.profile, setup.config, setup.sensors
    command = benchmark_command(profile, plan.remote, config)
    before = sensors.temperature(dev)
    freq_before = sensors.freq_khz(dev, profile.pin_core)
    started = utc_now()
    shell_started = time.perf_counter()
    try:
        result = dev.shell(command, timeout_s=config.trial_timeout_s)
    except KeyboardInterrupt:
        _kill_benchmark(dev, profile)
        raise
    benchmark_s = time.perf_counter() - shell_started
    ended = utc_now()
    if result.timed_out:
        _kill_benchmark(dev, profile)
    after = sensors.temperature(dev)
    temp_before, temp_after = before.celsius, after.celsius
    freq_after = sensors.freq_khz(dev, profile.pin_core)
    cap_after = sensors.freq_cap_khz(dev, profile.pin_core)
    max_freq_khz = setup.pin_core_max_khz

    error: str | None = None
    try:
        parsed = parse_benchmark_output(result.output)
    except Exception as exc:  # a parser bug must not lose the trial: keep it, failed, with its text
        parsed = BenchmarkOutput(error=True, error_message=f"the output could not be parsed ({exc!r})")
    pinning = taskset_failure(result.output) if result.exit_code not in (0, None) else None
    if result.timed_out:
        error = f"timed out after {config.trial_timeout_s:g} s (device process killed; partial output kept)"
    elif pinning:
        error = (f"taskset could not pin cpu{profile.pin_core} ({pinning}): the adb shell's cpuset leaves it out. "
                 f"{PINNING_FIX}")
    elif result.exit_code not in (0, None):
        error = f"benchmark_model exited with status {result.exit_code}"
        if parsed.error_message:
            error += f": {parsed.error_message}"
    elif parsed.error or parsed.inference_avg_us is None:
        error = parsed.error_message or "the output has no inference latency"
    else:
        error = flag_problem(result.output)
    ok = error is None
    if not ok:
        # A run that printed its stats and then timed out or exited non-zero is a failure:
        # none of its timings may reach the database as if they were a measurement.
        mark_failed(parsed, error)
    latency_us, estimator = trial_latency_us(parsed)
    # Throttled: the thermal framework capped the core below its rated maximum
    # (scaling_max_freq < cpuinfo_max_freq), or the CPU ended above the thermal gate.
    # scaling_cur_freq is recorded but not used here: read between runs it is an idle
    # core's clock, which a schedutil governor lowers without any throttling.
    throttled = bool(
        (cap_after and max_freq_khz and cap_after < max_freq_khz)
        or (config.thermal_gate_c is not None and temp_after is not None and temp_after > config.thermal_gate_c)
    )
    record = TrialRecord(
        session_id=session_id, variant=plan.variant, model_sha256=plan.artifact.sha256,
        device_profile=profile.name, device_serial=identity(dev, setup.info), device_model=setup.info.model,
        device_fingerprint=setup.info.fingerprint, flags=setup.flags, trial_index=trial_index, started_at=started,
        ended_at=ended,
        ok=ok, error_message=error, latency_ms=float(latency_us) / 1000.0 if ok else None,  # type: ignore[arg-type]
        latency_estimator=estimator if ok else None,
        parsed=parsed.to_json() | {"op_profile_by_type": parsed.op_profile_by_type, "op_profile": parsed.op_profile_rows},
        temp_before_c=temp_before, temp_after_c=temp_after, freq_before_khz=freq_before,
        freq_after_khz=freq_after, freq_cap_khz=cap_after, throttled=throttled, exit_code=result.exit_code,
        timed_out=result.timed_out,
        raw_output=result.output, tool_version=mnv3bench.__version__, tf_version=setup.tf_version,
        delegate_left_out=left_out_on_device(plan.artifact.delegation, parsed.delegate, parsed.delegated_nodes,
                                             parsed.total_nodes),
        device_address=dev.serial, cpu_core=profile.pin_core, cpu_cluster=setup.pin_cluster,
        temp_note="; ".join(f"{when}: {r.note}" for when, r in (("before", before), ("after", after))
                            if r.celsius is None and r.note) or None,
    )
    return record, benchmark_s


def _kill_benchmark(dev: Device, profile: DeviceProfile) -> None:
    """Best effort: a hung benchmark_model must not keep the core busy for the next trial."""
    # Any failure is swallowed: this runs on the way out of a timeout or Ctrl-C, whose own
    # outcome must reach the user; a dead link has ended the device's shell anyway.
    with contextlib.suppress(Exception):
        survivors = dev.shell(kill_command(profile.benchmark_binary), timeout_s=15).output.split()
        pids = [p for p in survivors if p.isdigit()]
        if pids:  # by PID: the name did not match (a long download name) or SIGTERM was not enough
            dev.shell("kill -9 " + " ".join(pids), timeout_s=15)


def _kill_stale_benchmark(dev: Device, progress: Progress) -> None:
    """Before the first trial: kill a benchmark_model left running on the device.

    A run killed with kill -9 (or a pulled cable) cannot stop its device-side benchmark,
    which then shares the pinned core with every trial of the next run and doubles its
    latencies without any error. The device lock (taken before this) guarantees that no
    live mnv3bench run owns such a process, so it is safe to kill.
    """
    pids = _running_benchmarks(dev)
    if not pids:
        return
    progress.message(f"warning: a {BENCHMARK_PROCESS} left by an earlier run was still running on the device "
                     f"(pid {', '.join(pids)}); killing it so that it does not disturb these trials")
    dev.shell(KILL_COMMAND, timeout_s=15)
    for _ in range(20):  # SIGTERM first; a benchmark still there after 2 s gets SIGKILL
        if not _running_benchmarks(dev):
            return
        time.sleep(0.1)
    dev.shell(f"pkill -9 -x {BENCHMARK_PROCESS}", timeout_s=15)


def _running_benchmarks(dev: Device) -> list[str]:
    # Digits only: an old shell without pidof answers with an error text, which means "unknown".
    return [word for word in dev.shell(RUNNING_COMMAND, timeout_s=15).output.split() if word.isdigit()]


def _variant_result(plan: _Plan, new: list[TrialRecord], new_ids: list[int]) -> VariantResult:
    rows: list[tuple[int, int, float, bool, int | None]] = []
    if plan.prior_ok is not None:
        for r in plan.prior_ok.itertuples():
            rows.append((int(r.trial_index), int(r.id), float(r.latency_ms), bool(r.throttled),
                         _int(r.freq_cap_khz)))
    for trial_id, t in zip(new_ids, new, strict=True):
        if t.ok:
            rows.append((t.trial_index, trial_id, float(t.latency_ms), t.throttled,  # type: ignore[arg-type]
                         t.freq_cap_khz))
    rows.sort()
    failed = sum(1 for t in new if not t.ok)
    latencies = [r[2] for r in rows]
    summary = stats.summarize(latencies) if latencies else None
    warnings = stats.diagnose(
        latencies, throttled=[r[3] for r in rows], freq_caps_khz=[r[4] for r in rows], failed_trials=failed,
    )
    reused = 0 if plan.prior_ok is None else len(plan.prior_ok)
    return VariantResult(plan.variant, plan.artifact.sha256, summary, warnings, [r[1] for r in rows], len(new),
                         failed, reused)


def _int(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None
