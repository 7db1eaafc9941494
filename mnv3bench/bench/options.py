"""The benchmark options, defined once: the fields of RunConfig are the table.

Each field carries an option's whole definition: its name, type and default (the field's
own), its command-line name and help, the benchmark_model flag it sets, and its rules with
the message and fix a user sees when a value breaks them. Made from this table:
- RunConfig's checks (`__post_init__`),
- the device command line (bench/command.py),
- the flags the emulator's benchmark_model stand-in accepts (emulator/standin.py),
- the options of `run` and `table` (commands/measure_options.py).
So a new option is one field here.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mnv3bench.errors import UsageError

# benchmark_model's own bound is max_secs for the regular runs; init and warmup come on top.
WARMUP_ALLOWANCE_S = 10.0


@dataclass(frozen=True)
class ModelFlag:
    """One benchmark_model flag, as the binary names, parses and defaults it."""

    name: str
    kind: type  # int, float, bool or str
    default: Any  # benchmark_model's own default, which the stand-in uses too
    description: str  # what benchmark_model echoes for each flag given (BenchmarkParams)

    def format(self, value: Any) -> str:
        """The flag's value as passed on the device: 1.0 -> "1", True -> "true"."""
        if self.kind is bool:
            return "true" if value else "false"
        if self.kind is float:
            return f"{float(value):g}"  # benchmark_model parses "1" and "1.0" alike; the short form reads better
        return str(self.kind(value))


# Passed on every run whatever the options: one thread, which `taskset` pins to one core.
# A RunConfig field of the same name (num_threads, --num-threads) sets the value passed.
PINNED_FLAGS: tuple[tuple[ModelFlag, Any], ...] = ((ModelFlag("num_threads", int, -1, "Num threads"), 1),)


@dataclass(frozen=True)
class Rule:
    """A rule an option's value must keep; a value that breaks it is a usage error."""

    holds: Callable[[Any, Any], bool]  # (value, the whole RunConfig) -> ok
    problem: str  # completes "<option> ...", e.g. "must be at least 1"
    hint: str  # the fix, shown under the message


# The longest any duration may be: a day. Longer is a typo (1e10), and would overflow the
# timers below it rather than wait.
MAX_SECONDS = 86_400.0


def finite(hint: str) -> Rule:
    """Not nan, not inf: both pass or fail every comparison in surprising ways."""
    return Rule(lambda value, _config: math.isfinite(value), "must be a finite number (not nan or inf)", hint)


def at_most(high: float, hint: str, unit: str = "") -> Rule:
    return Rule(lambda value, _config: value <= high, f"must be at most {high:g}{unit}", hint)


def duration(hint: str, *, positive_only: bool = False) -> list[Rule]:
    """A number of seconds: finite, not negative (or positive), at most a day."""
    low = positive(hint) if positive_only else not_negative(hint)
    return [finite(hint), low, at_most(MAX_SECONDS, hint, " s (24 h)")]


def count(low: int, high: int, hint: str) -> list[Rule]:
    return [at_least(low, hint), at_most(high, hint)]


def at_least(low: int, hint: str) -> Rule:
    return Rule(lambda value, _config: value >= low, f"must be at least {low}", hint)


def not_negative(hint: str) -> Rule:
    return Rule(lambda value, _config: value >= 0, "cannot be negative", hint)


def positive(hint: str) -> Rule:
    return Rule(lambda value, _config: value > 0, "must be positive", hint)


# Without --max-trials, an adaptive run stops at this many trials per variant.
DEFAULT_MAX_TRIALS = 50
# `table`'s default: rounds until every comparison is within ±2%, for at most 5 minutes of
# trials (on the emulator Table 5 reaches ±2% in ~2-4 minutes: benchmarks/README.md).
# `--precision none` measures fixed --trials. `run` keeps fixed trials unless asked.
TABLE_PRECISION = "2%"
TABLE_MAX_TIME_S = 300.0
NO_PRECISION = "none"


def parse_precision(text: str) -> float | None:
    """"2%" or "0.02" -> 0.02; None when it is not a fraction strictly between 0 and 1."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        return None
    return value if 0 < value < 1 else None


@dataclass(frozen=True)
class _Spec:
    """What option() records on a RunConfig field; BenchOption joins it to the field."""

    cli: str | None
    help: str
    flag: ModelFlag | None
    rules: tuple[Rule, ...]
    stated: bool = False


def option(default: Any, cli: str | None, help: str = "", *, flag: ModelFlag | None = None,
           rules: Iterable[Rule] = (), stated: bool = False) -> Any:
    """A RunConfig field that is a benchmark option.

    cli: the command-line declaration ("--num-runs"; "--use-xnnpack/--no-xnnpack" for an
    on/off pair); None keeps the field off the command line. help defaults to naming the
    benchmark_model flag the option sets. stated: an on/off flag passed when off too.
    """
    if not help and flag is not None:
        help = f"benchmark_model --{flag.name}."
    return dataclasses.field(default=default, metadata={"option": _Spec(cli, help, flag, tuple(rules), stated)})


@dataclass
class RunConfig:
    """How a session measures. Every field is a benchmark option (see the module docstring)."""

    trials: int = option(5, "--trials", "Trials per variant (each one benchmark_model run).",
                         rules=count(1, 10_000, "Use --trials 5 (the default)."))
    warmup_runs: int = option(1, "--warmup-runs", flag=ModelFlag("warmup_runs", int, 1, "Min warmup runs"),
                              rules=[not_negative("Use --warmup-runs 1."),
                                     at_most(100_000, "Use --warmup-runs 1.")])
    num_runs: int = option(50, "--num-runs", flag=ModelFlag("num_runs", int, 50, "Min num runs"),
                           rules=count(1, 1_000_000, "Use --num-runs 50 (benchmark_model's default)."))
    min_secs: float = option(1.0, "--min-secs",
                             flag=ModelFlag("min_secs", float, 1.0, "Min runs duration (seconds)"),
                             rules=duration("Use --min-secs 1."))
    max_secs: float = option(150.0, "--max-secs",
                             flag=ModelFlag("max_secs", float, 150.0, "Max runs duration (seconds)"),
                             rules=[finite("Use --max-secs 150."),
                                    Rule(lambda value, config: value > 0 and value >= config.min_secs,
                                         "must be above --min-secs",
                                         "Use --max-secs 150 (benchmark_model's default)."),
                                    at_most(MAX_SECONDS, "Use --max-secs 150.", " s (24 h)")])
    # Always stated on the device (true, as the official tool defaults to), so which kernels
    # ran never depends on the binary's build and is stored with every trial. None (API only)
    # leaves the flag out.
    use_xnnpack: bool | None = option(True, "--use-xnnpack/--no-xnnpack",
                                      "XNNPACK kernels (default, as benchmark_model's); --no-xnnpack runs "
                                      "TFLite's own kernels (the 2019 path).",
                                      flag=ModelFlag("use_xnnpack", bool, True, "Use xnnpack"), stated=True)
    op_profiling: bool = option(False, "--op-profile", "Also record per-op times (op profiling).",
                                flag=ModelFlag("enable_op_profiling", bool, False, "Enable op profiling"))
    cooldown_s: float = option(0.0, "--cooldown", "Seconds to rest between trials.",
                               rules=duration("Use --cooldown 30 or leave it out."))
    thermal_gate_c: float | None = option(None, "--thermal-gate", "Wait until the CPU is below this many C (0-150).",
                                          rules=[finite("Use --thermal-gate 45."),
                                                 Rule(lambda value, _config: 0 < value <= 150,
                                                      "must be above 0 and at most 150 C", "Use --thermal-gate 45.")])
    thermal_timeout_s: float = option(600.0, "--thermal-timeout", "Give up waiting for the gate after S seconds.",
                                      rules=duration("Use --thermal-timeout 600.", positive_only=True))
    timeout_s: float | None = option(
        None, "--timeout", f"Per-trial timeout in seconds (default 2 * (max-secs + {WARMUP_ALLOWANCE_S:g}) + 30).",
        rules=duration("Leave it out for a default derived from --max-secs.", positive_only=True))
    resume: bool = option(False, "--resume/--no-resume", "Measure only trials not stored by the interrupted run.")
    reuse: bool = option(False, "--reuse", "Reuse stored trials of the same model, device and flags.")
    force_new: bool = option(False, "--force-new", "With --resume: start a new session when the options differ "
                             "from the interrupted session's (default: refuse, naming the differences).")
    keep_going: bool = option(False, "--keep-going", "Carry on past failed trials.")
    force: bool = option(False, "--force", "Run even if the phone does not match the profile.")
    seed: int | None = option(None, "--seed",
                              "Seed of the rounds' random order (default: drawn, and stored with the session).",
                              rules=[not_negative("Use --seed 1 or leave it out."),
                                     at_most(2**63 - 1, "Use --seed 1 or leave it out.")])
    precision: str | None = option(
        None, "--precision",
        "Keep running rounds until every median's and every comparison's 95% interval is within this "
        f"(e.g. 2%), or --max-time / --max-trials; --trials is then the minimum. `table` defaults to "
        f"{TABLE_PRECISION} within --max-time {TABLE_MAX_TIME_S:g}; `{NO_PRECISION}`: fixed --trials.",
        rules=[Rule(lambda value, _config: value == NO_PRECISION or parse_precision(value) is not None,
                    f"must be a percentage above 0 and below 100, e.g. 2%, or {NO_PRECISION}",
                    "Use --precision 2%.")])
    max_time_s: float | None = option(None, "--max-time",
                                      "With --precision: stop starting rounds after this many seconds of trials.",
                                      rules=duration("Use --max-time 300.", positive_only=True))
    max_trials: int | None = option(
        None, "--max-trials", f"With --precision: at most this many trials per variant (default {DEFAULT_MAX_TRIALS}).",
        rules=[*count(1, 10_000, "Use --max-trials 50."),
               Rule(lambda value, config: value >= config.trials, "cannot be below --trials",
                    "Raise --max-trials or lower --trials (the minimum).")])
    thermal_poll_s: float = option(2.0, None, "Seconds between CPU temperature reads while waiting for the gate.")
    num_threads: int = option(1, "--num-threads", "benchmark_model --num_threads (1, the paper's setting; the "
                              "threads share the one pinned core).",
                              rules=count(1, 64, "Use --num-threads 1 (the paper's setting)."))
    # Further benchmark_model flags, as given after `--` on the command line ("--name=value"):
    # passed as given, stored with the other flags, so they are part of what a trial measured.
    extra_flags: tuple[str, ...] = option((), None, "Further benchmark_model flags (--name=value).",
                                          rules=[Rule(lambda value, _config: extra_flags_problem(value) is None,
                                                      "has a flag that is not --name=value or that an option sets",
                                                      "Give each as --name=value after `--`, e.g. `-- "
                                                      "--use_gpu=false`; use the options for the flags they set "
                                                      "(e.g. --num-runs, --num-threads).")])

    def __post_init__(self) -> None:
        for opt in OPTIONS:
            opt.check(getattr(self, opt.name), self)

    @property
    def precision_target(self) -> float | None:
        """--precision as a fraction ("2%" -> 0.02); None when not asked for."""
        return None if self.precision in (None, NO_PRECISION) else parse_precision(self.precision)

    @property
    def trials_cap(self) -> int:
        """The most trials per variant an adaptive run may take."""
        return self.max_trials if self.max_trials is not None else max(DEFAULT_MAX_TRIALS, self.trials)

    @property
    def trial_timeout_s(self) -> float:
        """Per-trial limit: twice benchmark_model's own worst case, plus slack for init."""
        if self.timeout_s is not None:
            return float(self.timeout_s)
        return 2 * (self.max_secs + WARMUP_ALLOWANCE_S) + 30


@dataclass(frozen=True)
class BenchOption:
    """One benchmark option: a RunConfig field with its definition, as the other modules read it."""

    name: str  # the RunConfig field
    type: Any  # its type, e.g. int or `float | None`
    default: Any
    cli: str | None  # the command-line declaration, None when not on the command line
    help: str
    flag: ModelFlag | None  # the benchmark_model flag it sets
    rules: tuple[Rule, ...]
    stated: bool = False  # an on/off flag passed when off too (use_xnnpack)

    @property
    def optional(self) -> bool:
        """None is a value ("not set"): no rule applies to it and no flag is passed."""
        return type(None) in typing.get_args(self.type)

    @property
    def cli_name(self) -> str:
        """"--use-xnnpack" for "--use-xnnpack/--no-xnnpack": the name messages use."""
        return (self.cli or f"--{self.name}").split("/")[0]

    def check(self, value: Any, config: RunConfig) -> None:
        if value is None and self.optional:
            return
        for rule in self.rules:
            if not rule.holds(value, config):
                raise UsageError(f"{self.cli_name} {rule.problem}.", rule.hint)

    def flag_value(self, value: Any) -> str | None:
        """The flag's text for this value, or None to leave the flag out.

        An unset (None) option leaves benchmark_model's default. A plain on/off option is
        passed only when on: off is benchmark_model's default, and leaving it out keeps the
        stored flags of earlier trials comparable. A `stated` one is passed either way.
        """
        if self.flag is None or value is None or (self.type is bool and not value and not self.stated):
            return None
        return self.flag.format(value)


def _table() -> tuple[BenchOption, ...]:
    types = typing.get_type_hints(RunConfig)
    table = []
    for f in dataclasses.fields(RunConfig):
        spec: _Spec = f.metadata["option"]  # every field is made by option()
        table.append(BenchOption(f.name, types[f.name], f.default, spec.cli, spec.help, spec.flag, spec.rules,
                                 spec.stated))
    return tuple(table)


OPTIONS: tuple[BenchOption, ...] = _table()


def parse_extra_flags(extra: Iterable[str]) -> dict[str, str]:
    """{"name": "value"} from ("--name=value", ...)."""
    return dict(item[2:].split("=", 1) for item in extra)


def extra_flags_problem(extra: Iterable[str]) -> str | None:
    """What is wrong with extra flags, or None: each --name=value, none an option's own flag."""
    own = {flag.name for flag in model_flags()} | {"graph"}
    for item in extra:
        name = item[2:].split("=", 1)[0]
        if not item.startswith("--") or "=" not in item or not name:
            return f"{item!r} is not --name=value"
        if name in own:
            return f"--{name} is set by mnv3bench's own option"
    return None


def model_flags() -> list[ModelFlag]:
    """Every benchmark_model flag a RunConfig can set, pinned ones first."""
    return [flag for flag, _value in PINNED_FLAGS] + [o.flag for o in OPTIONS if o.flag is not None]
