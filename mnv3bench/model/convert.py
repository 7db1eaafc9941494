"""Keras model -> .tflite bytes that provably are the variant, with the numeric check.

- Conversion: fp32, or int8 full-integer post-training quantization calibrated on a seeded
  synthetic representative set (pixels 0..255: the models start with a Rescaling layer).
- Verification after every conversion: the op inventory must keep the variant's plan
  (model/ops.py), and the .tflite must compute what the Keras model computes on a seeded
  input. A violation is an `MnvError`, never a silently wrong model.
- Random weights get their batch-norm statistics recalibrated (calibrate.py), so
  activations have realistic ranges in fp32 and int8 alike.
- The host's delegation of the model to XNNPACK is analysed once here (delegation.py).

TensorFlow and Keras are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnv3bench.arch import hswish_sites
from mnv3bench.delegation import Delegation, analyse_model
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.model.ops import op_inventory_from_bytes, verify_ops

if TYPE_CHECKING:
    from mnv3bench.variants import Variant

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


@dataclass(frozen=True)
class NumericCheck:
    """How far the .tflite output is from the Keras output on one seeded input."""

    output_max_abs_diff: float
    logits_max_abs_diff: float
    logits_scale: float  # max |Keras logits|: the differences are judged relative to it
    logits_correlation: float  # Pearson correlation of the .tflite logits with Keras's
    tolerance: str
    ok: bool


@dataclass(frozen=True)
class Conversion:
    """A variant's .tflite bytes, verified, with what the checks saw; not yet stored."""

    variant: Variant
    tflite: bytes
    ops: dict[str, int]
    hswish_sites: int
    numerics: NumericCheck
    delegation: Delegation
    seconds: float  # from the Keras build to the delegation analysis


def convert_variant(variant: Variant, weights: Path | None = None) -> Conversion:
    """Build the variant's Keras model, convert it and verify the result; MnvError if wrong."""
    started = time.monotonic()
    sites = hswish_sites(variant)
    with quiet_native_output() as log:
        try:
            # Keras numbers unnamed layers and tensors process-wide, and the numbers end up in
            # the .tflite: without a fresh count, the same variant's bytes would depend on what
            # this process built before it.
            import keras

            keras.utils.clear_session()
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
            f"Report it with the variant name and TF version; the converter's last lines:\n{tail}" if tail
            else "Run with --debug for the traceback.",
        ) from failure

    ops = op_inventory_from_bytes(tflite_model, source=variant.name)
    verify_ops(variant, ops, sites)
    if not numerics.ok:
        raise MnvError(
            f"{variant.name}: the .tflite output differs from the Keras model "
            f"(output diff {numerics.output_max_abs_diff:.3g}, logits diff {numerics.logits_max_abs_diff:.3g} "
            f"at logits scale {numerics.logits_scale:.3g}; allowed: {numerics.tolerance}).",
            "Report it with the variant name and TF version: the conversion changed the model's arithmetic.",
        )
    with quiet_native_output():  # LiteRT logs the delegate's creation
        delegation = analyse_model(tflite_model)
    return Conversion(variant, tflite_model, ops, sites, numerics, delegation, time.monotonic() - started)


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


def import_tf() -> Any:
    """TensorFlow, with its Python loggers set to errors only."""
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
    tf = import_tf()
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
