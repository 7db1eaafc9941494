"""parse_benchmark_output: the real sample outputs, and one synthetic case per format variant."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mnv3bench.bench.parser import JSON_KEYS, NO_LATENCY_MESSAGE, parse_benchmark_output
from tests.helpers import BENCHMARK_OUTPUTS as FIXTURES

SAMPLES = sorted(FIXTURES.glob("*.txt"))
OPTIONAL_KEYS = ("op_profile_rows", "error_message")


def assert_same_value(key: str, got: object, want: object) -> None:
    if isinstance(want, float) or (isinstance(got, float) and isinstance(want, int) and not isinstance(want, bool)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{key}: {got!r} != {want!r}"
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), f"{key}: {got!r} != {want!r}"
    elif isinstance(want, list) and want and isinstance(want[0], dict):
        assert isinstance(got, list) and len(got) == len(want), f"{key}: {got!r} != {want!r}"
        for got_row, want_row in zip(got, want):
            assert set(got_row) == set(want_row)
            for field in want_row:
                assert_same_value(f"{key}.{field}", got_row[field], want_row[field])
    else:
        assert got == want and type(got) is type(want), f"{key}: {got!r} != {want!r}"


def test_there_are_samples() -> None:
    assert len(SAMPLES) >= 7


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_parses_to_its_json(sample: Path) -> None:
    want = json.loads(sample.with_suffix(".json").read_text())
    parsed = parse_benchmark_output(sample.read_text())
    got = parsed.to_json()
    assert list(got) == list(JSON_KEYS)
    assert set(want) - {"source", "format", *OPTIONAL_KEYS} == set(got)
    assert want["source"] and want["format"]
    for key in JSON_KEYS:
        assert_same_value(key, got[key], want[key])
    # Recorded where a sample has them: every Run Order row, and a failed parse's reason.
    for key in OPTIONAL_KEYS:
        if key in want:
            assert_same_value(key, getattr(parsed, key), want[key])


def test_sample_crlf_and_logcat_threadtime_give_the_same_numbers() -> None:
    # adb's v1 shell turns \n into \r\n; `adb logcat -v threadtime` adds date/pid/tid columns.
    text = (FIXTURES / "12.txt").read_text()
    want = parse_benchmark_output(text).to_json()
    assert parse_benchmark_output(text.replace("\n", "\r\n")).to_json() == want
    threadtime = "\n".join(f"11-25 10:00:00.123  1234  1234 I tflite  : {line}" for line in text.splitlines())
    assert parse_benchmark_output(threadtime).to_json() == want


def test_failed_sample_keeps_its_first_error_line() -> None:
    result = parse_benchmark_output((FIXTURES / "08.txt").read_text())
    assert result.error and result.inference_avg_us is None
    assert result.error_message.startswith("NN API returned error ANEURALNETWORKS_OP_FAILED")


def test_profiled_sample_reads_regular_runs_not_initialization() -> None:
    result = parse_benchmark_output((FIXTURES / "11.txt").read_text())
    assert {row["node_type"] for row in result.op_profile_top} == {"CONV_2D"}  # not AllocateTensors
    by_type = {row["node_type"]: row for row in result.op_profile_by_type}
    assert by_type["CONV_2D"] == {"node_type": "CONV_2D", "avg_ms": 2651.853, "percent": 89.897, "times_called": 15}
    assert "AllocateTensors" not in by_type
    # The profiler's Timings line (avg=2.9499e+06) is op-time sum, never the latency.
    assert result.inference_avg_us == 2950340.0


# --- synthetic outputs -----------------------------------------------------------------

WARMUP_MARK = "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds."
REGULAR_MARK = "Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds."


def lite_rt_output(regular: str = "count=50 first=9876 curr=7600 min=7500 max=8100 avg=7654.3 std=120") -> str:
    return "\n".join(
        [
            "INFO: STARTING!",
            "INFO: Num threads: [1]",
            "INFO: Graph: [/data/local/tmp/mnv3/large.tflite]",
            "INFO: Loaded model /data/local/tmp/mnv3/large.tflite",
            "INFO: Initialized session in 12.345ms.",
            f"INFO: {WARMUP_MARK}",
            "INFO: count=60 first=9876 curr=7700 min=7600 max=9876 avg=7800.5 std=300",
            "",
            f"INFO: {REGULAR_MARK}",
            f"INFO: {regular}",
            "",
            "INFO: Inference timings in us: Init: 12345, First inference: 9876, Warmup (avg): 7800.5, Inference (avg): 7654.3",
            "INFO: Memory footprint delta from the start of the tool (MB): init=4.21 overall=46.08",
            "INFO: Overall peak memory footprint (MB) via periodic monitoring: 52.1",
            "INFO: Memory status at the end of exeution:",
            "INFO: - VmRSS              : 50 MB",
        ]
    )


def test_new_format_with_info_prefix() -> None:
    result = parse_benchmark_output(lite_rt_output())
    assert not result.error and result.error_message is None
    assert result.init_us == 12345 and result.first_inference_us == 9876
    assert result.warmup_avg_us == 7800.5
    assert (result.inference_avg_us, result.inference_count) == (7654.3, 50)
    assert (result.inference_min_us, result.inference_max_us, result.inference_std_us) == (7500, 8100, 120)
    assert result.inference_median_us is None
    assert (result.memory_init_mb, result.memory_overall_mb, result.peak_memory_mb) == (4.21, 46.08, 52.1)
    assert (result.num_threads, result.graph) == (1, "/data/local/tmp/mnv3/large.tflite")
    assert result.op_profile_top == []


def test_percentiles_give_the_median() -> None:
    line = "count=50 first=9876 curr=7600 min=7500 max=8100 avg=7654.3 std=120 p5=7510 median=7640 p95=8000"
    assert parse_benchmark_output(lite_rt_output(line)).inference_median_us == 7640


def test_stats_line_is_preferred_over_the_rounded_summary() -> None:
    text = lite_rt_output("count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2950341.7 std=109798")
    text = text.replace("Inference (avg): 7654.3", "Inference (avg): 2.95034e+06")
    assert parse_benchmark_output(text).inference_avg_us == 2950341.7


def test_scientific_notation() -> None:
    line = "count=50 first=2.99e+06 curr=2913402 min=2727568 max=3.18995e+06 avg=2.95034e+06 std=109798"
    result = parse_benchmark_output(lite_rt_output(line))
    assert result.inference_avg_us == 2950340.0 and result.inference_max_us == 3189950.0


def test_all_same_regular_runs() -> None:
    result = parse_benchmark_output(lite_rt_output("count=50 curr=7600(all same)"))
    assert not result.error
    assert (result.inference_count, result.inference_avg_us) == (50, 7600)
    assert (result.inference_min_us, result.inference_max_us, result.inference_std_us) == (7600, 7600, 0)
    assert result.inference_median_us == 7600


def test_count_zero_regular_phase_is_a_failure() -> None:
    result = parse_benchmark_output(lite_rt_output("count=0"))
    assert result.error and result.inference_avg_us is None
    assert result.inference_count == 0
    assert "count=0" in result.error_message


def test_older_stats_line_without_first_and_bare_lines() -> None:
    text = "\n".join(
        [
            "STARTING!",
            "Num threads: [1]",
            "Graph: [model.tflite]",
            "Running benchmark for 1 iterations",
            "count=1 curr=9000",
            "Running benchmark for 50 iterations",
            "count=50 curr=7600 min=7500 max=8100 avg=7654 std=120",
            "Average inference timings in us: Warmup: 9000, Init: 3000, Inference: 7654",
            "Peak memory footprint (MB): init=4.92969 overall=138.809",
        ]
    )
    result = parse_benchmark_output(text)
    assert (result.inference_avg_us, result.inference_min_us, result.warmup_avg_us) == (7654, 7500, 9000)
    assert result.init_us == 3000 and result.first_inference_us is None
    assert (result.memory_init_mb, result.memory_overall_mb) == (4.92969, 138.809)


def test_old_summary_only_falls_back_to_its_rounded_average() -> None:
    text = "Initialized session in 4.452ms\nAverage inference timings in us: Warmup: 146161, Init: 4452, no stats: 137722\n"
    result = parse_benchmark_output(text)
    assert not result.error
    assert (result.inference_avg_us, result.warmup_avg_us, result.init_us) == (137722, 146161, 4452)
    assert result.inference_count is None


def test_init_from_initialized_session_when_no_summary() -> None:
    text = lite_rt_output().replace("Inference timings in us: Init: 12345, ", "Inference timings in us: ")
    assert parse_benchmark_output(text).init_us == 12345  # 12.345 ms, no float noise


def test_logcat_brief_prefix_and_other_tags_ignored() -> None:
    lines = [f"I/tflite  ( 5395): {line}" for line in lite_rt_output().replace("INFO: ", "").splitlines()]
    lines.insert(3, "E/SomeOtherApp( 999): unrelated failure")  # another app's error is not ours
    result = parse_benchmark_output("\n".join(lines))
    assert not result.error and result.inference_avg_us == 7654.3


def test_logcat_error_level_is_a_failure() -> None:
    text = lite_rt_output() + "\nE tflite  : Failed to invoke the interpreter"
    result = parse_benchmark_output(text)
    assert result.error and result.inference_avg_us is None
    assert result.error_message == "Failed to invoke the interpreter"


def test_error_line_beats_printed_numbers() -> None:
    text = lite_rt_output() + "\nERROR: Node number 12 (CONV_2D) failed to invoke."
    result = parse_benchmark_output(text)
    assert result.error and result.inference_avg_us is None and result.inference_min_us is None
    assert result.error_message == "Node number 12 (CONV_2D) failed to invoke."


def test_benchmarking_failed_without_error_prefix() -> None:
    result = parse_benchmark_output("STARTING!\nGraph: [m.tflite]\nBenchmarking failed.\n")
    assert result.error and result.error_message == "Benchmarking failed."


def test_warn_line_is_not_a_failure() -> None:
    text = lite_rt_output() + "\nWARN: Failed to apply the XNNPACK delegate; running on the default kernels."
    assert not parse_benchmark_output(text).error


def test_truncated_output_after_warmup_has_no_latency() -> None:
    text = lite_rt_output().split(REGULAR_MARK)[0]
    result = parse_benchmark_output(text)
    assert result.error and result.inference_avg_us is None
    assert result.warmup_avg_us == 7800.5
    assert result.error_message == NO_LATENCY_MESSAGE


def test_truncated_mid_regular_runs() -> None:
    text = lite_rt_output()
    result = parse_benchmark_output(text[: text.index(REGULAR_MARK) + len(REGULAR_MARK) + 20])
    assert result.error and result.inference_avg_us is None


@pytest.mark.parametrize("text", ["", "\n\n", "   ", "\x00\xff garbage ===="])
def test_empty_or_garbage_is_an_error(text: str) -> None:
    result = parse_benchmark_output(text)
    assert result.error and result.error_message == NO_LATENCY_MESSAGE
    assert all(result.to_json()[key] is None for key in JSON_KEYS if key not in ("op_profile_top", "error"))


def test_only_the_profiler_timings_line_is_not_a_latency() -> None:
    text = "Timings (microseconds): count=50 first=390239 curr=390816 min=389862 max=417544 avg=394059 std=4373\n"
    result = parse_benchmark_output(text)
    assert result.error and result.inference_avg_us is None and result.inference_count is None


def test_lone_unmarked_stats_line_is_not_guessed() -> None:
    result = parse_benchmark_output("count=50 first=1 curr=2 min=1 max=3 avg=2 std=1\n")
    assert result.error and "marker" in result.error_message


def test_two_unmarked_stats_lines_go_by_order() -> None:
    text = "count=5 first=9 curr=8 min=8 max=9 avg=8.5 std=0.5\ncount=50 first=7 curr=7 min=6 max=8 avg=7.1 std=0.3\n"
    result = parse_benchmark_output(text)
    assert (result.warmup_avg_us, result.inference_avg_us) == (8.5, 7.1)


def profiled_output(with_start: bool, tabs: bool = True) -> str:
    sep = "\t" if tabs else "   "
    start_head = ["[start]"] if with_start else []

    def row(cells: list[str]) -> str:
        return sep + sep.join(cells)

    head = row(["[node type]", *start_head, "[first]", "[avg ms]", "[%]", "[cdf%]", "[mem KB]", "[times called]", "[Name]"])

    def op(kind: str, start: str, avg: str, pct: str, name: str) -> str:
        return row([kind, *([start] if with_start else []), avg, avg, pct, pct, "0.000", "1", name])

    return "\n".join(
        [
            lite_rt_output(),
            "Profiling Info for Benchmark Initialization:",
            "============================== Top by Computation Time ==============================",
            head,
            op("AllocateTensors", "0.000", "1.356", "100.000%", "AllocateTensors/0"),
            "",
            "Operator-wise Profiling Info for Regular Benchmark Runs:",
            "============================== Top by Computation Time ==============================",
            head,
            op("CONV_2D", "0.066", "2.500", "30.000%", "[conv a]:0"),
            op("HARD_SWISH", "2.600", "1.250", "15.000%", "[hswish]:1"),
            op("DEPTHWISE_CONV_2D", "3.900", "1.000", "12.000%", "[dw]:2"),
            op("ADD", "4.900", "0.100", "1.200%", "[add]:3"),
            "",
            "Number of nodes executed: 4",
            "============================== Summary by node type ==============================",
            row(["[Node type]", "[count]", "[avg ms]", "[avg %]", "[cdf %]", "[mem KB]", "[times called]"]),
            row(["CONV_2D", "1", "2.500", "30.000%", "30.000%", "0.000", "1"]),
            row(["HARD_SWISH", "1", "1.250", "15.000%", "45.000%", "0.000", "1"]),
            "",
            "Timings (microseconds): count=50 first=5000 curr=4900 min=4800 max=5200 avg=4.85e+03 std=90",
            "Memory (bytes): count=0",
        ]
    )


@pytest.mark.parametrize("with_start", [True, False], ids=["with-start", "without-start"])
@pytest.mark.parametrize("tabs", [True, False], ids=["tabs", "spaces"])
def test_op_profile_tables(with_start: bool, tabs: bool) -> None:
    result = parse_benchmark_output(profiled_output(with_start, tabs))
    assert result.op_profile_top == [
        {"node_type": "CONV_2D", "avg_ms": 2.5, "percent": 30.0},
        {"node_type": "HARD_SWISH", "avg_ms": 1.25, "percent": 15.0},
        {"node_type": "DEPTHWISE_CONV_2D", "avg_ms": 1.0, "percent": 12.0},
    ]
    assert [row["node_type"] for row in result.op_profile_by_type] == ["CONV_2D", "HARD_SWISH"]
    assert result.op_profile_by_type[1]["times_called"] == 1
    assert result.inference_avg_us == 7654.3  # not the profiler's 4.85e+03


def test_to_json_has_exactly_the_documented_keys() -> None:
    result = parse_benchmark_output(lite_rt_output())
    data = result.to_json()
    assert list(data) == list(JSON_KEYS)
    assert "error_message" not in data and "op_profile_by_type" not in data
    json.dumps(data)  # serialisable as is


def test_integer_milliseconds_do_not_crash_the_parser() -> None:
    # "3ms" parses as an int; Python 3.11's int has no is_integer().
    result = parse_benchmark_output("INFO: Initialized session in 3ms.\n")
    assert result.error is True
    assert result.inference_avg_us is None


def test_compiled_model_block_alone_gives_the_rounded_figures() -> None:
    # Without the stats lines, the CompiledModel block is what there is (ms, two decimals).
    text = (FIXTURES / "15.txt").read_text()
    block_only = "\n".join(line for line in text.splitlines()
                           if "count=" not in line and "Initialized session" not in line)
    result = parse_benchmark_output(block_only)
    assert not result.error
    assert (result.init_us, result.first_inference_us, result.warmup_avg_us) == (4480, 1030, 470)
    assert (result.inference_avg_us, result.inference_count) == (460, 2112)
    assert (result.inference_min_us, result.inference_max_us, result.inference_std_us) == (440, 980, 10)
    assert (result.memory_init_mb, result.memory_overall_mb) == (8.94, 11.51)


def test_source_location_prefix_is_not_part_of_the_message() -> None:
    text = lite_rt_output().replace("INFO: Inference timings", "INFO: [./litert/tools/x.h:12] Inference timings")
    assert parse_benchmark_output(text).to_json() == parse_benchmark_output(lite_rt_output()).to_json()


@pytest.mark.parametrize("prefix", ["... tflite  : ", "01-13 15:00:04.407 24897 24897 I tflite  : ", "tflite: ", ""])
def test_apk_summary_line_behind_any_prefix(prefix: str) -> None:
    line = "Inference timings in us: Init: 5685, First inference: 18535, Warmup (avg): 14462.3, Inference (avg): 14575.2"
    result = parse_benchmark_output(prefix + line)
    assert not result.error
    assert (result.init_us, result.first_inference_us, result.inference_avg_us) == (5685, 18535, 14575.2)


def test_csv_tables_with_titles_are_read_by_title() -> None:
    text = "\n".join([
        "Operator-wise Profiling Info for Regular Benchmark Runs:",
        "Run Order",
        "node type,first,avg_ms,%,cdf%,mem KB,times called,name",
        "CONV_2D,0.2,0.25,50%,50%,0,1,[conv]:0",
        "HARD_SWISH,0.2,0.25,50%,100%,0,1,[act]:1",
        "",
        "Summary by node type",
        "node type,count,avg_ms,avg %,cdf %,mem KB,times called",
        "CONV_2D,1,0.25,50%,50%,0,1",
        "HARD_SWISH,1,0.25,50%,100%,0,1",
    ])
    result = parse_benchmark_output(text)
    assert [(r["node_type"], r["name"], r["index"]) for r in result.op_profile_rows] == [
        ("CONV_2D", "conv", 0), ("HARD_SWISH", "act", 1)]
    assert [r["node_type"] for r in result.op_profile_by_type] == ["CONV_2D", "HARD_SWISH"]
    assert result.error and "no inference latency" in result.error_message


def test_a_failed_parse_names_what_it_missed() -> None:
    result = parse_benchmark_output("INFO: Loaded model m.tflite\nsomething else\n")
    assert result.error and result.inference_avg_us is None
    assert "stats line" in result.error_message and "Inference timings in us" in result.error_message
