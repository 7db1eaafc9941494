"""The Python API, for notebooks and scripts: build, run, make a table, read results.

    import mnv3bench
    mnv3bench.build_models(["small-hswish-fused-r96"])          # -> [ModelArtifact]
    session = mnv3bench.run("emulator", ["small-hswish-fused-r96"], {"trials": 3})
    fleet = mnv3bench.run_phones(["pixel3", "pixel7"], ["small-hswish-fused-r96"])  # -> FleetResult
    mnv3bench.make_table("5", "emulator")                       # -> TableResult
    mnv3bench.read_trials()                                     # -> pandas DataFrame

The CLI commands are a layer over these functions (options, progress display, rendering).
Importing this module imports nothing heavy: TensorFlow, pandas and the device stack are
imported inside the functions that need them, so `import mnv3bench` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mnv3bench.bench.fleet import FleetResult, Phone
    from mnv3bench.bench.options import RunConfig
    from mnv3bench.bench.runner import Progress, SessionResult
    from mnv3bench.model.builds import ProgressCallback
    from mnv3bench.model.cache import ModelArtifact
    from mnv3bench.tables.result import TableResult

__all__ = ["build_models", "make_table", "read_sessions", "read_trials", "run", "run_phones", "selected_table",
           "table_result"]


def build_models(variants: Iterable[str], *, models_dir: Path | str | None = None, force: bool = False,
                 weights: Path | str | None = None, jobs: int = 2, allow_huge: bool = False,
                 progress: ProgressCallback | None = None) -> list[ModelArtifact]:
    """Build, convert and verify each variant into the model cache: one artifact per name, in
    order (a cached model is returned without importing TensorFlow). Every name is checked
    before anything is built; `progress(name, state, detail)` hears each model's state.
    `models_dir` defaults to the CLI's models folder (mnv3bench/locations.py), not the current folder."""
    from mnv3bench.model.builds import ensure_models
    from mnv3bench.model.size import check_sizes
    from mnv3bench.variants import parse_variant

    parsed = [parse_variant(name) for name in variants]
    check_sizes(parsed, allow_huge=allow_huge)
    return ensure_models(parsed, models_dir=_models_dir(models_dir), force=force, weights=weights, jobs=jobs,
                         progress=progress)


def run(device: str, variants: Iterable[str], options: RunConfig | Mapping[str, Any] | None = None, *,
        db: Path | str | None = None, adb: str | None = None, serial: str | None = None,
        adb_server: str | None = None, direct: bool = False, models_dir: Path | str | None = None,
        progress: Progress | None = None, allow_huge: bool = False) -> SessionResult:
    """Measure the variants on a device profile ("emulator", "pixel3", ...) in one interleaved
    session, every trial stored in the results database (`db`; None: the CLI's default database,
    with models from the CLI's default models folder unless `models_dir` names one; see
    mnv3bench/locations.py).

    `options` are the benchmark options, as a RunConfig or a dict of its fields (`trials`,
    `num_runs`, `resume`, ...; `mnv3bench run --help` lists them). The device is reached as the
    CLI reaches it: `adb`, `serial`, `adb_server`, `direct` are its --adb, --serial, ... options.
    Returns the session: its id and, per variant, the summary statistics and the trial ids."""
    from mnv3bench.bench.runner import run_session
    from mnv3bench.device.profiles import load_profile
    from mnv3bench.model.size import check_sizes
    from mnv3bench.results import ResultStore, resolve_db_path
    from mnv3bench.variants import parse_variant

    profile = load_profile(device)
    parsed = [parse_variant(name) for name in variants]
    check_sizes(parsed, allow_huge=allow_huge)
    with ResultStore(resolve_db_path(None if db is None else str(db))) as store:
        return run_session(profile, parsed, _run_config(options), store, adb=adb, serial=serial, progress=progress,
                           models_dir=_models_dir(models_dir), command_line="mnv3bench.run (Python API)",
                           device_options=_route_options(adb_server, direct))


def run_phones(devices: Iterable[str], variants: Iterable[str], options: RunConfig | Mapping[str, Any] | None = None,
               *, serials: Iterable[str] = (), db: Path | str | None = None, adb: str | None = None,
               adb_server: str | None = None, direct: bool = False, models_dir: Path | str | None = None,
               progress_for: Callable[[Phone], Progress] | None = None, allow_huge: bool = False) -> FleetResult:
    """`run` on several phones at once, one session each in the same database, as `mnv3bench run
    --device A --device B` does: the models are built once; each profile finds its phone on the
    adb server by codename, or takes the serial in the same place in `serials`. A phone whose
    session fails does not stop the others: see the result's `.results` and `.failed` (each
    failed phone's `.error`). `progress_for(phone)` gives each phone's Progress (default none)."""
    from mnv3bench.bench.fleet import resolve_phones, run_fleet
    from mnv3bench.bench.runner import NullProgress, run_session
    from mnv3bench.device.profiles import load_profile
    from mnv3bench.model.builds import ensure_models
    from mnv3bench.model.size import check_sizes
    from mnv3bench.results import ResultStore, resolve_db_path
    from mnv3bench.variants import parse_variant

    profiles = [load_profile(device) for device in devices]
    parsed = [parse_variant(name) for name in variants]
    check_sizes(parsed, allow_huge=allow_huge)
    config = _run_config(options)
    phones = resolve_phones(profiles, list(serials), adb=adb, adb_server=adb_server, direct=direct)
    folder = _models_dir(models_dir)
    artifacts = ensure_models(parsed, models_dir=folder)
    db_path = resolve_db_path(None if db is None else str(db))
    with ResultStore(db_path):  # made (or migrated) here, once, before the phones' threads open it
        pass
    return run_fleet(phones, parsed, config, db_path, run_session,
                     progress_for=progress_for or (lambda _phone: NullProgress()), models_dir=folder,
                     artifacts=artifacts, adb=adb, command_line="mnv3bench.run_phones (Python API)",
                     device_options=_route_options(adb_server, direct))


def table_result(name: str, trials: pd.DataFrame, device: str, *, op_profile: bool = False,
                 sessions: pd.DataFrame | None = None) -> TableResult:
    """Table `name` computed from these stored trials of `device` (a profile name; a device
    whose profile file is gone gets ratios only), beside the paper's numbers. With `sessions`
    (read_sessions()), its notes say which sessions ran on the emulator and on a busy host."""
    from mnv3bench.errors import MnvError
    from mnv3bench.flops import count
    from mnv3bench.tables.compute import (
        compute_table,  # pandas: only when a table is computed
    )
    from mnv3bench.tables.definitions import get_table
    from mnv3bench.variants import parse_variant

    defn = get_table(name)
    try:
        from mnv3bench.device.profiles import load_profile

        profile = load_profile(device)
    except MnvError:
        profile = None
    result = compute_table(
        defn, trials, device=device,
        device_column=getattr(profile, "paper_column", "") or "",
        device_is_paper_phone=profile is not None and not profile.emulated,
        counter=(lambda variant: count(parse_variant(variant))) if defn.counts_madds else None,
        op_profile=op_profile,
    )
    if sessions is not None:
        from mnv3bench.host import host_notes

        result.notes += host_notes(sessions, result.sessions)
    return result


def make_table(name: str, device: str, *, db: Path | str | None = None, op_profile: bool = False,
               session: int | None = None, all_sessions: bool = False) -> TableResult:
    """Table `name` ("3", "4", "5", ...) on `device` from the results database, measuring
    nothing, as `mnv3bench report` renders it: one session's trials (with the stored trials
    it built on), by default the session that measured most of the table's variants, the
    newest among equals; `session=N` reads that one, `all_sessions=True` pools them (see
    mnv3bench/selection.py). Sessions left out or pooled are named in `.warnings["sessions"]`,
    each variant's statistical warnings under its name, host notes in `.notes`; variants never
    measured there are listed in `.missing`."""
    from mnv3bench.results import ResultStore
    from mnv3bench.tables.definitions import get_table

    defn = get_table(name)
    with ResultStore(_existing_db(db), read_only=True) as store:
        measured = store.measured_trials(device=device, variants=defn.variants())
        sessions = store.sessions()
    return selected_table(defn.name, measured, device, op_profile=op_profile, session=session,
                          all_sessions=all_sessions, sessions=sessions)


def selected_table(name: str, measured: pd.DataFrame, device: str, *, op_profile: bool = False,
                   session: int | None = None, all_sessions: bool = False,
                   sessions: pd.DataFrame | None = None) -> TableResult:
    """Table `name` from ResultStore.measured_trials: the session selection.choose picks, its
    warnings in `.warnings["sessions"]`, the session in `.extra["session_id"]` (None when pooled),
    and the warnings `run` gives (bench/stats.diagnose) from each cell's stored trials under the
    variant's name; host notes when `sessions` (ResultStore.sessions()) is given."""
    from mnv3bench.bench.stats import diagnose
    from mnv3bench.selection import WARNING_KEY, choose
    from mnv3bench.tables.definitions import get_table

    chosen = choose(measured, get_table(name).variants(), session=session, all_sessions=all_sessions)
    result = table_result(name, chosen.trials, device, op_profile=op_profile, sessions=sessions)
    if chosen.warnings():
        result.warnings[WARNING_KEY] = chosen.warnings()
    for variant, cell in result.cells.items():
        found = [str(w) for w in diagnose(cell.latencies_ms)]
        if found:
            result.warnings[variant] = found
    result.extra.update(session_id=chosen.session, pooled_sessions=chosen.pooled_sessions or None)
    return result


def read_trials(db: Path | str | None = None, *, device: str | None = None, variants: Iterable[str] | None = None,
                ok_only: bool = False, newest: bool = False) -> pd.DataFrame:
    """Every stored trial as a DataFrame, oldest first (columns in docs/CONTRACTS.md).
    `newest=True`: only the ok trials of each variant's newest session and those it built on."""
    from mnv3bench.results import ResultStore

    chosen = None if variants is None else list(variants)
    with ResultStore(_existing_db(db), read_only=True) as store:
        if newest:
            return store.measurement_trials(device=device, variants=chosen)
        return store.trials(device=device, variants=chosen, ok_only=ok_only)


def read_sessions(db: Path | str | None = None) -> pd.DataFrame:
    """Every stored session (command, device, flags, device_info JSON, ...) as a DataFrame."""
    from mnv3bench.results import ResultStore

    with ResultStore(_existing_db(db), read_only=True) as store:
        return store.sessions()


def _run_config(options: RunConfig | Mapping[str, Any] | None) -> RunConfig:
    from mnv3bench.bench.options import RunConfig

    return options if isinstance(options, RunConfig) else RunConfig(**dict(options or {}))


def _route_options(adb_server: str | None, direct: bool) -> dict[str, Any] | None:
    """The device options of the routes asked for (None: the default route)."""
    routes = {k: v for k, v in (("adb_server", adb_server), ("direct", direct)) if v}
    return routes or None


def _models_dir(models_dir: Path | str | None) -> Path:
    from mnv3bench.locations import default_models_dir

    return default_models_dir() if models_dir is None else Path(models_dir)


def _existing_db(db: Path | str | None) -> Path:
    from mnv3bench.errors import MnvError
    from mnv3bench.results import resolve_db_path

    path = resolve_db_path(None if db is None else str(db))
    if not path.exists():
        raise MnvError(f"no results database at {path}.",
                       "Measure first (`mnv3bench table 5 --device emulator`, or mnv3bench.run(...)), "
                       "or point db at the database.")
    return path
