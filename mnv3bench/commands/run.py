"""`mnv3bench run` (measure variants on a device) and `mnv3bench compare` (two stored variants)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from mnv3bench.bench import stats
from mnv3bench.bench.runner import SessionResult, run_session
from mnv3bench.bench.supported import supported_ci, supported_cv
from mnv3bench.cliapp import (
    AllSessionsOpt,
    DbOpt,
    JsonOpt,
    SessionOpt,
    app,
    print_json,
    stderr,
    stdout,
    suggest,
)
from mnv3bench.commands.measure_options import (
    DevicesOpt,
    Measurement,
    command_line,
    fleet_failure,
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
    table.caption = f"times in ms (per trial: mean of runs); CI: {stats.CI_METHOD}"
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
    devices: DevicesOpt,
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
    profiles = [load_profile(device) for device in devices]
    if len(profiles) > 1:
        _run_on_several(profiles, parsed, measurement, json_output)
        return
    # Ctrl-C: every finished trial is already committed; the measure path says so and exits 130.
    result = measurement.run(run_session, profiles[0], parsed, command_line=command_line("mnv3bench run"))
    _report(result, json_output)
    _print_op_types(result, measurement, json_output)


def _print_op_types(result: SessionResult, measurement: Measurement, json_output: bool) -> None:
    if measurement.options.get("op_profiling") and not json_output:
        from mnv3bench.commands.profile import print_op_types

        print_op_types(measurement.db_path, result.session_id, [v.variant for v in result.variants])


def _run_on_several(profiles: list[Any], variants: list[Any], measurement: Measurement, json_output: bool) -> None:
    """`run --device A --device B ...`: the same variants on each phone at once (bench/fleet.py)."""
    fleet = measurement.run_fleet(run_session, profiles, variants, command_line=command_line("mnv3bench run"))
    if json_output:  # the documented list per variant, each entry naming its device
        print_json([entry for result in fleet.results for entry in result.to_json()])
    empty: list[str] = []
    for result in fleet.results:
        if not json_output:
            _report_tables(result)
            _print_op_types(result, measurement, json_output)
        empty += [f"{v.variant} on {result.device_profile}" for v in result.variants if v.summary is None]
    failure = fleet_failure(fleet, "run the same command again with --resume to measure only the rest.",
                            measurement.resume_command(command_line("mnv3bench run")))
    if failure is not None:
        raise failure
    if empty:
        raise MnvError(f"No successful trial for {', '.join(empty)}.",
                       "Look at the stored raw output (mnv3bench keeps it per trial) and `mnv3bench doctor`.")


def _report_tables(result: SessionResult) -> None:
    stdout.print(_result_table(result))
    for v in result.variants:
        for w in v.warnings:
            stderr.print(f"[yellow]warning[/] {v.variant}: {w.message} {w.advice}", highlight=False)


def _report(result: SessionResult, json_output: bool) -> None:
    if json_output:
        print_json(result.to_json())
    else:
        _report_tables(result)
    empty = [v.variant for v in result.variants if v.summary is None]
    if empty:
        raise MnvError(f"No successful trial for {', '.join(empty)}.",
                       "Look at the stored raw output (mnv3bench keeps it per trial) and `mnv3bench doctor`.")


@app.command("compare")
def compare_command(
    variant_a: Annotated[str, typer.Argument(metavar="A", help="Variant name.")],
    variant_b: Annotated[str, typer.Argument(metavar="B", help="Variant name.")],
    devices: Annotated[list[str], typer.Option("--device", "-d", metavar="NAME", show_default=False,
                                               help="Device profile name; repeat it to compare on each of "
                                               "several phones.")],
    db: DbOpt = None,
    json_output: JsonOpt = False,
    blocks: Annotated[bool, typer.Option("--blocks", help="Also compare block by block (stored op profiles).")] = False,
    session: SessionOpt = None,
    all_sessions: AllSessionsOpt = False,
) -> None:
    """Do two stored variants differ? Paired within-round ratios (else ratio of medians) with a CI and a test."""
    from mnv3bench.variants import parse_variant

    a, b = parse_variant(variant_a).name, parse_variant(variant_b).name
    path = resolve_db_path(db)
    if not path.exists():
        measure = suggest(f"mnv3bench run --device {devices[0]} {a} {b}", db=db)
        raise UsageError(f"No results database at {path}.", f"Measure first (`{measure}`), or pass --db.")
    found = [_compare_on(device, a, b, path, db, blocks=blocks, json_output=json_output, session=session,
                         all_sessions=all_sessions) for device in devices]
    if json_output:  # one phone: the object as always; several: one per phone, in order
        print_json(found[0] if len(found) == 1 else found)


def _compare_on(device: str, a: str, b: str, path: Any, db: str | None, *, blocks: bool,
                json_output: bool, session: int | None, all_sessions: bool) -> dict[str, Any] | None:
    """One phone's comparison: printed, or returned as its JSON object."""
    from mnv3bench.selection import choose

    measure = suggest(f"mnv3bench run --device {device} {a} {b}", db=db)
    with ResultStore(path, read_only=True) as store:
        chosen = choose(store.measured_trials(device=device, variants=[a, b]), [a, b], session=session,
                        all_sessions=all_sessions)
    trials_a, trials_b = (chosen.trials[chosen.trials["variant"] == v] for v in (a, b))
    _check_compared(chosen, a, b, device, path, measure, session)
    if trials_a["flags"].iloc[-1] != trials_b["flags"].iloc[-1]:
        raise MnvError(f"No successful trials of {b} on {device} with the same benchmark flags as {a}.",
                       f"Measure both together: `{measure}`.")
    from mnv3bench.bench.paired import compare_trials, round_keys

    comparison = compare_trials(trials_a["latency_ms"].tolist(), round_keys(trials_a),
                                trials_b["latency_ms"].tolist(), round_keys(trials_b))
    warnings = chosen.warnings()
    sentence = stats.describe(comparison, a, b)
    by_block = None
    if blocks:
        from mnv3bench.commands.profile import block_comparison

        by_block = block_comparison(trials_a, trials_b, a, b, device)
    if json_output:
        for text in warnings:
            stderr.print(f"[yellow]warning[/] {text}", highlight=False, soft_wrap=True)
        return {
            "a": a, "b": b, "device": device, "n_a": comparison.n_a, "n_b": comparison.n_b,
            "median_a_ms": float(trials_a["latency_ms"].median()), "median_b_ms": float(trials_b["latency_ms"].median()),
            "ratio": comparison.ratio, "ratio_ci_low": comparison.ratio_ci_low,
            "ratio_ci_high": comparison.ratio_ci_high, "ci_method": comparison.ci_method,
            "test": comparison.test, "p_value": comparison.p_value, "significant": comparison.significant,
            "method": comparison.method, "rounds": comparison.rounds, "precision": comparison.half_width,
            "conclusion": sentence, "session": chosen.session, "sessions": sorted(set(chosen.trials["session_id"].dropna().astype(int))),
            "warnings": warnings,
            **({"by_block": by_block[1]} if by_block else {}),
        }
    table = Table(title=f"{a} vs {b} on {device}, {chosen.label()}")
    for col in ("variant", "trials", "median ms"):
        table.add_column(col, justify="left" if col == "variant" else "right", no_wrap=True)
    table.add_row(a, str(comparison.n_a), f"{trials_a['latency_ms'].median():.3f}")
    table.add_row(b, str(comparison.n_b), f"{trials_b['latency_ms'].median():.3f}")
    stdout.print(table)
    stdout.print(sentence, highlight=False)
    stdout.print(f"({comparison.method}: {comparison.test} test; {comparison.ci_method})", highlight=False)
    if by_block:
        stdout.print(by_block[0])
    for text in warnings:
        stderr.print(f"[yellow]warning[/] {text}", highlight=False, soft_wrap=True)
    return None


def _check_compared(chosen: Any, a: str, b: str, device: str, path: Any, measure: str, session: int | None) -> None:
    """Both sides measured in the chosen session, or an error naming where each one was."""
    variants = chosen.trials["variant"]
    if (variants == a).any() and (variants == b).any():
        return
    where = {v: chosen.measured_by_variant.get(v, []) for v in (a, b)}
    if not where[a] or not where[b]:
        absent = a if not where[a] else b
        raise MnvError(f"No successful trials of {absent} on {device} in {path}.", f"Measure it: `{measure}`.")
    seen = "; ".join(f"{v} in session(s) {', '.join(map(str, s))}" for v, s in where.items())
    if session is not None:
        raise MnvError(f"session {session} did not measure both {a} and {b} on {device} ({seen}).",
                       "Pick a session that measured both with --session, or measure them together: `" + measure + "`.")
    raise MnvError(f"{a} and {b} were never measured together in one session on {device} ({seen}).",
                   f"Measure both together: `{measure}`; or pool the sessions on purpose with --all-sessions "
                   "(not interleaved, so the ratio may measure the sessions' difference).")
