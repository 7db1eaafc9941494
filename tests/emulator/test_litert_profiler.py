"""LiteRT's C profiler over ctypes: the struct mirror, the options, the self-check."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from mnv3bench.profile import host
from mnv3bench.profile.litert_c import (
    EVENT_OPERATOR,
    LiteRtError,
    LiteRtSession,
    OpEvent,
    ProfiledEventData,
    cpu_options_toml,
)
from mnv3bench.profile.optable import format_op_tables, rows_from_timings


def test_event_struct_mirrors_litert_2_3() -> None:
    # tag, type, start, elapsed, 2 x 3 size_t memory, 2 x metadata, source (padded): 104 bytes.
    assert ctypes.sizeof(ProfiledEventData) == 104
    assert ProfiledEventData.event_metadata1.offset == 80


def test_cpu_options() -> None:
    assert cpu_options_toml(1, True) == 'num_threads = 1\nkernel_mode = "builtin"\n'
    assert cpu_options_toml(2, False) == "num_threads = 2\n"
    assert cpu_options_toml(0, False) == ""


def test_builtin_profile_has_one_event_per_tflite_node(tiny_tflite: Path) -> None:
    session = host.open_session(str(tiny_tflite), 1, builtin_kernels=True)
    nodes = session.node_outputs()
    profile = host.profile_ops(session, 3)
    assert [row.index for row in profile.rows] == list(range(len(nodes)))
    assert [row.name for row in profile.rows] == [name for _, name in nodes]
    assert {row.node_type for row in profile.rows} >= {"CONV_2D", "DEPTHWISE_CONV_2D"}
    assert all(row.times_called == 1 and row.avg_ms > 0 for row in profile.rows)


def test_xnnpack_profile_has_delegate_operators(tiny_tflite: Path) -> None:
    profile = host.profile_ops(host.open_session(str(tiny_tflite), 1, builtin_kernels=False), 2)
    assert any(row.name.startswith(host.DELEGATE_PREFIX) for row in profile.rows)


def test_self_check_fails_when_profiling_is_ignored(tiny_tflite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A release that drops the runtime options records no events: that must not pass silently.
    monkeypatch.setattr(LiteRtSession, "profile", lambda self, runs: [])
    with pytest.raises(LiteRtError, match="enable_profiling"):
        host.open_session(str(tiny_tflite), 1, builtin_kernels=True)


def test_self_check_fails_when_builtin_kernels_are_ignored(tiny_tflite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delegated = [OpEvent("Convolution (NHWC, F32) IGEMM", 8, 0, 5, 0)]
    monkeypatch.setattr(LiteRtSession, "profile", lambda self, runs: delegated)
    with pytest.raises(LiteRtError, match="builtin"):
        host.open_session(str(tiny_tflite), 1, builtin_kernels=True)


def test_self_check_fails_when_xnnpack_takes_nothing(tiny_tflite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiteRtSession, "profile", lambda self, runs: [OpEvent("CONV_2D", EVENT_OPERATOR, 0, 5, 0)])
    with pytest.raises(LiteRtError, match="XNNPACK"):
        host.open_session(str(tiny_tflite), 1, builtin_kernels=False)


def test_rows_average_over_runs_and_tables_follow_benchmark_model() -> None:
    timings = [("CONV_2D", "a", 0, 100), ("HARD_SWISH", "b", 1, 10)] * 2
    rows = rows_from_timings(timings, runs=2)
    assert [(r.node_type, r.avg_ms, r.first_ms, r.times_called) for r in rows] == [
        ("CONV_2D", 0.1, 0.1, 1), ("HARD_SWISH", 0.01, 0.01, 1)]
    lines = format_op_tables(rows)
    assert lines[0] == "============================== Run Order =============================="
    assert lines[2].split("\t")[1:] == ["                 CONV_2D", "    0.100", "    0.100", " 90.909%", " 90.909%",
                                        "     0.000", "        1", "[a]:0"]
    assert "Number of nodes executed: 2" in lines
