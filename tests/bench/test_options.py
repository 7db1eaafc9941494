"""The option table (bench/options.py) and what is made from it: RunConfig's checks, the
benchmark_model command line, the stand-in's flags and the options of `run` and `table`."""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any

import pytest
import typer

import mnv3bench.commands.run  # noqa: F401  (registers `run` on the app)
import mnv3bench.commands.table  # noqa: F401  (registers `table` on the app)
from mnv3bench.bench.command import benchmark_command, benchmark_flags
from mnv3bench.bench.options import OPTIONS, PINNED_FLAGS, RunConfig, model_flags
from mnv3bench.cliapp import app
from mnv3bench.commands.measure_options import measuring_command
from mnv3bench.device.profiles import load_profile
from mnv3bench.emulator.standin import parse_flags
from mnv3bench.errors import UsageError


def test_every_runconfig_field_is_an_option_with_its_type_and_default():
    fields = dataclasses.fields(RunConfig)
    assert [o.name for o in OPTIONS] == [f.name for f in fields]
    assert [o.default for o in OPTIONS] == [f.default for f in fields]
    assert {o.name: o.type for o in OPTIONS}["timeout_s"] == float | None
    assert all(o.help for o in OPTIONS)


@pytest.mark.parametrize(("values", "message", "hint"), [
    ({"trials": 0}, "--trials must be at least 1.", "Use --trials 5 (the default)."),
    ({"num_runs": 0}, "--num-runs must be at least 1.", "Use --num-runs 50 (benchmark_model's default)."),
    ({"warmup_runs": -1}, "--warmup-runs cannot be negative.", "Use --warmup-runs 1."),
    ({"min_secs": -1}, "--min-secs cannot be negative.", "Use --min-secs 1."),
    ({"max_secs": 0, "min_secs": 0}, "--max-secs must be above --min-secs.",
     "Use --max-secs 150 (benchmark_model's default)."),
    ({"min_secs": 5, "max_secs": 2}, "--max-secs must be above --min-secs.",
     "Use --max-secs 150 (benchmark_model's default)."),
    ({"cooldown_s": -1}, "--cooldown cannot be negative.", "Use --cooldown 30 or leave it out."),
    ({"timeout_s": 0}, "--timeout must be positive.", "Leave it out for a default derived from --max-secs."),
    ({"thermal_timeout_s": 0}, "--thermal-timeout must be positive.", "Use --thermal-timeout 600."),
])
def test_rules_give_the_option_its_message_and_fix(values, message, hint):
    with pytest.raises(UsageError) as caught:
        RunConfig(**values)
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_unset_optional_values_pass_the_rules():
    config = RunConfig(timeout_s=None, thermal_gate_c=None, use_xnnpack=None, min_secs=0, max_secs=0.5)
    assert config.trial_timeout_s == 2 * (0.5 + 10) + 30


def test_flags_follow_the_table_and_leave_unset_ones_out():
    # use_xnnpack is always stated (true by default, as benchmark_model's own default).
    assert benchmark_flags(RunConfig()) == {"num_threads": "1", "warmup_runs": "1", "num_runs": "50",
                                            "min_secs": "1", "max_secs": "150", "use_xnnpack": "true"}
    assert "use_xnnpack" not in benchmark_flags(RunConfig(use_xnnpack=None))
    flags = benchmark_flags(RunConfig(use_xnnpack=False, op_profiling=True))
    assert flags["use_xnnpack"] == "false" and flags["enable_op_profiling"] == "true"
    assert "enable_op_profiling" not in benchmark_flags(RunConfig(op_profiling=False))


def test_the_standin_takes_every_flag_the_command_line_passes():
    profile = load_profile("pixel3")
    config = RunConfig(warmup_runs=3, num_runs=7, min_secs=0.5, max_secs=9, use_xnnpack=False, op_profiling=True)
    argv = shlex.split(benchmark_command(profile, "/m.tflite", config))[3:]  # after taskset MASK BINARY
    values, given, unconsumed = parse_flags(argv)
    assert unconsumed == []
    assert given == ["graph", *(f.name for f in model_flags())]
    assert (values["num_threads"], values["warmup_runs"], values["num_runs"]) == (1, 3, 7)
    assert (values["min_secs"], values["max_secs"], values["use_xnnpack"], values["enable_op_profiling"]) == (
        0.5, 9.0, False, True)


def test_the_standin_defaults_are_benchmark_models():
    values, given, unconsumed = parse_flags([])
    assert given == [] and unconsumed == []
    for flag in model_flags():
        assert values[flag.name] == flag.default
    assert [flag.name for flag, _ in PINNED_FLAGS] == ["num_threads"]


def _options_of(command: str) -> dict[str, Any]:
    """The command's options as Typer built them, by parameter name."""
    group: Any = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params if p.opts[0].startswith("--")}


@pytest.mark.parametrize(("command", "without"), [("run", {"reuse"}), ("table", {"resume", "force_new"})])
def test_run_and_table_take_the_tables_options(command, without):
    params = _options_of(command)
    for option in OPTIONS:
        if option.cli is None or option.name in without:
            assert option.name not in params
            continue
        param = params[option.name]
        assert param.opts[0] == option.cli_name and param.help == option.help
        assert param.default == option.default
    for shared in ("models_dir", "adb", "serial", "db"):
        assert shared in params


def test_measuring_command_needs_a_measurement_parameter():
    def no_measurement(device: str) -> None: ...

    with pytest.raises(TypeError, match="measurement"):
        measuring_command()(no_measurement)
    with pytest.raises(TypeError, match="reuze"):
        measuring_command(without={"reuze"})


# -- every number has a range ---------------------------------------------------------------

_ABSURD = [
    ({"cooldown_s": 1e10}, "--cooldown must be at most 86400 s (24 h)"),
    ({"timeout_s": 1e10}, "--timeout must be at most 86400 s"),
    ({"timeout_s": float("inf")}, "--timeout must be a finite number"),
    ({"max_secs": 1e10}, "--max-secs must be at most 86400 s"),
    ({"max_secs": float("inf")}, "--max-secs must be a finite number"),
    ({"min_secs": float("nan")}, "--min-secs must be a finite number"),
    ({"thermal_gate_c": float("nan")}, "--thermal-gate must be a finite number"),
    ({"thermal_gate_c": 1000.0}, "--thermal-gate must be above 0 and at most 150 C"),
    ({"thermal_timeout_s": float("inf")}, "--thermal-timeout must be a finite number"),
    ({"thermal_timeout_s": 1e9}, "--thermal-timeout must be at most 86400 s"),
    ({"trials": 10**7}, "--trials must be at most 10000"),
    ({"num_runs": 10**9}, "--num-runs must be at most 1e+06"),
    ({"warmup_runs": 10**9}, "--warmup-runs must be at most 100000"),
]


@pytest.mark.parametrize(("values", "message"), _ABSURD, ids=[m.split()[0] + "=" + str(list(v.values())[0])
                                                              for v, m in _ABSURD])
def test_absurd_numbers_are_refused_with_their_range(values, message):
    with pytest.raises(UsageError) as err:
        RunConfig(**values)
    assert message in err.value.message and err.value.hint


def test_the_longest_sensible_values_pass():
    RunConfig(cooldown_s=86_400, timeout_s=86_400, max_secs=86_400, min_secs=86_400, thermal_gate_c=150,
              thermal_timeout_s=86_400, trials=10_000, num_runs=1_000_000, warmup_runs=100_000)


def test_num_threads_sets_the_pinned_flag():
    assert benchmark_flags(RunConfig())["num_threads"] == "1"
    assert benchmark_flags(RunConfig(num_threads=4))["num_threads"] == "4"
    with pytest.raises(UsageError, match="--num-threads must be at least 1"):
        RunConfig(num_threads=0)


def test_extra_flags_are_passed_and_stored_with_the_others():
    config = RunConfig(extra_flags=("--use_gpu=false", "--max_profiling_buffer_entries=2048"))
    flags = benchmark_flags(config)
    assert flags["use_gpu"] == "false" and flags["max_profiling_buffer_entries"] == "2048"
    assert "--use_gpu=false" in benchmark_command(load_profile("pixel3"), "/m.tflite", config)
    assert benchmark_flags(config) != benchmark_flags(RunConfig())  # part of what identifies a measurement


@pytest.mark.parametrize("extra", [("--num_runs=3",), ("use_gpu=false",), ("--use_gpu",), ("--graph=/x",)])
def test_extra_flags_that_are_not_name_value_or_an_options_own_are_refused(extra):
    with pytest.raises(UsageError, match="--name=value"):
        RunConfig(extra_flags=extra)
