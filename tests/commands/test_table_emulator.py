"""The main job end to end: `mnv3bench table 5 --device emulator` in a subprocess.

Real parts all the way: the nine full-size V3-Large models built and verified by the real
converter (on both cores, ~1-2 minutes: the full model is the point here), pushed over
real ADB to the in-process emulator, run by LiteRT, stored in a real SQLite file, and
rendered to Markdown, CSV, JSON and PNG. HOME is a tmp folder, so the adb key and the
emulated phone's files are this test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnv3bench.results import ResultStore
from mnv3bench.tables.definitions import get_table

pytestmark = pytest.mark.slow

# Three trials: the fewest that give a CI (fewer show none, see tests/tables/test_honest_numbers.py).
QUICK = ["--trials", "3", "--num-runs", "3", "--warmup-runs", "1", "--min-secs", "0", "--max-secs", "5",
         "--precision", "none"]
ROWS = ["V3", "0.85", "ReLU", "h-swish @16", "h-swish @112"]


def mnv3bench(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_CACHE_HOME", "MNV3BENCH_ADBKEY", "MNV3BENCH_ADB", "MNV3BENCH_DEVICES")}
    env.update(HOME=str(home), CI="1")
    return subprocess.run([sys.executable, "-m", "mnv3bench", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=900, check=False)


def test_table5_on_the_emulator_then_reuse_then_report(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    db, reports, models = tmp_path / "results.db", tmp_path / "reports", tmp_path / "models"
    paths = ["--db", str(db), "--reports-dir", str(reports), "--models-dir", str(models)]

    first = mnv3bench(["table", "5", "--device", "emulator", *QUICK, *paths, "--json"], home, work)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    rows = {r["row"]: r for r in doc["rows"]}
    assert list(rows) == ROWS
    for row in rows.values():
        for column in ("latency_ms_opt", "latency_ms_noopt"):
            cell = row[column]
            assert 0 < cell["ci_low"] <= cell["median"] <= cell["ci_high"], (row["row"], column, cell)
        assert row["paper_top1"] is not None  # quoted from the paper, never measured
        # The 0.85 row exists only in the paper's early version, which has no P-1 latency.
        assert (row["paper_p1_ms"] is None) == (row["row"] == "0.85")
    assert rows["ReLU"]["latency_ms_noopt"] == rows["ReLU"]["latency_ms_opt"]  # no h-swish: one model
    assert doc["missing"] == []

    # Where the time went: all nine models were built here, then 27 trials benchmarked.
    timings = doc["timings"]
    assert timings["trials"] == 27 and timings["build_s"] > 0 and timings["benchmark_s"] > 0
    assert "time: build" in first.stderr
    assert (home / ".android" / "adbkey").is_file()  # the key went to the tmp HOME, not the user's

    folder = reports / "emulator" / "latest"  # the newest session's files (each session has its own folder)
    for name in ("table-5.md", "table-5.csv", "table-5.json", "table-5-latency.png", "table-5-change.png"):
        assert (folder / name).stat().st_size > 0, name
    assert "| V3 |" in (folder / "table-5.md").read_text()

    variants = get_table("5").variants()
    with ResultStore(db) as store:
        trials = store.trials(device="emulator")
    assert trials["ok"].astype(bool).all()
    assert trials.groupby("variant").size().to_dict() == {v: 3 for v in variants}

    # --reuse: every trial is stored already, so nothing is measured (or built) again.
    again = mnv3bench(["table", "5", "--device", "emulator", *QUICK, *paths, "--reuse", "--json"], home, work)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["timings"]["trials"] == 0
    assert "Already measured" in again.stderr
    with ResultStore(db) as store:
        assert len(store.trials()) == len(trials)
    reused = {r["row"]: r for r in json.loads(again.stdout)["rows"]}
    assert reused["V3"]["latency_ms_opt"] == rows["V3"]["latency_ms_opt"]

    # report re-renders from the database alone.
    (folder / "table-5.md").unlink()
    report = mnv3bench(["report", "--device", "emulator", "--table", "5", "--db", str(db), "--reports-dir",
                        str(reports), "--json"], home, work)
    assert report.returncode == 0, report.stderr
    rendered = {r["row"]: r for r in json.loads(report.stdout)["rows"]}
    for name in ROWS:
        assert rendered[name]["latency_ms_opt"] == rows[name]["latency_ms_opt"]
        assert rendered[name]["latency_ms_noopt"] == rows[name]["latency_ms_noopt"]
    assert (folder / "table-5.md").is_file()
