"""`mnv3bench table N --device A --device B ...` through cli.main, each profile on its own packaged
fake phone: the phones' columns side by side beside the paper's, and one phone failing."""

from __future__ import annotations

import json

import pytest

import mnv3bench.commands.table as table_cmd
import mnv3bench.model.builds as builds
from mnv3bench.bench import runner
from mnv3bench.device.protocol import ShellResult
from mnv3bench.testing import FakeDevice, FakeSensors
from mnv3bench.testing import benchmark_output as good_output
from tests.bench.helpers import make_artifacts
from tests.helpers import main_in_process as cli

PIXELS = ("pixel1", "pixel2", "pixel3")
QUICK_FAKE = ["--trials", "3", "--num-runs", "3", "--warmup-runs", "1", "--min-secs", "0", "--precision", "none"]


@pytest.fixture
def phones(monkeypatch, tmp_path):
    """A fake phone per profile (pixel2's a little slower), and fake prebuilt models."""
    devices = {name: FakeDevice(lambda g, n, k=k: ShellResult(good_output(9000 * k + 50 * n), 0, False),
                                serial=name.upper()) for k, name in enumerate(PIXELS, start=1)}

    def fake_session(profile, variants, config, store, **kw):
        return runner.run_session(profile, variants, config, store, device=devices[profile.name],
                                  artifacts=kw["artifacts"], progress=kw["progress"], sensors=FakeSensors(),
                                  sleep=lambda s: None, command_line=kw["command_line"])

    monkeypatch.setattr(table_cmd, "run_session", fake_session)
    monkeypatch.setattr(builds, "ensure_models",
                        lambda variants, **kw: make_artifacts(tmp_path, [v.name for v in variants]))
    return devices


def _argv(tmp_path, *extra):
    devices = [a for name in PIXELS for a in ("--device", name)]
    serials = [a for name in PIXELS for a in ("--serial", name.upper())]
    return ["table", "3", *devices, *serials, *QUICK_FAKE, "--db", str(tmp_path / "r.db"),
            "--reports-dir", str(tmp_path / "rep"), *extra]


def test_table_3_on_three_phones_fills_p1_p2_p3_beside_the_paper(phones, tmp_path, capsys) -> None:
    code, out, err = cli(_argv(tmp_path, "--json"), capsys)
    assert code == 0, err
    for name in PIXELS:
        assert f"{name}: {name.upper()} (given with --serial)" in err
    doc = json.loads(out)
    assert [t["device"] for t in doc["tables"]] == list(PIXELS)
    side = doc["side_by_side"]
    assert side["devices"] == list(PIXELS) and side["paper_columns"] == ["P-1", "P-2", "P-3"]
    medians = [side["rows"][0]["measured"][name]["opt"]["median_ms"] for name in PIXELS]
    assert medians == pytest.approx([9.4, 18.4, 27.4], abs=0.5)  # each phone's own trials
    for name in PIXELS:
        assert (tmp_path / "rep" / name / "latest" / "table-3.md").exists()  # a phone's own report, as alone
    side_dir, stem = tmp_path / "rep" / "side-by-side", "table-3-pixel1-pixel2-pixel3"
    first = json.loads((side_dir / "latest" / f"{stem}.json").read_text())
    assert sorted(first["sessions"]) == [1, 2, 3] and first["session_id"] == 3
    assert (side_dir / f"sessions-{'-'.join(map(str, first['sessions']))}" / f"{stem}.md").exists()

    code, out, err = cli(_argv(tmp_path, "--reuse"), capsys)
    assert code == 0, err
    # A later run keeps the first run's files, in their own folder; latest/ shows the newest.
    second = json.loads((side_dir / "latest" / f"{stem}.json").read_text())
    assert sorted(second["sessions"]) == [4, 5, 6] and second["session_id"] == 6
    assert len(list(side_dir.glob(f"sessions-*/{stem}.md"))) == 2
    assert "pixel2 (P-2) ms" in out and "paper P-2 ms" in out
    for name in PIXELS:  # each phone's own notes, as alone
        assert f"\n{name}:\n• Device {name} is the paper's phone" in out


def test_a_phone_that_fails_leaves_the_others_side_by_side_and_reuse_finishes_it(phones, tmp_path, capsys) -> None:
    phones["pixel2"].respond = lambda g, n: OSError("USB cable pulled") if n == 2 else ShellResult(
        good_output(9000), 0, False)
    code, out, err = cli(_argv(tmp_path, "--json"), capsys)
    assert code == 1
    assert "1 of 3 phones failed: pixel2: Lost the connection to PIXEL2" in err and "--reuse" in err
    hint = err[err.index("hint: "):]
    assert hint.startswith("hint: Fix the cause on each failed phone (below)")  # the one hint rule
    assert "\npixel2: Check the cable" in hint  # then the phone's own hint
    assert hint.rstrip().endswith("That is: " + " ".join(_argv(tmp_path, "--json", "--reuse")).replace("table", "mnv3bench table", 1))
    assert json.loads(out)["side_by_side"]["devices"] == ["pixel1", "pixel3"]

    phones["pixel2"].respond = lambda g, n: ShellResult(good_output(9000), 0, False)
    before = len(phones["pixel1"].benchmarks)
    code, out, err = cli(_argv(tmp_path, "--json", "--reuse"), capsys)
    assert code == 0, err
    assert json.loads(out)["side_by_side"]["devices"] == list(PIXELS)
    assert len(phones["pixel1"].benchmarks) == before  # nothing measured again where nothing was missing


def test_a_profile_twice_in_a_table_is_a_usage_error(phones, tmp_path, capsys) -> None:
    code, _, err = cli(["table", "3", "--device", "pixel1", "--device", "pixel1", "--serial", "A", "--serial", "B",
                        "--db", str(tmp_path / "r.db")], capsys)
    assert code == 2 and "one column per profile" in err


def test_table_4_puts_each_phone_beside_its_paper_column(phones, tmp_path, capsys) -> None:
    argv = _argv(tmp_path, "--json")
    argv[1] = "4"
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    side = json.loads(out)["side_by_side"]
    assert side["table"] == "4" and side["devices"] == list(PIXELS)
    assert side["paper_columns"] == ["P-1", "P-2", "P-3"]
    assert side["device_columns"] == {"pixel1": "P-1", "pixel2": "P-2", "pixel3": "P-3"}
    first = side["rows"][0]["measured"]
    assert [first[name]["opt"]["n"] for name in PIXELS] == [3, 3, 3]


@pytest.mark.slow
def test_table_3_on_three_twins_end_to_end(rel_env, small_model, tmp_path, monkeypatch, capsys) -> None:
    """`table 3` on three in-process twins with the fixed-time fault (each run waits 0.05 s and
    computes nothing, so the twins do not share the host's cores): P-1, P-2 and P-3 filled."""
    from mnv3bench.tables.definitions import get_table
    from tests.commands.helpers import stand_in_models
    from tests.helpers import QUICK

    monkeypatch.setenv("MNV3BENCH_EMU_RUN_S", "0.05")
    models = stand_in_models(small_model, get_table("3").variants(), tmp_path / "models")
    devices = [a for name in PIXELS for a in ("--device", name)]
    code, out, err = cli(["table", "3", *devices, "--adb", "emulate:fixed-time", "--trials", "2", *QUICK,
                          "--db", str(tmp_path / "r.db"), "--reports-dir", str(tmp_path / "rep"),
                          "--models-dir", str(models), "--json"], capsys)
    assert code == 0, err
    side = json.loads(out)["side_by_side"]
    assert side["devices"] == list(PIXELS) and side["paper_columns"] == ["P-1", "P-2", "P-3"]
    for row in side["rows"]:
        assert [row["measured"][name]["opt"]["median_ms"] for name in PIXELS] == [50.0] * 3, row
        assert [row["measured"][name]["opt"]["n"] for name in PIXELS] == [2] * 3
    markdown = next((tmp_path / "rep" / "side-by-side" / "latest").glob("table-3-*.md")).read_text()
    assert "| pixel1 (P-1) ms | pixel2 (P-2) ms | pixel3 (P-3) ms |" in markdown
