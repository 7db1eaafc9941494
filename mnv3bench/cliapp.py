"""The Typer app and the options shared by its commands.

Each command lives in `mnv3bench/commands/<noun>.py` and registers itself on `app` (or on a
sub-app for nouns with several verbs). `mnv3bench/cli.py` imports them all and runs `main`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console

HELP = """Measure how MobileNetV3's design choices change its latency on a phone.

Builds model variants, converts them to TFLite, runs TFLite's benchmark_model on one big core of an Android phone over ADB (or on the host emulator), stores every trial in SQLite and renders the paper's ablation tables beside the paper's own numbers.
"""

# Typer's help shows a type beside every option, "<bool>" for flags too, which reads as if a
# flag took a value (`--json true` is an error). A flag takes none, so its type is not shown.
_display_type_rich = typer.core.TyperOption.display_type_rich


def _flag_shows_no_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_shows_no_type  # type: ignore[method-assign]

app = typer.Typer(
    name="mnv3bench",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        from mnv3bench.versions import version_text

        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors (accepted anywhere on the line).")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the versions of mnv3bench, TensorFlow and LiteRT, and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="One line per event (each trial with its latency, "
                                          "each model built) instead of progress bars.")] = False,
) -> None:
    """Options that apply to every command. (--debug itself is read by cli.main.)"""
    global _verbose
    _verbose = verbose


# stdout carries results (tables, --json); stderr carries progress, warnings and errors.
# Off a terminal Rich would squeeze wide result tables into 80 columns and cut numbers.
stdout = Console() if sys.stdout.isatty() else Console(width=240)
stderr = Console(stderr=True)


def print_json(data: Any) -> None:
    """Print `data` on stdout as JSON, indented by 2: the one way every `--json` prints.

    Plain text, never highlighted or wrapped, so that it pipes into jq or json.loads as is.
    numpy scalars (from pandas columns) print as numbers; anything else unknown is a bug.
    """
    typer.echo(json.dumps(data, indent=2, default=_json_default))


# Options that say where the user works: a suggested command repeats the ones given on this
# command line (when the suggested command takes them), so following a hint reads and writes
# the same database, models, reports and device. True: takes a value; False: a flag.
WHERE_OPTIONS = {"--db": True, "--models-dir": True, "--reports-dir": True, "--device": True, "--adb": True,
                 "--adb-server": True, "--serial": True, "--direct": False}
_ALIASES = {"-d": "--device"}


def given_where_options() -> dict[str, list[str | None]]:
    """WHERE_OPTIONS given on this command line, every value in order (several phones repeat
    --device and --serial): {"--db": ["x.db"], "--device": ["a", "b"], "--direct": [None], ...}."""
    args = list(_invocation)
    args = args[:args.index("--")] if "--" in args else args
    found: dict[str, list[str | None]] = {}
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        name = _ALIASES.get(name, name)
        if name not in WHERE_OPTIONS:
            continue
        if not WHERE_OPTIONS[name]:
            found[name] = [None]
        elif eq:
            found.setdefault(name, []).append(value)
        elif i + 1 < len(args):
            found.setdefault(name, []).append(args[i + 1])
    return found


def _accepted_options(words: list[str]) -> dict[str, bool] | None:
    """The options the mnv3bench command `words` names takes, each with whether it may be
    repeated (None: not a command we know)."""
    command: Any = typer.main.get_command(app)
    for word in words:
        if not hasattr(command, "get_command"):  # a command, not a group of them
            break
        sub = command.get_command(typer.Context(command), word)
        if sub is None:
            break
        command = sub
    if hasattr(command, "get_command"):
        return None
    return {opt: bool(getattr(param, "multiple", False))
            for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _one_phone(given: dict[str, list[str | None]], phone: str | None) -> dict[str, list[str | None]]:
    """The given options for a command about one phone: that phone's --device with its own
    --serial (serials pair with devices in order). With several phones given and none named,
    neither: a guess could point at the wrong phone."""
    devices, serials = given.get("--device", []), given.get("--serial", [])
    one = {name: values[-1:] for name, values in given.items()}
    if len(devices) > 1:
        index = devices.index(phone) if phone in devices else None
        paired = len(serials) == len(devices)
        one = {name: values for name, values in one.items() if name != "--device" and not (paired and name == "--serial")}
        if index is not None:
            one = {"--device": [devices[index]], **({"--serial": [serials[index]]} if paired else {}), **one}
    return one


def suggest(command: str, *, phone: str | None = None, **options: str | None) -> str:
    """A command to suggest ("mnv3bench run --device D a b"), with the options the user gave
    that say where they work (WHERE_OPTIONS: --db, --models-dir, --reports-dir, --device, --adb,
    --adb-server, --serial, --direct) added when the command takes them and does not name them
    already, so following the advice reads and writes what the user was working with.

    With several phones (--device and --serial repeated), a command that takes them repeated
    (run, table, compare) gets every value; a command about one phone (doctor, or one that
    names its --device; `phone` names it for a phone's own hint) gets that phone's --device
    and its own --serial. `options` (e.g. db="x.db") add more, for callers outside the command line."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:  # not a command line after all (an unbalanced quote): leave it as written
        return command
    present = {_ALIASES.get(w.partition("=")[0], w.partition("=")[0]) for w in words}
    named = [words[i + 1] for i, w in enumerate(words[:-1]) if _ALIASES.get(w, w) == "--device"]
    given = given_where_options()
    accepted = (_accepted_options([w for w in words[1:] if not w.startswith("-")][:2])
                if (given or any(options.values())) and _invocation else None)
    if accepted is None or not accepted.get("--device") or len(named) == 1 or phone is not None:
        given = _one_phone(given, named[0] if len(named) == 1 else phone)
    wanted = {**given,
              **{f"--{name.replace('_', '-')}": [str(value)] for name, value in options.items() if value}}
    wanted = {name: values if accepted is None or accepted[name] else values[-1:] for name, values in wanted.items()
              if name not in present and (accepted is None or name in accepted)}
    added = [name if value is None else f"{name} {shlex.quote(value)}"
             for name, values in wanted.items() for value in values]
    if not added:
        return command
    if " -- " in f" {command} ":
        head, _, tail = f" {command} ".partition(" -- ")
        return " ".join([head.strip(), *added, "--", tail.strip()]).strip()
    return " ".join([command, *added])


def with_given_options(text: str, *, phone: str | None = None) -> str:
    """Every `mnv3bench ...` command quoted in backticks in `text` (a hint, a warning), passed
    through `suggest`: the one place hints written anywhere in the package get the user's
    --db, --adb, --serial and the like. `phone`: the text is about that one of several phones."""
    import re

    if "`mnv3bench " not in text:
        return text
    return re.sub(r"`(mnv3bench [^`]+)`", lambda m: f"`{suggest(m.group(1), phone=phone)}`", text)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_verbose = False  # -v / --verbose, set by the app's callback before any command runs
# The arguments as the user typed them (less --debug), for commands to suggest running again.
_invocation: tuple[str, ...] = ()
# What followed `--` on the command line: benchmark_model flags for the measuring commands.
_passthrough: tuple[str, ...] = ()


def set_invocation(args: list[str]) -> None:
    global _invocation
    _invocation = tuple(args)


def rerun_command(flag: str | None = None, *, fallback: str = "mnv3bench") -> str:
    """The user's own command line, every option repeated, with `flag` (e.g. "--resume") added
    before any `--` unless given (its `--no-` form is dropped). `fallback` when not run from the CLI."""
    import shlex

    if not _invocation:
        return fallback if flag is None or flag in fallback.split() else f"{fallback} {flag}"
    args = list(_invocation)
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    if flag is not None and flag not in head:
        head = [a for a in head if a != f"--no-{flag.removeprefix('--')}"] + [flag]
    return shlex.join(["mnv3bench", *head, *tail])


def set_passthrough(args: list[str]) -> None:
    global _passthrough
    _passthrough = tuple(args)


def passthrough() -> tuple[str, ...]:
    return _passthrough


def plain_output() -> bool:
    """True when progress displays should be off: -v, not a terminal, or running in CI."""
    return _verbose or bool(os.environ.get("CI")) or not sys.stderr.isatty()


# Shared option aliases (fastapi-cloud-cli style): one definition, used by every command.
DeviceOpt = Annotated[
    str,
    typer.Option("--device", "-d", help="Device profile name (`mnv3bench devices` lists them; e.g. pixel3, emulator)."),
]
AdbOpt = Annotated[
    str | None,
    typer.Option(
        "--adb",
        # Not an envvar option: MNV3BENCH_ADB is read where the connection is made, so that
        # an explicit --serial can override it (Typer could not tell them apart).
        help="Reach the device over TCP at HOST:PORT (e.g. 192.168.1.20:5555). Default: $MNV3BENCH_ADB.",
    ),
]
SerialOpt = Annotated[
    str | None,
    typer.Option("--serial", help="Pick the device by its serial: any serial the adb server lists (a USB phone, "
                 "or HOST:PORT attached with `adb connect`), or a USB serial on the direct route."),
]
AdbServerOpt = Annotated[
    str | None,
    typer.Option("--adb-server", help="Go through the adb server at HOST:PORT. Default: the running one "
                 "($ANDROID_ADB_SERVER_HOST/PORT, else 127.0.0.1:5037), if any."),
]
DirectOpt = Annotated[
    bool,
    typer.Option("--direct", help="Talk to the device's adbd directly (adb-shell), even when an adb server runs."),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Results database (default: reports/results.db in the checkout, $MNV3BENCH_HOME or the user's data folder)."),
]
ReportsDirOpt = Annotated[
    Path | None,
    typer.Option("--reports-dir", help="Folder for report files (default: reports/ in the checkout, $MNV3BENCH_HOME or the user's data folder, see README); tables go to DIR/<device>/session-<N>/ (DIR/<device>/latest/ shows the newest session's), profile plots to DIR/<device>/."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
# Which stored session a report reads (selection.py): by default one, never several silently.
SessionOpt = Annotated[int | None, typer.Option("--session", help="Read this session's trials (default: the newest "
                                                "session that measured the variants together).", min=1)]
AllSessionsOpt = Annotated[bool, typer.Option("--all-sessions", help="Pool the trials of every session, on purpose "
                                              "(a warning names each session's median).")]
