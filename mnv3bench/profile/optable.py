"""Per-op rows of a profile and benchmark_model's op-profiling tables printed from them.

The layout is TFLite's profile_summarizer / stats_calculator (Run Order, Top by Computation
Time, Summary by node type; tab-separated, without the old `[start]` column), so that the
parser that reads a phone's output reads the emulator's the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TOP_ROWS = 10
REGULAR_HEADER = "Operator-wise Profiling Info for Regular Benchmark Runs:"


@dataclass(frozen=True)
class OpRow:
    """One node (or delegate operator) of the regular runs' profile. Times in ms per run."""

    node_type: str  # CONV_2D, HARD_SWISH, ... or an XNNPACK operator name
    name: str  # output tensor name, or "Delegate/<operator>" inside a delegate
    index: int  # TFLite node index, or the delegate's own operator index
    first_ms: float
    avg_ms: float
    times_called: int  # per run

    def to_json(self) -> dict[str, object]:
        return {"node_type": self.node_type, "name": self.name, "index": self.index,
                "first_ms": round(self.first_ms, 6), "avg_ms": round(self.avg_ms, 6),
                "times_called": self.times_called}


def rows_from_timings(timings: Iterable[tuple[str, str, int, int]], runs: int) -> list[OpRow]:
    """(node type, name, index, elapsed us) per op invocation, in order -> one OpRow per op."""
    order: list[tuple[str, str, int]] = []
    samples: dict[tuple[str, str, int], list[int]] = {}
    for node_type, name, index, elapsed_us in timings:
        key = (node_type, name, index)
        if key not in samples:
            order.append(key)
            samples[key] = []
        samples[key].append(elapsed_us)
    runs = max(1, runs)
    return [OpRow(node_type=k[0], name=k[1], index=k[2], first_ms=samples[k][0] / 1000.0,
                  avg_ms=sum(samples[k]) / runs / 1000.0, times_called=max(1, len(samples[k]) // runs))
            for k in order]


_HEADER = "\t{:>24}\t{:>9}\t{:>9}\t{:>8}\t{:>8}\t{:>10}\t{:>9}\t{}".format(
    "[node type]", "[first]", "[avg ms]", "[%]", "[cdf%]", "[mem KB]", "[times called]", "[Name]")
_TYPE_HEADER = "\t{:>24}\t{:>9}\t{:>10}\t{:>11}\t{:>11}\t{:>10}\t{}".format(
    "[Node type]", "[count]", "[avg ms]", "[avg %]", "[cdf %]", "[mem KB]", "[times called]")


def _title(text: str) -> str:
    return f"============================== {text} =============================="


def _op_lines(rows: Sequence[OpRow], total_ms: float) -> list[str]:
    lines, cdf = [], 0.0
    for row in rows:
        pct = 100.0 * row.avg_ms / total_ms if total_ms else 0.0
        cdf += pct
        lines.append(f"\t{row.node_type:>24}\t{row.first_ms:9.3f}\t{row.avg_ms:9.3f}\t{pct:7.3f}%\t{cdf:7.3f}%"
                     f"\t{0.0:10.3f}\t{row.times_called:9d}\t[{row.name}]:{row.index}")
    return lines


def format_op_tables(rows: Sequence[OpRow]) -> list[str]:
    """benchmark_model's regular-runs op tables, line by line (no logger prefix)."""
    total = sum(row.avg_ms for row in rows)
    lines = [_title("Run Order"), _HEADER, *_op_lines(rows, total), ""]
    top = sorted(rows, key=lambda r: r.avg_ms, reverse=True)[:TOP_ROWS]
    lines += [_title("Top by Computation Time"), _HEADER, *_op_lines(top, total), ""]
    lines.append(f"Number of nodes executed: {len(rows)}")
    by_type: dict[str, list[OpRow]] = {}
    for row in rows:
        by_type.setdefault(row.node_type, []).append(row)
    lines += [_title("Summary by node type"), _TYPE_HEADER]
    cdf = 0.0
    for node_type, group in sorted(by_type.items(), key=lambda kv: -sum(r.avg_ms for r in kv[1])):
        ms = sum(r.avg_ms for r in group)
        pct = 100.0 * ms / total if total else 0.0
        cdf += pct
        lines.append(f"\t{node_type:>24}\t{len(group):9d}\t{ms:10.3f}\t{pct:10.3f}%\t{cdf:10.3f}%"
                     f"\t{0.0:10.3f}\t{sum(r.times_called for r in group):9d}")
    lines.append("")
    return lines
