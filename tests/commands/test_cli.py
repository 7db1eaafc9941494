"""The CLI's shell: which heavy libraries a light command loads, a command module that fails, and
the one form of every error (`error: <message>`, then `hint: <fix>`), Typer's own included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mnv3bench.commands
from mnv3bench import cli
from mnv3bench.errors import MnvError
from tests.helpers import BENCHMARK_OUTPUTS, REPO, main_in_process

FIXTURE = BENCHMARK_OUTPUTS / "01.txt"
HEAVY = {"pandas", "matplotlib", "scipy", "tensorflow"}


LIGHT_COMMANDS = {"help": ["--help"], "variants-help": ["variants", "--help"], "variants": ["variants"],
                  "parse": ["parse", str(FIXTURE)]}
# Runs each command with mnv3bench.cli.main in one fresh interpreter, one after the other, and
# writes the top-level names in sys.modules after each: a heavy import shows from the first
# command that made it. One process instead of one per command (each start is a second of CPU).
_RUN_EACH = """
import json, sys
from mnv3bench.cli import main
report = {}
for name, argv in json.loads(sys.argv[1]).items():
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    report[name] = {"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}
with open(sys.argv[2], "w") as out:
    json.dump(report, out)
"""


def test_light_commands_import_no_heavy_library(tmp_path: Path) -> None:
    report_path = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _RUN_EACH, json.dumps(LIGHT_COMMANDS), str(report_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert list(report) == list(LIGHT_COMMANDS)
    for name, seen in report.items():
        assert seen["code"] == 0, (name, proc.stderr[-2000:])
        assert "mnv3bench" in seen["modules"]  # the list was read
        assert set(seen["modules"]) & HEAVY == set(), f"`mnv3bench {' '.join(LIGHT_COMMANDS[name])}` imports them"


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


# -- one form for every error ------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message", "command"), [
    (["variants", "--bogus"], "No such option: --bogus", "mnv3bench variants"),
    (["parse"], "Missing argument 'FILE'.", "mnv3bench parse"),
    (["nosuchcommand"], "No such command 'nosuchcommand'.", "mnv3bench"),
    (["run", "--trials", "x", "large"], "Invalid value for '--trials'", "mnv3bench run"),
])
def test_typer_usage_errors_print_the_one_error_form_and_exit_2(argv, message, command, capsys):
    code, out, err = main_in_process(argv, capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [err.splitlines()[0], f"hint: Run `{command} --help` for its options and arguments."]
    assert err.startswith(f"error: {message}")
    assert "Usage:" not in err and "╭" not in err  # no Typer box


def test_our_errors_print_the_same_form(capsys):
    code, out, err = main_in_process(["build", "medium"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: invalid variant name 'medium'")
    assert "\nhint: Use one of the families: large, small, v2." in err


def test_a_usage_error_in_a_real_process_exits_2_in_the_one_form():
    proc = subprocess.run([sys.executable, "-m", "mnv3bench", "variants", "--bogus"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: No such option: --bogus",
                                        "hint: Run `mnv3bench variants --help` for its options and arguments."]


def test_help_and_no_arguments_keep_their_exit_status(capsys):
    assert main_in_process(["variants", "--help"], capsys)[0] == 0
    code, out, _ = main_in_process([], capsys)
    assert code == 2 and "Usage" in out  # no command: the help, as a usage error


def test_brackets_in_an_error_print_as_written(tmp_path, capsys):
    # Messages are text, not Rich markup: "[emulator]" once vanished from this one.
    profile = tmp_path / "phone.toml"
    profile.write_text((REPO / "mnv3bench" / "devices" / "emulator.toml").read_text().replace("sdk = 34", "sdk = -1"))
    code, _, err = main_in_process(["doctor", "--device", str(profile)], capsys)
    assert code == 2
    assert "[emulator] key 'sdk' = -1 is out of range" in err and "hint: Write it like `sdk = 34` in [emulator]." in err
