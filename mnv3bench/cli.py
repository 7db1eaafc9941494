"""Entry point: `mnv3bench` and `python -m mnv3bench`.

Commands are registered by importing their modules; `main` turns `MnvError` into one
paragraph on stderr and the error's exit status, without a traceback unless --debug.
"""

from __future__ import annotations

import importlib
import sys

from mnv3bench.cliapp import app, stderr
from mnv3bench.errors import MnvError

# Each module registers its commands on `app` when imported. A module that is not written
# yet is skipped, so the CLI works while the project grows.
COMMAND_MODULES = [
    "variants",
    "build",
    "parse",
    "devices",
    "run",
    "emulator",
    "table",
]


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"mnv3bench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mnv3bench.commands.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    _register_commands()
    try:
        # Typer handles its own usage errors (exit 2) and --help; everything we raise
        # for the user is an MnvError, printed here as one paragraph.
        app(args=args, prog_name="mnv3bench")
    except MnvError as err:
        if debug:
            raise
        stderr.print(f"[bold red]error:[/] {err.message}", highlight=False, soft_wrap=True)
        if err.hint:
            stderr.print(err.hint, highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
