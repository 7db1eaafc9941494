"""`mnv3bench parse FILE [--json]`: read the numbers out of a saved benchmark_model output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO

import typer
from rich.table import Table

from mnv3bench.bench.parser import BenchmarkOutput, parse_benchmark_output
from mnv3bench.cliapp import JsonOpt, app, print_json, stderr, stdout
from mnv3bench.errors import UsageError

_READ_HINT = (
    "Pass the path of a saved benchmark_model output (e.g. `adb shell taskset 10 "
    "/data/local/tmp/benchmark_model --graph=... > out.txt 2>&1`), or `-` to read stdin."
)

# (label, field, unit) rows of the human-readable table, in reading order.
_ROWS = [
    ("graph", "graph", ""),
    ("threads", "num_threads", ""),
    ("init", "init_us", "us"),
    ("first inference", "first_inference_us", "us"),
    ("warmup avg", "warmup_avg_us", "us"),
    ("inference avg", "inference_avg_us", "us"),
    ("inference median", "inference_median_us", "us"),
    ("inference min", "inference_min_us", "us"),
    ("inference max", "inference_max_us", "us"),
    ("inference std", "inference_std_us", "us"),
    ("runs", "inference_count", ""),
    ("memory init", "memory_init_mb", "MB"),
    ("memory overall", "memory_overall_mb", "MB"),
    ("peak memory", "peak_memory_mb", "MB"),
]


_HELP = (
    "Parse a saved benchmark_model output and print its numbers.\n\n"
    "Reads every output format from TFLite 1.12 to LiteRT (INFO:/logcat prefixes, old and new "
    "summary lines, op-profiling tables). Exits with status 1 when the output shows a failed run "
    "or has no inference latency (the result is still printed); 2 when FILE cannot be read."
)


@app.command("parse", help=_HELP)
def parse_command(
    file: Annotated[str, typer.Argument(help="A saved benchmark_model output; `-` reads stdin.", metavar="FILE")],
    json_output: JsonOpt = False,
) -> None:
    """Parse a saved benchmark_model output and print its numbers (exit 1 on a failed run)."""
    result = parse_benchmark_output(_read(file))
    if json_output:
        print_json(parse_json(result))
    else:
        _render(result, file)
    if result.error:
        stderr.print(f"[bold red]failed run:[/] {result.error_message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


# Beyond the stored fields (JSON_KEYS, in that order): what the human view also shows.
EXTRA_JSON_KEYS = ("error_message", "op_profile_by_type")


def parse_json(result: BenchmarkOutput) -> dict[str, Any]:
    """JSON_KEYS, then EXTRA_JSON_KEYS; each op_profile_top row also has its node's "name" when
    the output gives one."""
    data = result.to_json()
    if result.op_profile_top_names:
        data["op_profile_top"] = [{**row, "name": name}
                                  for row, name in zip(data["op_profile_top"], result.op_profile_top_names)]
    data["error_message"] = result.error_message
    data["op_profile_by_type"] = [dict(row) for row in result.op_profile_by_type or []]
    return data


# A benchmark_model output is kilobytes (a megabyte with op profiling): anything near this
# is not one, and reading it whole could exhaust memory (`parse /dev/zero`).
MAX_INPUT_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
# Stray bytes are normal in phone captures; a block that is mostly NUL bytes is not text.
_MAX_NUL_SHARE = 0.1


def _read(file: str) -> str:
    if file == "-":
        # A text stream without bytes underneath (a replaced sys.stdin) is read as text.
        return _read_bounded(getattr(sys.stdin, "buffer", sys.stdin), "stdin")
    path = Path(file)
    try:
        with path.open("rb") as stream:
            return _read_bounded(stream, file)
    except FileNotFoundError:
        raise UsageError(f"no such file: {file}", _READ_HINT) from None
    except IsADirectoryError:
        raise UsageError(f"{file} is a directory, not a benchmark_model output", _READ_HINT) from None
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}", _READ_HINT) from None


def _read_bounded(stream: BinaryIO | TextIO, name: str) -> str:
    """The text of `stream`, read a chunk at a time and never more than MAX_INPUT_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(_CHUNK)
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "surrogateescape")
        if not chunk:
            break
        if chunk.count(0) > _MAX_NUL_SHARE * len(chunk):
            raise UsageError(f"{name} is binary data (mostly NUL bytes), not a benchmark_model output", _READ_HINT)
        size += len(chunk)
        if size > MAX_INPUT_BYTES:
            raise UsageError(f"{name} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB; a benchmark_model output "
                             "is kilobytes", _READ_HINT)
        chunks.append(chunk)
    # Captures from a phone may hold stray bytes; never refuse a file for its encoding.
    return b"".join(chunks).decode("utf-8", errors="replace")


def _format(value: object, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value} {unit}".rstrip()


def _render(result: BenchmarkOutput, source: str) -> None:
    title = "stdin" if source == "-" else source
    table = Table(title=f"benchmark_model output: {title}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", justify="right")
    status = f"[red]failed: {result.error_message}[/]" if result.error else "[green]ok[/]"
    table.add_row("status", status)
    for label, name, unit in _ROWS:
        table.add_row(label, _format(getattr(result, name), unit))
    stdout.print(table)

    if result.op_profile_top:
        names = result.op_profile_top_names or [""] * len(result.op_profile_top)
        ops = Table(title="slowest ops (regular runs)")
        ops.add_column("node type")
        ops.add_column("avg ms", justify="right")
        ops.add_column("%", justify="right")
        ops.add_column("name", overflow="fold")
        for row, name in zip(result.op_profile_top, names):
            ops.add_row(str(row["node_type"]), f"{row['avg_ms']:.3f}", f"{row['percent']:.2f}", name)
        stdout.print(ops)
    if result.op_profile_by_type:
        by_type = Table(title="summary by node type (regular runs)")
        for column in ("node type", "avg ms", "%", "times called"):
            by_type.add_column(column, justify="left" if column == "node type" else "right")
        for row in result.op_profile_by_type:
            by_type.add_row(str(row["node_type"]), f"{row['avg_ms']:.3f}", f"{row['percent']:.2f}",
                            _format(row.get("times_called"), ""))
        stdout.print(by_type)
