"""What the measuring commands (`run`, `table`) share: their options, the RunConfig built
from them, and the measure path (store, progress display, Ctrl-C).

The options come from the option table (bench/options.py): `measuring_command` puts them,
with --models-dir, --adb, --serial and --db, in place of a command's `measurement`
parameter, and hands the command a `Measurement` of what was asked. So `table 5
--num-runs 10` means exactly what `run --num-runs 10` means, and a new option is one
field of RunConfig.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import shlex
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from mnv3bench.bench.options import OPTIONS, BenchOption, RunConfig
from mnv3bench.bench.runner import SessionResult
from mnv3bench.cliapp import (
    AdbOpt,
    AdbServerOpt,
    DbOpt,
    DirectOpt,
    SerialOpt,
    passthrough,
    plain_output,
    stderr,
)
from mnv3bench.commands.signals import exit_status, stop_on_signals
from mnv3bench.locations import default_models_dir
from mnv3bench.results import ResultStore, resolve_db_path

ModelsDirOpt = Annotated[Path | None, typer.Option("--models-dir", help="Where built models are cached (default: see "
                                                   "README, \"Where files go\").")]
SessionRunner = Callable[..., SessionResult]


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
            interrupted_hint: str, device_options: dict[str, Any] | None = None,
            comparisons: Sequence[tuple[str, str]] | None = None) -> SessionResult:
        """Measure the variants into the results database, with progress; see `measure`.
        `comparisons`: what --precision must resolve (run_session's default: every pair)."""
        config = self.config()
        with ResultStore(self.db_path) as store:
            return measure(run_session, profile, variants, config, store, adb=self.adb, serial=self.serial,
                           models_dir=self.models_dir, command_line=command_line, interrupted_hint=interrupted_hint,
                           device_options=self.route_options(), comparisons=comparisons)


def command_line(fallback: str) -> str:
    """This process's command line, as stored with the session."""
    return shlex.join(["mnv3bench", *sys.argv[1:]]) if sys.argv[1:] else fallback


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
    inspect.Parameter("serial", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=SerialOpt),
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
            given = {o.name: kwargs.pop(o.name) for o in options}
            given["extra_flags"] = passthrough()
            measurement = Measurement(options=given, **where)
            return command(measurement=measurement, **kwargs)

        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


# -- progress ------------------------------------------------------------------------------


class RichProgress:
    """Runner progress drawn on stderr: push bytes per model, and trials overall."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.pushes: dict[str, TaskID] = {}
        self.trials: TaskID | None = None

    def message(self, text: str) -> None:
        self.bar.console.print(text, highlight=False)

    def push(self, variant: str, sent: int, total: int) -> None:
        if variant not in self.pushes:
            self.pushes[variant] = self.bar.add_task(f"push {variant}", total=total, detail="")
        self.bar.update(self.pushes[variant], completed=sent, total=total,
                        detail=f"{sent / 1e6:.1f}/{total / 1e6:.1f} MB")

    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None:
        if self.trials is None:
            self.trials = self.bar.add_task("trials", total=total, detail="")
        self.bar.update(self.trials, completed=done, description=f"{variant} trial {trial_index}",
                        detail=f"{done}/{total} trials")

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None:
        if self.trials is not None:
            self.bar.advance(self.trials)
            task = self.bar.tasks[self.trials]
            self.bar.update(self.trials, detail=f"{int(task.completed)}/{int(task.total or 0)} trials")
        if not ok:
            self.message(f"[red]{variant} trial {trial_index} failed:[/] {error}")


class PlainProgress:
    """One line per event on stderr: for logs, pipes and CI."""

    def __init__(self) -> None:
        self._pushed: set[str] = set()

    def message(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def push(self, variant: str, sent: int, total: int) -> None:
        if sent >= total and variant not in self._pushed:
            self._pushed.add(variant)
            self.message(f"pushed {variant} ({total} bytes)")

    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None:
        self.message(f"[{done + 1}/{total}] {variant} trial {trial_index}")

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None:
        self.message(f"  {latency_ms:.3f} ms" if ok and latency_ms is not None else f"  failed: {error}")


def measure(run_session: SessionRunner, profile: Any, variants: Sequence[Any], config: RunConfig, store: ResultStore,
            *, adb: str | None, serial: str | None, models_dir: Path, command_line: str,
            interrupted_hint: str, device_options: dict[str, Any] | None = None,
            comparisons: Sequence[tuple[str, str]] | None = None) -> SessionResult:
    """Run a session with the progress display on stderr, then print where the time went.

    `run_session` is passed in (not imported here) so each command's tests can replace it.
    Ctrl-C, SIGTERM and SIGHUP print `interrupted_hint` (finished trials are already stored;
    the runner has killed the device's benchmark) and exit 128 + the signal number.
    """
    kwargs = {"adb": adb, "serial": serial, "models_dir": models_dir, "command_line": command_line}
    if device_options:
        kwargs["device_options"] = device_options
    if comparisons is not None:
        kwargs["comparisons"] = comparisons
    try:
        with stop_on_signals():
            result = _run_with_progress(run_session, profile, variants, config, store, kwargs)
    except KeyboardInterrupt as interrupt:
        stderr.print(f"interrupted: {interrupted_hint}", highlight=False)
        raise typer.Exit(exit_status(interrupt)) from None
    stderr.print(result.timings.summary(), highlight=False, soft_wrap=True)
    stderr.print(f"results stored in {store.path} (session {result.session_id})", highlight=False, soft_wrap=True)
    return result


def _run_with_progress(run_session: SessionRunner, profile: Any, variants: Sequence[Any], config: RunConfig,
                       store: ResultStore, kwargs: dict[str, Any]) -> SessionResult:
    if plain_output():
        return run_session(profile, list(variants), config, store, progress=PlainProgress(), **kwargs)
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}")]
    with Progress(*columns, console=stderr, transient=True) as bar:
        return run_session(profile, list(variants), config, store, progress=RichProgress(bar), **kwargs)
