"""Where mnv3bench keeps what it writes when no option says where.

In order:
1. $MNV3BENCH_HOME: one folder set once for every command (DIR/models, DIR/reports).
2. Inside a checkout of mnv3bench (the current folder or one above it holds the project's
   pyproject.toml): that checkout's own models/ and reports/.
3. Elsewhere: the user's cache and data folders, as the XDG base directory spec names them:
   $XDG_CACHE_HOME/mnv3bench/models (rebuildable) and $XDG_DATA_HOME/mnv3bench/reports
   (results.db and the report files: measurements are data, not cache).
--models-dir, --db and --reports-dir override each one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "MNV3BENCH_HOME"
_PROJECT_NAME = re.compile(r'^name\s*=\s*"mnv3bench"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Locations:
    models: Path
    reports: Path
    source: str  # why these: "$MNV3BENCH_HOME", "checkout <root>", "user folders"

    @property
    def db(self) -> Path:
        return self.reports / "results.db"


def checkout_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` (the current folder) whose pyproject.toml is mnv3bench's."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        try:
            if pyproject.is_file() and _PROJECT_NAME.search(pyproject.read_text(encoding="utf-8", errors="replace")):
                return folder
        except OSError:
            continue  # an unreadable folder on the way up is not a checkout
    return None


def _xdg(name: str, fallback: str) -> Path:
    value = os.environ.get(name, "")
    # The spec says a relative value is invalid and must be ignored.
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def default_locations() -> Locations:
    home = os.environ.get(HOME_ENV, "").strip()
    if home:
        root = Path(home).expanduser()
        return Locations(root / "models", root / "reports", f"${HOME_ENV}")
    root = checkout_root()
    if root is not None:
        return Locations(root / "models", root / "reports", f"checkout {root}")
    return Locations(_xdg("XDG_CACHE_HOME", ".cache") / "mnv3bench" / "models",
                     _xdg("XDG_DATA_HOME", ".local/share") / "mnv3bench" / "reports", "user folders")


def default_models_dir() -> Path:
    return default_locations().models


def default_reports_dir() -> Path:
    return default_locations().reports


def default_db() -> Path:
    return default_locations().db
