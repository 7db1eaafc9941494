"""`mnv3bench run` (measure variants on a device) and `mnv3bench compare` (two stored variants)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from mnv3bench.bench import stats
from mnv3bench.bench.runner import RESUME_HINT, SessionResult, run_session
from mnv3bench.bench.supported import supported_ci, supported_cv
from mnv3bench.cliapp import (
    DbOpt,
    DeviceOpt,
    JsonOpt,
    app,
    print_json,
    stderr,
    stdout,
    suggest,
)
from mnv3bench.commands.measure_options import (
    Measurement,
    command_line,
    measuring_command,
)
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.model.size import AllowHugeOpt, check_sizes
from mnv3bench.results import ResultStore, resolve_db_path

_RUN_HELP = """Measure variants on a device: K interleaved trials each, every trial stored.

Builds missing models, pushes each one only when the device lacks those exact bytes, then
runs benchmark_model single-threaded on the profile's big core. Prints the median of the
trial means with a bootstrap 95% CI of the median, CV and warnings with advice.
"""


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
        # The warnings themselves, with advice, follow the table on stderr.
        notes = str(len(v.warnings)) if v.warnings else ""
        table.add_row(v.variant, trials, _fmt(s and s.median), _ci_text(s), _fmt(s and s.min), _cv_text(s), notes)
    table.caption = f"times in ms (per trial: median of runs, else mean); CI: {stats.CI_METHOD}"
    return table


def _ci_text(summary: Any) -> str:
    if summary is None:
        return "-"
    ci = supported_ci(summary)
    return f"— ({ci.reason})" if ci.value is None else f"{ci.value[0]:.3f}-{ci.value[1]:.3f}"


def _cv_text(summary: Any) -> str:
    if summary is None:
        return "-"
    cv = supported_cv(summary)
    return f"— ({cv.reason})" if cv.value is None else f"{cv.value:.1%}"


def _parse_variants(names: list[str]) -> list[Any]:
    from mnv3bench.variants import parse_variant

    if not names:
        raise UsageError("No variant given.", "Name one or more as arguments or with --variant, e.g. `mnv3bench run "
                         "--device emulator large-hswish-fused large-hswish-naive` (see `mnv3bench variants`).")
    return [parse_variant(n) for n in names]


@app.command("run", help=_RUN_HELP)
@measuring_command(without={"reuse"})  # run takes --resume; `table` takes --reuse
def run_command(
    device: DeviceOpt,
    variants: Annotated[list[str] | None, typer.Argument(help="Variant names, as `build` and `compare` take them.",
                                                         metavar="[VARIANT]...", show_default=False)] = None,
    variant: Annotated[list[str] | None, typer.Option("--variant", help="A variant name (repeat for several); "
                                                      "the same as giving it as an argument.", show_default=False,
                                                      metavar="NAME")] = None,
    *,
    measurement: Measurement,
    json_output: JsonOpt = False,
    allow_huge: AllowHugeOpt = False,
) -> None:
    from mnv3bench.device.profiles import load_profile

    parsed = _parse_variants([*(variants or []), *(variant or [])])
    check_sizes(parsed, allow_huge=allow_huge)
    profile = load_profile(device)
    # Ctrl-C: every finished trial is already committed; the measure path says so and exits 130.
    result = measurement.run(run_session, profile, parsed, command_line=command_line("mnv3bench run"),
                             interrupted_hint=RESUME_HINT)
    _report(result, json_output)
    if measurement.options.get("op_profiling") and not json_output:
        from mnv3bench.commands.profile import print_op_types

        print_op_types(measurement.db_path, result.session_id, [v.variant for v in result.variants])


def _report(result: SessionResult, json_output: bool) -> None:
    if json_output:
        print_json(result.to_json())
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
    blocks: Annotated[bool, typer.Option("--blocks", help="Also compare block by block (stored op profiles).")] = False,
) -> None:
    """Do two stored variants differ? Paired within-round ratios (else ratio of medians) with a CI and a test."""
    from mnv3bench.variants import parse_variant

    a, b = parse_variant(variant_a).name, parse_variant(variant_b).name
    path = resolve_db_path(db)
    measure = suggest(f"mnv3bench run --device {device} {a} {b}", db=db)
    if not path.exists():
        raise UsageError(f"No results database at {path}.", f"Measure first: {measure}, or pass --db.")
    with ResultStore(path, read_only=True) as store:
        trials_a = store.latest_ok_trials(device=device, variant=a)
        if trials_a.empty:
            raise MnvError(f"No successful trials of {a} on {device} in {path}.",
                           f"Measure it: {measure}")
        trials_b = store.latest_ok_trials(device=device, variant=b, flags=trials_a["flags"].iloc[-1])
        if trials_b.empty:
            raise MnvError(f"No successful trials of {b} on {device} with the same benchmark flags as {a}.",
                           f"Measure both together: {measure}")
    from mnv3bench.bench.paired import compare_trials, round_keys

    comparison = compare_trials(trials_a["latency_ms"].tolist(), round_keys(trials_a),
                                trials_b["latency_ms"].tolist(), round_keys(trials_b))
    sentence = stats.describe(comparison, a, b)
    by_block = None
    if blocks:
        from mnv3bench.commands.profile import block_comparison

        by_block = block_comparison(trials_a, trials_b, a, b, device)
    if json_output:
        print_json({
            "a": a, "b": b, "device": device, "n_a": comparison.n_a, "n_b": comparison.n_b,
            "median_a_ms": float(trials_a["latency_ms"].median()), "median_b_ms": float(trials_b["latency_ms"].median()),
            "ratio": comparison.ratio, "ratio_ci_low": comparison.ratio_ci_low,
            "ratio_ci_high": comparison.ratio_ci_high, "ci_method": comparison.ci_method,
            "test": comparison.test, "p_value": comparison.p_value, "significant": comparison.significant,
            "method": comparison.method, "rounds": comparison.rounds, "precision": comparison.half_width,
            "conclusion": sentence,
            **({"by_block": by_block[1]} if by_block else {}),
        })
        return
    table = Table(title=f"{a} vs {b} on {device}")
    for col in ("variant", "trials", "median ms"):
        table.add_column(col, justify="left" if col == "variant" else "right", no_wrap=True)
    table.add_row(a, str(comparison.n_a), f"{trials_a['latency_ms'].median():.3f}")
    table.add_row(b, str(comparison.n_b), f"{trials_b['latency_ms'].median():.3f}")
    stdout.print(table)
    stdout.print(sentence, highlight=False)
    stdout.print(f"({comparison.method}: {comparison.test} test; {comparison.ci_method})", highlight=False)
    if by_block:
        stdout.print(by_block[0])
