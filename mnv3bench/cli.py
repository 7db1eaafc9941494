"""Entry point: `mnv3bench` and `python -m mnv3bench`.

Commands are registered by importing their modules; `main` turns `MnvError` into one
paragraph on stderr and the error's exit status, without a traceback unless --debug.
"""

from __future__ import annotations

import importlib
import sys

from rich.markup import escape

from mnv3bench.cliapp import (
    app,
    set_invocation,
    set_passthrough,
    stderr,
    with_given_options,
)
from mnv3bench.errors import EXIT_USAGE, MnvError, UsageError

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
                "Reinstall mnv3bench (this is a packaging bug); --debug shows the traceback.",
            ) from exc


def _verbose_first(args: list[str]) -> list[str]:
    """-v / --verbose anywhere before `--` (as with --debug), moved to where the app reads it."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in ("-v", "--verbose")]
    if not flags:
        return args
    return ["--verbose", *(a for a in args[:end] if a not in ("-v", "--verbose")), *args[end:]]


def _run_app(args: list[str]) -> int:
    """Run the Typer app; its own usage errors (unknown option, missing argument) become a
    UsageError, so that every error a user sees has one form."""
    import typer

    try:
        status = app(args=args, prog_name="mnv3bench", standalone_mode=False)
    except typer.exceptions.TyperException as exc:  # click's errors, as Typer (which vendors click) raises them
        if type(exc).__name__ == "NoArgsIsHelpError":
            return EXIT_USAGE  # Typer printed the help when it raised this, as `--help` would
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "mnv3bench"
        code = getattr(exc, "exit_code", EXIT_USAGE)
        hint = f"Run `{command} --help` for its options and arguments."
        raise (UsageError(exc.format_message(), hint) if code == EXIT_USAGE
               else MnvError(exc.format_message(), hint, exit_code=code)) from exc
    except typer.Abort:
        raise MnvError("aborted.", "Run the command again when ready.") from None
    # Without standalone mode, click returns typer.Exit's code (or the command's None).
    return status if isinstance(status, int) else 0


def print_error(err: MnvError) -> None:
    """The one form of every user error: `error: <message>`, then `hint: <hint>` (the fix)."""
    stderr.print(f"[bold red]error:[/] {escape(err.message)}", highlight=False, soft_wrap=True)
    if err.hint:
        stderr.print(f"[bold]hint:[/] {escape(with_given_options(err.hint))}", highlight=False, soft_wrap=True)


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
        status = _run_app(args)
    except MnvError as err:
        if debug:
            raise
        print_error(err)
        sys.exit(err.exit_code)
    sys.exit(status)  # as Typer's standalone mode did: main always ends in SystemExit
