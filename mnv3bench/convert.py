"""Keras model -> verified .tflite, cached by content under models/.

One job: turn a `Variant` into a .tflite file that provably is that variant.

- Conversion: fp32, or int8 full-integer post-training quantization calibrated on a seeded
  synthetic representative set (pixels 0..255: the models start with a Rescaling layer).
- Verification after every conversion: the op inventory must show the variant's h-swish
  plan (one HARD_SWISH per h-swish site when fused, none when naive, relu or swish), and
  the .tflite must compute what the Keras model computes on a seeded input. A violation is
  an `MnvError`, never a silently wrong model.
- Cache: `models/<variant>-<key12>.tflite` plus the sidecar `<path>.json`. The key hashes the
  canonical variant name, the weights file, the builder's source files and the TensorFlow
  version, so a code or converter change rebuilds and nothing else does. A cache hit reads
  only the sidecar and the file's hash: it imports no TensorFlow.
- Several variants build in parallel worker processes (spawned, so each has its own clean
  TensorFlow); the parent resolves cache hits itself and never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mnv3bench.errors import MnvError, UsageError
from mnv3bench.variants import Variant, parse_variant

try:  # POSIX advisory locks keep two processes from building one model at once.
    import fcntl
except ImportError:  # pragma: no cover - Windows: atomic replace alone still keeps files whole
    fcntl = None  # type: ignore[assignment]

PACKAGE_DIR = Path(__file__).resolve().parent
# The sources whose bytes decide what a built model contains. A change to any of them
# changes the cache key, so edited builder code can never be served a stale model.
BUILDER_SOURCES = ("arch.py", "build.py", "calibrate.py", "convert.py")
SIDECAR_VERSION = 2  # 2: numeric checks never skip; models are batch-norm recalibrated

REPRESENTATIVE_SAMPLES = 32  # int8 calibration images
# Batch-norm recalibration of random weights (calibrate.py) uses the first of those images:
# 16 give each channel's statistics from at least 16 x 7 x 7 positions, in a few seconds.
BN_CALIBRATION_SAMPLES = 16
REPRESENTATIVE_SEED = 20190506
CHECK_INPUT_SEED = 7
BUILD_SEED = 0  # weights seed passed to build_keras_model

# Numerical check tolerances. fp32: the converter only folds BN and reorders float ops,
# so outputs agree to float rounding. int8: each layer adds quantization noise, and a
# randomly initialised network (even recalibrated) amplifies it with depth: int8 logits
# correlate 0.92-0.98 with the float ones here, with errors of 20-50% of their spread.
# So the int8 check guards against a broken graph (another model's logits correlate near
# 0), judged by the correlation of the logits rather than their distance.
FP32_OUTPUT_ATOL = 1e-4
FP32_LOGITS_RTOL = 1e-3
INT8_MIN_LOGITS_CORRELATION = 0.8
INT8_OUTPUT_ATOL = 0.1
# Below this the logits are not representable in int8 at all: the model's activations have
# collapsed (random weights without batch-norm recalibration end near 1e-10), and a check
# against them would prove nothing. That is a failed check, never a skipped one.
INT8_MIN_LOGITS_SCALE = 1e-3

ProgressCallback = Callable[[str, str, str], None]
"""progress(variant_name, state, detail): state is "cached", "building", "built" or "failed"."""


@dataclass(frozen=True)
class ModelArtifact:
    variant: str
    path: Path
    sha256: str
    size_bytes: int
    ops: dict[str, int]
    madds: int
    params: int
    tf_version: str
    # How the host's LiteRT delegates the model to XNNPACK (delegation.Delegation.to_json()).
    delegation: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["name"] = self.variant
        return data


@dataclass(frozen=True)
class NumericCheck:
    """How far the .tflite output is from the Keras output on one seeded input."""

    output_max_abs_diff: float
    logits_max_abs_diff: float
    logits_scale: float  # max |Keras logits|: the differences are judged relative to it
    logits_correlation: float  # Pearson correlation of the .tflite logits with Keras's
    tolerance: str
    ok: bool


# ---------------------------------------------------------------------------- op inventory


def op_inventory(path: Path | str) -> dict[str, int]:
    """Count the operators of a .tflite file by name (e.g. {"HARD_SWISH": 21, ...}).

    Reads the flatbuffer with LiteRT's generated schema: no TensorFlow, no interpreter.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MnvError(f"cannot read model file {path}: {exc.strerror}", "Check the path.") from exc
    return op_inventory_from_bytes(data, source=str(path))


def op_inventory_from_bytes(data: bytes, *, source: str = "model") -> dict[str, int]:
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise MnvError(f"{source} is not a TFLite flatbuffer (no TFL3 identifier).", "Rebuild it with `mnv3bench build`.")
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        builtin_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
        op_names = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            # Codes above 127 live in builtin_code; older files use deprecated_builtin_code.
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                op_names.append(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
            else:
                op_names.append(builtin_names.get(builtin, f"BUILTIN_{builtin}"))
        counts: Counter[str] = Counter()
        for g in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(g)
            for j in range(subgraph.OperatorsLength()):
                counts[op_names[subgraph.Operators(j).OpcodeIndex()]] += 1
    except Exception as exc:  # a truncated buffer fails deep inside flatbuffers
        raise MnvError(f"{source} is not a readable TFLite model ({exc}).", "Rebuild it with `mnv3bench build --force`.") from exc
    return dict(sorted(counts.items()))


def verify_ops(variant: Variant, ops: dict[str, int], hswish_sites: int) -> None:
    """Raise MnvError unless the op inventory shows the variant's nonlinearity plan."""
    hard_swish = ops.get("HARD_SWISH", 0)
    name = variant.name
    hint = (
        "The converter did not produce the graph this variant promises. "
        "Check the h-swish expression in mnv3bench/build.py against the converter's fusion "
        "patterns (docs: shared/reference/mobilenetv3.md)."
    )
    if variant.uses_hswish and variant.hswish_impl == "fused":
        if hard_swish != hswish_sites:
            raise MnvError(
                f"{name}: expected {hswish_sites} HARD_SWISH ops (one per h-swish site), found {hard_swish}.", hint
            )
        return
    if hard_swish:
        raise MnvError(f"{name}: expected no HARD_SWISH ops, found {hard_swish}.", hint)
    if variant.uses_hswish:  # naive: every site must still be computed, from ADD and MUL
        adds, muls = ops.get("ADD", 0), ops.get("MUL", 0)
        if adds < hswish_sites or muls < hswish_sites:
            raise MnvError(
                f"{name}: a naive h-swish needs an ADD and a MUL per site ({hswish_sites} sites), "
                f"found ADD={adds}, MUL={muls}.",
                hint,
            )
    if variant.nonlinearity == "swish" and not ops.get("LOGISTIC", 0):
        raise MnvError(f"{name}: swish (x*sigmoid(x)) needs LOGISTIC ops, found none.", hint)


# ---------------------------------------------------------------------------- cache key


def _package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _make_models_dir(models_dir: Path) -> None:
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use {models_dir} as the models folder: {exc.strerror or exc}",
                         "Fix: pass --models-dir with a folder you can write.") from exc


def tf_version() -> str:
    """The installed TensorFlow's version, read from package metadata (TF is not imported)."""
    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise MnvError(
        "TensorFlow is not installed, so models cannot be converted.",
        "Install the package with its dependencies: pip install -e '.[test]' (or pip install tensorflow-cpu).",
    )


def builder_code_version() -> str:
    digest = hashlib.sha256()
    for name in BUILDER_SOURCES:
        source = PACKAGE_DIR / name
        digest.update(name.encode() + b"\0")
        digest.update(source.read_bytes() if source.exists() else b"<missing>")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(variant: Variant, weights: Path | None = None) -> str:
    parts = {
        "variant": variant.name,
        "weights_sha256": file_sha256(weights) if weights else None,
        "builder": builder_code_version(),
        "tf_version": tf_version(),
        # Keras decides how h-swish is written (and so whether it fuses); LiteRT reads the file.
        "keras_version": _package_version("keras"),
        "litert_version": _package_version("ai-edge-litert"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def model_path(variant: Variant, models_dir: Path, key: str) -> Path:
    return Path(models_dir) / f"{variant.name}-{key[:12]}.tflite"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory and os.replace: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _counts(variant: Variant) -> tuple[int, int]:
    from mnv3bench import flops

    counts = flops.count(variant)
    return int(counts.madds), int(counts.params)


def cached_artifact(variant: Variant, models_dir: Path, weights: Path | None = None) -> ModelArtifact | None:
    """The cached model for `variant` if it exists and its bytes match its sidecar, else None.

    Imports no TensorFlow. MAdds and params are recomputed from the spec (cheap), so a fix in
    flops.py shows up without rebuilding models.
    """
    key = cache_key(variant, weights)
    path = model_path(variant, models_dir, key)
    return _read_cached(variant, path, key)


def _read_cached(variant: Variant, path: Path, key: str) -> ModelArtifact | None:
    meta_path = sidecar_path(path)
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("cache_key") != key or meta.get("variant") != variant.name:
            return None
        if path.stat().st_size != meta["size_bytes"] or file_sha256(path) != meta["sha256"]:
            return None  # truncated or corrupt: the caller rebuilds it
    except (OSError, ValueError, KeyError, TypeError):
        return None
    madds, params = _counts(variant)
    if (madds, params) != (meta.get("madds"), meta.get("params")):
        meta.update(madds=madds, params=params)
        _atomic_write(meta_path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return ModelArtifact(
        variant=variant.name,
        path=path,
        sha256=meta["sha256"],
        size_bytes=meta["size_bytes"],
        ops={k: int(v) for k, v in meta["ops"].items()},
        madds=madds,
        params=params,
        tf_version=meta["tf_version"],
        delegation=meta.get("delegation"),
    )


# ---------------------------------------------------------------------------- conversion


@contextlib.contextmanager
def quiet_native_output() -> Iterator[io.StringIO]:
    """Send TensorFlow's C++ and Python chatter to a buffer instead of the user's terminal.

    TF writes from C++ straight to file descriptors 1 and 2, so redirecting sys.stdout is not
    enough: the descriptors themselves are pointed at a temp file for the duration. The text
    is yielded (filled in at exit) so a failure can show it.
    """
    captured = io.StringIO()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # also silences oneDNN's banner
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        try:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(io.TextIOWrapper(sink, write_through=True)) as wrapped, \
                    contextlib.redirect_stderr(wrapped), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    yield captured
                finally:
                    wrapped.detach()
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.write(sink.read().decode(errors="replace"))


def _import_tf() -> Any:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    with contextlib.suppress(Exception):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    return tf


def representative_images(resolution: int, samples: int = REPRESENTATIVE_SAMPLES, seed: int = REPRESENTATIVE_SEED):
    """Seeded synthetic calibration images with pixels in 0..255, one per batch."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(samples):
        yield [rng.uniform(0.0, 255.0, size=(1, resolution, resolution, 3)).astype(np.float32)]


def calibration_batch(resolution: int) -> Any:
    """The first BN_CALIBRATION_SAMPLES representative images as one batch."""
    import numpy as np

    return np.concatenate([batch[0] for batch in representative_images(resolution, BN_CALIBRATION_SAMPLES)])


def convert_keras_model(model: Any, precision: str = "fp32") -> bytes:
    """Convert a Keras model to .tflite bytes, fp32 or int8 full-integer.

    `from_keras_model` works with Keras 3 on TF 2.21 (it exports a SavedModel internally)
    and keeps the x * relu6(x + 3) / 6 pattern intact for the HARD_SWISH fusion.
    """
    tf = _import_tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        resolution = int(model.input_shape[1])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: representative_images(resolution)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif precision != "fp32":
        raise UsageError(f"unknown precision '{precision}'.", "Use fp32 or int8.")
    return bytes(converter.convert())


def _softmax_layer(model: Any) -> Any | None:
    """The last layer that applies a softmax: a Softmax/Activation layer, or a layer (such as
    keras.applications' Dense classifier) whose own activation is softmax."""
    for layer in reversed(model.layers):
        activation = getattr(layer, "activation", None)
        if type(layer).__name__ == "Softmax" or getattr(activation, "__name__", "") == "softmax":
            return layer
    return None


def keras_logits_and_output(model: Any, x: Any) -> tuple[Any, Any]:
    """(logits feeding the final softmax, model output) of the Keras model on input `x`.

    The logits are what TFLite's SOFTMAX op takes as input. For a standalone softmax layer
    that is the layer's input; for a layer with a fused softmax activation (Dense with
    activation="softmax") the layer's input is the features before it, so the layer is
    called once more with its activation set to linear, which is the converter's split
    into FULLY_CONNECTED + SOFTMAX.
    """
    import keras
    import numpy as np

    softmax = _softmax_layer(model)
    if softmax is None:
        out = np.asarray(model(x, training=False), dtype=np.float64)
        return out, out
    probe = keras.Model(model.inputs, [softmax.input, model.outputs[0]])
    softmax_input, out = probe(x, training=False)
    if getattr(softmax, "activation", None) is not None and type(softmax).__name__ not in ("Softmax", "Activation"):
        fused = softmax.activation
        softmax.activation = keras.activations.linear
        try:
            softmax_input = softmax(softmax_input, training=False)
        finally:
            softmax.activation = fused
    return np.asarray(softmax_input, dtype=np.float64), np.asarray(out, dtype=np.float64)


def check_numerics(model: Any, tflite_model: bytes, precision: str = "fp32") -> NumericCheck:
    """Run the .tflite (LiteRT reference kernels) and the Keras model on one seeded input.

    Compares the outputs and also the logits feeding the final softmax: an untrained
    network's softmax is nearly uniform, so agreement there alone would prove little. The
    logits are judged relative to their own scale.
    """
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolution = int(model.input_shape[1])
    x = np.random.default_rng(CHECK_INPUT_SEED).uniform(0, 255, (1, resolution, resolution, 3)).astype(np.float32)
    ref_logits, ref_out = keras_logits_and_output(model, x)
    has_softmax = _softmax_layer(model) is not None

    interpreter = Interpreter(
        model_content=tflite_model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        feed = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    else:
        feed = x
    interpreter.set_tensor(inp["index"], feed)
    interpreter.invoke()

    def read(detail: dict) -> Any:
        value = interpreter.get_tensor(detail["index"]).astype(np.float64)
        scale, zero = detail["quantization"]
        return (value - zero) * scale if detail["dtype"] == np.int8 else value

    got_out = read(out).reshape(ref_out.shape)
    got_logits = got_out
    if has_softmax:
        ops = [op for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
        if ops:
            details = {t["index"]: t for t in interpreter.get_tensor_details()}
            got_logits = read(details[int(ops[-1]["inputs"][0])]).reshape(ref_logits.shape)

    out_diff = float(np.max(np.abs(got_out - ref_out)))
    logits_diff = float(np.max(np.abs(got_logits - ref_logits)))
    scale = float(np.max(np.abs(ref_logits)))
    correlation = _correlation(got_logits, ref_logits)
    finite = bool(np.all(np.isfinite(got_out)))
    if precision == "int8":
        ok = (finite and out_diff <= INT8_OUTPUT_ATOL and scale >= INT8_MIN_LOGITS_SCALE
              and correlation >= INT8_MIN_LOGITS_CORRELATION)
        tolerance = (f"output within {INT8_OUTPUT_ATOL:g}, logits of scale at least {INT8_MIN_LOGITS_SCALE:g} "
                     f"correlating at least {INT8_MIN_LOGITS_CORRELATION:g} with Keras's (int8 quantization)")
    else:
        ok = finite and out_diff <= FP32_OUTPUT_ATOL and logits_diff <= FP32_LOGITS_RTOL * scale + 1e-30
        tolerance = f"output within {FP32_OUTPUT_ATOL:g}, logits within {FP32_LOGITS_RTOL:g} x their scale"
    return NumericCheck(out_diff, logits_diff, scale, correlation, tolerance, ok)


def _correlation(a: Any, b: Any) -> float:
    """Pearson correlation of two arrays; 0 when either is constant (nothing to agree on)."""
    import numpy as np

    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


# ---------------------------------------------------------------------------- building


def _as_variant(variant: Variant | str) -> Variant:
    return variant if isinstance(variant, Variant) else parse_variant(variant)


def _check_weights(weights: Path | str | None) -> Path | None:
    if weights is None:
        return None
    path = Path(weights)
    if not path.is_file():
        raise UsageError(f"weights file {path} does not exist.", "Pass a Keras weights file (.weights.h5) with --weights.")
    return path.resolve()


def ensure_model(
    variant: Variant | str,
    *,
    models_dir: Path | str = Path("models"),
    force: bool = False,
    weights: Path | str | None = None,
) -> ModelArtifact:
    """The verified .tflite for `variant`: from the cache when valid, else built now."""
    v = _as_variant(variant)
    weights_path = _check_weights(weights)
    models_dir = Path(models_dir)
    key = cache_key(v, weights_path)
    path = model_path(v, models_dir, key)
    if not force and (hit := _read_cached(v, path, key)):
        return hit
    _make_models_dir(models_dir)
    with _build_lock(path):
        # Another process may have built it while we waited for the lock.
        if not force and (hit := _read_cached(v, path, key)):
            return hit
        return _build(v, path, key, weights_path)


def keras_model(variant: Variant, weights: Path | None = None) -> Any:
    """The Keras model a variant's .tflite is converted from: the builder's network with the
    user's weights, or with seeded random weights whose batch-norm statistics are
    recalibrated on the representative set (calibrate.py), so activations have realistic
    ranges in fp32 and int8 alike."""
    from mnv3bench.build import build_keras_model
    from mnv3bench.calibrate import recalibrate_batch_norm

    model = build_keras_model(variant, weights=weights, seed=BUILD_SEED)
    if weights is None:  # trained weights come with their own statistics
        recalibrate_batch_norm(model, calibration_batch(variant.resolution))
    return model


def _build(variant: Variant, path: Path, key: str, weights: Path | None) -> ModelArtifact:
    from mnv3bench.arch import hswish_sites
    from mnv3bench.delegation import analyse_model

    started = time.monotonic()
    sites = hswish_sites(variant)
    with quiet_native_output() as log:
        try:
            model = keras_model(variant, weights)
            tflite_model = convert_keras_model(model, variant.precision)
            numerics = check_numerics(model, tflite_model, variant.precision)
        except MnvError:
            raise
        except Exception as exc:
            failure: BaseException | None = exc
        else:
            failure = None
    if failure is not None:
        tail = "\n".join(log.getvalue().strip().splitlines()[-15:])
        raise MnvError(
            f"{variant.name}: conversion failed: {type(failure).__name__}: {failure}",
            f"Converter output (last lines):\n{tail}" if tail else "Run with --debug for the traceback.",
        ) from failure

    ops = op_inventory_from_bytes(tflite_model, source=variant.name)
    verify_ops(variant, ops, sites)
    if not numerics.ok:
        raise MnvError(
            f"{variant.name}: the .tflite output differs from the Keras model "
            f"(output diff {numerics.output_max_abs_diff:.3g}, logits diff {numerics.logits_max_abs_diff:.3g} "
            f"at logits scale {numerics.logits_scale:.3g}; allowed: {numerics.tolerance}).",
            "The conversion changed the model's arithmetic; report it with the variant name and TF version.",
        )

    madds, params = _counts(variant)
    with quiet_native_output():  # LiteRT logs the delegate's creation
        delegation = analyse_model(tflite_model)
    artifact = ModelArtifact(
        variant=variant.name,
        path=path,
        sha256=hashlib.sha256(tflite_model).hexdigest(),
        size_bytes=len(tflite_model),
        ops=ops,
        madds=madds,
        params=params,
        tf_version=tf_version(),
        delegation=delegation.to_json(),
    )
    sidecar = artifact.to_json() | {
        "sidecar_version": SIDECAR_VERSION,
        "cache_key": key,
        "hswish_sites": sites,
        "precision": variant.precision,
        "resolution": variant.resolution,
        "weights": str(weights) if weights else None,
        "numeric_check": asdict(numerics),
        "build_seconds": round(time.monotonic() - started, 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # The model first, then its sidecar: a crash in between leaves a model without a valid
    # sidecar, which the next run treats as a miss and rebuilds.
    _atomic_write(path, tflite_model)
    _atomic_write(sidecar_path(path), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
    return artifact


# ---------------------------------------------------------------------------- several at once


def _build_in_worker(name: str, models_dir: str, force: bool, weights: str | None) -> dict[str, Any]:
    """Worker entry point. Errors travel back as plain data: MnvError's hint does not pickle."""
    try:
        artifact = ensure_model(name, models_dir=Path(models_dir), force=force, weights=weights)
        return {"ok": True, "artifact": artifact.to_json()}
    except MnvError as err:
        return {"ok": False, "usage": isinstance(err, UsageError), "message": err.message, "hint": err.hint}
    except Exception as exc:
        return {
            "ok": False,
            "usage": False,
            "message": f"{name}: build failed: {type(exc).__name__}: {exc}",
            "hint": "".join(traceback.format_exception(exc)[-6:]),
        }


def _artifact_from_json(data: dict[str, Any]) -> ModelArtifact:
    return ModelArtifact(
        variant=data["variant"],
        path=Path(data["path"]),
        sha256=data["sha256"],
        size_bytes=data["size_bytes"],
        ops=dict(data["ops"]),
        madds=data["madds"],
        params=data["params"],
        tf_version=data["tf_version"],
        delegation=data.get("delegation"),
    )


def ensure_models(
    variants: Sequence[Variant | str],
    *,
    models_dir: Path | str = Path("models"),
    force: bool = False,
    weights: Path | str | None = None,
    jobs: int = 2,
    progress: ProgressCallback | None = None,
) -> list[ModelArtifact]:
    """Ensure several models, building the missing ones in `jobs` spawned worker processes.

    Returns one artifact per input variant, in input order (duplicates share one build).
    Cache hits are resolved here without spawning anything or importing TensorFlow.
    If builds fail, the others still finish; then the first failure is raised.
    """
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}.", "Use --jobs 1 or more.")
    notify = progress or (lambda name, state, detail: None)
    resolved = [_as_variant(v) for v in variants]
    weights_path = _check_weights(weights)
    models_dir = Path(models_dir)
    unique = list(dict.fromkeys(resolved))
    results: dict[Variant, ModelArtifact] = {}
    missing: list[Variant] = []
    for v in unique:
        hit = None if force else cached_artifact(v, models_dir, weights_path)
        if hit:
            results[v] = hit
            notify(v.name, "cached", str(hit.path))
        else:
            missing.append(v)

    failures: list[dict[str, Any]] = []
    if missing:
        _make_models_dir(models_dir)
        workers = min(jobs, len(missing))
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = {}
                for v in missing:
                    notify(v.name, "building", "")
                    args = (v.name, str(models_dir), force, str(weights_path) if weights_path else None)
                    futures[pool.submit(_build_in_worker, *args)] = v
                for future in as_completed(futures):
                    v = futures[future]
                    outcome = future.result()
                    if outcome["ok"]:
                        results[v] = _artifact_from_json(outcome["artifact"])
                        notify(v.name, "built", outcome["artifact"]["path"])
                    else:
                        failures.append(outcome)
                        notify(v.name, "failed", outcome["message"])
        except BrokenProcessPool as exc:
            raise MnvError(
                "a model-building worker process died (out of memory?).",
                "Build fewer models at once: --jobs 1.",
            ) from exc
    if failures:
        first = failures[0]
        error_type = UsageError if first["usage"] else MnvError
        others = f"\n({len(failures) - 1} more builds failed.)" if len(failures) > 1 else ""
        raise error_type(first["message"], (first["hint"] or "") + others or None)
    return [results[v] for v in resolved]


__all__ = [
    "ModelArtifact",
    "NumericCheck",
    "cache_key",
    "cached_artifact",
    "check_numerics",
    "convert_keras_model",
    "ensure_model",
    "ensure_models",
    "op_inventory",
    "op_inventory_from_bytes",
    "verify_ops",
]
