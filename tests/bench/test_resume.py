"""bench/resume.py: --resume continues a session with its flags, or names what differs."""

from __future__ import annotations

import pytest

from mnv3bench.bench.command import benchmark_flags
from mnv3bench.bench.options import RunConfig
from mnv3bench.bench.resume import resume_config
from mnv3bench.errors import UsageError


def _flags(config: RunConfig, binary: str = "b" * 64) -> dict[str, str]:
    return {**benchmark_flags(config), "taskset": "10", "binary_sha256": binary}


def test_options_left_at_their_defaults_take_the_sessions_values():
    stored = _flags(RunConfig(num_threads=2, op_profiling=True, min_secs=0.5, extra_flags=("--use_gpu=false",)))
    config, changes = resume_config(RunConfig(resume=True, trials=7), 4, stored, _flags(RunConfig(resume=True)))
    assert (config.num_threads, config.op_profiling, config.min_secs, config.extra_flags) == (
        2, True, 0.5, ("--use_gpu=false",))
    assert config.trials == 7 and _flags(config) == stored
    assert {c.label for c in changes} == {"--num-threads", "--op-profile", "--min-secs", "-- --use_gpu"}


def test_a_given_option_or_another_binary_that_differs_is_refused():
    stored = _flags(RunConfig(num_runs=20))
    now = RunConfig(num_runs=30, resume=True)
    with pytest.raises(UsageError) as err:
        resume_config(now, 4, stored, _flags(now, binary="c" * 64), "mnv3bench run -d pixel3 x --num-runs 20")
    assert "--num-runs: 20 then, 30 now" in err.value.message
    assert "the benchmark binary (sha256): bbbbbbbbbbbb then, cccccccccccc now" in err.value.message
    assert "`mnv3bench run -d pixel3 x --num-runs 20`" in err.value.hint and "--force-new" in err.value.hint

