"""MAdds and parameters from the spec alone (the model-walking check is test_flops_model.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnv3bench.errors import UsageError
from mnv3bench.flops import count, savings
from mnv3bench.variants import Variant, catalog, parse_variant


def test_large_and_small_match_the_reference_counts() -> None:
    # Reference values: keras.applications count_params() and the paper's/torchvision MAdds.
    large = count(Variant("large"))
    assert large.params == 5_507_432
    assert round(large.madds / 1e6, 1) == 216.6
    small = count(Variant("small"))
    assert small.params == 2_554_968
    assert round(small.madds / 1e6, 1) == 56.5
    assert round(count(Variant("v2")).madds / 1e6) == 301  # paper: 300M
    assert count(Variant("v2")).params == 3_538_984  # keras.applications.MobileNetV2


def test_activation_choices_cost_no_madds_or_params() -> None:
    base = count(Variant("large"))
    for plan in ("relu", "swish", "hswish@16", "hswish@112"):
        assert count(Variant("large", nonlinearity=plan)) == base
    assert count(Variant("large", hswish_impl="naive")) == base


def test_madds_scale_with_resolution_squared_params_do_not() -> None:
    double, full = count(Variant("large", resolution=448)), count(Variant("large", resolution=224))
    assert double.params == full.params
    # Spatial layers scale 4x; the layers after the pool (SE FCs, 1280 conv, classifier) do not.
    assert 3.9 < double.madds / full.madds < 4.0


def test_narrower_is_cheaper() -> None:
    widths = [1.0, 0.85, 0.75, 0.5]
    madds = [count(Variant("large", width=w)).madds for w in widths]
    assert madds == sorted(madds, reverse=True)


def test_savings_of_the_papers_two_claims() -> None:
    last_stage, stem = savings()
    assert last_stage.baseline == "large-hswish-fused-original"
    assert 34e6 < last_stage.madds_saved < 35e6  # paper: 30M
    assert stem.baseline == "large-hswish-fused-stem32relu"
    assert 10.3e6 < stem.madds_saved < 10.5e6  # paper: 10M
    assert last_stage.madds_saved == count(parse_variant(last_stage.baseline)).madds - count(Variant("large")).madds


def test_every_catalog_variant_has_counts() -> None:
    for variant in catalog():
        c = count(variant)
        assert c.madds > 0 and c.params > 0


def test_count_imports_no_tensorflow() -> None:
    code = (
        "import sys\nfrom mnv3bench.flops import count, savings\nfrom mnv3bench.variants import catalog\n"
        "[count(v) for v in catalog()]; savings()\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


@pytest.mark.parametrize(
    "variant", [Variant("large", nonlinearity="hswish@48"), Variant("small", last_stage="original")]
)
def test_invalid_variants_fail_in_count_too(variant: Variant) -> None:
    with pytest.raises(UsageError):
        count(variant)
