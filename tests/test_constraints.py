"""constraints.txt (the versions CI installs) stays within pyproject.toml's ranges (what users get)."""

from __future__ import annotations

import platform
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import REPO


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                    reason="constraints.txt is resolved for Linux x86-64, where CI runs")
def test_every_direct_requirement_is_pinned_within_its_range() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for text in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue  # another platform's requirement (tensorflow vs tensorflow-cpu)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {req}"


def test_the_header_says_how_to_regenerate_it() -> None:
    assert "python3 scripts/freeze_constraints.py > constraints.txt" in (REPO / "constraints.txt").read_text()
