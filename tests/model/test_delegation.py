"""Which nodes XNNPACK takes and which it leaves to TFLite's kernels, per model and per trial.

The int8 finding these tests pin down: TFLite's XNNPACK delegate leaves every int8
HARD_SWISH to TFLite's builtin kernel, whatever the quantization scales, so Large int8
runs as 22 partitions while its swish twin (LOGISTIC, MUL) runs as one.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from mnv3bench.bench.parser import parse_benchmark_output
from mnv3bench.delegation import (
    XNNPACK_DELEGATE,
    Delegation,
    analyse_model,
    left_out_on_device,
)
from mnv3bench.model.builds import ensure_models
from mnv3bench.model.cache import sidecar_path
from mnv3bench.model.convert import quiet_native_output
from tests.helpers import TENSORFLOW_GROUP

pytestmark = pytest.mark.xdist_group(TENSORFLOW_GROUP)

HSWISH_INT8 = "small-hswish-fused-r64-int8"
SWISH_INT8 = "small-swish-r64-int8"


@pytest.fixture(scope="module")
def int8_models(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    return dict(zip((HSWISH_INT8, SWISH_INT8), ensure_models([HSWISH_INT8, SWISH_INT8], models_dir=models, jobs=2)))


@pytest.mark.slow
def test_int8_hard_swish_is_left_to_tflite_and_splits_the_graph(int8_models):
    hswish, swish = int8_models[HSWISH_INT8], int8_models[SWISH_INT8]
    d = Delegation.from_json(hswish.delegation)
    sites = hswish.ops["HARD_SWISH"]
    assert d.delegate == XNNPACK_DELEGATE
    assert d.left_out["HARD_SWISH"] == sites  # every one of them
    assert d.partitions == sites + 1  # each HARD_SWISH in the middle of the graph cuts it
    assert d.total_nodes == sum(hswish.ops.values())
    assert d.delegated_nodes == d.total_nodes - sum(d.left_out.values())
    s = Delegation.from_json(swish.delegation)
    assert s.partitions == 1 and "LOGISTIC" not in s.left_out and "MUL" not in s.left_out
    # The sidecar keeps it, so a cache hit reports it without LiteRT.
    assert json.loads(sidecar_path(hswish.path).read_text())["delegation"] == hswish.delegation


def _tiny_hswish_model(precision: str, input_scale: float) -> bytes:
    """Conv -> HARD_SWISH -> conv, int8-quantized on inputs of the given scale."""
    import keras

    from mnv3bench.model.convert import import_tf

    tf = import_tf()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 8))
    x = keras.layers.Conv2D(8, 1)(inputs)
    x = keras.layers.Activation("hard_swish")(x)
    outputs = keras.layers.Conv2D(8, 1)(x)
    model = keras.Model(inputs, outputs)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        rng = np.random.default_rng(1)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.normal(0, input_scale, (1, 8, 8, 8)).astype(np.float32)] for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@functools.cache
def _tiny_fp32_model() -> bytes:
    # fp32 conversion reads no representative data: one model serves every input scale.
    return _tiny_hswish_model("fp32", 1.0)


@pytest.mark.parametrize("input_scale", [0.03, 3.0, 300.0])
def test_xnnpack_leaves_int8_hard_swish_out_at_any_scale_and_takes_it_in_fp32(input_scale):
    # Activations of realistic range (3.0) and two orders of magnitude either side: the
    # int8 HARD_SWISH stays out every time, so it is the delegate's coverage, not scales.
    with quiet_native_output():
        int8 = analyse_model(_tiny_hswish_model("int8", input_scale))
        fp32 = analyse_model(_tiny_fp32_model())
    assert int8.left_out == {"HARD_SWISH": 1} and int8.partitions == 2
    assert fp32.left_out == {} and fp32.partitions == 1


@pytest.mark.slow
def test_the_stand_in_prints_the_runtimes_delegate_line_and_the_parser_reads_it(int8_models, tmp_path):
    import subprocess
    import sys

    hswish = int8_models[HSWISH_INT8]
    run = subprocess.run(
        [sys.executable, "-m", "mnv3bench.emulator.standin", f"--graph={hswish.path}", "--num_threads=1",
         "--num_runs=2", "--warmup_runs=1", "--min_secs=0", "--warmup_min_secs=0"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    parsed = parse_benchmark_output(run.stdout + run.stderr)
    d = Delegation.from_json(hswish.delegation)
    assert (parsed.delegate, parsed.delegated_nodes, parsed.total_nodes, parsed.delegate_partitions) == (
        d.delegate, d.delegated_nodes, d.total_nodes, d.partitions)
    assert left_out_on_device(hswish.delegation, parsed.delegate, parsed.delegated_nodes, parsed.total_nodes) == d.left_out


def test_a_device_that_splits_the_graph_otherwise_gets_counts_but_no_guessed_types():
    host = Delegation(XNNPACK_DELEGATE, 127, 101, 22, {"HARD_SWISH": 21, "SOFTMAX": 1}).to_json()
    assert left_out_on_device(host, XNNPACK_DELEGATE, 101, 127) == {"HARD_SWISH": 21, "SOFTMAX": 1}
    assert left_out_on_device(host, XNNPACK_DELEGATE, 122, 127) is None  # another LiteRT release
    assert left_out_on_device(host, None, None, None) is None  # no delegate line: --use_xnnpack=false
    assert left_out_on_device(None, XNNPACK_DELEGATE, 101, 127) is None


def test_delegation_line_round_trips_through_the_parser():
    d = Delegation(XNNPACK_DELEGATE, 127, 101, 22, {"HARD_SWISH": 21})
    parsed = parse_benchmark_output("INFO: " + d.log_line() + "\n")
    assert (parsed.delegate, parsed.delegated_nodes, parsed.total_nodes, parsed.delegate_partitions) == (
        XNNPACK_DELEGATE, 101, 127, 22)


def test_tables_name_split_models_and_warn_on_comparisons_between_differently_split_models():
    import pandas as pd

    from mnv3bench.tables.compute import delegation_notes
    from mnv3bench.tables.result import PaperComparison

    trials = pd.DataFrame([
        {"variant": "large-hswish-fused-int8", "delegate": XNNPACK_DELEGATE, "total_nodes": 127.0,
         "delegated_nodes": 105.0, "delegate_partitions": 22.0, "delegate_left_out": '{"HARD_SWISH": 21, "SOFTMAX": 1}'},
        {"variant": "large-swish-int8", "delegate": XNNPACK_DELEGATE, "total_nodes": 148.0,
         "delegated_nodes": 147.0, "delegate_partitions": 1.0, "delegate_left_out": '{"SOFTMAX": 1}'},
        {"variant": "large-relu-int8", "delegate": XNNPACK_DELEGATE, "total_nodes": 90.0,
         "delegated_nodes": 86.0, "delegate_partitions": 2.0, "delegate_left_out": None},
    ])
    compared = PaperComparison("swish (int8) vs h-swish (int8)", "row vs reference", "large-swish-int8",
                               "large-hswish-fused-int8")
    # One partition apart is the classifier's shape ops: no warning.
    same_split = PaperComparison("relu vs swish", "row vs reference", "large-relu-int8", "large-swish-int8")
    notes = delegation_notes(trials, [compared, same_split])
    assert notes[0] == ("Delegation: TfLiteXNNPackDelegate ran large-hswish-fused-int8 in 22 partitions, leaving 22 of "
                        "127 nodes to TFLite's kernels (21 HARD_SWISH, 1 SOFTMAX).")
    assert len(notes) == 2 and notes[1].startswith("Warning: swish (int8) vs h-swish (int8): the delegate splits the "
                                                   "two models differently (1 vs 22 partitions)")
