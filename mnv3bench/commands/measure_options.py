"""What the measuring commands (`run`, `table`) share: their options, the RunConfig built
from them, the progress display and the Ctrl-C handling.

One definition, so `table 5 --num-runs 10` means exactly what `run --num-runs 10` means.
Typer needs each option as a parameter of the command function; the aliases below carry
the flags and help, `DEFAULTS` the default values, and `run_config` turns them into a
RunConfig (which validates them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from mnv3bench.bench.runner import RunConfig, SessionResult
from mnv3bench.cliapp import plain_output, stderr
from mnv3bench.results import ResultStore

# The runner's defaults are the CLI's defaults.
DEFAULTS = RunConfig()
DEFAULT_MODELS_DIR = Path("models")

TrialsOpt = Annotated[int, typer.Option("--trials", help="Trials per variant (each one benchmark_model run).")]
NumRunsOpt = Annotated[int, typer.Option("--num-runs", help="benchmark_model --num_runs.")]
WarmupRunsOpt = Annotated[int, typer.Option("--warmup-runs", help="benchmark_model --warmup_runs.")]
MinSecsOpt = Annotated[float, typer.Option("--min-secs", help="benchmark_model --min_secs.")]
MaxSecsOpt = Annotated[float, typer.Option("--max-secs", help="benchmark_model --max_secs.")]
XnnpackOpt = Annotated[
    bool | None,
    typer.Option("--use-xnnpack/--no-xnnpack", help="Force XNNPACK on or off (default: the binary's)."),
]
OpProfileOpt = Annotated[bool, typer.Option("--op-profile", help="Also record per-op times (op profiling).")]
CooldownOpt = Annotated[float, typer.Option("--cooldown", help="Seconds to rest between trials.")]
ThermalGateOpt = Annotated[
    float | None, typer.Option("--thermal-gate", help="Wait until the CPU is below this many C.")
]
ThermalTimeoutOpt = Annotated[
    float, typer.Option("--thermal-timeout", help="Give up waiting for the gate after S seconds.")
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option("--timeout", help="Per-trial timeout in seconds (default 2 * (max-secs + 10) + 30)."),
]
KeepGoingOpt = Annotated[bool, typer.Option("--keep-going", help="Carry on past failed trials.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Run even if the phone does not match the profile.")]
ModelsDirOpt = Annotated[Path, typer.Option("--models-dir", help="Where built models are cached.")]


def run_config(
    *,
    trials: int,
    num_runs: int,
    warmup_runs: int,
    min_secs: float,
    max_secs: float,
    xnnpack: bool | None,
    op_profile: bool,
    cooldown: float,
    thermal_gate: float | None,
    thermal_timeout: float,
    timeout: float | None,
    keep_going: bool,
    force: bool,
    resume: bool = False,
    reuse: bool = False,
) -> RunConfig:
    """The RunConfig for the shared options (RunConfig raises UsageError for bad values)."""
    return RunConfig(
        trials=trials, warmup_runs=warmup_runs, num_runs=num_runs, min_secs=min_secs, max_secs=max_secs,
        use_xnnpack=xnnpack, op_profiling=op_profile, cooldown_s=cooldown, thermal_gate_c=thermal_gate,
        thermal_timeout_s=thermal_timeout, timeout_s=timeout, resume=resume, reuse=reuse,
        keep_going=keep_going, force=force,
    )


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


SessionRunner = Callable[..., SessionResult]


def measure(run_session: SessionRunner, profile: Any, variants: Sequence[Any], config: RunConfig, store: ResultStore,
            *, adb: str | None, serial: str | None, models_dir: Path, command_line: str,
            interrupted_hint: str) -> SessionResult:
    """Run a session with the progress display on stderr, then print where the time went.

    `run_session` is passed in (not imported here) so each command's tests can replace it.
    Ctrl-C prints `interrupted_hint` (finished trials are already stored) and exits 130.
    """
    kwargs = {"adb": adb, "serial": serial, "models_dir": models_dir, "command_line": command_line}
    try:
        if plain_output():
            result = run_session(profile, list(variants), config, store, progress=PlainProgress(), **kwargs)
        else:
            columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}")]
            with Progress(*columns, console=stderr, transient=True) as bar:
                result = run_session(profile, list(variants), config, store, progress=RichProgress(bar), **kwargs)
    except KeyboardInterrupt:
        stderr.print(f"interrupted: {interrupted_hint}", highlight=False)
        raise typer.Exit(130) from None
    stderr.print(result.timings.summary(), highlight=False, soft_wrap=True)
    return result
