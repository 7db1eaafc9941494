"""flops.count (spec arithmetic, no TensorFlow) equals a count taken from the built Keras model."""

from __future__ import annotations

import pytest

from mnv3bench.build import build_keras_model
from mnv3bench.flops import count
from mnv3bench.variants import parse_variant
from tests.helpers import TENSORFLOW_GROUP, LazyModule

pytestmark = pytest.mark.xdist_group(TENSORFLOW_GROUP)

keras = LazyModule("keras")

# Resolution is not the point here: r64/r96 keep the builds fast (and r96 exercises odd
# feature-map sides: 96 -> 48 -> 24 -> 12 -> 6 -> 3). The quick suite builds one of each
# family and one that changes every Large axis at once; the rest are slow (a Keras build each).
VARIANTS = [
    "large-hswish-fused-r96",
    pytest.param("large-0.75-hswish-fused-r64", marks=pytest.mark.slow),
    pytest.param("large-0.85-hswish-naive-r64", marks=pytest.mark.slow),
    pytest.param("large-1.25-hswish-fused-r64", marks=pytest.mark.slow),
    pytest.param("large-relu-r64", marks=pytest.mark.slow),
    pytest.param("large-swish-r64", marks=pytest.mark.slow),
    pytest.param("large-hswish@16-naive-r64", marks=pytest.mark.slow),
    pytest.param("large-hswish@112-fused-r64", marks=pytest.mark.slow),
    pytest.param("large-hswish-fused-original-r96", marks=pytest.mark.slow),
    pytest.param("large-stem32relu-r64", marks=pytest.mark.slow),
    "large-0.5-hswish-fused-original-stem32relu-r80",
    pytest.param("small-hswish-fused-r96", marks=pytest.mark.slow),
    pytest.param("small-0.75-hswish-fused-r64", marks=pytest.mark.slow),
    "small-0.35-hswish@16-naive-r72",
    "v2-1.0-r64",
    pytest.param("v2-0.35-r96", marks=pytest.mark.slow),
]


def madds_of_model(model: keras.Model) -> int:
    """Multiply-adds of every Conv2D, DepthwiseConv2D and Dense, from the built layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * c * layer.depth_multiplier
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += h * w * kh * kw * cin * cout // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


@pytest.mark.parametrize("name", VARIANTS)
def test_spec_counts_equal_the_built_model(name: str) -> None:
    variant = parse_variant(name)
    # Counting reads layers and shapes, never weight values: a stateless scope builds the
    # same layers without filling their variables (a quarter less time per build).
    with keras.StatelessScope():
        model = build_keras_model(variant)
    counts = count(variant)
    assert counts.params == model.count_params()
    assert counts.madds == madds_of_model(model)
    assert model.output.shape[-1] == 1000


@pytest.mark.parametrize("alpha", [1.0, pytest.param(0.35, marks=pytest.mark.slow)])
def test_v2_counts_equal_keras_applications(alpha: float) -> None:
    # Parameters do not depend on the resolution: r96 keeps the build fast.
    reference = keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(96, 96, 3))
    counts = count(parse_variant(f"v2-{alpha}-r96"))
    assert counts.params == reference.count_params()
    assert counts.madds == madds_of_model(reference)
