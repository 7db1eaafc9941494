"""`mnv3bench profile VARIANT... --device D`: where each variant's time goes, block by block."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from mnv3bench.bench.runner import run_session
from mnv3bench.cliapp import (
    DeviceOpt,
    JsonOpt,
    ReportsDirOpt,
    app,
    print_json,
    stderr,
    stdout,
)
from mnv3bench.commands.measure_options import (
    Measurement,
    command_line,
    measuring_command,
)
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.locations import default_reports_dir
from mnv3bench.results import ResultStore

_HELP = """Profile ops and attribute the time to the network's blocks.

Measures the variants with op profiling on (benchmark_model --enable_op_profiling=true; the
emulator profiles through LiteRT's C API), stores every trial with its op rows, and prints
per block (stem, each bottleneck, last stage, classifier) the ms per run, its share of the
run, its op count, its MAdds and ms per million MAdds, plus the share no block could be
given. With --no-xnnpack the mapping is exact (TFLite node -> tensor -> layer); with XNNPACK
operators are matched in order. Writes a PNG of latency along the network.
"""


def block_table(profile: Any) -> Table:
    attribution = profile.attribution
    total = attribution.total_ms
    table = Table(title=f"{profile.variant} ({profile.trials} trials)", box=box.SIMPLE_HEAD)
    for name in ("block", "ms", "share", "ops", "MAdds (M)", "ms/MMAdd", "parts (ms)"):
        table.add_column(name, justify="left" if name in ("block", "parts (ms)") else "right", no_wrap=True)
    for block in attribution.blocks:
        per = f"{block.ms / (block.madds / 1e6):.4f}" if block.madds else "-"
        parts = ", ".join(f"{k} {v:.3f}" for k, v in block.parts.items()) if len(block.parts) > 1 else ""
        table.add_row(block.name, f"{block.ms:.3f}", f"{block.share(total):.1%}", str(block.ops),
                      f"{block.madds / 1e6:.2f}" if block.madds else "-", per, parts)
    table.add_row("unattributed", f"{attribution.unattributed_ms:.3f}", f"{attribution.unattributed_share:.1%}",
                  "", "", "", "")
    table.caption = f"sum of op times {total:.3f} ms per run" + (
        f"; runtime rows (buffer registration...) {attribution.runtime_ms:.3f} ms, not in the shares"
        if attribution.runtime_ms else "")
    return table


def block_comparison(trials_a: Any, trials_b: Any, a: str, b: str, device: str) -> tuple[Table, dict[str, Any]]:
    """`compare A B --blocks`: each block's ms per run in A and in B, from stored op profiles."""
    from mnv3bench.profile.stored import block_profiles

    profiles = {**block_profiles(trials_a, [a]), **block_profiles(trials_b, [b])}
    missing = [v for v in (a, b) if v not in profiles]
    if missing:
        raise MnvError(f"No op profile stored for {' and '.join(missing)} on {device}.",
                       f"Measure with op profiling: `mnv3bench profile {a} {b} --device {device}`.")
    pa, pb = profiles[a].attribution, profiles[b].attribution
    names = [blk.name for blk in pa.blocks] + [blk.name for blk in pb.blocks if blk.name not in
                                              {x.name for x in pa.blocks}]
    ms_a = {blk.name: blk.ms for blk in pa.blocks}
    ms_b = {blk.name: blk.ms for blk in pb.blocks}
    rows = [{"name": n, "a_ms": ms_a.get(n, 0.0), "b_ms": ms_b.get(n, 0.0),
             "diff_ms": ms_b.get(n, 0.0) - ms_a.get(n, 0.0)} for n in names]
    table = Table(title=f"{a} vs {b} on {device}, block by block (op profile, ms per run)", box=box.SIMPLE_HEAD)
    for col in ("block", "A ms", "B ms", "B - A"):
        table.add_column(col, justify="left" if col == "block" else "right", no_wrap=True)
    for r in rows:
        table.add_row(r["name"], f"{r['a_ms']:.3f}", f"{r['b_ms']:.3f}", f"{r['diff_ms']:+.3f}")
    table.add_row("unattributed", f"{pa.unattributed_ms:.3f}", f"{pb.unattributed_ms:.3f}",
                  f"{pb.unattributed_ms - pa.unattributed_ms:+.3f}")
    table.add_row("op time", f"{pa.total_ms:.3f}", f"{pb.total_ms:.3f}", f"{pb.total_ms - pa.total_ms:+.3f}")
    data = {"blocks": rows, "unattributed_share_a": pa.unattributed_share,
            "unattributed_share_b": pb.unattributed_share, "op_ms_a": pa.total_ms, "op_ms_b": pb.total_ms}
    return table, data


def op_type_table(variant: str, rows: list[dict[str, Any]], top: int = 12) -> Table:
    """The per-op-type times of one variant's op profile (ms per run, share of op time)."""
    from mnv3bench.profile.stored import op_type_totals

    table = Table(title=f"{variant}: time per op type (op profile)", box=box.SIMPLE_HEAD)
    for name in ("op type", "ms", "share"):
        table.add_column(name, justify="left" if name == "op type" else "right", no_wrap=True)
    for node_type, ms, share in op_type_totals(rows)[:top]:
        table.add_row(node_type, f"{ms:.3f}", f"{share:.1%}")
    return table


def print_op_types(db_path: Path, session_id: int, variants: list[str]) -> None:
    """After `run --op-profile`: each variant's op types, from the trials just stored."""
    from mnv3bench.profile.stored import session_op_rows

    with ResultStore(db_path) as store:
        trials = store.trials(session=session_id, ok_only=True)
    for variant, rows in session_op_rows(trials, variants).items():
        stdout.print(op_type_table(variant, rows))


@app.command("profile", help=_HELP)
@measuring_command(without={"op_profiling", "reuse"})
def profile_command(
    variants: Annotated[list[str], typer.Argument(metavar="VARIANT...", help="Variant names.")],
    device: DeviceOpt,
    measurement: Measurement,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG path (default REPORTS_DIR/DEVICE/profile-....png).")] = None,
    json_output: JsonOpt = False,
    reports_dir: ReportsDirOpt = None,
) -> None:
    from mnv3bench.device.profiles import load_profile
    from mnv3bench.profile.plot import plot_blocks
    from mnv3bench.profile.stored import block_profiles
    from mnv3bench.variants import parse_variant

    if not variants:
        raise UsageError("No variant given.", "Name one or more, e.g. `mnv3bench profile large small --device emulator`.")
    parsed = [parse_variant(v) for v in variants]
    names = [v.name for v in parsed]
    device_profile = load_profile(device)
    measurement = dataclasses.replace(measurement, options={**measurement.options, "op_profiling": True})
    result = measurement.run(run_session, device_profile, parsed, command_line=command_line("mnv3bench profile"))
    with ResultStore(measurement.db_path) as store:
        trials = store.trials(session=result.session_id, ok_only=True)
    profiles = block_profiles(trials, names)
    missing = [n for n in names if n not in profiles]
    if missing:
        raise MnvError(f"No op profile for {', '.join(missing)} on {device}: no successful trial printed op tables.",
                       "Look at the stored raw output, and check that the device's benchmark_model supports "
                       "--enable_op_profiling.")
    ordered = [profiles[n] for n in names]
    kernels = {True: "xnnpack", False: "builtin", None: "default"}[measurement.options.get("use_xnnpack")]
    path = plot or (reports_dir or default_reports_dir()) / device / f"profile-{'-vs-'.join(names)}-{kernels}.png"
    plot_blocks(ordered, path, f"latency along the network on {device} ({kernels} kernels)")
    if json_output:
        print_json([{**p.to_json(), "device": device, "kernels": kernels, "session": result.session_id,
                     "plot": str(path)} for p in ordered])
    else:
        for profile in ordered:
            stdout.print(block_table(profile))
    stderr.print(f"wrote the plot to {path}", highlight=False, soft_wrap=True)
