"""The architecture as data: Tables 1/2, width rounding, nonlinearity plans, stage rewrites."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnv3bench.arch import (
    HSWISH,
    RELU,
    SWISH,
    Conv,
    Depthwise,
    GlobalPool,
    arch_spec,
    bottleneck_out_channels,
    hswish_sites,
)
from mnv3bench.errors import UsageError
from mnv3bench.variants import BOTTLENECK_OUT_CHANNELS, Variant, parse_variant

# The paper's columns, copied from Tables 1 and 2 (not computed from arch.py's ratios).
TABLE1_EXP = [16, 64, 72, 72, 120, 120, 240, 200, 184, 184, 480, 672, 672, 960, 960]
TABLE1_OUT = [16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160]
TABLE1_SE = [0, 0, 0, 24, 32, 32, 0, 0, 0, 0, 120, 168, 168, 240, 240]
TABLE1_NL = ["RE"] * 6 + ["HS"] * 9
TABLE1_KERNEL = [3, 3, 3, 5, 5, 5, 3, 3, 3, 3, 3, 3, 5, 5, 5]
TABLE1_STRIDE = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1]
TABLE2_EXP = [16, 72, 88, 96, 240, 240, 120, 144, 288, 576, 576]
TABLE2_OUT = [16, 24, 24, 40, 40, 40, 48, 48, 96, 96, 96]
TABLE2_NL = ["RE"] * 3 + ["HS"] * 8
TABLE2_SE = [True, False, False] + [True] * 8
TABLE2_STRIDE = [2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1]
NL = {"RE": RELU, "HS": HSWISH}


def test_large_reproduces_table_1() -> None:
    spec = arch_spec(Variant("large"))
    assert spec.stem == Conv("conv", 16, 3, 2, activation=HSWISH)
    assert [b.expanded for b in spec.blocks] == TABLE1_EXP
    assert [b.out for b in spec.blocks] == TABLE1_OUT
    assert [b.se_channels for b in spec.blocks] == TABLE1_SE
    assert [b.activation for b in spec.blocks] == [NL[n] for n in TABLE1_NL]
    assert [b.kernel for b in spec.blocks] == TABLE1_KERNEL
    assert [b.stride for b in spec.blocks] == TABLE1_STRIDE
    assert not spec.blocks[0].has_expansion and all(b.has_expansion for b in spec.blocks[1:])
    conv_1, pool, conv_2, _dropout, logits = spec.head
    assert (conv_1.filters, conv_1.batch_norm, conv_1.activation) == (960, True, HSWISH)
    assert isinstance(pool, GlobalPool)
    assert (conv_2.filters, conv_2.batch_norm, conv_2.bias, conv_2.activation) == (1280, False, True, HSWISH)
    assert (logits.filters, logits.activation) == (1000, None)


def test_small_reproduces_table_2() -> None:
    spec = arch_spec(Variant("small"))
    assert [b.expanded for b in spec.blocks] == TABLE2_EXP
    assert [b.out for b in spec.blocks] == TABLE2_OUT
    assert [b.activation for b in spec.blocks] == [NL[n] for n in TABLE2_NL]
    assert [bool(b.se_channels) for b in spec.blocks] == TABLE2_SE
    assert [b.stride for b in spec.blocks] == TABLE2_STRIDE
    assert spec.head[0].filters == 576 and spec.head[2].filters == 1024


def test_residuals_only_where_shapes_match() -> None:
    spec = arch_spec(Variant("large"))
    assert [b.residual for b in spec.blocks] == [
        b.stride == 1 and b.in_channels == b.out for b in spec.blocks
    ]
    assert sum(b.residual for b in spec.blocks) == 10


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 0.85, 1.25])
def test_width_rounds_every_layer_to_multiples_of_8(width: float) -> None:
    spec = arch_spec(Variant("large", width=width))
    channels = [spec.stem.filters] + [c for b in spec.blocks for c in (b.expanded, b.out, b.se_channels)]
    assert all(c % 8 == 0 for c in channels)
    base = arch_spec(Variant("large"))
    # Never rounded down by more than 10% of the scaled value.
    for scaled, full in zip(spec.blocks, base.blocks):
        assert scaled.out >= 0.9 * full.out * width
    last_point = spec.head[2].filters
    assert last_point == (1280 if width <= 1 else 1600)


def test_width_075_channels() -> None:
    spec = arch_spec(Variant("large", width=0.75))
    assert spec.stem.filters == 16  # _depth(12) == 16, as Keras keeps it
    assert [b.out for b in spec.blocks][:7] == [16, 24, 24, 32, 32, 32, 64]
    # Expansion is the ratio times the *scaled* input, rounded: 2.3 * 64 = 147.2 -> 144.
    assert spec.blocks[8].expanded == 144
    assert spec.head[0].filters == 720


def test_hswish_sites() -> None:
    assert hswish_sites(Variant("large")) == 21
    assert hswish_sites(Variant("large", hswish_impl="naive")) == 21
    assert hswish_sites(Variant("large", width=0.85)) == 21
    assert hswish_sites(Variant("small")) == 19
    assert hswish_sites(Variant("large", nonlinearity="relu")) == 0
    assert hswish_sites(Variant("large", nonlinearity="swish")) == 0
    # @16: every layer (bottleneck 1 has no expansion conv: 1 site) -> 1 + 1 + 14*2 + 2.
    assert hswish_sites(Variant("large", nonlinearity="hswish@16")) == 32
    # @112: bottlenecks 11-15 -> 1 + 5*2 + 2.
    assert hswish_sites(Variant("large", nonlinearity="hswish@112")) == 13
    assert hswish_sites(Variant("large", last_stage="original")) == 22
    assert hswish_sites(Variant("large", stem="32-relu")) == 20
    assert hswish_sites(Variant("small", nonlinearity="hswish@16")) == 24
    assert hswish_sites(Variant("v2")) == 0


def test_default_plan_is_hswish_at_80_for_large_and_40_for_small() -> None:
    for family, n in (("large", 80), ("small", 40)):
        default = arch_spec(Variant(family))
        explicit = arch_spec(Variant(family, nonlinearity=f"hswish@{n}"))
        assert default == explicit


def test_hswish_at_n_placement() -> None:
    spec = arch_spec(Variant("large", nonlinearity="hswish@112"))
    acts = [b.activation for b in spec.blocks]
    assert acts == [RELU] * 10 + [HSWISH] * 5
    assert spec.stem.activation == HSWISH and spec.head[0].activation == HSWISH
    spec16 = arch_spec(Variant("large", nonlinearity="hswish@16"))
    assert set(spec16.activations()) == {HSWISH}


@pytest.mark.parametrize(
    ("family", "plan"), [("large", "hswish@48"), ("large", "hswish@960"), ("small", "hswish@80"), ("small", "hswish@x")]
)
def test_hswish_at_invalid_n_lists_valid_choices(family: str, plan: str) -> None:
    with pytest.raises(UsageError) as info:
        arch_spec(Variant(family, nonlinearity=plan))
    assert plan in info.value.message
    valid = ", ".join(map(str, bottleneck_out_channels(family)))
    assert valid in (info.value.hint or "")


def test_valid_n_agree_with_the_variant_grammar() -> None:
    for family, channels in BOTTLENECK_OUT_CHANNELS.items():
        assert bottleneck_out_channels(family) == channels


def test_relu_and_swish_plans() -> None:
    relu = arch_spec(Variant("large", nonlinearity="relu"))
    assert set(relu.activations()) == {RELU}
    assert relu.hswish_impl == ""
    swish = arch_spec(Variant("large", nonlinearity="swish"))
    default = arch_spec(Variant("large"))
    assert swish.activations() == [SWISH if a == HSWISH else a for a in default.activations()]


def test_original_last_stage_structure() -> None:
    spec = arch_spec(parse_variant("large-hswish-fused-original"))
    assert spec.blocks == arch_spec(Variant("large")).blocks
    conv_1, dw, project, conv_2, pool, _dropout, logits = spec.head
    assert (conv_1.filters, conv_1.activation) == (960, HSWISH)
    assert isinstance(dw, Depthwise) and (dw.kernel, dw.stride, dw.activation) == (3, 1, HSWISH)
    assert (project.filters, project.batch_norm, project.activation) == (320, True, None)
    assert (conv_2.filters, conv_2.batch_norm, conv_2.activation) == (1280, True, HSWISH)
    assert isinstance(pool, GlobalPool) and logits.filters == 1000
    with pytest.raises(UsageError, match="large only"):
        arch_spec(Variant("small", last_stage="original"))


def test_stem_32_relu_structure() -> None:
    spec = arch_spec(parse_variant("large-stem32relu"))
    assert spec.stem == Conv("conv", 32, 3, 2, activation=RELU)
    first = spec.blocks[0]
    assert (first.in_channels, first.expanded, first.out, first.has_expansion) == (32, 32, 16, False)
    assert not first.residual  # 32 in, 16 out
    assert spec.blocks[1:] == arch_spec(Variant("large")).blocks[1:]


def test_v2_spec() -> None:
    spec = arch_spec(Variant("v2"))
    assert spec.stem.filters == 32
    assert [b.out for b in spec.blocks] == [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320]
    assert spec.blocks[1].expanded == 96 and spec.head[0].filters == 1280
    assert hswish_sites(Variant("v2", width=0.35)) == 0


def test_bad_resolution_and_width_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="resolution"):
        arch_spec(Variant("large", resolution=16))
    with pytest.raises(UsageError, match="width"):
        arch_spec(Variant("large", width=0.0))
    with pytest.raises(UsageError, match="nonlinearity"):
        arch_spec(Variant("large", nonlinearity="gelu"))


def test_importing_arch_flops_and_build_imports_no_tensorflow() -> None:
    code = (
        "import sys, mnv3bench.arch, mnv3bench.flops, mnv3bench.build\n"
        "from mnv3bench.variants import Variant\n"
        "mnv3bench.flops.count(Variant('large')); mnv3bench.arch.hswish_sites(Variant('small'))\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_constants_are_defined_once() -> None:
    import mnv3bench.variants as variants
    from mnv3bench import arch

    assert variants.MIN_RESOLUTION is arch.MIN_RESOLUTION
    assert variants.DEFAULT_HSWISH_FROM == {"large": 80, "small": 40}


def test_v2_spec_is_keras_mobilenet_v2_with_a_separate_softmax() -> None:
    from mnv3bench.arch import RELU6, Dense

    spec = arch_spec(Variant("v2", width=0.35))
    assert not spec.rescale_input  # keras.applications.MobileNetV2 takes [-1, 1] inputs
    assert spec.stem == Conv("Conv1", 16, 3, 2, activation=RELU6, bn_name="bn_Conv1", activation_name="Conv1_relu")
    assert [b.out for b in spec.blocks][:4] == [8, 8, 8, 16]  # int(c * alpha), then rounded
    conv_1, pool, logits = spec.head
    assert (conv_1.filters, conv_1.bn_name, pool.keepdims) == (1280, "Conv_1_bn", False)
    assert logits == Dense("logits", 1000)
    assert spec.naming.prefix(0) == "expanded_conv_" and spec.naming.prefix(3) == "block_3_"
    assert arch_spec(Variant("v2", width=1.4)).head[0].filters == 1792
