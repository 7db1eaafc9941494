"""Folder and file names that come from data, checked before anything is written under them.

A device profile name read from a shared results database, a table name or a variant name
becomes a folder under --reports-dir. "../x", "/abs" or "a/b" there would write outside the
folder the user named, so such a name is refused: it must be one plain path component.
"""

from __future__ import annotations

import re

from mnv3bench.errors import UsageError

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def is_safe_component(name: str) -> bool:
    """One path component that cannot climb out or be absolute: letters, digits, . _ + -,
    starting with a letter or digit ("..", ".hidden", "a/b", "/abs" and "" are not)."""
    return isinstance(name, str) and _SAFE.fullmatch(name) is not None


def require_safe_component(name: str, what: str) -> str:
    if not is_safe_component(name):
        raise UsageError(
            f"the {what} {name!r} is not a safe folder name, so nothing was written for it.",
            "Use a name that is one path component of letters, digits, '.', '_', '+' or '-' "
            "(no '/', no '..'): it becomes a folder name.",
        )
    return name
