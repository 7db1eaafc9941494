"""The README's set-up commands are the ones CI runs, and set-up never installs into the current Python."""

from __future__ import annotations

import re
import shlex

import pytest

from mnv3bench.cli import main
from mnv3bench.tables.export.files import LATEST
from tests.helpers import REPO

README_COMMANDS = ("bash scripts/setup.sh && .venv/bin/mnv3bench table 5 --device emulator",
                   "bash scripts/setup.sh && .venv/bin/python -m pytest")


def test_the_readme_gives_the_two_commands() -> None:
    quick_start = (REPO / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for command in README_COMMANDS:
        assert command in quick_start


def test_ci_runs_the_readme_test_command_exactly() -> None:
    lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert README_COMMANDS[1] in lines
    assert "bash scripts/check_clean_setup.sh" in lines


def test_setup_installs_into_the_project_venv_only() -> None:
    script = (REPO / "scripts/setup.sh").read_text()
    installs = [line for line in script.splitlines() if re.search(r"\bpip install\b", line) and not line.lstrip().startswith("#")]
    assert installs and all(line.strip().startswith(".venv/bin/python -m pip install") for line in installs)
    assert "-c constraints.txt" in script and "MNV3BENCH_UNPINNED" in script


def test_the_clean_set_up_check_runs_command_1_for_real_and_checks_its_report(
        capsys: pytest.CaptureFixture[str]) -> None:
    script = (REPO / "scripts/check_clean_setup.sh").read_text()
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    [run] = [line for line in code if ".venv/bin/mnv3bench table 5 --device emulator" in line]
    assert "${clean[@]}" in run and 'cd "$scratch"' in run  # env -i, and the copy's own reports/
    assert any(f'reports/emulator/{LATEST}/table-5.md' in line for line in code)
    # The quick flags are table's own options: with an unknown device, only the device is wrong.
    [quick] = [line for line in code if line.startswith("quick=(")]
    flags = shlex.split(quick.removeprefix("quick=(").removesuffix(")"))
    with pytest.raises(SystemExit) as exit_info:
        main(["table", "5", "--device", "no-such-phone", *flags])
    assert exit_info.value.code != 0 and "unknown device profile 'no-such-phone'" in capsys.readouterr().err
