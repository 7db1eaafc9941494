"""`mnv3bench table NAME --device D`: measure a table's variants and render it beside the paper.
`mnv3bench report`: render tables again from the results database, measuring nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from mnv3bench import __version__
from mnv3bench.api import read_sessions, read_trials, selected_table, table_result
from mnv3bench.bench.options import TABLE_MAX_TIME_S, TABLE_PRECISION
from mnv3bench.bench.runner import SessionResult, run_session
from mnv3bench.cliapp import (
    AllSessionsOpt,
    DbOpt,
    JsonOpt,
    ReportsDirOpt,
    SessionOpt,
    app,
    print_json,
    stderr,
    stdout,
    suggest,
)
from mnv3bench.commands.measure_options import (
    Measurement,
    command_line,
    fleet_failure,
    measuring_command,
)
from mnv3bench.commands.paths import is_safe_component, require_safe_component
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.locations import default_reports_dir
from mnv3bench.model.size import AllowHugeOpt, check_sizes
from mnv3bench.results import ResultStore, resolve_db_path
from mnv3bench.tables.definitions import TABLES, TableDef, get_table
from mnv3bench.tables.export.files import LATEST, write_reports
from mnv3bench.tables.export.json import to_json_dict
from mnv3bench.tables.export.side_by_side import to_json_dict as side_json
from mnv3bench.tables.export.side_by_side import to_rich as side_rich
from mnv3bench.tables.export.side_by_side import write_side_by_side
from mnv3bench.tables.export.terminal import to_rich
from mnv3bench.tables.result import TableResult
from mnv3bench.tables.side_by_side import side_by_side

DevicesOptionalOpt = Annotated[
    list[str] | None,
    typer.Option("--device", "-d", metavar="NAME", show_default=False,
                 help="Device profile name (`mnv3bench devices` lists them; e.g. pixel3, emulator). Repeat it to "
                 "measure the table on several phones at once, side by side (see README, \"Several phones\")."),
]
DeviceOptionalOpt = Annotated[
    str | None,
    typer.Option("--device", "-d", help="Device profile name (`mnv3bench devices` lists them; e.g. pixel3, emulator)."),
]


def _emit(results: list[TableResult], *, json_output: bool, reports_dir: Path, single: bool) -> None:
    for result in results:  # all checked before any file is written
        require_safe_component(result.device, "device profile")
        require_safe_component(result.name, "table name")
    written: list[Path] = []
    for result in results:
        written += write_reports(result, reports_dir)
    if json_output:
        print_json(to_json_dict(results[0]) if single else {"tables": [to_json_dict(r) for r in results]})
    else:
        for result in results:
            stdout.print(to_rich(result))
    folders = sorted({str(p.parent) for p in written})
    latest = sorted({str(p.parent.parent / LATEST) for p in written if (p.parent.parent / LATEST / p.name).exists()})
    stderr.print(f"wrote {len(written)} report file(s) to {', '.join(folders)}"
                 + (f" (the newest session's are in {', '.join(latest)})" if latest else ""), highlight=False)


def _list_tables() -> None:
    for defn in TABLES.values():
        stdout.print(f"[bold]{defn.name}[/]\t{defn.title}\n\t{defn.description}\n\tvariants: {', '.join(defn.variants())}", soft_wrap=True)


@app.command(help="Measure a table's variants in one interleaved session and render it beside the paper's numbers.")
@measuring_command(without={"resume", "force_new"})  # a table takes --reuse: a rerun measures only what is missing
def table(
    name: Annotated[str | None, typer.Argument(help=f"Table name: {', '.join(TABLES)}.")] = None,
    devices: DevicesOptionalOpt = None,
    list_tables: Annotated[bool, typer.Option("--list", help="Name and describe every table.")] = False,
    *,
    measurement: Measurement,
    json_output: JsonOpt = False,
    reports_dir: ReportsDirOpt = None,
    allow_huge: AllowHugeOpt = False,
) -> None:
    if list_tables:
        _list_tables()
        return
    if name is None:
        raise UsageError("which table? the tables are: " + ", ".join(TABLES) + ".", "Name one, e.g. `mnv3bench table 5 --device emulator`.")
    defn = get_table(name)
    if not devices:
        raise UsageError("--device is missing.", f"Give the device, e.g. `mnv3bench table {defn.name} --device emulator`.")
    from mnv3bench.device.profiles import load_profile
    from mnv3bench.tables.compute import comparison_pairs
    from mnv3bench.variants import parse_variant

    profiles = [load_profile(device) for device in devices]
    variants = [parse_variant(v) for v in defn.variants()]
    check_sizes(variants, allow_huge=allow_huge)
    command = command_line(f"mnv3bench table {defn.name}")
    reports = reports_dir or default_reports_dir()
    measurement = measurement.with_defaults(precision=TABLE_PRECISION, max_time_s=TABLE_MAX_TIME_S)
    if len(profiles) > 1:
        _table_on_several(defn, profiles, variants, measurement, command, json_output=json_output, reports_dir=reports)
        return
    session = measurement.run(run_session, profiles[0], variants, command_line=command,
                              comparisons=comparison_pairs(defn))
    result = _session_table(defn, session, measurement, command)
    _emit([result], json_output=json_output, reports_dir=reports, single=True)


def _session_table(defn: TableDef, session: SessionResult, measurement: Measurement, command: str) -> TableResult:
    """The table from the trials one session measured or built on (--reuse)."""
    ids = {tid for v in session.variants for tid in v.trial_ids}
    frame = read_trials(measurement.db_path, device=session.device_profile, variants=defn.variants(), ok_only=True)
    result = table_result(defn.name, frame[frame["id"].isin(ids)], session.device_profile,
                          op_profile=measurement.config().op_profiling, sessions=read_sessions(measurement.db_path))
    result.notes.append(f"Session {session.timings.summary()}.")
    result.warnings = {v.variant: [str(w) for w in v.warnings] for v in session.variants if v.warnings}
    result.extra.update(
        session_id=session.session_id,
        command=command,
        tool_version=__version__,
        reused_trials={v.variant: v.reused for v in session.variants},
        timings=session.timings.to_json(),
        seed=session.seed,
    )
    if session.precision is not None:
        result.set_precision_target(session.precision.target, session.precision.stopped)
    return result


def _table_on_several(defn: TableDef, profiles: list[Any], variants: list[Any], measurement: Measurement,
                      command: str, *, json_output: bool, reports_dir: Path) -> None:
    """`table N --device A --device B ...`: each phone measured at once (bench/fleet.py), its own
    reports written as a single-phone table writes them, and the phones side by side."""
    names = [p.name for p in profiles]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--device {twice[0]} is given twice: a table has one column per profile.",
                         "Give each profile once (run measures two phones of one profile: `mnv3bench run`).")
    from mnv3bench.tables.compute import comparison_pairs

    fleet = measurement.run_fleet(run_session, profiles, variants, command_line=command,
                                  comparisons=comparison_pairs(defn))
    results = [_session_table(defn, session, measurement, command) for session in fleet.results]
    if results:
        for result in results:
            require_safe_component(result.device, "device profile")
        written = [path for result in results for path in write_reports(result, reports_dir)]
        side = side_by_side(results)
        written += write_side_by_side(side, reports_dir, {"command": command, "tool_version": __version__})
        if json_output:
            print_json({"tables": [to_json_dict(r) for r in results], "side_by_side": side_json(side)})
        else:
            stdout.print(side_rich(side))
        folders = sorted({str(p.parent) for p in written})
        stderr.print(f"wrote {len(written)} report file(s) to {', '.join(folders)}", highlight=False)
    failure = fleet_failure(fleet, "run the same command again with --reuse to measure only what is missing.",
                            measurement.resume_command(command))
    if failure is not None:
        raise failure


@app.command(help="Render tables again from the results database, one session each (--session N, --all-sessions); measures nothing.")
def report(
    device: DeviceOptionalOpt = None,
    table_name: Annotated[str | None, typer.Option("--table", help=f"Only this table ({', '.join(TABLES)}).")] = None,
    op_profile: Annotated[bool, typer.Option("--op-profile", help="Include the per-op-type breakdown.")] = False,
    db: DbOpt = None,
    json_output: JsonOpt = False,
    reports_dir: ReportsDirOpt = None,
    session: SessionOpt = None,
    all_sessions: AllSessionsOpt = False,
) -> None:
    defns = [get_table(table_name)] if table_name else list(TABLES.values())
    db_path = resolve_db_path(db)
    if not db_path.exists():
        raise MnvError(
            f"no results database at {db_path}.",
            f"Measure first (`{suggest('mnv3bench table 5 --device emulator', db=db)}`), or point --db at the database.",
        )
    with ResultStore(db_path, read_only=True) as store:
        measured = store.measured_trials(device=device)
        sessions = store.sessions()
    devices = [device] if device else sorted(measured["device_profile"].unique())
    # A shared database may hold any text as a device name; it becomes a folder under reports/.
    unsafe = [d for d in devices if not is_safe_component(d)]
    for dev in unsafe:
        stderr.print(f"[yellow]skipped the trials of device {escape(repr(dev))}: not a safe folder name for its reports[/]",
                     highlight=False, markup=True, soft_wrap=True)
    devices = [d for d in devices if is_safe_component(d)]
    results: list[TableResult] = []
    for dev in devices:
        for defn in defns:
            on_device = measured[measured["device_profile"] == dev]
            result = selected_table(defn.name, on_device, dev, op_profile=op_profile, session=session,
                                    all_sessions=all_sessions, sessions=sessions)
            if result.n_trials() == 0 and not table_name:
                continue  # a table never measured on this device (or in that session): not worth a page of dashes
            result.extra.update(command="mnv3bench report", tool_version=__version__,
                                source=_source(result))
            results.append(result)
    if not results or all(r.n_trials() == 0 for r in results):
        where = (f" on {device}" if device else "") + (f" in session {session}" if session else "")
        measure_again = f"mnv3bench table {table_name or '5'} --device {device or 'emulator'}"
        raise MnvError(
            f"no stored trials for {'table ' + table_name if table_name else 'any table'}{where} in {db_path}.",
            f"Measure them: `{suggest(measure_again, db=db)}`.",
        )
    for result in results:
        if result.missing:
            stderr.print(
                f"[yellow]table {result.name} on {result.device}: no trials of {', '.join(result.missing)}[/]",
                highlight=False,
            )
    _emit(results, json_output=json_output, reports_dir=reports_dir or default_reports_dir(), single=len(results) == 1)


def _source(result: TableResult) -> str:
    if result.extra.get("session_id") is not None:
        return (f"session {result.extra['session_id']}, with the stored trials it built on (--resume, --reuse): "
                "the session that measured most of the table's variants, or the one --session named")
    return "every session's trials of the same model, flags and device build, pooled (--all-sessions)"
