"""MobileNetV3 (Tables 1 and 2 of the paper) and MobileNetV2 as data; variants as rewrites.

The base networks are declarative tables in the TF-slim style: one row per bottleneck,
holding the kernel, the expansion *ratio*, the unscaled output channels, whether it has
squeeze-and-excite, the paper's nonlinearity and the stride. `arch_spec(variant)` turns a
table and a `Variant` into an `ArchSpec`: every layer with its concrete channel counts
(after width rounding) and activation. The Keras builder (build.py) and the MAdds/params
counter (flops.py) both read only the ArchSpec, so they cannot disagree about the network.

Channel rounding follows Keras and TF-slim exactly: output channels are `_depth(c * width)`,
a bottleneck's expansion is `_depth(ratio * scaled input channels)` (which reproduces the
table's "exp" column at width 1.0), the SE bottleneck is `_depth(expanded / 4)`, the head
conv is `_depth(6 * last bottleneck output)` (960 for Large at 1.0) and the final
1280 (Large) / 1024 (Small) conv is scaled only when width > 1. Unlike Keras, the stem is
scaled too (`_depth(16 * width)`); the two agree at the paper's widths 1.0, 0.85 and 0.75.

h-swish @N (Table 5, "h-swish @16", "h-swish @112"). We read N as the unscaled number of
output channels of the first bottleneck that uses h-swish: every bottleneck from the first
one whose table output is N channels on uses h-swish (in its expansion conv and its
depthwise conv), every bottleneck before it uses ReLU. The stem and the head keep h-swish,
as in the default network. So "@16" is h-swish in every layer of Large (bottleneck 1 is
the first 16-channel one), "@112" starts at bottleneck 11, and the paper's default is
"@80" for Large (bottleneck 7) and "@40" for Small (bottleneck 4). N must be one of the
family's bottleneck output channel counts; anything else names no layer and is refused.

Original last stage (Figure 5, "Original Last Stage"). The MobileNetV2-style ending the
paper replaced: after the last 7x7x160 bottleneck, a 1x1 conv to 960 (BN, h-swish), a
3x3 depthwise conv over those 960 channels (BN, h-swish), a linear 1x1 projection to 320
(BN, no activation, no residual), a 1x1 conv to 1280 (BN, h-swish) still at 7x7, then the
global average pool and the 1x1 classifier (with dropout before it, as in the efficient
stage). The efficient stage (Table 1) drops the depthwise and the projection and moves
the 1280 conv after the pool, where it is a 1x1x960 -> 1280 layer without BN. The 320
is scaled with the width like any other layer, the 1280 only when width > 1. Only Large
has the original stage (the paper draws it for Large only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from mnv3bench.errors import UsageError

if TYPE_CHECKING:
    from mnv3bench.variants import Variant

# Activation names used in the resolved spec. "hswish" is built fused or naive according
# to ArchSpec.hswish_impl; "relu6" occurs only in MobileNetV2.
RELU, HSWISH, SWISH, RELU6 = "relu", "hswish", "swish", "relu6"
ACTIVATIONS = (RELU, HSWISH, SWISH, RELU6)

MIN_RESOLUTION = 32  # Keras refuses smaller inputs; below it the 7x7 stage is 1x1 anyway.


def _depth(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of 8, never more than 10% down (TF-slim, Keras)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# ---------------------------------------------------------------------------------------
# The paper's tables (unscaled).


@dataclass(frozen=True)
class BneckRow:
    """One row of Table 1 / Table 2: a bottleneck before width scaling."""

    kernel: int
    expansion: float  # ratio to the (scaled) input channels; 1 = no expansion conv
    out: int
    se: bool
    nl: str  # the paper's nonlinearity: RELU or HSWISH
    stride: int


@dataclass(frozen=True)
class FamilyTable:
    stem_filters: int
    bottlenecks: tuple[BneckRow, ...]
    last_point: int  # the 1x1 conv after the pool: 1280 / 1024
    head_ratio: int = 6  # head conv = _depth(head_ratio * last bottleneck output)


def _row(kernel: int, expansion: float, out: int, se: bool, nl: str, stride: int) -> BneckRow:
    return BneckRow(kernel, expansion, out, se, nl, stride)


# Table 1. The exp column (16, 64, 72, 72, 120, 120, 240, 200, 184, 184, 480, 672, 672,
# 960, 960) is ratio x input channels, as in Keras and TF-slim.
LARGE = FamilyTable(
    stem_filters=16,
    bottlenecks=(
        _row(3, 1, 16, False, RELU, 1),
        _row(3, 4, 24, False, RELU, 2),
        _row(3, 3, 24, False, RELU, 1),
        _row(5, 3, 40, True, RELU, 2),
        _row(5, 3, 40, True, RELU, 1),
        _row(5, 3, 40, True, RELU, 1),
        _row(3, 6, 80, False, HSWISH, 2),
        _row(3, 2.5, 80, False, HSWISH, 1),
        _row(3, 2.3, 80, False, HSWISH, 1),
        _row(3, 2.3, 80, False, HSWISH, 1),
        _row(3, 6, 112, True, HSWISH, 1),
        _row(3, 6, 112, True, HSWISH, 1),
        _row(5, 6, 160, True, HSWISH, 2),
        _row(5, 6, 160, True, HSWISH, 1),
        _row(5, 6, 160, True, HSWISH, 1),
    ),
    last_point=1280,
)

# Table 2 (exp column 16, 72, 88, 96, 240, 240, 120, 144, 288, 576, 576).
SMALL = FamilyTable(
    stem_filters=16,
    bottlenecks=(
        _row(3, 1, 16, True, RELU, 2),
        _row(3, 72 / 16, 24, False, RELU, 2),
        _row(3, 88 / 24, 24, False, RELU, 1),
        _row(5, 4, 40, True, HSWISH, 2),
        _row(5, 6, 40, True, HSWISH, 1),
        _row(5, 6, 40, True, HSWISH, 1),
        _row(5, 3, 48, True, HSWISH, 1),
        _row(5, 3, 48, True, HSWISH, 1),
        _row(5, 6, 96, True, HSWISH, 2),
        _row(5, 6, 96, True, HSWISH, 1),
        _row(5, 6, 96, True, HSWISH, 1),
    ),
    last_point=1024,
)

V3_TABLES = {"large": LARGE, "small": SMALL}

# MobileNetV2 (Sandler et al., Table 2): (expansion t, output c, repeats n, first stride s).
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

SE_RATIO = 0.25
CLASSES = 1000
DROPOUT = 0.2


def bottleneck_out_channels(family: str) -> tuple[int, ...]:
    """The valid N of "hswish@N" for a family: its distinct unscaled bottleneck outputs."""
    outs: list[int] = []
    for row in V3_TABLES[family].bottlenecks:
        if row.out not in outs:
            outs.append(row.out)
    return tuple(outs)


# ---------------------------------------------------------------------------------------
# The resolved network.


@dataclass(frozen=True)
class Conv:
    """A regular convolution (stem, head, classifier). activation None = linear."""

    name: str
    filters: int
    kernel: int = 1
    stride: int = 1
    batch_norm: bool = True
    bias: bool = False
    activation: str | None = None


@dataclass(frozen=True)
class Depthwise:
    """A depthwise convolution with BN (the original last stage's 960-channel one)."""

    name: str
    kernel: int
    stride: int = 1
    activation: str | None = None


@dataclass(frozen=True)
class GlobalPool:
    """Global average pooling, keeping the 1x1 spatial dims."""

    name: str = "global_pool"


@dataclass(frozen=True)
class Dropout:
    rate: float = DROPOUT


@dataclass(frozen=True)
class Dense:
    """A fully connected classifier on the pooled vector (MobileNetV2's top)."""

    name: str
    units: int


@dataclass(frozen=True)
class Bottleneck:
    """Inverted residual: [1x1 expand, BN, act] -> dw kxk, BN, act -> [SE] -> 1x1 project, BN."""

    index: int  # 0-based position, as in Keras's block_id
    in_channels: int
    expanded: int
    out: int
    kernel: int
    stride: int
    se_channels: int  # SE bottleneck width, 0 when the block has no SE
    activation: str

    @property
    def has_expansion(self) -> bool:
        return self.index > 0

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out


HeadLayer = Union[Conv, Depthwise, GlobalPool, Dropout, Dense]


@dataclass(frozen=True)
class ArchSpec:
    """A whole network as plain data: stem conv, bottlenecks, head layers in order."""

    family: str
    resolution: int
    width: float
    hswish_impl: str  # "fused" | "naive" | "" (no h-swish anywhere)
    stem: Conv
    blocks: tuple[Bottleneck, ...]
    head: tuple[HeadLayer, ...]
    se_gate: str = "hard_sigmoid"  # V3's SE gate; unused by V2

    def activations(self) -> list[str]:
        """Every activation site in order (stem, each block's expand/depthwise, head)."""
        sites: list[str] = []
        if self.stem.activation:
            sites.append(self.stem.activation)
        for block in self.blocks:
            sites.extend([block.activation] * (2 if block.has_expansion else 1))
        for layer in self.head:
            if isinstance(layer, (Conv, Depthwise)) and layer.activation:
                sites.append(layer.activation)
        return sites


# ---------------------------------------------------------------------------------------
# Variant -> ArchSpec.


def _check_common(variant: Variant) -> None:
    if variant.family not in ("large", "small", "v2"):
        raise UsageError(f"unknown model family '{variant.family}'.", "Valid families: large, small, v2.")
    if not variant.width > 0:
        raise UsageError(f"width {variant.width} must be greater than 0.", "Use e.g. 1.0, 0.85 or 0.75.")
    if variant.resolution < MIN_RESOLUTION:
        raise UsageError(
            f"resolution {variant.resolution} is below the minimum of {MIN_RESOLUTION}.",
            "Use e.g. r224, r192 or r96.",
        )


def _block_activations(variant: Variant, table: FamilyTable) -> tuple[list[str], str, str]:
    """The activation of each bottleneck, of the stem and of the head, for a variant's plan."""
    plan = variant.nonlinearity
    paper = [row.nl for row in table.bottlenecks]
    if plan == "hswish":
        blocks, stem, head = paper, HSWISH, HSWISH
    elif plan == "relu":
        blocks, stem, head = [RELU] * len(paper), RELU, RELU
    elif plan == "swish":
        blocks, stem, head = [SWISH if nl == HSWISH else nl for nl in paper], SWISH, SWISH
    elif plan.startswith("hswish@"):
        valid = bottleneck_out_channels(variant.family)
        text = plan.split("@", 1)[1]
        n = int(text) if text.isdigit() else None
        if n not in valid:
            raise UsageError(
                f"'{plan}': no {variant.family} bottleneck has {text} output channels, so it names no layer.",
                f"Valid N for {variant.family}: {', '.join(map(str, valid))} (hswish@{valid[0]} = h-swish everywhere).",
            )
        first = next(i for i, row in enumerate(table.bottlenecks) if row.out == n)
        blocks = [RELU if i < first else HSWISH for i in range(len(paper))]
        stem, head = HSWISH, HSWISH
    else:
        raise UsageError(
            f"unknown nonlinearity plan '{plan}'.", "Valid plans: hswish, hswish@N, relu, swish."
        )
    return blocks, stem, head


def _v3_spec(variant: Variant) -> ArchSpec:
    table = V3_TABLES[variant.family]
    width = variant.width
    block_acts, stem_act, head_act = _block_activations(variant, table)

    if variant.stem == "16-hswish":
        stem = Conv("conv", _depth(table.stem_filters * width), 3, 2, activation=stem_act)
    elif variant.stem == "32-relu":
        stem = Conv("conv", _depth(32 * width), 3, 2, activation=RELU)
    else:
        raise UsageError(f"unknown stem '{variant.stem}'.", "Valid stems: 16-hswish, 32-relu.")

    blocks: list[Bottleneck] = []
    channels = stem.filters
    for index, (row, act) in enumerate(zip(table.bottlenecks, block_acts)):
        expanded = _depth(channels * row.expansion) if index > 0 else channels
        out = _depth(row.out * width)
        se = _depth(expanded * SE_RATIO) if row.se else 0
        blocks.append(Bottleneck(index, channels, expanded, out, row.kernel, row.stride, se, act))
        channels = out

    head_conv = _depth(channels * table.head_ratio)
    last_point = _depth(table.last_point * width) if width > 1.0 else table.last_point
    head: tuple[HeadLayer, ...]
    if variant.last_stage == "efficient":
        head = (
            Conv("conv_1", head_conv, activation=head_act),
            GlobalPool(),
            Conv("conv_2", last_point, batch_norm=False, bias=True, activation=head_act),
            Dropout(),
            Conv("logits", CLASSES, batch_norm=False, bias=True),
        )
    elif variant.last_stage == "original":
        if variant.family != "large":
            raise UsageError(
                "the original (MobileNetV2-style) last stage is defined for large only.",
                "Drop '-original' or use large-...-original.",
            )
        head = (
            Conv("conv_1", head_conv, activation=head_act),
            Depthwise("last_stage_depthwise", 3, activation=head_act),
            Conv("last_stage_project", _depth(2 * table.bottlenecks[-1].out * width)),
            Conv("conv_2", last_point, activation=head_act),
            GlobalPool(),
            Dropout(),
            Conv("logits", CLASSES, batch_norm=False, bias=True),
        )
    else:
        raise UsageError(f"unknown last stage '{variant.last_stage}'.", "Valid last stages: efficient, original.")

    uses_hswish = HSWISH in (stem.activation, head_act, *block_acts)
    impl = variant.hswish_impl if uses_hswish else ""
    if uses_hswish and impl not in ("fused", "naive"):
        raise UsageError(f"unknown h-swish implementation '{variant.hswish_impl}'.", "Valid: fused, naive.")
    return ArchSpec(variant.family, variant.resolution, width, impl, stem, tuple(blocks), head)


def _v2_spec(variant: Variant) -> ArchSpec:
    """MobileNetV2 with Keras's rounding (expansion is t x input channels, not rounded)."""
    alpha = variant.width
    stem = Conv("Conv1", _depth(32 * alpha), 3, 2, activation=RELU6)
    blocks: list[Bottleneck] = []
    channels = stem.filters
    for t, c, n, s in V2_STAGES:
        for repeat in range(n):
            index = len(blocks)
            out = _depth(int(c * alpha))
            expanded = t * channels if index > 0 else channels
            blocks.append(Bottleneck(index, channels, expanded, out, 3, s if repeat == 0 else 1, 0, RELU6))
            channels = out
    last = _depth(1280 * alpha) if alpha > 1.0 else 1280
    head = (Conv("Conv_1", last, activation=RELU6), GlobalPool(), Dense("predictions", CLASSES))
    return ArchSpec("v2", variant.resolution, alpha, "", stem, tuple(blocks), head)


def arch_spec(variant: Variant) -> ArchSpec:
    """The network a variant names, layer by layer, with concrete channel counts."""
    _check_common(variant)
    if variant.family == "v2":
        return _v2_spec(variant)
    return _v3_spec(variant)


def hswish_sites(variant: Variant) -> int:
    """Number of h-swish activations (each becomes one HARD_SWISH op when fused).

    Large default: stem 1 + 9 bottlenecks x 2 (expansion and depthwise) + head 2 = 21.
    The SE gates are hard-sigmoid, not h-swish, and are not counted.
    """
    return arch_spec(variant).activations().count(HSWISH)


def spatial_sizes(resolution: int, blocks: tuple[Bottleneck, ...]) -> list[int]:
    """Input side length of each block (all strided layers halve, rounding up)."""
    side = -(-resolution // 2)  # the stem's stride 2
    sizes = []
    for block in blocks:
        sizes.append(side)
        if block.stride == 2:
            side = -(-side // 2)
    sizes.append(side)  # the head's input
    return sizes
