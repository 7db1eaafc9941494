"""Absurd inputs are usage errors with the valid range: numbers, variant sizes, parse input, --db."""

from __future__ import annotations

import subprocess
import time

import pytest

from mnv3bench.errors import UsageError
from mnv3bench.model.size import MAX_MADDS, MAX_PARAMS, check_sizes, estimate
from mnv3bench.variants import parse_variant
from tests.helpers import mnv3_command

RUN = ["run", "--device", "emulator", "--variant", "small-hswish-fused-r96"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--cooldown", "1e10", "--cooldown must be at most 86400 s (24 h)"),
    ("--timeout", "1e10", "--timeout must be at most 86400 s"),
    ("--timeout", "inf", "--timeout must be a finite number"),
    ("--max-secs", "inf", "--max-secs must be a finite number"),
    ("--thermal-gate", "nan", "--thermal-gate must be a finite number"),
    ("--thermal-timeout", "1e10", "--thermal-timeout must be at most 86400 s"),
    ("--trials", "99999999", "--trials must be at most 10000"),
])
def test_absurd_numbers_exit_2_with_the_range(rel_env, cli, tmp_path, option, value, message):
    result = cli(*RUN, option, value, "--db", tmp_path / "r.db")
    assert result.code == 2 and message in result.err and "Traceback" not in result.err
    assert not (tmp_path / "r.db").exists()


def test_jobs_has_a_range(rel_env, cli):
    result = cli("build", "small-hswish-fused-r96", "--jobs", "100000")
    assert result.code == 2 and "less than or equal to 64" in result.err


@pytest.mark.parametrize("name", ["large-hswish-fused", "large-hswish-fused-r448", "large-2.0-hswish-fused-r448",
                                  "v2-1.0", "small-0.35-relu-r32"])
def test_sensible_variants_are_within_the_bounds(name):
    check_sizes([parse_variant(name)], allow_huge=False)


@pytest.mark.parametrize("name", ["large-hswish-fused-r4096", "large-1000-hswish-fused",
                                  "large-hswish-fused-r" + "9" * 20])
def test_huge_variants_are_refused_quickly_saying_what_was_estimated(name):
    started = time.perf_counter()
    with pytest.raises(UsageError, match="too big to build here: an estimated") as err:
        check_sizes([parse_variant(name)], allow_huge=False)
    assert time.perf_counter() - started < 1  # arithmetic, no TensorFlow
    assert "--allow-huge" in err.value.hint
    counts = estimate(parse_variant(name))
    assert counts.madds > MAX_MADDS or counts.params > MAX_PARAMS
    check_sizes([parse_variant(name)], allow_huge=True)  # the user may insist


@pytest.mark.parametrize("command", [["build"], ["run", "--device", "emulator", "--variant"]])
def test_build_and_run_refuse_a_huge_variant_before_building(rel_env, cli, tmp_path, command):
    result = cli(*command, "large-hswish-fused-r4096", "--models-dir", tmp_path / "models")
    assert result.code == 2 and "too big" in result.err and "--allow-huge" in result.err
    assert not (tmp_path / "models").exists()


def test_parse_refuses_endless_and_binary_input_in_bounded_memory(rel_env):
    done = subprocess.run(mnv3_command("parse", "/dev/zero"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "binary data" in done.stderr and "Traceback" not in done.stderr


def test_parse_refuses_input_above_the_cap(rel_env, cli, tmp_path, monkeypatch):
    import mnv3bench.commands.parse as parse_cmd

    monkeypatch.setattr(parse_cmd, "MAX_INPUT_BYTES", 1000)
    big = tmp_path / "big.txt"
    big.write_text("INFO: x\n" * 1000)
    result = cli("parse", big)
    assert result.code == 2 and "larger than" in result.err


def test_parse_still_reads_stray_bytes(rel_env, cli, tmp_path):
    from mnv3bench.testing import benchmark_output

    out = tmp_path / "out.txt"
    out.write_bytes(b"\xff\xfe\x00garbage\n" + benchmark_output(5000).encode())
    result = cli("parse", out, "--json")
    assert result.code == 0 and '"inference_avg_us": 5000' in result.out
