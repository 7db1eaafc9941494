"""A wheel built from pyproject, installed into a fresh venv, runs the main job.

Catches data files left out of the package (the device profiles once were), and code that
finds its files through the checkout rather than through the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

QUICK = ["--trials", "2", "--num-runs", "3", "--warmup-runs", "1", "--min-secs", "0", "--max-secs", "5",
         "--precision", "none"]


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def _build_wheel(tmp_path: Path) -> Path:
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(REPO / "mnv3bench", source / "mnv3bench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    # No build isolation: the build backend comes from this environment, with no download.
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                  str(source)], timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("mnv3bench-*.whl")
    return wheel


@pytest.mark.timeout(2700)  # the first user of table_models builds ~21 models inside its time
def test_a_wheel_in_a_fresh_venv_runs_table_5_on_the_emulator(tmp_path, table_models):
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    # The dependencies (TensorFlow, LiteRT) come from this machine's environment.
    assert _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], timeout=120).returncode == 0
    installed = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                     timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MNV3BENCH_HOME", "MNV3BENCH_DEVICES", "MNV3BENCH_ADB", "MNV3BENCH_ADBKEY",
                        "XDG_CACHE_HOME", "XDG_DATA_HOME")}
    env.update(HOME=str(home), CI="1")
    # The session's table models, as a warm user cache: the installed package hashes the same
    # sources, so they are cache hits, and this test measures the install, not the converter.
    cache = home / ".cache" / "mnv3bench" / "models"
    shutil.copytree(table_models, cache)
    python = str(venv / "bin" / "python")
    where = _run([python, "-c", "import mnv3bench; print(mnv3bench.__file__)"], env=env, cwd=work, timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the wheel, not the checkout

    version = _run([str(venv / "bin" / "mnv3bench"), "--version"], env=env, cwd=work, timeout=60)
    assert version.returncode == 0 and "TensorFlow" in version.stdout and "LiteRT" in version.stdout

    done = _run([str(venv / "bin" / "mnv3bench"), "table", "5", "--device", "emulator", *QUICK, "--json"],
                env=env, cwd=work, timeout=1500)
    assert done.returncode == 0, done.stderr
    assert next(r["row"] for r in json.loads(done.stdout)["rows"]) == "V3"
    # Outside a checkout, nothing lands in the current folder: the user's data folder holds the results.
    reports = home / ".local" / "share" / "mnv3bench" / "reports"
    assert (reports / "results.db").is_file() and (reports / "emulator" / "latest" / "table-5.md").is_file()
    assert list(work.iterdir()) == []
    assert f"results stored in {reports / 'results.db'}" in done.stderr
