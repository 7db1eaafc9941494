"""Conversion, verification and the model cache, on small fast models (Small at r96 and r64).

The fused model is the session's shared SMALL (tests/conftest.py `small_model`): a conversion
takes seconds, so this module reuses it from a copy of that cache instead of converting again."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mnv3bench.arch import hswish_sites
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.model import builds, cache, convert
from mnv3bench.model.builds import ensure_model, ensure_models
from mnv3bench.model.cache import (
    ModelArtifact,
    cache_key,
    cached_artifact,
    sidecar_path,
)
from mnv3bench.model.ops import op_inventory, op_inventory_from_bytes, verify_ops
from mnv3bench.variants import parse_variant
from tests.helpers import SMALL, TENSORFLOW_GROUP

pytestmark = pytest.mark.xdist_group(TENSORFLOW_GROUP)

FUSED = SMALL
NAIVE = SMALL.replace("fused", "naive")
SIDECAR_KEYS = {
    "name", "variant", "path", "sha256", "size_bytes", "ops", "madds", "params", "tf_version",
    "hswish_sites", "cache_key", "created_at", "numeric_check",
}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, small_model: Path) -> Path:
    """A private copy of the session's models dir: tests here add models to it."""
    copy = tmp_path_factory.mktemp("convert") / "models"
    shutil.copytree(small_model, copy)
    return copy


@pytest.fixture(scope="module")
def fused(models_dir: Path) -> ModelArtifact:
    return ensure_model(FUSED, models_dir=models_dir)


# ---------------------------------------------------------------------------- op verification (no TF)


@pytest.mark.parametrize(
    ("name", "ops", "sites", "problem"),
    [
        ("large-hswish-fused", {"HARD_SWISH": 20, "ADD": 11}, 21, "expected 21 HARD_SWISH"),
        ("large-hswish-naive", {"HARD_SWISH": 1, "ADD": 40, "MUL": 60}, 21, "expected no HARD_SWISH"),
        ("large-hswish-naive", {"ADD": 11, "MUL": 17}, 21, "needs an ADD and a MUL per site"),
        ("large-relu", {"HARD_SWISH": 3}, 0, "expected no HARD_SWISH"),
        ("v2-1.0", {"HARD_SWISH": 1}, 0, "expected no HARD_SWISH"),
        ("large-swish-int8", {"MUL": 40}, 0, "needs LOGISTIC"),
    ],
)
def test_verify_ops_rejects_graphs_that_break_the_plan(name: str, ops: dict, sites: int, problem: str) -> None:
    with pytest.raises(MnvError, match=problem) as err:
        verify_ops(parse_variant(name), ops, sites)
    assert err.value.hint


@pytest.mark.parametrize(
    ("name", "ops", "sites"),
    [
        ("large-hswish-fused", {"HARD_SWISH": 21, "ADD": 11, "MUL": 17}, 21),
        ("large-hswish-naive", {"ADD": 32, "MUL": 59}, 21),
        ("large-relu", {"ADD": 11, "MUL": 17}, 0),
        ("large-swish-int8", {"LOGISTIC": 21, "MUL": 59}, 0),
    ],
)
def test_verify_ops_accepts_graphs_that_keep_the_plan(name: str, ops: dict, sites: int) -> None:
    verify_ops(parse_variant(name), ops, sites)


# ---------------------------------------------------------------------------- cache key (no TF)


def test_cache_key_covers_variant_weights_code_and_tf_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = parse_variant(FUSED)
    base = cache_key(v)
    assert base == cache_key(parse_variant("small-r96-fused-hswish"))  # same variant, other spelling
    assert base != cache_key(parse_variant(NAIVE))
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"one")
    with_weights = cache_key(v, weights)
    assert with_weights != base
    weights.write_bytes(b"two")
    assert cache_key(v, weights) != with_weights
    monkeypatch.setattr(cache, "tf_version", lambda: "9.99.0")
    assert cache_key(v) != base
    monkeypatch.undo()
    # The builder's code version hashes the source files' bytes.
    fake_pkg = tmp_path / "pkg"
    fake_pkg.mkdir()
    for name in cache.BUILDER_SOURCES:
        (fake_pkg / name).parent.mkdir(exist_ok=True)  # model/ sources live in a subfolder
        (fake_pkg / name).write_bytes((cache.PACKAGE_DIR / name).read_bytes())
    monkeypatch.setattr(cache, "PACKAGE_DIR", fake_pkg)
    assert cache_key(v) == base
    (fake_pkg / "build.py").write_bytes((fake_pkg / "build.py").read_bytes() + b"\n# edited\n")
    assert cache_key(v) != base


def _runtime_imports(source: Path) -> set[str]:
    """The mnv3bench modules a source file imports when it runs, at the top or inside functions.

    Imports under `if TYPE_CHECKING:` are left out: they never run.
    """
    tree = ast.parse(source.read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
        for statement in block.body
        for node in ast.walk(statement)
    }
    modules: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {m for m in modules if m.startswith("mnv3bench.")}


def _module_file(module: str) -> str | None:
    """`mnv3bench.model.ops` -> "model/ops.py"; None for packages and names that are not modules."""
    relative = Path(*module.split(".")[1:]).with_suffix(".py")
    return str(relative) if (cache.PACKAGE_DIR / relative).is_file() else None


def test_cache_key_hashes_every_module_the_conversion_runs() -> None:
    # A module that the conversion runs but the key does not hash would let edited code be
    # served a stale model. Error wording decides nothing a model contains, so editing it
    # does not rebuild every model.
    not_deciding = {"errors.py"}
    reached: set[str] = set()
    todo = ["model/convert.py"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(f for m in _runtime_imports(cache.PACKAGE_DIR / name) if (f := _module_file(m)))
    missing = reached - not_deciding - set(cache.BUILDER_SOURCES)
    assert not missing, f"add {sorted(missing)} to BUILDER_SOURCES in mnv3bench/model/cache.py"
    assert {"arch.py", "build.py", "calibrate.py", "model/ops.py"} <= reached  # the walk sees lazy imports
    # The worker parses the name again, so the parser decides which model a name means.
    assert "variants.py" in cache.BUILDER_SOURCES
    assert [n for n in cache.BUILDER_SOURCES if not (cache.PACKAGE_DIR / n).is_file()] == []


# ---------------------------------------------------------------------------- building and the cache


def test_built_model_is_verified_and_described_by_its_sidecar(fused: ModelArtifact) -> None:
    v = parse_variant(FUSED)
    assert fused.path.name.startswith(FUSED + "-") and fused.path.suffix == ".tflite"
    assert fused.ops == op_inventory(fused.path)
    assert fused.ops["HARD_SWISH"] == hswish_sites(v) > 0
    assert fused.size_bytes == fused.path.stat().st_size
    meta = json.loads(sidecar_path(fused.path).read_text())
    assert SIDECAR_KEYS <= set(meta)
    assert meta["sha256"] == fused.sha256 and meta["ops"] == fused.ops
    assert meta["hswish_sites"] == hswish_sites(v)
    assert meta["numeric_check"]["ok"] is True
    assert meta["numeric_check"]["output_max_abs_diff"] <= convert.FP32_OUTPUT_ATOL
    # No temp files left behind by the atomic writes.
    assert not [p for p in fused.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_second_build_is_a_cache_hit_that_imports_no_tensorflow(fused: ModelArtifact, models_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from mnv3bench.model.builds import ensure_model, ensure_models
        a = ensure_model({FUSED!r}, models_dir=Path({str(models_dir)!r}))
        [b] = ensure_models([{FUSED!r}], models_dir=Path({str(models_dir)!r}))
        assert 'tensorflow' not in sys.modules, 'cache hit imported tensorflow'
        assert 'keras' not in sys.modules, 'cache hit imported keras'
        print(json.dumps([a.sha256, str(a.path), b.sha256]))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    sha, path, sha_b = json.loads(out.stdout)
    assert sha == sha_b == fused.sha256 and Path(path) == fused.path


@pytest.mark.slow
def test_a_variant_converts_to_the_same_bytes_whatever_the_process_built_before() -> None:
    # Keras numbers unnamed layers process-wide, and the numbers are stored in the .tflite.
    from mnv3bench.build import build_keras_model

    variant = parse_variant("small-hswish-fused-r64")
    first = convert.convert_variant(variant).tflite
    build_keras_model(parse_variant("large-relu-r64"))  # advances Keras's layer numbering
    assert convert.convert_variant(variant).tflite == first


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["corrupt", "truncate", "no-sidecar"])
def test_damaged_cache_entry_is_detected_and_rebuilt(tmp_path: Path, fused: ModelArtifact, damage: str) -> None:
    # Copy the good model into a fresh cache, damage it, and expect a rebuild.
    models = tmp_path / "models"
    models.mkdir()
    path = models / fused.path.name
    path.write_bytes(fused.path.read_bytes())
    sidecar_path(path).write_text(sidecar_path(fused.path).read_text())
    v = parse_variant(FUSED)
    assert cached_artifact(v, models) is not None
    data = path.read_bytes()
    if damage == "corrupt":
        path.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        sidecar_path(path).unlink()
    assert cached_artifact(v, models) is None
    rebuilt = ensure_model(v, models_dir=models)
    assert rebuilt.path == path
    assert cache.file_sha256(path) == rebuilt.sha256 == json.loads(sidecar_path(path).read_text())["sha256"]
    assert cached_artifact(v, models) == rebuilt


def test_op_inventory_refuses_files_that_are_not_models(tmp_path: Path, fused: ModelArtifact) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(MnvError, match="not a TFLite flatbuffer"):
        op_inventory(junk)
    with pytest.raises(MnvError, match="not a readable TFLite model"):
        op_inventory_from_bytes(fused.path.read_bytes()[:4096])
    with pytest.raises(MnvError, match="cannot read"):
        op_inventory(tmp_path / "missing.tflite")


# ---------------------------------------------------------------------------- numerics


def _run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.slow
def test_fused_and_naive_with_the_same_weights_agree(fused: ModelArtifact, models_dir: Path) -> None:

    naive = ensure_model(NAIVE, models_dir=models_dir)
    sites = hswish_sites(parse_variant(NAIVE))
    assert "HARD_SWISH" not in naive.ops
    assert naive.ops["ADD"] - fused.ops["ADD"] == sites  # relu6(x + 3): one ADD per site
    assert naive.ops["MUL"] - fused.ops["MUL"] == 2 * sites  # x * (1/6), then * relu6(...)

    x = np.random.default_rng(3).uniform(0, 255, (1, 96, 96, 3)).astype(np.float32)
    np.testing.assert_allclose(_run_tflite(naive.path, x), _run_tflite(fused.path, x), atol=1e-6)
    # Stronger than the near-uniform softmax: the naive .tflite reproduces the fused Keras
    # model's logits (relative to their scale), so the two really share weights and math.
    with convert.quiet_native_output():
        fused_model = convert.keras_model(parse_variant(FUSED))
        check = convert.check_numerics(fused_model, naive.path.read_bytes())
    assert check.ok, check
    assert check.logits_max_abs_diff <= 1e-3 * check.logits_scale


def test_numeric_check_fails_for_a_model_with_other_weights(fused: ModelArtifact) -> None:
    from mnv3bench.build import build_keras_model

    with convert.quiet_native_output():
        other = build_keras_model(parse_variant(FUSED), seed=1)
        check = convert.check_numerics(other, fused.path.read_bytes())
    assert not check.ok
    assert check.logits_max_abs_diff > 0.1 * check.logits_scale
    assert abs(check.logits_correlation) < 0.5  # what the int8 check relies on


@pytest.mark.slow
def test_int8_model_is_full_integer_and_verified(models_dir: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    artifact = ensure_model("small-hswish-fused-r64-int8", models_dir=models_dir)
    assert artifact.ops["HARD_SWISH"] == hswish_sites(parse_variant("small-hswish-fused-r64-int8"))
    interpreter = Interpreter(model_path=str(artifact.path))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert "DEQUANTIZE" not in artifact.ops and "QUANTIZE" not in artifact.ops
    check = json.loads(sidecar_path(artifact.path).read_text())["numeric_check"]
    assert check["ok"] is True
    # Batch-norm recalibration keeps the logits well inside int8's range, so they are compared.
    assert "skipped" not in check
    assert check["logits_scale"] >= convert.INT8_MIN_LOGITS_SCALE
    assert check["logits_correlation"] >= convert.INT8_MIN_LOGITS_CORRELATION


# ---------------------------------------------------------------------------- several at once


@pytest.mark.slow
def test_ensure_models_builds_in_worker_processes_and_keeps_order(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    names = ["small-relu-r64", "small-swish-r64", "small-relu-r64"]
    artifacts = ensure_models(names, models_dir=tmp_path, jobs=2, progress=lambda n, s, d: events.append((n, s)))
    assert [a.variant for a in artifacts] == names
    assert artifacts[0] == artifacts[2]
    assert artifacts[1].ops["LOGISTIC"] > 0 and "HARD_SWISH" not in artifacts[0].ops
    assert sorted(events) == sorted([(n, s) for n in ("small-relu-r64", "small-swish-r64")
                                     for s in ("queued", "building", "built")])
    for name in ("small-relu-r64", "small-swish-r64"):  # the worker's start message reached the parent first
        assert [s for n, s in events if n == name] == ["queued", "building", "built"]


def test_ensure_models_resolves_cache_hits_without_spawning(fused: ModelArtifact, models_dir: Path, monkeypatch) -> None:
    def no_pool(*args, **kwargs):
        raise AssertionError("a cache hit must not start worker processes")

    monkeypatch.setattr(builds, "ProcessPoolExecutor", no_pool)
    events: list[tuple[str, str]] = []
    [hit] = ensure_models([FUSED], models_dir=models_dir, progress=lambda n, s, d: events.append((n, s)))
    assert hit == fused and events == [(FUSED, "cached")]


@pytest.mark.slow
def test_worker_failures_come_back_with_message_and_hint(tmp_path: Path) -> None:
    bad_weights = tmp_path / "bad.weights.h5"
    bad_weights.write_bytes(b"this is not HDF5")
    with pytest.raises(UsageError) as err:
        ensure_models(["small-relu-r64"], models_dir=tmp_path / "m", weights=bad_weights, jobs=1)
    assert "cannot load weights" in err.value.message
    assert err.value.hint and "weights file" in err.value.hint


def test_other_builds_finish_then_the_first_failure_is_raised(tmp_path: Path, monkeypatch) -> None:
    def fail(name: str, **kwargs):
        if name == "small-relu-r64":
            raise KeyError("lost")  # a bug, not an MnvError
        if name == "small-swish-r64":
            raise MnvError(f"{name}: broken", "a hint")
        return built

    built = ModelArtifact("small-hswish-fused-r64", tmp_path / "m.tflite", "0" * 64, 1, {}, 0, 0, "x")
    monkeypatch.setattr(builds, "ensure_model", fail)
    in_threads(monkeypatch)
    events: list[tuple[str, str]] = []
    names = ["small-relu-r64", "small-swish-r64", "small-hswish-fused-r64"]
    with pytest.raises(MnvError) as err:
        ensure_models(names, models_dir=tmp_path, jobs=1, force=True, progress=lambda n, s, d: events.append((n, s)))
    assert err.value.message == "small-relu-r64: build failed: KeyError: 'lost'"
    assert "Traceback" in err.value.hint and err.value.hint.endswith("\n(1 more builds failed.)")
    assert sorted(s for n, s in events) == ["building"] * 3 + ["built", "failed", "failed"] + ["queued"] * 3


def in_threads(monkeypatch) -> None:
    """Build in threads instead of processes (so ensure_model can be faked); the workers'
    start messages still go through the queue."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(builds, "_started_queue", None)  # the threads set it in this process; put back after
    monkeypatch.setattr(builds, "ProcessPoolExecutor", lambda max_workers, mp_context, initializer, initargs:
                        ThreadPoolExecutor(max_workers, initializer=initializer, initargs=initargs))


def test_a_model_is_building_only_once_a_worker_has_started_it(tmp_path: Path, monkeypatch) -> None:
    import time

    def slow(name: str, **kwargs):
        time.sleep(0.3)
        return ModelArtifact(name, tmp_path / f"{name}.tflite", "0" * 64, 1, {}, 0, 0, "x")

    monkeypatch.setattr(builds, "ensure_model", slow)
    in_threads(monkeypatch)
    events: list[tuple[str, str]] = []
    names = ["small-relu-r64", "small-swish-r64", "small-hswish-fused-r64", "small-hswish-naive-r64"]
    ensure_models(names, models_dir=tmp_path, jobs=2, force=True, progress=lambda n, s, d: events.append((n, s)))
    assert events[:4] == [(n, "queued") for n in names]
    building: set[str] = set()
    for name, state in events[4:]:
        if state == "building":
            building.add(name)
        else:
            assert state == "built" and name in building  # built only after it was said to start
            building.discard(name)
        assert len(building) <= 2, events  # never more building than workers
    assert sorted(s for _, s in events[4:]) == ["building"] * 4 + ["built"] * 4


def test_bad_arguments_fail_before_any_build(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        ensure_models(["small-relu-r64"], models_dir=tmp_path, weights=tmp_path / "missing.h5")
    with pytest.raises(UsageError, match="jobs"):
        ensure_models(["small-relu-r64"], models_dir=tmp_path, jobs=0)
    with pytest.raises(UsageError, match="medium"):
        ensure_model("medium", models_dir=tmp_path)
    assert not list(tmp_path.iterdir())
