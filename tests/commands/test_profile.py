"""`mnv3bench profile` and `run --op-profile` on the emulator: real LiteRT op profiles, stored
per trial, attributed to blocks (a small model at r96, built once per session)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mnv3bench.results import ResultStore
from tests.helpers import SMALL
from tests.helpers import main_in_process as cli

QUICK = ["--trials", "1", "--num-runs", "3", "--warmup-runs", "1", "--min-secs", "0", "--max-secs", "10"]


@pytest.fixture
def this_checkouts_standin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulated phone starts the stand-in with `python -I`, which imports the installed
    mnv3bench; drop -I so that the child runs the checkout under test."""
    real = subprocess.Popen

    class Popen(real):  # type: ignore[misc, valid-type]
        def __init__(self, args, *rest, **kwargs):
            if isinstance(args, list) and "mnv3bench.emulator.standin" in args:
                args = [a for a in args if a != "-I"]
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Popen)


@pytest.mark.parametrize("kernels", [["--no-xnnpack"], []], ids=["builtin", "xnnpack"])
def test_profile_json_attributes_the_run_to_blocks(rel_env, small_model: Path, this_checkouts_standin, capsys,
                                                   kernels: list[str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The plot goes to --reports-dir, else to the default reports folder; never to the current folder.
    monkeypatch.setenv("MNV3BENCH_HOME", str(tmp_path / "home-dir"))
    where = ["--reports-dir", str(tmp_path / "given")] if kernels else []
    code, out, err = cli(["profile", SMALL, "--device", "emulator", *kernels, *QUICK, "--models-dir",
                          str(small_model), "--db", "r.db", "--json", *where], capsys)
    assert code == 0, err
    folder = tmp_path / ("given" if kernels else "home-dir/reports") / "emulator"
    [plot] = folder.glob("profile-*.png")
    assert f"wrote the plot to {plot}" in " ".join(err.split())
    assert not (tmp_path / "reports").exists()
    [data] = json.loads(out)
    assert data["variant"] == SMALL and data["device"] == "emulator"
    # --use_xnnpack is always stated (true by default), so the kernels are named, never "default".
    assert data["kernels"] == ("builtin" if kernels else "xnnpack")
    assert data["unattributed_share"] <= 0.05
    names = [b["name"] for b in data["blocks"]]
    assert names[:2] == ["input", "stem"] and names[-2:] == ["last stage", "classifier"]
    assert len([n for n in names if n.startswith("bottleneck")]) == 11
    assert all({"name", "ms", "share"} <= set(b) for b in data["blocks"])
    assert sum(b["share"] for b in data["blocks"]) + data["unattributed_share"] == pytest.approx(1.0, abs=1e-3)
    assert Path(data["plot"]).read_bytes()[:4] == b"\x89PNG"


def test_run_with_op_profile_stores_per_op_times_incl_hard_swish(rel_env, small_model: Path, this_checkouts_standin,
                                                                  capsys) -> None:
    code, out, err = cli(["run", "--device", "emulator", "--variant", SMALL, "--op-profile", "--no-xnnpack",
                          *QUICK, "--models-dir", str(small_model), "--db", "r.db"], capsys)
    assert code == 0, err
    with ResultStore(Path("r.db")) as store:
        [trial] = store.trials(ok_only=True).to_dict("records")
    rows = json.loads(trial["op_profile"])
    assert any(r["node_type"] == "HARD_SWISH" and r["avg_ms"] > 0 for r in rows)
    assert "Operator-wise Profiling Info" in trial["raw_output"]
    assert "op type" in out and "HARD_SWISH" in out
    # With XNNPACK (the emulator's default) the same op is XNNPACK's "HardSwish (NC)".
    code, out, err = cli(["run", "--device", "emulator", "--variant", SMALL, "--op-profile", *QUICK,
                          "--models-dir", str(small_model), "--db", "r.db"], capsys)
    assert code == 0, err
    assert "HardSwish (NC)" in out


# Slow: it converts a second model (the naive twin, a conversion of many seconds) and profiles
# both end to end on the emulator; the fast tests above cover profile and --op-profile on SMALL.
@pytest.mark.slow
def test_stored_profiles_render_by_block_and_compare_block_by_block(rel_env, small_model: Path, tmp_path: Path,
                                                                    this_checkouts_standin, capsys) -> None:
    from mnv3bench.tables.compute import variant_blocks

    naive = SMALL.replace("fused", "naive")
    models = tmp_path / "models"
    shutil.copytree(small_model, models)  # the naive model is built into a copy
    code, _, err = cli(["profile", SMALL, naive, "--device", "emulator", "--no-xnnpack", *QUICK, "--models-dir",
                        str(models), "--db", "r.db"], capsys)
    assert code == 0, err
    with ResultStore(Path("r.db")) as store:
        trials = store.trials(ok_only=True)
    fused_blocks, naive_blocks = variant_blocks(trials, [SMALL, naive])
    assert fused_blocks.trials == 1 and fused_blocks.unattributed_share == 0.0
    assert fused_blocks.block_ms("stem") is not None and fused_blocks.block_ms("last stage")[0] > 0
    # Fused: HARD_SWISH ops and no ADD/MUL/RELU6 in an activation's place; naive: the reverse.
    assert fused_blocks.hswish_ms > 0 and fused_blocks.hswish_replacement_ms == 0.0
    assert naive_blocks.hswish_ms == 0.0 and naive_blocks.hswish_replacement_ms > 0

    code, out, err = cli(["compare", SMALL, naive, "--device", "emulator", "--db", "r.db", "--blocks", "--json"],
                         capsys)
    assert code == 0, err
    by_block = json.loads(out)["by_block"]
    assert [b["name"] for b in by_block["blocks"]][:2] == ["input", "stem"]
    assert all(b["diff_ms"] == pytest.approx(b["b_ms"] - b["a_ms"]) for b in by_block["blocks"])
    code, out, err = cli(["compare", SMALL, naive, "--device", "emulator", "--db", "r.db", "--blocks"], capsys)
    assert code == 0 and "bottleneck 11" in out and "op time" in out


@pytest.mark.slow
def test_full_size_last_stage_falls_from_original_to_efficient(rel_env, tmp_path: Path, this_checkouts_standin,
                                                               capsys) -> None:
    # The criterion, on the full-size models (§5.1 is about 224x224).
    code, out, err = cli(["profile", "large-hswish-fused", "large-hswish-fused-original", "--device", "emulator",
                          "--no-xnnpack", "--trials", "2", "--num-runs", "10", "--min-secs", "0",
                          "--models-dir", str(tmp_path / "models"), "--db", "r.db", "--json"], capsys)
    assert code == 0, err
    efficient, original = json.loads(out)
    for data in (efficient, original):
        assert 1 - data["unattributed_share"] >= 0.95
    last = {d["variant"]: next(b for b in d["blocks"] if b["name"] == "last stage") for d in (efficient, original)}
    assert last["large-hswish-fused"]["ms"] < last["large-hswish-fused-original"]["ms"]
    assert last["large-hswish-fused"]["madds"] < last["large-hswish-fused-original"]["madds"]
