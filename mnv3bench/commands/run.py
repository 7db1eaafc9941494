"""`mnv3bench run` (measure variants on a device) and `mnv3bench compare` (two stored variants)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from mnv3bench.bench import stats
from mnv3bench.bench.runner import RESUME_HINT, RunConfig, SessionResult, run_session
from mnv3bench.cliapp import AdbOpt, DbOpt, DeviceOpt, JsonOpt, SerialOpt, app, plain_output, stderr, stdout
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.results import DEFAULT_DB, ResultStore

_RUN_HELP = """Measure variants on a device: K interleaved trials each, every trial stored.

Builds missing models, pushes each one only when the device lacks those exact bytes, then
runs benchmark_model single-threaded on the profile's big core. Prints the median of the
trial means with a bootstrap 95% CI of the median, CV and warnings with advice.
"""


class _RichProgress:
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


class _PlainProgress:
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


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _result_table(result: SessionResult) -> Table:
    table = Table(title=f"{result.device_profile} ({result.device_serial}), session {result.session_id}",
                  box=box.SIMPLE_HEAD)
    for name in ("variant", "trials", "median", "95% CI", "min", "CV", "warn"):
        table.add_column(name, justify="left" if name == "variant" else "right", no_wrap=True)
    for v in result.variants:
        s = v.summary
        trials = f"{len(v.trial_ids)}" + (f" +{v.failed} failed" if v.failed else "")
        ci = "-" if s is None or s.ci_low is None else f"{s.ci_low:.3f}-{s.ci_high:.3f}"
        # The warnings themselves, with advice, follow the table on stderr.
        notes = str(len(v.warnings)) if v.warnings else ""
        table.add_row(v.variant, trials, _fmt(s and s.median), ci, _fmt(s and s.min),
                      "-" if s is None else f"{s.cv:.1%}", notes)
    table.caption = f"times in ms (trial means); CI: {stats.CI_METHOD}"
    return table


def _parse_variants(names: list[str]) -> list[Any]:
    from mnv3bench.variants import parse_variant

    if not names:
        raise UsageError("No variant given.", "Name one or more with --variant (see `mnv3bench variants`).")
    return [parse_variant(n) for n in names]


@app.command("run", help=_RUN_HELP)
def run_command(
    device: DeviceOpt,
    variant: Annotated[list[str], typer.Option("--variant", "-v", help="Variant name; repeat for several.")],
    trials: Annotated[int, typer.Option(help="Trials per variant (each one benchmark_model run).")] = 5,
    num_runs: Annotated[int, typer.Option("--num-runs", help="benchmark_model --num_runs.")] = 50,
    warmup_runs: Annotated[int, typer.Option("--warmup-runs", help="benchmark_model --warmup_runs.")] = 1,
    min_secs: Annotated[float, typer.Option("--min-secs", help="benchmark_model --min_secs.")] = 1.0,
    max_secs: Annotated[float, typer.Option("--max-secs", help="benchmark_model --max_secs.")] = 150.0,
    xnnpack: Annotated[bool | None, typer.Option("--use-xnnpack/--no-xnnpack",
                                                 help="Force XNNPACK on or off (default: the binary's).")] = None,
    op_profile: Annotated[bool, typer.Option("--op-profile", help="Also record per-op times.")] = False,
    cooldown: Annotated[float, typer.Option(help="Seconds to rest between trials.")] = 0.0,
    thermal_gate: Annotated[float | None, typer.Option("--thermal-gate",
                                                       help="Wait until the CPU is below this many C.")] = None,
    thermal_timeout: Annotated[float, typer.Option("--thermal-timeout",
                                                   help="Give up waiting for the gate after S seconds.")] = 600.0,
    timeout: Annotated[float | None, typer.Option(help="Per-trial timeout in seconds "
                                                  "(default 2 * (max-secs + 10) + 30).")] = None,
    resume: Annotated[bool, typer.Option(help="Measure only trials not stored by the interrupted run.")] = False,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Carry on past failed trials.")] = False,
    force: Annotated[bool, typer.Option(help="Run even if the phone does not match the profile.")] = False,
    models_dir: Annotated[Path, typer.Option("--models-dir", help="Where built models are cached.")] = Path("models"),
    adb: AdbOpt = None,
    serial: SerialOpt = None,
    db: DbOpt = None,
    json_output: JsonOpt = False,
) -> None:
    from mnv3bench.device.profiles import load_profile

    variants = _parse_variants(variant)
    profile = load_profile(device)
    config = RunConfig(
        trials=trials, warmup_runs=warmup_runs, num_runs=num_runs, min_secs=min_secs, max_secs=max_secs,
        use_xnnpack=xnnpack, op_profiling=op_profile, cooldown_s=cooldown, thermal_gate_c=thermal_gate,
        thermal_timeout_s=thermal_timeout, timeout_s=timeout, resume=resume, keep_going=keep_going, force=force,
    )
    command_line = shlex.join(["mnv3bench", *sys.argv[1:]]) if sys.argv else "mnv3bench run"
    try:
        result = _run_with_progress(profile, variants, config, Path(db) if db else DEFAULT_DB, adb, serial,
                                    models_dir, command_line)
    except KeyboardInterrupt:
        # Every finished trial is already committed; say so, and how to finish.
        stderr.print(f"interrupted: {RESUME_HINT}", highlight=False)
        raise typer.Exit(130) from None
    _report(result, json_output)


def _run_with_progress(profile: Any, variants: list[Any], config: RunConfig, db: Path, adb: str | None,
                       serial: str | None, models_dir: Path, command_line: str) -> SessionResult:
    with ResultStore(db) as store:
        if plain_output():
            result = run_session(profile, variants, config, store, adb=adb, serial=serial,
                                 progress=_PlainProgress(), models_dir=models_dir, command_line=command_line)
        else:
            columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}")]
            with Progress(*columns, console=stderr, transient=True) as bar:
                result = run_session(profile, variants, config, store, adb=adb, serial=serial,
                                     progress=_RichProgress(bar), models_dir=models_dir,
                                     command_line=command_line)
    return result


def _report(result: SessionResult, json_output: bool) -> None:
    if json_output:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        stdout.print(_result_table(result))
        for v in result.variants:
            for w in v.warnings:
                stderr.print(f"[yellow]warning[/] {v.variant}: {w.message} {w.advice}", highlight=False)
    empty = [v.variant for v in result.variants if v.summary is None]
    if empty:
        raise MnvError(f"No successful trial for {', '.join(empty)}.",
                       "Look at the stored raw output (mnv3bench keeps it per trial) and `mnv3bench doctor`.")


@app.command("compare")
def compare_command(
    variant_a: Annotated[str, typer.Argument(metavar="A", help="Variant name.")],
    variant_b: Annotated[str, typer.Argument(metavar="B", help="Variant name.")],
    device: DeviceOpt,
    db: DbOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Do two stored variants differ? Ratio of medians with a CI, and a significance test."""
    from mnv3bench.variants import parse_variant

    a, b = parse_variant(variant_a).name, parse_variant(variant_b).name
    path = Path(db) if db else DEFAULT_DB
    if not path.exists():
        raise UsageError(f"No results database at {path}.",
                         f"Measure first: mnv3bench run --device {device} --variant {a} --variant {b}, or pass --db.")
    with ResultStore(path) as store:
        trials_a = store.latest_ok_trials(device=device, variant=a)
        if trials_a.empty:
            raise MnvError(f"No successful trials of {a} on {device} in {path}.",
                           f"Measure it: mnv3bench run --device {device} --variant {a} --variant {b}")
        trials_b = store.latest_ok_trials(device=device, variant=b, flags=trials_a["flags"].iloc[-1])
        if trials_b.empty:
            raise MnvError(f"No successful trials of {b} on {device} with the same benchmark flags as {a}.",
                           f"Measure both together: mnv3bench run --device {device} --variant {a} --variant {b}")
    comparison = stats.compare(trials_a["latency_ms"].tolist(), trials_b["latency_ms"].tolist())
    sentence = stats.describe(comparison, a, b)
    if json_output:
        typer.echo(json.dumps({
            "a": a, "b": b, "device": device, "n_a": comparison.n_a, "n_b": comparison.n_b,
            "median_a_ms": float(trials_a["latency_ms"].median()), "median_b_ms": float(trials_b["latency_ms"].median()),
            "ratio": comparison.ratio, "ratio_ci_low": comparison.ratio_ci_low,
            "ratio_ci_high": comparison.ratio_ci_high, "ci_method": comparison.ci_method,
            "test": comparison.test, "p_value": comparison.p_value, "significant": comparison.significant,
            "conclusion": sentence,
        }, indent=2))
        return
    table = Table(title=f"{a} vs {b} on {device}")
    for col in ("variant", "trials", "median ms"):
        table.add_column(col, justify="left" if col == "variant" else "right", no_wrap=True)
    table.add_row(a, str(comparison.n_a), f"{trials_a['latency_ms'].median():.3f}")
    table.add_row(b, str(comparison.n_b), f"{trials_b['latency_ms'].median():.3f}")
    stdout.print(table)
    stdout.print(sentence, highlight=False)
    stdout.print(f"({comparison.test} test; {comparison.ci_method})", highlight=False)
