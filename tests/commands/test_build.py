"""`mnv3bench build` end to end, in a subprocess like a user would run it; its usage errors in
this process (tests/commands/test_cli.py checks a real process's exit 2 and its one form)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnv3bench.arch import hswish_sites
from mnv3bench.flops import count
from mnv3bench.model.cache import file_sha256
from mnv3bench.model.ops import op_inventory
from mnv3bench.variants import parse_variant
from tests.helpers import main_in_process

JSON_KEYS = {"name", "path", "sha256", "size_bytes", "ops", "madds", "params", "delegation"}


def mnv3bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"CI": "1"}  # plain progress lines, no live display
    return subprocess.run(
        [sys.executable, "-m", "mnv3bench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_build_json_then_cached_human_output(tmp_path: Path) -> None:
    names = ["small-hswish-fused-r64", "small-relu-r64"]
    first = mnv3bench("build", *names, "--json", "--models-dir", "cache", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    records = json.loads(first.stdout)  # stdout is only the JSON: TF's chatter is silenced
    assert [r["name"] for r in records] == names
    for record in records:
        assert set(record) == JSON_KEYS
        v = parse_variant(record["name"])
        path = tmp_path / record["path"] if not Path(record["path"]).is_absolute() else Path(record["path"])
        assert path.parent == tmp_path / "cache"
        assert record["size_bytes"] == path.stat().st_size
        assert record["sha256"] == file_sha256(path)
        assert record["ops"] == op_inventory(path)
        assert (record["madds"], record["params"]) == (count(v).madds, count(v).params)
        assert record["ops"].get("HARD_SWISH", 0) == (hswish_sites(v) if v.uses_hswish else 0)
        # fp32: XNNPACK takes every h-swish and conv; only the classifier's shape ops
        # (Flatten of a dynamic batch) stay with TFLite, so at most two partitions.
        delegation = record["delegation"]
        assert delegation["delegate"] == "TfLiteXNNPackDelegate" and delegation["partitions"] <= 2
        assert sum(record["ops"].values()) == delegation["total_nodes"]
        assert set(delegation["left_out"]) <= {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"}
    assert "building small-hswish-fused-r64" in first.stderr and "built small-relu-r64" in first.stderr
    assert "tensorflow" not in first.stderr.lower()

    second = mnv3bench("build", *names, "--models-dir", "cache", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "cached small-hswish-fused-r64" in second.stderr and "building" not in second.stderr
    for record in records:
        assert record["sha256"] in second.stdout and record["name"] in second.stdout
    assert "HARD_SWISH" in second.stdout and "MAdds" in second.stdout and "XNNPACK" in second.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "large-relu-naive"], "'naive' is an h-swish implementation"),
        (["build", "medium"], "unknown model family 'medium'"),
        (["build", "small-r64", "--weights", "nope.h5"], "does not exist"),
    ],
)
def test_build_refuses_bad_input_with_exit_2(tmp_path: Path, args: list[str], message: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # a relative --weights and --models-dir, as a user types them
    code, _, err = main_in_process([*args, "--models-dir", "cache"], capsys)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "cache").exists()
