"""The CLI's shell: which heavy libraries a light command loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "benchmark_outputs" / "01.txt"
HEAVY = {"pandas", "matplotlib", "scipy", "tensorflow"}


def _imported_modules(args: list[str]) -> set[str]:
    """Top-level names of every module `python -X importtime -m mnv3bench ARGS` imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mnv3bench", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "mnv3bench" in names  # the output was read
    return names


@pytest.mark.parametrize("args", [["--help"], ["variants", "--help"], ["variants"], ["parse", str(FIXTURE)]],
                         ids=["help", "variants-help", "variants", "parse"])
def test_light_commands_import_no_heavy_library(args):
    assert _imported_modules(args) & HEAVY == set()
