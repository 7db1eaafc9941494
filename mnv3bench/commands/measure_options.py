"""What the measuring commands (`run`, `table`) share: their options, the RunConfig built
from them, and the measure path (store, progress display, Ctrl-C).

The options come from the option table (bench/options.py): `measuring_command` puts them,
with --models-dir, --adb, --serial and --db, in place of a command's `measurement`
parameter, and hands the command a `Measurement` of what was asked. So `table 5
--num-runs 10` means exactly what `run --num-runs 10` means, and a new option is one
field of RunConfig.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mnv3bench.bench.options import OPTIONS, BenchOption, RunConfig
from mnv3bench.bench.runner import SessionResult
from mnv3bench.cliapp import (
    AdbOpt,
    AdbServerOpt,
    DbOpt,
    DirectOpt,
    passthrough,
    plain_output,
    rerun_command,
    stderr,
)
from mnv3bench.commands.progress import (
    PlainProgress,
    RichProgress,
    kept_line,
    kept_report,
    newest_session_id,
    rich_bar,
)
from mnv3bench.commands.signals import exit_status, stop_on_signals
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.locations import default_models_dir
from mnv3bench.results import ResultStore, resolve_db_path

if TYPE_CHECKING:
    from mnv3bench.bench.fleet import FleetResult, Phone

ModelsDirOpt = Annotated[Path | None, typer.Option("--models-dir", help="Where built models are cached (default: see "
                                                   "README, \"Where files go\").")]
SessionRunner = Callable[..., SessionResult]
SerialsOpt = Annotated[list[str] | None, typer.Option(
    "--serial", help="Pick the device by its serial: any serial the adb server lists (a USB phone, or HOST:PORT "
    "attached with `adb connect`), or a USB serial on the direct route. With several --device, one per device, "
    "in the same order.", show_default=False, metavar="SERIAL")]
DevicesOpt = Annotated[list[str], typer.Option(
    "--device", "-d", help="Device profile name (`mnv3bench devices` lists them; e.g. pixel3, emulator). Repeat it "
    "to measure on several phones at once: each profile finds its phone by codename (see README, \"Several "
    "phones\").", show_default=False, metavar="NAME")]


@dataclass(frozen=True)
class Measurement:
    """What a measuring command was asked: the benchmark options as given, and where the
    device, the models and the results database are."""

    options: dict[str, Any]  # RunConfig field -> value from the command line
    models_dir: Path
    adb: str | None
    serial: str | None
    db: str | None
    adb_server: str | None = None
    direct: bool = False
    serials: tuple[str, ...] = ()  # every --serial, in order (`serial` is the one of a single device)

    def route_options(self) -> dict[str, Any]:
        """--adb-server / --direct, for device.session.open_device (empty when automatic)."""
        return {k: v for k, v in (("adb_server", self.adb_server), ("direct", self.direct)) if v}

    @property
    def db_path(self) -> Path:
        return resolve_db_path(self.db)

    def config(self) -> RunConfig:
        """The RunConfig (UsageError for a bad value): made when the command gets to it, so
        its own checks (variant names, the device) come first."""
        return RunConfig(**self.options)

    def with_defaults(self, **defaults: Any) -> Measurement:
        """The same, with these option values where the command line left them unset (None)."""
        options = {**self.options, **{k: v for k, v in defaults.items() if self.options.get(k) is None}}
        return dataclasses.replace(self, options=options)

    def run(self, run_session: SessionRunner, profile: Any, variants: Sequence[Any], *, command_line: str,
            device_options: dict[str, Any] | None = None,
            comparisons: Sequence[tuple[str, str]] | None = None) -> SessionResult:
        """Measure the variants into the results database, with progress; see `measure`.
        `comparisons`: what --precision must resolve (run_session's default: every pair)."""
        if len(self.serials) > 1:
            raise UsageError(f"{len(self.serials)} --serial for one --device.",
                             "Give one --serial per --device, in the same order.")
        config = self.config()
        with ResultStore(self.db_path) as store:
            return measure(run_session, profile, variants, config, store, adb=self.adb, serial=self.serial,
                           models_dir=self.models_dir, command_line=command_line,
                           resume_command=self.resume_command(command_line), device_options=self.route_options(),
                           comparisons=comparisons)

    @property
    def resume_flag(self) -> str:
        """What measures only the rest after a stop: `run` and `profile` take --resume, `table` --reuse."""
        return "--resume" if "resume" in self.options else "--reuse"

    def resume_command(self, command_line: str) -> str:
        """The user's command with the flag that measures only the rest (`command_line` outside the CLI)."""
        return rerun_command(self.resume_flag, fallback=command_line)

    def run_fleet(self, run_session: SessionRunner, profiles: Sequence[Any], variants: Sequence[Any], *,
                  command_line: str, comparisons: Sequence[tuple[str, str]] | None = None) -> FleetResult:
        """Measure the variants on one phone per profile at once; see `measure_fleet`."""
        from mnv3bench.bench.fleet import resolve_phones

        config = self.config()
        phones = resolve_phones(profiles, self.serials, adb=self.adb, adb_server=self.adb_server,
                                direct=self.direct)
        return measure_fleet(run_session, phones, variants, config, self.db_path, adb=self.adb,
                             models_dir=self.models_dir, command_line=command_line,
                             resume_command=self.resume_command(command_line), device_options=self.route_options(),
                             comparisons=comparisons)


def command_line(fallback: str) -> str:
    """This command line as the user typed it, stored with the session."""
    return rerun_command(fallback=fallback)


def _typer_parameter(option: BenchOption) -> inspect.Parameter:
    assert option.cli is not None
    info = typer.Option(option.cli, help=option.help)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default,
                             annotation=Annotated[option.type, info])


# Where to reach the device and keep models and results: part of every measurement.
_WHERE_OPTIONS = [
    inspect.Parameter("models_dir", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=ModelsDirOpt),
    inspect.Parameter("adb", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=AdbOpt),
    inspect.Parameter("serial", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=SerialsOpt),
    inspect.Parameter("db", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DbOpt),
    inspect.Parameter("adb_server", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=AdbServerOpt),
    inspect.Parameter("direct", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DirectOpt),
]

Command = Callable[..., Any]


def measuring_command(*, without: Collection[str] = ()) -> Callable[[Command], Command]:
    """Give a Typer command the option table's options (less the RunConfig fields named in
    `without`), --models-dir, --adb, --serial, --adb-server, --direct and --db, in place of its `measurement:
    Measurement` parameter.

    Typer reads a command's options from its signature, so the wrapper shows Typer a
    signature with one parameter per option, gathers their values into a Measurement and
    calls the command with it.
    """
    unknown = set(without) - {o.name for o in OPTIONS}
    if unknown:
        raise TypeError(f"not options of RunConfig: {sorted(unknown)}")
    options = [o for o in OPTIONS if o.cli is not None and o.name not in without]
    added = [_typer_parameter(o) for o in options] + _WHERE_OPTIONS

    def decorate(command: Command) -> Command:
        own = inspect.signature(command, eval_str=True).parameters
        clash = {p.name for p in added} & set(own)
        if "measurement" not in own or clash:
            raise TypeError(f"{command.__name__}: needs a `measurement` parameter and none named {sorted(clash)}")
        parameters: list[inspect.Parameter] = []
        for parameter in own.values():
            # Keyword-only throughout: Typer calls with keywords, and the order stays free.
            parameters += added if parameter.name == "measurement" else [
                parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            where = {p.name: kwargs.pop(p.name) for p in _WHERE_OPTIONS}
            where["models_dir"] = where["models_dir"] or default_models_dir()
            serials = tuple(where.pop("serial") or ())
            where.update(serial=serials[0] if len(serials) == 1 else None, serials=serials)
            given = {o.name: kwargs.pop(o.name) for o in options}
            given["extra_flags"] = passthrough()
            measurement = Measurement(options=given, **where)
            return command(measurement=measurement, **kwargs)

        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def measure(run_session: SessionRunner, profile: Any, variants: Sequence[Any], config: RunConfig, store: ResultStore,
            *, adb: str | None, serial: str | None, models_dir: Path, command_line: str,
            resume_command: str, device_options: dict[str, Any] | None = None,
            comparisons: Sequence[tuple[str, str]] | None = None) -> SessionResult:
    """Run a session with the progress display on stderr, then print where the time went.

    `run_session` is passed in (not imported here) so each command's tests can replace it.
    Ctrl-C, SIGTERM and SIGHUP print what the database kept of this run (finished trials are
    already stored; the runner has killed the device's benchmark) and `resume_command`, then
    exit 128 + the signal number.
    """
    kwargs = {"adb": adb, "serial": serial, "models_dir": models_dir, "command_line": command_line}
    if device_options:
        kwargs["device_options"] = device_options
    if comparisons is not None:
        kwargs["comparisons"] = comparisons
    before = newest_session_id(store)
    try:
        with stop_on_signals():
            result = _run_with_progress(run_session, profile, variants, config, store, kwargs)
    except KeyboardInterrupt as interrupt:
        for line in kept_report(store, before, resume_command):
            stderr.print(line, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(exit_status(interrupt)) from None
    except MnvError as err:
        # A lost link, a failed trial, a full disk: the hint says to resume; this is how, exactly.
        if err.hint and ("--resume" in err.hint or "--reuse" in err.hint):
            err.hint += f"\nThat is: {resume_command}"
        raise
    stderr.print(result.timings.summary(), highlight=False, soft_wrap=True)
    stderr.print(f"results stored in {store.path} (session {result.session_id})", highlight=False, soft_wrap=True)
    return result


def _run_with_progress(run_session: SessionRunner, profile: Any, variants: Sequence[Any], config: RunConfig,
                       store: ResultStore, kwargs: dict[str, Any]) -> SessionResult:
    target = config.precision_target
    if plain_output():
        return run_session(profile, list(variants), config, store, progress=PlainProgress(target), **kwargs)
    with rich_bar(stderr) as bar:
        return run_session(profile, list(variants), config, store, progress=RichProgress(bar, target), **kwargs)


# -- several phones ---------------------------------------------------------------------------


class LabelledProgress:
    """One phone's progress among several: its messages and its trials line carry its name."""

    def __init__(self, inner: Any, label: str) -> None:
        self.inner, self.label = inner, label

    def message(self, text: str) -> None:
        self.inner.message(f"{self.label}: {text}")

    def precision(self, line: str) -> None:
        self.inner.precision(f"{self.label}: {line}")

    def build(self, variant: str, state: str, detail: str) -> None:
        self.inner.build(variant, state, detail)

    def push(self, variant: str, sent: int, total: int) -> None:
        self.inner.push(f"{self.label} {variant}", sent, total)

    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None:
        self.inner.trial_started(f"{self.label} {variant}", trial_index, done, total)

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None:
        self.inner.trial_finished(f"{self.label} {variant}", trial_index, ok, latency_ms, error)


def measure_fleet(run_session: SessionRunner, phones: Sequence[Phone], variants: Sequence[Any], config: RunConfig,
                  db_path: Path, *, adb: str | None, models_dir: Path, command_line: str, resume_command: str,
                  device_options: dict[str, Any] | None = None,
                  comparisons: Sequence[tuple[str, str]] | None = None) -> FleetResult:
    """Several phones' sessions side by side (bench/fleet.py), one progress line each.

    The models are built once, before any session starts. Ctrl-C, SIGTERM and SIGHUP stop
    every session before its next trial (each stores the trial it was measuring first), print
    what each phone's session kept and `resume_command`, and exit 128 + the signal number. A
    phone whose session failed is in the result's `failed`, for the caller to report after the
    others' results.
    """
    from mnv3bench.bench.fleet import start_fleet
    from mnv3bench.model.builds import ensure_models

    for phone in phones:
        stderr.print(phone.describe(), highlight=False, soft_wrap=True)
    if any(phone.serial is None for phone in phones):
        from mnv3bench.device.adb import load_signer

        # Made here, once: in-process twins trust this key, and two threads must not create it at once.
        load_signer((device_options or {}).get("keys_path"))
    with ResultStore(db_path) as store:
        before = newest_session_id(store)  # the sessions after it are this command's
    with contextlib.ExitStack() as display:
        target = config.precision_target
        if plain_output():
            shown: Any = PlainProgress(target)

            def progress_for(phone: Phone) -> Any:
                return LabelledProgress(PlainProgress(target), phone.name)
        else:
            bar = display.enter_context(rich_bar(stderr))
            shown = RichProgress(bar, target)

            def progress_for(phone: Phone) -> Any:
                return LabelledProgress(RichProgress(bar, target), phone.name)

        # The builds shown as for one phone (queued, building N s, built), once for all phones.
        artifacts = ensure_models(list(variants), models_dir=models_dir, progress=shown.build)
        started = time.perf_counter()
        fleet = start_fleet(phones, variants, config, db_path, run_session, progress_for=progress_for,
                            models_dir=models_dir, artifacts=artifacts, adb=adb, command_line=command_line,
                            device_options=device_options, comparisons=comparisons)
        try:
            with stop_on_signals():
                result = fleet.wait()
        except KeyboardInterrupt as interrupt:
            stderr.print("Stopping: each phone finishes the trial it is measuring (Ctrl-C again to leave now).",
                         highlight=False, soft_wrap=True)
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: count what is stored by now
                fleet.interrupt()
            with ResultStore(db_path) as store:  # what each phone's session kept, as `measure` says for one
                lines = [f"{phone.name}: " + (kept_line(store, before, device=phone.name, address=phone.serial)
                                              or "interrupted before its session started; nothing of it is stored.")
                         for phone in phones]
            for line in [*lines, f"Measure what is missing: {resume_command}"]:
                stderr.print(line, highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(exit_status(interrupt)) from None
    for outcome in result.outcomes:
        if outcome.result is not None:
            stderr.print(f"{outcome.phone.name}: {outcome.result.timings.summary()}", highlight=False, soft_wrap=True)
    stderr.print(f"{len(phones)} phones in {time.perf_counter() - started:.1f} s; results stored in {db_path} "
                 f"(sessions {', '.join(str(r.session_id) for r in result.results) or 'none'})",
                 highlight=False, soft_wrap=True)
    return result


def fleet_failure(result: FleetResult, again: str, resume_command: str) -> MnvError | None:
    """The error to end a command with when some phones' sessions failed (None when none did):
    what to do, then each failed phone's own hint (its commands about that phone: its --device
    and --serial), then how to measure the rest, exactly (`resume_command`), as `measure` says
    for one phone."""
    from mnv3bench.bench.fleet import failure_text
    from mnv3bench.cliapp import with_given_options

    if not result.failed:
        return None
    lines = "; ".join(failure_text(o) for o in result.failed)
    hints = [f"{o.phone.name}: {with_given_options(o.error.hint, phone=o.phone.name)}" for o in result.failed
             if isinstance(o.error, MnvError) and o.error.hint]
    return MnvError(f"{len(result.failed)} of {len(result.outcomes)} phones failed: {lines.rstrip('.')}.",
                    "\n".join([f"Fix the cause on each failed phone{' (below)' if hints else ''}, then {again} "
                                "The other phones' results are above, and every finished trial is stored.",
                                *hints, f"That is: {resume_command}"]))
