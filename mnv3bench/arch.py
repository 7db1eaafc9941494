"""MobileNetV3 (Tables 1 and 2 of the paper) and MobileNetV2 as data; variants as rewrites.

Each family is a `Plan` in the TF-slim style: the stem, one row per bottleneck (kernel,
expansion *ratio*, unscaled output channels, squeeze-and-excite, the paper's nonlinearity,
stride) and the head, before width scaling. `arch_spec(variant)` starts from the family's
plan, applies each axis's rewrite (`rewrite_*` below, registered by the axis in
variants.AXES) and resolves the result into an `ArchSpec`: every layer with its concrete
channel counts (after width rounding) and activation. The Keras builder (build.py) and the
MAdds/params counter (flops.py) both read only the ArchSpec, for V3 and V2 alike, so they
cannot disagree about the network.

Channel rounding follows Keras and TF-slim exactly: output channels are `_depth(c * width)`,
a bottleneck's expansion is `_depth(ratio * scaled input channels)` (which reproduces the
table's "exp" column at width 1.0), the SE bottleneck is `_depth(expanded / 4)`, the head
conv is `_depth(6 * last bottleneck output)` (960 for Large at 1.0) and the final
1280 (Large) / 1024 (Small) conv is scaled only when width > 1. Unlike Keras, the stem is
scaled too (`_depth(16 * width)`); the two agree at the paper's widths 1.0, 0.85 and 0.75.
MobileNetV2 follows keras.applications.MobileNetV2 exactly (it truncates c * alpha to an
int before rounding a bottleneck's output).

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

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, Union

# Activation names used in the resolved spec. "hswish" is built fused or naive according
# to ArchSpec.hswish_impl; "relu6" occurs only in MobileNetV2.
RELU, HSWISH, SWISH, RELU6 = "relu", "hswish", "swish", "relu6"
ACTIVATIONS = (RELU, HSWISH, SWISH, RELU6)

MIN_RESOLUTION = 32  # Keras refuses smaller inputs; below it the 7x7 stage is 1x1 anyway.
DEFAULT_RESOLUTION = 224
SE_RATIO = 0.25
CLASSES = 1000
DROPOUT = 0.2


def _depth(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of 8, never more than 10% down (TF-slim, Keras)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# ---------------------------------------------------------------------------------------
# Layers of the resolved network (channel counts are concrete).


@dataclass(frozen=True)
class Conv:
    """A regular convolution (stem, head, classifier). activation None = linear.

    bn_name / activation_name: Keras layer names where a family spells them its own way
    (MobileNetV2's "bn_Conv1", "Conv1_relu"); None means "<name>_bn" and an unnamed activation.
    """

    name: str
    filters: int
    kernel: int = 1
    stride: int = 1
    batch_norm: bool = True
    bias: bool = False
    activation: str | None = None
    bn_name: str | None = None
    activation_name: str | None = None


@dataclass(frozen=True)
class Depthwise:
    """A depthwise convolution with BN (the original last stage's 960-channel one)."""

    name: str
    kernel: int
    stride: int = 1
    activation: str | None = None


@dataclass(frozen=True)
class GlobalPool:
    """Global average pooling; V3 keeps the 1x1 spatial dims (1x1 convs follow), V2 does not."""

    name: str = "global_pool"
    keepdims: bool = True


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
class Naming:
    """How a family's Keras layers are named, so weights files from keras.applications load.

    `block` is the prefix of bottleneck i > 0 (block 0 is always "expanded_conv_"); `bn`
    and `pad` are formatted with the conv's name / the block prefix; `activation`, when
    set, names each activation after its conv (MobileNetV2's "block_1_expand_relu").
    """

    block: str = "expanded_conv_{}_"
    bn: str = "{}_bn"
    pad: str = "{}depthwise_pad"
    activation: str | None = None

    def prefix(self, index: int) -> str:
        return self.block.format(index) if index else "expanded_conv_"


V3_NAMING = Naming()
V2_NAMING = Naming(block="block_{}_", bn="{}_BN", pad="{}pad", activation="{}_relu")


@dataclass(frozen=True)
class ArchSpec:
    """A whole network as plain data: stem conv, bottlenecks, head layers in order.

    The head ends in the logits (a 1x1 conv or a Dense layer); the builder adds the softmax.
    """

    family: str
    resolution: int
    width: float
    hswish_impl: str  # "fused" | "naive" | "" (no h-swish anywhere)
    stem: Conv
    blocks: tuple[Bottleneck, ...]
    head: tuple[HeadLayer, ...]
    se_gate: str = "hard_sigmoid"  # V3's SE gate; unused by V2
    rescale_input: bool = True  # V3 maps [0, 255] to [-1, 1] in the model; Keras's V2 does not
    naming: Naming = V3_NAMING

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
# The paper's networks as plans: layers before width scaling, which the axes rewrite.

# How a planned layer's channels follow the width multiplier.
SCALED = "scaled"  # _depth(channels * width)
GROWS = "grows"  # channels, scaled only when width > 1 (the 1280/1024 before the logits)
FIXED = "fixed"  # channels (the 1000 classes)
OF_INPUT = "of-input"  # _depth(channels * the layer's input channels): channels is a ratio


@dataclass(frozen=True)
class Planned:
    """A layer of a plan; its filters/units are set from `channels` by `scaling` at resolve."""

    layer: HeadLayer
    channels: float = 0
    scaling: str = FIXED

    def resolve(self, width: float, in_channels: int) -> HeadLayer:
        if self.scaling == SCALED:
            n = _depth(self.channels * width)
        elif self.scaling == GROWS:
            n = _depth(self.channels * width) if width > 1.0 else int(self.channels)
        elif self.scaling == OF_INPUT:
            n = _depth(self.channels * in_channels)
        else:
            n = int(self.channels)
        if isinstance(self.layer, Conv):
            return replace(self.layer, filters=n)
        if isinstance(self.layer, Dense):
            return replace(self.layer, units=n)
        return self.layer


@dataclass(frozen=True)
class BneckRow:
    """One row of Table 1 / Table 2: a bottleneck before width scaling."""

    kernel: int
    expansion: float  # ratio to the (scaled) input channels; 1 = no expansion conv
    out: int
    se: bool
    nl: str  # the paper's nonlinearity: RELU or HSWISH (RELU6 in MobileNetV2)
    stride: int


@dataclass(frozen=True)
class Plan:
    """A network before width scaling: a family's table after the variant's rewrites."""

    family: str
    stem: Planned  # a Conv
    bottlenecks: tuple[BneckRow, ...]
    head: tuple[Planned, ...]
    width: float = 1.0
    resolution: int = DEFAULT_RESOLUTION
    hswish_impl: str = ""
    rescale_input: bool = True
    naming: Naming = V3_NAMING
    # Keras's MobileNetV2 truncates c * alpha to an int before rounding a block's output.
    truncate_block_out: bool = False

    def map_activations(self, f: Callable[[str], str]) -> Plan:
        """The plan with every activation (stem, bottlenecks, head) replaced by f(activation)."""

        def layer(p: Planned) -> Planned:
            act = getattr(p.layer, "activation", None)
            return replace(p, layer=replace(p.layer, activation=f(act))) if act else p

        rows = tuple(replace(row, nl=f(row.nl)) for row in self.bottlenecks)
        return replace(self, stem=layer(self.stem), bottlenecks=rows, head=tuple(layer(p) for p in self.head))


def _row(kernel: int, expansion: float, out: int, se: bool, nl: str, stride: int) -> BneckRow:
    return BneckRow(kernel, expansion, out, se, nl, stride)


def _v3_plan(family: str, rows: tuple[BneckRow, ...], last_point: int) -> Plan:
    return Plan(
        family,
        stem=Planned(Conv("conv", 0, 3, 2, activation=HSWISH), 16, SCALED),
        bottlenecks=rows,
        head=(
            Planned(Conv("conv_1", 0, activation=HSWISH), 6, OF_INPUT),  # 6 x the last bottleneck
            Planned(GlobalPool()),
            Planned(Conv("conv_2", 0, batch_norm=False, bias=True, activation=HSWISH), last_point, GROWS),
            Planned(Dropout()),
            Planned(Conv("logits", 0, batch_norm=False, bias=True), CLASSES),
        ),
    )


# Table 1. The exp column (16, 64, 72, 72, 120, 120, 240, 200, 184, 184, 480, 672, 672,
# 960, 960) is ratio x input channels, as in Keras and TF-slim.
LARGE = _v3_plan(
    "large",
    (
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
SMALL = _v3_plan(
    "small",
    (
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

# MobileNetV2 (Sandler et al., Table 2): (expansion t, output c, repeats n, first stride s).
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# keras.applications.MobileNetV2 layer for layer, with its classifier split into logits
# and a softmax like V3's. Its expansion t x input channels needs no rounding: the input
# channels are multiples of 8 already.
V2 = Plan(
    "v2",
    stem=Planned(Conv("Conv1", 0, 3, 2, activation=RELU6, bn_name="bn_Conv1", activation_name="Conv1_relu"), 32, SCALED),
    bottlenecks=tuple(
        _row(3, t, c, False, RELU6, s if repeat == 0 else 1) for t, c, n, s in V2_STAGES for repeat in range(n)
    ),
    head=(
        Planned(Conv("Conv_1", 0, activation=RELU6, bn_name="Conv_1_bn", activation_name="out_relu"), 1280, GROWS),
        Planned(GlobalPool(keepdims=False)),
        Planned(Dense("logits", 0), CLASSES),
    ),
    rescale_input=False,
    naming=V2_NAMING,
    truncate_block_out=True,
)

PLANS = {"large": LARGE, "small": SMALL, "v2": V2}
V3_FAMILIES = ("large", "small")


def bottleneck_out_channels(family: str) -> tuple[int, ...]:
    """The valid N of "hswish@N" for a family: its distinct unscaled bottleneck outputs."""
    outs: list[int] = []
    for row in PLANS[family].bottlenecks:
        if row.out not in outs:
            outs.append(row.out)
    return tuple(outs)


def default_hswish_from(family: str) -> int:
    """The paper's own placement as "hswish@N": the first h-swish bottleneck's output channels."""
    return next(row.out for row in PLANS[family].bottlenecks if row.nl == HSWISH)


# ---------------------------------------------------------------------------------------
# Each axis's rewrite of a plan (registered by the axis in variants.AXES). They trust
# their value: the variant was validated before any rewrite runs.


def rewrite_width(plan: Plan, width: float) -> Plan:
    return replace(plan, width=width)


def rewrite_nonlinearity(plan: Plan, nonlinearity: str) -> Plan:
    """hswish: the table's own; relu: ReLU everywhere; swish: swish for h-swish; hswish@N."""
    if nonlinearity == "hswish":
        return plan
    if nonlinearity == "relu":
        return plan.map_activations(lambda act: RELU)
    if nonlinearity == "swish":
        return plan.map_activations(lambda act: SWISH if act == HSWISH else act)
    if nonlinearity.startswith("hswish@"):
        n = int(nonlinearity.split("@", 1)[1])
        first = next(i for i, row in enumerate(plan.bottlenecks) if row.out == n)
        rows = tuple(replace(row, nl=RELU if i < first else HSWISH) for i, row in enumerate(plan.bottlenecks))
        return replace(plan, bottlenecks=rows)  # the stem and the head keep h-swish
    raise ValueError(f"no rewrite for nonlinearity {nonlinearity!r}")


def rewrite_hswish_impl(plan: Plan, impl: str) -> Plan:
    return replace(plan, hswish_impl=impl)


def rewrite_last_stage(plan: Plan, stage: str) -> Plan:
    """original: Figure 5's MobileNetV2-style ending, with the head's own nonlinearity."""
    if stage == "efficient":
        return plan
    layers = {p.layer.name: p for p in plan.head if isinstance(p.layer, Conv)}
    conv_1, conv_2, logits = layers["conv_1"], layers["conv_2"], layers["logits"]
    act = conv_1.layer.activation
    head = (
        conv_1,
        Planned(Depthwise("last_stage_depthwise", 3, activation=act)),
        Planned(Conv("last_stage_project", 0), 2 * plan.bottlenecks[-1].out, SCALED),
        replace(conv_2, layer=replace(conv_2.layer, batch_norm=True, bias=False)),
        Planned(GlobalPool()),
        Planned(Dropout()),
        logits,
    )
    return replace(plan, head=head)


def rewrite_stem(plan: Plan, stem: str) -> Plan:
    """32-relu: the 32-filter ReLU stem that the 16-filter h-swish stem replaced (§5.2)."""
    if stem == "16-hswish":
        return plan
    if stem == "32-relu":
        return replace(plan, stem=Planned(replace(plan.stem.layer, activation=RELU), 32, SCALED))
    raise ValueError(f"no rewrite for stem {stem!r}")


def rewrite_resolution(plan: Plan, resolution: int) -> Plan:
    return replace(plan, resolution=resolution)


# ---------------------------------------------------------------------------------------
# Plan -> ArchSpec.


def resolve(plan: Plan) -> ArchSpec:
    """Concrete channel counts: every layer scaled by the width and rounded (Keras's rules)."""
    width = plan.width
    stem = plan.stem.resolve(width, 3)
    assert isinstance(stem, Conv)
    blocks: list[Bottleneck] = []
    channels = stem.filters
    for index, row in enumerate(plan.bottlenecks):
        expanded = _depth(channels * row.expansion) if index > 0 else channels
        scaled_out = int(row.out * width) if plan.truncate_block_out else row.out * width
        out = _depth(scaled_out)
        se = _depth(expanded * SE_RATIO) if row.se else 0
        blocks.append(Bottleneck(index, channels, expanded, out, row.kernel, row.stride, se, row.nl))
        channels = out
    head: list[HeadLayer] = []
    for planned in plan.head:
        layer = planned.resolve(width, channels)
        if isinstance(layer, Conv):
            channels = layer.filters
        head.append(layer)
    spec = ArchSpec(
        plan.family, plan.resolution, width, "", stem, tuple(blocks), tuple(head),
        rescale_input=plan.rescale_input, naming=plan.naming,
    )
    return replace(spec, hswish_impl=plan.hswish_impl if HSWISH in spec.activations() else "")


class Variant(Protocol):
    """What the architecture needs of a variant (variants.Variant is the one): its family, its
    rule check and each axis's rewrite with its value. A protocol, so that arch.py, which the
    axes' rewrites live in, never imports variants.py, which registers them."""

    family: str

    def validate(self) -> None: ...

    def rewrites(self) -> list[tuple[Callable[[Plan, Any], Plan], Any]]: ...


def arch_spec(variant: Variant) -> ArchSpec:
    """The network a variant names, layer by layer, with concrete channel counts.

    Raises UsageError for a variant that breaks an axis's rule (variants.AXES).
    """
    variant.validate()
    plan = PLANS[variant.family]
    for rewrite, value in variant.rewrites():
        plan = rewrite(plan, value)
    return resolve(plan)


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
