"""Write constraints.txt: the exact versions installed here of everything mnv3bench and its
test extra need (their whole dependency tree), and nothing else from this environment.

Run it in an environment where `bash scripts/setup.sh && python3 -m pytest` has just passed:

    python3 scripts/freeze_constraints.py > constraints.txt

It reads the requirements from pyproject.toml, follows each installed distribution's own
requirements (markers evaluated for this Python and platform, extras followed), and pins the
installed version of each. Standard library and packaging tools only, so it runs offline.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
HEADER = """\
# The exact set of versions the test suite passed with; CI installs through it
# (scripts/setup.sh: pip install -e '.[test]' -c constraints.txt), so a new release of a
# dependency changes what CI tests only with a commit that updates this file.
# pyproject.toml keeps the compatible ranges users install from.
# Resolved on {python} {machine} ({system}); regenerate after the suite passes with:
#     python3 scripts/freeze_constraints.py > constraints.txt
"""


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in extras or {""})


def closure(roots: list[str]) -> dict[str, str]:
    """{distribution name: installed version} for `roots` and everything they require."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(Requirement(r), {""}) for r in roots]
    while todo:
        req, parent_extras = todo.pop()
        if not _applies(req, parent_extras):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            sys.exit(f"{req.name} is required but not installed: run `bash scripts/setup.sh` first.")
        pinned[name] = dist.version
        extras = {""} | {canonicalize_name(e) for e in req.extras}
        todo += [(Requirement(r), extras) for r in dist.requires or []]
    return pinned


def main() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    roots = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    pinned = closure(roots)
    print(HEADER.format(python=f"Python {platform.python_version()}", machine=platform.machine(),
                        system=platform.system()), end="")
    for name in sorted(pinned):
        print(f"{name}=={pinned[name]}")


if __name__ == "__main__":
    main()
