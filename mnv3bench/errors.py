"""One error type for everything a user can cause or fix.

Every failure a user should see (bad input, unreachable device, failed run) is raised as
an `MnvError` with a message that names the problem and a hint that names the fix. The CLI
turns it into one paragraph on stderr and an exit status: 2 for usage errors (the command
line or an input file is wrong), 1 for runtime failures. Tracebacks only with --debug.
"""

from __future__ import annotations

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class MnvError(Exception):
    """A failure with a message for the user and a hint that says how to fix it."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"

    def __reduce__(self) -> tuple[object, ...]:
        # Worker processes send errors back by pickling. Rebuilding without __init__ keeps
        # message, hint, exit code and a subclass's own fields, whatever its __init__ takes.
        return _restore, (type(self), self.args, dict(self.__dict__))


class UsageError(MnvError):
    """The user asked for something that cannot be: a wrong name, flag or input file."""

    exit_code = EXIT_USAGE


def _restore(cls: type[MnvError], args: tuple[object, ...], state: dict[str, object]) -> MnvError:
    error = cls.__new__(cls, *args)
    error.__dict__.update(state)
    return error
