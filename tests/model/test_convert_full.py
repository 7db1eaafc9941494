"""Full-size Large and Small: the HARD_SWISH count and parity with keras.applications.

Here the full model is the point: the fusion and the op inventory at 224x224 are what the
paper's Table 5 measures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnv3bench.arch import hswish_sites
from mnv3bench.model import convert
from mnv3bench.model.builds import ensure_model
from mnv3bench.model.ops import op_inventory_from_bytes
from mnv3bench.variants import parse_variant

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("name", "reference", "sites"), [("large-hswish-fused", "MobileNetV3Large", 21), ("small-hswish-fused", "MobileNetV3Small", 19)])
def test_full_size_model_matches_keras_applications(tmp_path: Path, name: str, reference: str, sites: int) -> None:
    import keras

    artifact = ensure_model(name, models_dir=tmp_path)
    assert hswish_sites(parse_variant(name)) == sites
    assert artifact.ops["HARD_SWISH"] == sites
    with convert.quiet_native_output():
        # A fixed 224x224 input like ours: with the default (None, None, 3) input the
        # converter cannot fold the stride-2 ZeroPadding into the convs and keeps 4 PADs.
        keras_reference = getattr(keras.applications, reference)(weights=None, input_shape=(224, 224, 3))
        reference_ops = op_inventory_from_bytes(convert.convert_keras_model(keras_reference))
    assert artifact.ops == reference_ops
    assert artifact.params == keras_reference.count_params()


@pytest.mark.parametrize(("name", "alpha"), [("v2-1.0", 1.0), ("v2-0.35", 0.35)])
def test_v2_from_its_spec_matches_keras_applications(tmp_path: Path, name: str, alpha: float) -> None:
    # The V2 baselines come from arch.py's spec through the same builder as V3, no longer
    # from keras.applications: the same ops (its softmax split from the Dense changes no
    # op) and the same parameters, which flops.count reads from the same spec.
    import keras

    from mnv3bench.flops import count

    artifact = ensure_model(name, models_dir=tmp_path)
    assert "HARD_SWISH" not in artifact.ops
    with convert.quiet_native_output():
        keras_reference = keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(224, 224, 3))
        reference_ops = op_inventory_from_bytes(convert.convert_keras_model(keras_reference))
    assert artifact.ops == reference_ops
    assert artifact.params == keras_reference.count_params() == count(parse_variant(name)).params
