"""Entry point: `mnv3bench` and `python -m mnv3bench`.

Commands are registered by importing their modules; `main` turns `MnvError` into one
paragraph on stderr and the error's exit status, without a traceback unless --debug.
"""

from __future__ import annotations

import importlib
import sys

from mnv3bench.cliapp import (
    app,
    set_invocation,
    set_passthrough,
    stderr,
    with_given_options,
)
from mnv3bench.errors import MnvError

# Each module registers its commands on `app` when imported. Every one ships with the
# package, so one that is missing or fails to import is a packaging bug: it stops the CLI
# with the cause rather than leaving a command silently absent.
COMMAND_MODULES = [
    "variants",
    "build",
    "parse",
    "devices",
    "run",
    "emulator",
    "table",
    "profile",
]


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module = f"mnv3bench.commands.{name}"
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise MnvError(
                f"mnv3bench cannot load its command module {module} ({type(exc).__name__}: {exc}).",
                "This is a packaging bug: reinstall mnv3bench; --debug shows the traceback.",
            ) from exc


def _verbose_first(args: list[str]) -> list[str]:
    """-v / --verbose anywhere before `--` (as with --debug), moved to where the app reads it."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in ("-v", "--verbose")]
    if not flags:
        return args
    return ["--verbose", *(a for a in args[:end] if a not in ("-v", "--verbose")), *args[end:]]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    set_invocation(args)
    args = _verbose_first(args)
    # After `--`: flags for benchmark_model, not for mnv3bench (measuring commands read them).
    at = args.index("--") if "--" in args else len(args)
    set_passthrough(args[at + 1:])
    args = args[:at]
    try:
        _register_commands()
        # Typer handles its own usage errors (exit 2) and --help; everything we raise
        # for the user is an MnvError, printed here as one paragraph.
        app(args=args, prog_name="mnv3bench")
    except MnvError as err:
        if debug:
            raise
        stderr.print(f"[bold red]error:[/] {err.message}", highlight=False, soft_wrap=True)
        if err.hint:
            stderr.print(with_given_options(err.hint), highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
