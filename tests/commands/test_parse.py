"""`mnv3bench parse FILE [--json]` through the real entry point."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mnv3bench.bench.parser import JSON_KEYS
from mnv3bench.cli import main
from mnv3bench.commands.parse import EXTRA_JSON_KEYS
from tests.helpers import BENCHMARK_OUTPUTS as FIXTURES


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
        raise SystemExit(0)
    return exit_info.value.code or 0


def test_json_output_has_exactly_the_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(FIXTURES / "12.txt"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # The stored fields in their order, then what the human view also shows.
    assert list(data) == [*JSON_KEYS, *EXTRA_JSON_KEYS]
    assert data["inference_avg_us"] == 1240270.0 and data["inference_median_us"] == 1239807
    assert data["error"] is False


def test_table_output_shows_latency_and_top_ops(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(FIXTURES / "11.txt")]) == 0
    out = capsys.readouterr().out
    assert "2,950,340 us" in out and "CONV_2D" in out and "277.374" in out


def test_failed_run_prints_the_result_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(FIXTURES / "08.txt"), "--json"]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["error"] is True and data["inference_avg_us"] is None
    assert "ANEURALNETWORKS_OP_FAILED" in captured.err


def test_failed_run_table_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(FIXTURES / "08.txt")]) == 1
    assert "failed" in capsys.readouterr().out


def test_empty_file_is_a_failed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert run(["parse", str(empty), "--json"]) == 1
    assert "no inference latency" in capsys.readouterr().err


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(tmp_path / "nope.txt")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "`-` to read stdin" in err


def test_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((FIXTURES / "01.txt").read_text()))
    assert run(["parse", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inference_avg_us"] == 137722


def test_help_mentions_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", "--help"]) == 0
    assert "status 1" in capsys.readouterr().out


def test_subprocess_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mnv3bench", "parse", "-", "--json"],
        input=(FIXTURES / "14.txt").read_text(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inference_count"] == 10


def test_json_gives_what_the_human_view_gives(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(FIXTURES / "11.txt"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["error_message"] is None
    assert data["op_profile_by_type"][0] == {"node_type": "CONV_2D", "avg_ms": 2651.853, "percent": 89.897,
                                             "times_called": 15}
    top = data["op_profile_top"][0]
    assert (top["node_type"], top["avg_ms"]) == ("CONV_2D", 277.374)
    assert top["name"] == "[MobilenetV1/MobilenetV1/Conv2d_5_pointwise/Relu6]:10"

    assert run(["parse", str(FIXTURES / "11.txt")]) == 0
    out = capsys.readouterr().out
    assert "Conv2d_5_pointwise" in out and "summary by node type" in out and "DEPTHWISE_CONV_2D" in out


def test_failed_run_json_carries_the_error_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["parse", str(FIXTURES / "08.txt"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["error"] is True and "ANEURALNETWORKS_OP_FAILED" in data["error_message"]
