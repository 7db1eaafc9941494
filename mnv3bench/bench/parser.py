"""Read the numbers out of TFLite's `benchmark_model` output.

One function, `parse_benchmark_output(text)`, that understands every output format seen from
TFLite 1.12 to LiteRT (real samples, each with its source, are in tests/fixtures/benchmark_outputs):
bare lines, `INFO:`-style prefixes with or without a `[file.h:NN] ` source location, logcat
and absl prefixes, old and new summary lines (also behind whatever prefix a logcat paste left, as the Android benchmark
APK logs it), per-phase stats lines (with or without `first=`, `(all same)`, `count=0`,
p5/median/p95, scientific notation), memory lines, the LiteRT CompiledModel tool's
millisecond "BENCHMARK RESULTS" block, and op-profiling tables (with or without the `[start]`
column or section headers, tab-separated or CSV).

Rules that keep a wrong number out of the results:
- Latency comes from the regular runs' stats line: the stats line that follows the second
  "Running benchmark for ..." marker (the first marker starts the warmup). The op
  profiler's `Timings (microseconds): count=...` line is the sum of op times and is never
  read as latency. Only when no stats line exists does a rounded summary count: the
  `Inference timings in us` line, else the CompiledModel block's milliseconds.
- Any sign of failure (ERROR/FATAL lines, "Benchmarking failed", "Failed to ...", a regular
  phase with count=0) or a missing latency makes the result `error=True` with no latency.
The parser never raises on odd text: the runner keeps the raw text of failed trials.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# How many rows of the regular runs' "Top by Computation Time" table `op_profile_top` keeps.
OP_PROFILE_TOP_ROWS = 3

NO_LATENCY_MESSAGE = ("no inference latency in the output: no regular-runs stats line (count=...), "
                      "no 'Inference timings in us' line and no 'Inference (avg)' line")

# The keys of `mnv3bench parse --json`, in order (the first fields of BenchmarkOutput).
JSON_KEYS = (
    "init_us",
    "first_inference_us",
    "warmup_avg_us",
    "inference_avg_us",
    "inference_count",
    "inference_min_us",
    "inference_max_us",
    "inference_std_us",
    "inference_median_us",
    "memory_init_mb",
    "memory_overall_mb",
    "peak_memory_mb",
    "num_threads",
    "graph",
    "delegate",
    "delegated_nodes",
    "total_nodes",
    "delegate_partitions",
    "op_profile_top",
    "error",
)

Number = int | float


@dataclass
class BenchmarkOutput:
    """What one benchmark_model run printed. Times in microseconds, memory in MB."""

    init_us: Number | None = None
    first_inference_us: Number | None = None
    warmup_avg_us: Number | None = None
    inference_avg_us: Number | None = None
    inference_count: int | None = None
    inference_min_us: Number | None = None
    inference_max_us: Number | None = None
    inference_std_us: Number | None = None
    inference_median_us: Number | None = None
    memory_init_mb: Number | None = None
    memory_overall_mb: Number | None = None
    peak_memory_mb: Number | None = None
    num_threads: int | None = None
    graph: str | None = None
    # "Replacing N out of M node(s) with delegate (NAME) node, yielding K partitions ...":
    # which delegate ran, and how much of the graph it took (None: no delegate line).
    delegate: str | None = None
    delegated_nodes: int | None = None
    total_nodes: int | None = None
    delegate_partitions: int | None = None
    # [{node_type, avg_ms, percent}]: first rows of the regular runs' "Top by Computation Time".
    op_profile_top: list[dict[str, Any]] | None = field(default_factory=list)
    # [{node_type, avg_ms, percent, times_called}]: the regular runs' "Summary by node type".
    op_profile_by_type: list[dict[str, Any]] | None = field(default_factory=list)
    # [{node_type, name, index, first_ms, avg_ms, percent, times_called}]: every row of the
    # regular runs' "Run Order" table, in run order (the input of profile/blocks.py).
    op_profile_rows: list[dict[str, Any]] | None = field(default_factory=list)
    # The [Name] of each op_profile_top row (the node's tensor name), when the table has one.
    op_profile_top_names: list[str] = field(default_factory=list)
    error: bool = False
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `mnv3bench parse --json` object: exactly JSON_KEYS, None where absent."""
        out: dict[str, Any] = {key: getattr(self, key) for key in JSON_KEYS}
        out["op_profile_top"] = [dict(row) for row in self.op_profile_top or []]
        return out


# ---------------------------------------------------------------------------------------
# Lines: strip whatever logger prefix a line carries, remember its severity.

# logcat: optional [year-]date time, optional pid/tid columns (threadtime), then
# "I/tag( pid): ", "I/tag: " (brief) or "I tag  : " (threadtime).
_LOGCAT_PREFIX = re.compile(
    r"^(?:(?:\d{4}-)?\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}(?:\.\d+)?\s+)?"
    r"(?:\d+\s+\d+\s+)?"
    r"(?P<level>[VDIWEF])[/ ]\s*(?P<tag>[\w.\-]+)\s*(?:\(\s*\d+\s*\))?\s*:\s?"
)
# absl / glog: "E0000 00:00:1700000000.123456   1234 file.cc:12] message"
_ABSL_PREFIX = re.compile(r"^(?P<level>[IWEF])\d{4} \d{2}:\d{2}:[\d.]+\s+\d+\s+[^\]\s]+\] ?")
# TFLite's own logger: "INFO: ", "WARN: ", "ERROR: ", "FATAL: ".
_TFLITE_PREFIX = re.compile(r"^(?P<level>INFO|WARN|WARNING|ERROR|FATAL|VERBOSE|DEBUG): ?")
# LiteRT's logger adds the source location: "INFO: [./litert/tools/benchmark_litert_model.h:82] ".
_SOURCE_PREFIX = re.compile(r"^\[[^\]\s]+:\d+\] ?")

_LOGCAT_LEVELS = {"V": "VERBOSE", "D": "DEBUG", "I": "INFO", "W": "WARN", "E": "ERROR", "F": "FATAL"}
# A logcat dump may hold other apps' lines; only these tags are the benchmark's.
_BENCHMARK_TAG_WORDS = ("tflite", "litert", "benchmark")


@dataclass(frozen=True)
class _Line:
    level: str | None  # INFO/WARN/ERROR/FATAL/... or None for a bare line
    text: str  # the message, prefix removed, trailing whitespace removed


def _split_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    for raw in text.splitlines():
        raw = raw.replace("\r", "").rstrip()
        level: str | None = None
        match = _LOGCAT_PREFIX.match(raw)
        if match:
            tag = match["tag"].lower()
            if not any(word in tag for word in _BENCHMARK_TAG_WORDS):
                continue
            level = _LOGCAT_LEVELS[match["level"]]
            raw = raw[match.end() :]
        else:
            match = _ABSL_PREFIX.match(raw)
            if match:
                level = _LOGCAT_LEVELS[match["level"]]
                raw = raw[match.end() :]
        # TFLite's prefix can sit inside a logcat message too.
        match = _TFLITE_PREFIX.match(raw)
        if match:
            level = "WARN" if match["level"] == "WARNING" else match["level"]
            raw = raw[match.end() :]
            match = _SOURCE_PREFIX.match(raw)
            if match:
                raw = raw[match.end() :]
        lines.append(_Line(level, raw.rstrip()))
    return lines


# ---------------------------------------------------------------------------------------
# Numbers

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(_NUM)


def _number(token: str | None) -> Number | None:
    """int for an integer literal, float otherwise; None for nan/inf or garbage."""
    if token is None:
        return None
    token = token.strip()
    if not _NUMBER.fullmatch(token):
        return None
    if re.fullmatch(r"[-+]?\d+", token):
        return int(token)
    value = float(token)
    return value if math.isfinite(value) else None


def _tidy(value: float) -> Number:
    """Drop float noise from a unit conversion (4.452 ms -> 4452 us)."""
    value = round(float(value), 6)  # ints too: int.is_integer() is Python 3.12+
    return int(value) if value.is_integer() else value


# ---------------------------------------------------------------------------------------
# Stats lines: "count=50 first=.. curr=.. min=.. max=.. avg=.. std=.. [p5=.. median=.. p95=..]"

_STATS_LINE = re.compile(r"^count=\d+\b")
_STATS_FIELD = re.compile(rf"(\w+)=({_NUM}|[-+]?(?:nan|inf)\w*)", re.IGNORECASE)


@dataclass
class _Stats:
    count: int
    values: dict[str, Number | None]
    all_same: bool

    @property
    def avg(self) -> Number | None:
        return self.values.get("avg")

    @property
    def uniform(self) -> bool:
        """Every run took the same time (count=1 prints like this too): curr says it all."""
        return self.count > 0 and "avg" not in self.values and self.values.get("curr") is not None


def _parse_stats(text: str) -> _Stats | None:
    if not _STATS_LINE.match(text):
        return None
    values = {key.lower(): _number(value) for key, value in _STATS_FIELD.findall(text)}
    count = values.pop("count", None)
    if not isinstance(count, int):
        return None
    return _Stats(count=count, values=values, all_same="(all same)" in text)


# ---------------------------------------------------------------------------------------
# Other single lines

_RUN_MARKER = re.compile(r"^Running benchmark for (?:at least )?\d+ iterations?", re.IGNORECASE)
_PARAM_ECHO = re.compile(r"^(?P<name>[^\[\]:]+?)\s*:\s*\[(?P<value>.*)\]$")
# Searched, not matched: the APK's line may sit behind any prefix a logcat paste left ("... tflite  : ").
_SUMMARY = re.compile(r"(?:^|[\s:])(?P<old>Average )?Inference timings in us:\s*(?P<body>.*)$", re.IGNORECASE)
# The CompiledModel tool's block: "Inference (avg):      0.46 ms (2112 runs)", "Init footprint:  8.94 MB".
_BLOCK_LINE = re.compile(
    rf"^(?P<name>Model initialization|Warmup \((?:first|avg)\)|Inference \((?:avg|min|max|std|median|p5|p95)\)"
    rf"|Init footprint|Overall footprint|Peak memory(?: usage)?)\s*:\s*(?P<value>{_NUM})\s*(?:ms|MB)?"
    rf"(?:\s*\((?P<runs>\d+) runs?\))?",
    re.IGNORECASE,
)
_INIT_SESSION = re.compile(rf"^Initialized session in ({_NUM})\s*ms", re.IGNORECASE)
_LOADED_MODEL = re.compile(r"^Loaded model (?P<path>\S.*)$")
_MEMORY_INIT_OVERALL = re.compile(
    rf"^(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\):"
    rf"\s*init=(?P<init>{_NUM})\s+overall=(?P<overall>{_NUM})",
    re.IGNORECASE,
)
_PEAK_MEMORY = re.compile(
    rf"^Overall peak memory footprint \(MB\) via periodic monitoring:\s*(?P<peak>{_NUM})", re.IGNORECASE
)
_DELEGATE_LINE = re.compile(
    r"^Replacing (?P<delegated>\d+) out of (?P<total>\d+) node\(s\) with delegate \((?P<name>[^)]+)\) node, "
    r"yielding (?P<partitions>\d+) partitions?",
    re.IGNORECASE,
)
_FAILURE_LINE = re.compile(r"^(?:Benchmarking failed|Failed to )", re.IGNORECASE)


def _summary_pieces(body: str) -> dict[str, Number | None]:
    """"Init: 16242, First inference: 360262, Warmup (avg): 3.1e+05" -> {"init": 16242, ...}."""
    pieces: dict[str, Number | None] = {}
    for piece in body.split(","):
        name, sep, value = piece.rpartition(":")
        if sep:
            pieces[name.strip().lower()] = _number(value)
    return pieces


# ---------------------------------------------------------------------------------------
# Op-profiling tables

_TABLE_TITLE = re.compile(r"^=+\s*(?P<title>[^=]*?)\s*=+$")
# --op_profiling_output_mode=csv: bare titles, then "node type,first,avg_ms,...". Its writer
# puts tabs for the commas in the name column, but not in the node type's.
_CSV_TITLES = ("run order", "top by computation time", "summary by node type")
_CSV_HEADER = re.compile(r"^node type,", re.IGNORECASE)
_INIT_PROFILE_HEADER = re.compile(r"^Profiling Info for Benchmark Initialization", re.IGNORECASE)
_REGULAR_PROFILE_HEADER = re.compile(r"^Operator-wise Profiling Info for Regular Benchmark Runs", re.IGNORECASE)


def _cells(text: str, width: int | None = None) -> list[str]:
    """Split a table row on tabs (the tool's separator), else on runs of spaces."""
    if "\t" in text:
        return [cell.strip() for cell in text.strip().split("\t")]
    parts = text.split()
    if width is not None and len(parts) > width:  # the Name column may hold spaces
        parts = parts[: width - 1] + [" ".join(parts[width - 1 :])]
    return parts


def _percent(cell: str) -> Number | None:
    return _number(cell.rstrip("%"))


class _Table:
    """Rows of one op-profiling table, addressed by its column headers."""

    def __init__(self, title: str, section: str, csv_header: str | None = None):
        self.title = title.lower()
        self.section = section  # "init" | "regular"
        self.csv = csv_header is not None
        self.columns: list[str] | None = None
        self.rows: list[dict[str, str]] = []
        if csv_header is not None:
            self.columns = [name.strip().lower().replace("_", " ") for name in csv_header.split(",")]

    def _csv_cells(self, text: str) -> list[str]:
        assert self.columns is not None
        parts = text.strip().split(",")
        extra = len(parts) - len(self.columns)
        if extra > 0:  # commas inside the node type ("Convolution (NHWC, F32) IGEMM")
            parts = [",".join(parts[: extra + 1])] + parts[extra + 1 :]
        return [part.strip() for part in parts]

    def add(self, text: str) -> bool:
        """Take one line; False when the line cannot belong to this table (table ended)."""
        if self.csv:
            cells = self._csv_cells(text)
            if len(cells) != len(self.columns or ()):
                return False
            row = dict(zip(self.columns or (), cells))
            if "avg ms" in row and _number(row["avg ms"]) is None:
                return False
            self.rows.append(row)
            return True
        if self.columns is None:
            if "[" not in text:
                return False
            # "[node type]  [start]  [first] ...": the brackets delimit headers, tabs or not.
            self.columns = [name.strip().lower() for name in re.findall(r"\[([^\]]*)\]", text)]
            return True
        cells = _cells(text, len(self.columns))
        if len(cells) < min(len(self.columns), 4):
            return False
        row = dict(zip(self.columns, cells))
        if "avg ms" in row and _number(row["avg ms"]) is None:
            return False  # not a row: the table ended without a blank line
        self.rows.append(row)
        return True

    def records(self, fields: dict[str, str]) -> list[dict[str, Any]]:
        """Rows as dicts of the wanted columns ({out_key: column}); bad rows are skipped."""
        out = []
        for row in self.rows:
            record: dict[str, Any] = {}
            for key, column in fields.items():
                cell = row.get(column)
                if cell is None:
                    break
                if key in ("node_type", "name"):
                    record[key] = cell
                elif key == "percent":
                    record[key] = _percent(cell)
                else:
                    record[key] = _number(cell)
                if record[key] is None:
                    break
            else:
                out.append(record)
        return out


# ---------------------------------------------------------------------------------------


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse one benchmark_model run's output (stdout + stderr, or a logcat capture).

    Never raises on odd text: anything unreadable leaves its fields None, and a missing
    regular-runs latency makes the result `error=True` with `error_message` saying why.
    """
    result = BenchmarkOutput()
    if not isinstance(text, str):
        text = str(text)

    markers_seen = 0
    # Stats lines by phase: 0 = warmup, 1 = regular runs; -1 = before any marker (unknown).
    stats_by_phase: dict[int, list[_Stats]] = {}
    summary: dict[str, Number | None] = {}
    summary_is_old = False
    block: dict[str, tuple[Number | None, int | None]] = {}  # the CompiledModel block, as printed
    init_session_us: Number | None = None
    loaded_model: str | None = None
    cpu_threads: int | None = None
    error_lines: list[str] = []
    failure_lines: list[str] = []

    profile_section = "regular"  # tables without a section header are the regular runs'
    csv_title = "run order"  # a CSV table without a title line: the run-order table
    tables: list[_Table] = []
    table: _Table | None = None

    for line in _split_lines(text):
        msg = line.text.strip()

        # Inside an op-profiling table, rows are taken until the table ends.
        if table is not None:
            if msg and not msg.startswith("=") and table.add(line.text):
                continue
            table = None

        if line.level in ("ERROR", "FATAL"):
            error_lines.append(msg)
            continue
        if not msg:
            continue

        title = _TABLE_TITLE.match(msg)
        if title:
            table = _Table(title["title"], profile_section)
            tables.append(table)
            continue
        if msg.lower() in _CSV_TITLES:
            csv_title = msg.lower()
            continue
        if _CSV_HEADER.match(msg):
            table = _Table(csv_title, profile_section, csv_header=msg)
            tables.append(table)
            continue
        if _INIT_PROFILE_HEADER.match(msg):
            profile_section = "init"
            continue
        if _REGULAR_PROFILE_HEADER.match(msg):
            profile_section = "regular"
            continue

        if _RUN_MARKER.match(msg):
            markers_seen += 1
            continue
        stats = _parse_stats(msg)
        if stats is not None:
            stats_by_phase.setdefault(markers_seen - 1, []).append(stats)
            continue

        if line.level != "WARN" and _FAILURE_LINE.match(msg):
            failure_lines.append(msg)
            continue

        match = _SUMMARY.search(msg)
        if match:
            summary = _summary_pieces(match["body"])
            summary_is_old = bool(match["old"])
            continue
        match = _BLOCK_LINE.match(msg)
        if match:
            block[match["name"].lower()] = (_number(match["value"]), _int_or_none(match["runs"] or ""))
            continue
        match = _MEMORY_INIT_OVERALL.match(msg)
        if match:
            result.memory_init_mb = _number(match["init"])
            result.memory_overall_mb = _number(match["overall"])
            continue
        match = _PEAK_MEMORY.match(msg)
        if match:
            result.peak_memory_mb = _number(match["peak"])
            continue
        match = _DELEGATE_LINE.match(msg)
        if match and result.delegate is None:  # the main graph's line comes first
            result.delegate = match["name"]
            result.delegated_nodes = int(match["delegated"])
            result.total_nodes = int(match["total"])
            result.delegate_partitions = int(match["partitions"])
            continue
        match = _INIT_SESSION.match(msg)
        if match:
            ms = _number(match[1])
            init_session_us = _tidy(ms * 1000) if ms is not None else None
            continue
        match = _LOADED_MODEL.match(msg)
        if match and loaded_model is None:
            loaded_model = match["path"].strip()
            continue
        match = _PARAM_ECHO.match(msg)
        if match:
            name, value = match["name"].strip().lower(), match["value"].strip()
            if name == "num threads" and result.num_threads is None:
                result.num_threads = _int_or_none(value)
            elif name == "#threads used for cpu inference" and cpu_threads is None:
                cpu_threads = _int_or_none(value)
            elif name == "graph" and result.graph is None and value:
                result.graph = value
            continue

    if result.num_threads is None:
        result.num_threads = cpu_threads
    if result.graph is None:
        result.graph = loaded_model

    _fill_op_profile(result, tables)
    warmup, regular, phase_problem = _pick_phases(stats_by_phase, summary, summary_is_old)
    _fill_timings(result, warmup, regular, summary, summary_is_old, init_session_us)
    if block:
        _fill_from_block(result, block, warmup, regular)

    # Decide success last: any failure sign wins over whatever numbers were printed.
    reason: str | None = None
    if error_lines:
        reason = error_lines[0] or "the output has an ERROR line"
    elif failure_lines:
        reason = failure_lines[0]
    elif regular is not None and regular.count == 0:
        reason = "the regular benchmark runs recorded no inference (count=0)"
    elif result.inference_avg_us is None:
        reason = phase_problem or NO_LATENCY_MESSAGE
    if reason is not None:
        mark_failed(result, reason)
    return result


def _int_or_none(value: str) -> int | None:
    number = _number(value)
    return number if isinstance(number, int) else None


def _pick_phases(
    stats_by_phase: dict[int, list[_Stats]], summary: dict[str, Number | None], summary_is_old: bool
) -> tuple[_Stats | None, _Stats | None, str | None]:
    """(warmup stats, regular-runs stats, why the regular line is unknown)."""
    warmup = (stats_by_phase.get(0) or [None])[0]
    regular = (stats_by_phase.get(1) or [None])[0]
    unmarked = stats_by_phase.get(-1) or []
    if any(phase >= 0 for phase in stats_by_phase) or not unmarked:
        return warmup, regular, None
    # No "Running benchmark" markers at all (a clipped capture): fall back to order,
    # and for a lone line to the summary line's averages.
    if len(unmarked) >= 2:
        return unmarked[0], unmarked[1], None
    lone = unmarked[0]
    inference = _summary_inference(summary, summary_is_old)
    if inference is not None and lone.avg is not None and _close(lone.avg, inference):
        return None, lone, None
    return None, None, "one stats line but no 'Running benchmark' marker saying whether it is warmup or regular runs"


def _close(a: Number, b: Number) -> bool:
    # Summary figures are printed with 6 significant digits.
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=0.5)


def _summary_inference(summary: dict[str, Number | None], summary_is_old: bool) -> Number | None:
    if "inference (avg)" in summary:
        return summary["inference (avg)"]
    if summary_is_old:
        # Old line: "Warmup: X, Init: Y, no stats: Z" (or "Inference: Z").
        return summary.get("no stats", summary.get("inference"))
    return None


def _fill_timings(
    result: BenchmarkOutput,
    warmup: _Stats | None,
    regular: _Stats | None,
    summary: dict[str, Number | None],
    summary_is_old: bool,
    init_session_us: Number | None,
) -> None:
    init = summary.get("init")
    result.init_us = init if init is not None else init_session_us
    result.first_inference_us = summary.get("first inference")

    # Warmup: its avg=, else the summary's figure, else curr when all runs were equal.
    summary_warmup = summary.get("warmup (avg)", summary.get("warmup"))
    if warmup is not None and warmup.avg is not None:
        result.warmup_avg_us = warmup.avg
    elif summary_warmup is not None:
        result.warmup_avg_us = summary_warmup
    elif warmup is not None and warmup.uniform:
        result.warmup_avg_us = warmup.values.get("curr")

    if regular is not None:
        result.inference_count = regular.count
        values = regular.values
        if regular.uniform:
            curr = values.get("curr")
            result.inference_avg_us = curr
            result.inference_min_us = curr
            result.inference_max_us = curr
            result.inference_std_us = 0
            result.inference_median_us = values.get("median", curr)
        else:
            result.inference_avg_us = values.get("avg")
            result.inference_min_us = values.get("min")
            result.inference_max_us = values.get("max")
            result.inference_std_us = values.get("std")
            result.inference_median_us = values.get("median")
    if result.inference_avg_us is None and (regular is None or regular.count > 0):
        # No usable stats line: the rounded summary is better than nothing.
        result.inference_avg_us = _summary_inference(summary, summary_is_old)


_NODE_NAME = re.compile(r"^\[(?P<name>.*)\]:(?P<index>\d+)$")
_BARE_NODE_NAME = re.compile(r"^(?P<name>.*):(?P<index>\d+)$")  # LiteRT: "Delegate/Fully Connected (NC, F32) GEMM:1"


def _run_order_rows(table: _Table) -> list[dict[str, Any]]:
    rows = table.records({"node_type": "node type", "first_ms": "first", "avg_ms": "avg ms", "percent": "%",
                          "times_called": "times called"})
    names = [row.get("name", "") for row in table.rows]
    if len(names) != len(rows):  # a row with a bad number was skipped: names would not line up
        names = ["" for _ in rows]
    for row, cell in zip(rows, names):
        if table.csv:
            cell = cell.replace("\t", ",")
        match = _NODE_NAME.match(cell) or _BARE_NODE_NAME.match(cell)
        row["name"] = match["name"] if match else cell
        row["index"] = int(match["index"]) if match else None
    return rows


def _fill_from_block(
    result: BenchmarkOutput, block: dict[str, tuple[Number | None, int | None]], warmup: _Stats | None,
    regular: _Stats | None,
) -> None:
    """The CompiledModel tool's block, rounded to 10 us: only where no precise line said it."""

    def us(name: str) -> Number | None:
        value = block.get(name, (None, None))[0]
        return None if value is None else _tidy(value * 1000)

    if result.init_us is None:
        result.init_us = us("model initialization")
    if result.first_inference_us is None:
        # This layout has no summary line: the warmup stats line's first run is the precise figure.
        first = None
        if warmup is not None:
            first = warmup.values.get("first", warmup.values.get("curr") if warmup.count == 1 else None)
        result.first_inference_us = first if first is not None else us("warmup (first)")
    if result.warmup_avg_us is None:
        result.warmup_avg_us = us("warmup (avg)")
    if regular is None and result.inference_avg_us is None and us("inference (avg)") is not None:
        result.inference_avg_us = us("inference (avg)")
        result.inference_count = block["inference (avg)"][1]
        result.inference_min_us = us("inference (min)")
        result.inference_max_us = us("inference (max)")
        result.inference_std_us = us("inference (std)")
        result.inference_median_us = us("inference (median)")
    for name, attr in (("init footprint", "memory_init_mb"), ("overall footprint", "memory_overall_mb"),
                       ("peak memory", "peak_memory_mb"), ("peak memory usage", "peak_memory_mb")):
        if name in block and getattr(result, attr) is None:
            setattr(result, attr, block[name][0])


def _fill_op_profile(result: BenchmarkOutput, tables: list[_Table]) -> None:
    regular = [t for t in tables if t.section == "regular"]
    run_order = next((t for t in regular if t.title == "run order"), None)
    if run_order is not None:
        result.op_profile_rows = _run_order_rows(run_order)
    top = next((t for t in regular if "top by computation time" in t.title), None)
    if top is not None:
        wanted = {"node_type": "node type", "avg_ms": "avg ms", "percent": "%"}
        rows = top.records(wanted)
        result.op_profile_top = rows[:OP_PROFILE_TOP_ROWS]
        named = top.records({**wanted, "name": "name"})
        if len(named) == len(rows):  # the same rows, so the names line up
            result.op_profile_top_names = [str(r["name"]) for r in named[:OP_PROFILE_TOP_ROWS]]
    by_type = next((t for t in regular if "summary by node type" in t.title), None)
    if by_type is not None:
        result.op_profile_by_type = by_type.records(
            {"node_type": "node type", "avg_ms": "avg ms", "percent": "avg %", "times_called": "times called"}
        )


def mark_failed(result: BenchmarkOutput, reason: str) -> None:
    """A failed run carries no latency: keep the count and other facts, drop the timings."""
    result.error = True
    result.error_message = reason
    result.inference_avg_us = None
    result.inference_min_us = None
    result.inference_max_us = None
    result.inference_std_us = None
    result.inference_median_us = None


# How a trial's runs become its one latency (stored per trial as latency_estimator).
MEDIAN_OF_RUNS = "median"
MEAN_OF_RUNS = "mean"


def trial_latency_us(result: BenchmarkOutput) -> tuple[Number | None, str | None]:
    """A trial's latency and how it was taken: the mean of its regular runs, else their
    median where only that is printed.

    The mean: measured on the same trials both ways (benchmarks/bench_estimator.py), paired
    intervals were 1.08-1.17x wider with medians in all four sessions, quiet or loaded: a
    trial's mean averages its share of the core over 50+ runs, its median lands on a coarser,
    jumpier value (README, "Measuring").
    """
    if result.inference_avg_us is not None:
        return result.inference_avg_us, MEAN_OF_RUNS
    if result.inference_median_us is not None:
        return result.inference_median_us, MEDIAN_OF_RUNS
    return None, None
