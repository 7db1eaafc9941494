"""The CLI's shell: which heavy libraries a light command loads, and a command module that fails."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mnv3bench.commands
from mnv3bench import cli
from mnv3bench.errors import MnvError
from tests.helpers import BENCHMARK_OUTPUTS, REPO

FIXTURE = BENCHMARK_OUTPUTS / "01.txt"
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


def test_a_missing_command_module_stops_the_cli(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "nosuchnoun"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "mnv3bench.commands.nosuchnoun" in err and "ModuleNotFoundError" in err and "packaging bug" in err


def test_a_broken_command_module_stops_the_cli_with_its_cause(monkeypatch, tmp_path, capsys):
    (tmp_path / "brokennoun.py").write_text("raise RuntimeError('half-written module')\n")
    monkeypatch.setattr(mnv3bench.commands, "__path__", [*mnv3bench.commands.__path__, str(tmp_path)])
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "brokennoun"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["variants", "--help"])
    assert exit_info.value.code == 1
    assert "mnv3bench.commands.brokennoun (RuntimeError: half-written module)" in capsys.readouterr().err
    with pytest.raises(MnvError) as raised:  # --debug: the traceback, with the module's own error as cause
        cli.main(["--debug", "--help"])
    assert isinstance(raised.value.__cause__, RuntimeError)
