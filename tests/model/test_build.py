"""The Keras builder: parity with keras.applications, seeded weights, --weights, h-swish forms."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from mnv3bench.arch import hswish_sites
from mnv3bench.build import build_keras_model
from mnv3bench.errors import UsageError
from mnv3bench.variants import Variant, parse_variant
from tests.helpers import TENSORFLOW_GROUP, LazyModule

pytestmark = pytest.mark.xdist_group(TENSORFLOW_GROUP)

keras = LazyModule("keras")


def weighted_layers(model: keras.Model) -> list[tuple[str, str, list[tuple[int, ...]]]]:
    return [
        (layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
        if layer.weights
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("family", "width", "expected"),
    [("large", 1.0, 5_507_432), ("large", 0.75, None), ("small", 1.0, 2_554_968), ("small", 0.75, None)],
)
def test_parity_with_keras_applications(family: str, width: float, expected: int | None) -> None:
    reference_fn = {"large": keras.applications.MobileNetV3Large, "small": keras.applications.MobileNetV3Small}[family]
    reference = reference_fn(weights=None, alpha=width, input_shape=(224, 224, 3))
    ours = build_keras_model(Variant(family, width=width))
    assert ours.count_params() == reference.count_params()
    if expected is not None:
        assert ours.count_params() == expected
    # Same layers, names, types and weight shapes, in the same order.
    assert weighted_layers(ours) == weighted_layers(reference)


@pytest.fixture(scope="module")
def v2_reference_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, Path]:
    """keras.applications.MobileNetV2 (alpha 0.35, r64) with weights not our seed's, saved:
    built once for this module (a Keras build takes a second or two)."""
    reference = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(64, 64, 3))
    reference.set_weights([w + 0.01 for w in reference.get_weights()])
    path = tmp_path_factory.mktemp("weights") / "v2.weights.h5"
    reference.save_weights(path)
    return reference, path


@pytest.mark.slow  # whole-network Keras builds, several of them
def test_same_seed_same_weights_for_fused_and_naive() -> None:
    fused = build_keras_model(parse_variant("large-hswish-fused-r64"), seed=7)
    naive = build_keras_model(parse_variant("large-hswish-naive-r64"), seed=7)
    other = build_keras_model(parse_variant("large-hswish-fused-r64"), seed=8)
    fw, nw, ow = fused.get_weights(), naive.get_weights(), other.get_weights()
    assert len(fw) == len(nw) > 0
    assert all(np.array_equal(a, b) for a, b in zip(fw, nw))
    assert not all(np.array_equal(a, b) for a, b in zip(fw, ow))
    # Same function, too: the two h-swish spellings agree on the same input.
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(fused(x).numpy(), naive(x).numpy(), atol=1e-5)


@pytest.mark.slow  # whole-network Keras builds, several of them
def test_weights_saved_from_keras_applications_load(tmp_path: Path) -> None:
    reference = keras.applications.MobileNetV3Small(weights=None, input_shape=(64, 64, 3))
    reference.set_weights([w + 0.01 for w in reference.get_weights()])  # not our seed's weights
    path = tmp_path / "small.weights.h5"
    reference.save_weights(path)
    ours = build_keras_model(parse_variant("small-hswish-fused-r64"), weights=path)
    assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), reference.get_weights()))
    x = np.random.default_rng(1).uniform(0, 255, size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours(x).numpy(), reference(x).numpy(), atol=1e-6)


def test_bad_weights_files_are_usage_errors(tmp_path: Path) -> None:
    variant = parse_variant("small-hswish-fused-r64")
    missing = tmp_path / "missing.weights.h5"
    with pytest.raises(UsageError, match="missing.weights.h5") as info:
        build_keras_model(variant, weights=missing)
    assert "save_weights" in (info.value.hint or "")

    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(UsageError, match="garbage.weights.h5"):
        build_keras_model(variant, weights=garbage)

    wrong = tmp_path / "other.weights.h5"  # another network's weights: a one-layer one builds in no time
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(wrong)
    with pytest.raises(UsageError, match="other.weights.h5") as info:
        build_keras_model(variant, weights=wrong)
    assert variant.name in (info.value.hint or "")


def test_invalid_variant_fails_before_building() -> None:
    with pytest.raises(UsageError, match="hswish@48"):
        build_keras_model(Variant("large", nonlinearity="hswish@48"))


def test_v2_is_keras_mobilenet_v2() -> None:
    ours = build_keras_model(parse_variant("v2-0.35-r96"))
    reference = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    assert weighted_layers(ours)[:-1] == weighted_layers(reference)[:-1]
    # The classifier is the same Dense, named "logits" and followed by the softmax that
    # every family ends in, "predictions" (Keras folds the softmax into its Dense).
    assert weighted_layers(ours)[-1] == ("logits", *weighted_layers(reference)[-1][1:])
    assert ours.layers[-1].name == "predictions" and ours.layers[-2].name == "logits"


@pytest.mark.slow  # whole-network Keras builds, several of them
def test_weights_saved_from_keras_mobilenet_v2_load(v2_reference_weights: tuple[keras.Model, Path]) -> None:
    reference, path = v2_reference_weights
    ours = build_keras_model(parse_variant("v2-0.35-r64"), weights=path)
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours(x).numpy(), reference(x).numpy(), atol=1e-6)


def tflite_ops(model: keras.Model) -> collections.Counter[str]:
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return collections.Counter(op["op_name"] for op in Interpreter(model_content=content)._get_ops_details())


@pytest.mark.slow
def test_fused_converts_to_hard_swish_and_naive_does_not() -> None:
    # The converter is the ground truth for "fused": one HARD_SWISH per h-swish site.
    fused_v, naive_v = parse_variant("large-hswish@112-fused-r64"), parse_variant("large-hswish@112-naive-r64")
    fused, naive = tflite_ops(build_keras_model(fused_v)), tflite_ops(build_keras_model(naive_v))
    sites = hswish_sites(fused_v)
    assert fused["HARD_SWISH"] == sites == 13
    assert naive["HARD_SWISH"] == 0
    assert naive["ADD"] - fused["ADD"] == sites
    assert naive["MUL"] - fused["MUL"] == 2 * sites
    assert {k: v for k, v in naive.items() if k not in ("ADD", "MUL")} == {
        k: v for k, v in fused.items() if k not in ("ADD", "MUL", "HARD_SWISH")
    }


# Op-inventory parity with keras.applications is checked at full size, where it is the
# point, in tests/model/test_convert_full.py.
