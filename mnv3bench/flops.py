"""Multiply-adds and parameters of a variant, from its ArchSpec alone (no TensorFlow).

MAdds follow the paper's convention: the multiply-adds of convolutions and
fully-connected layers, with batch norm folded into the preceding conv (so BN, biases,
activations, pooling, SE multiplies and residual adds cost nothing). Large 1.0 at 224
comes to 216.6M (the paper rounds to 217M/219M). Parameters are every weight the Keras
model holds, batch-norm moving statistics included, i.e. `model.count_params()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mnv3bench.arch import (
    ArchSpec,
    Bottleneck,
    Conv,
    Dense,
    Depthwise,
    GlobalPool,
    arch_spec,
    spatial_sizes,
)

if TYPE_CHECKING:
    from mnv3bench.variants import Variant

BN_WEIGHTS = 4  # gamma, beta, moving mean, moving variance per channel


@dataclass(frozen=True)
class Counts:
    madds: int
    params: int


class _Tally:
    def __init__(self) -> None:
        self.madds = 0
        self.params = 0

    def conv(self, side: int, cin: int, cout: int, kernel: int = 1, *, bn: bool, bias: bool) -> None:
        self.madds += side * side * kernel * kernel * cin * cout
        self.params += kernel * kernel * cin * cout + (cout if bias else 0) + (BN_WEIGHTS * cout if bn else 0)

    def depthwise(self, side: int, channels: int, kernel: int) -> None:
        self.madds += side * side * kernel * kernel * channels
        self.params += kernel * kernel * channels + BN_WEIGHTS * channels


def _block(t: _Tally, block: Bottleneck, side_in: int) -> None:
    side_out = -(-side_in // block.stride)
    if block.has_expansion:
        t.conv(side_in, block.in_channels, block.expanded, bn=True, bias=False)
    t.depthwise(side_out, block.expanded, block.kernel)
    if block.se_channels:  # two FC layers (1x1 convs with bias) on the pooled vector
        t.conv(1, block.expanded, block.se_channels, bn=False, bias=True)
        t.conv(1, block.se_channels, block.expanded, bn=False, bias=True)
    t.conv(side_out, block.expanded, block.out, bn=True, bias=False)


# The network's parts, as profile/blocks.py attributes time to them.
STEM = "stem"
LAST_STAGE = "last stage"
CLASSIFIER = "classifier"


def bottleneck_name(index: int) -> str:
    """The paper's numbering: bottleneck 1 is the first row of Table 1/2 (Keras block_id 0)."""
    return f"bottleneck {index + 1}"


def is_logits(spec: ArchSpec, layer: object) -> bool:
    """The head's last Conv/Dense layer is the classifier; the layers before it the last stage."""
    weighted = [l for l in spec.head if isinstance(l, (Conv, Dense))]
    return bool(weighted) and layer is weighted[-1]


def _tallies(spec: ArchSpec) -> list[tuple[str, _Tally]]:
    tallies: list[tuple[str, _Tally]] = [(STEM, _Tally())]
    sides = spatial_sizes(spec.resolution, spec.blocks)
    tallies[0][1].conv(sides[0], 3, spec.stem.filters, spec.stem.kernel, bn=spec.stem.batch_norm,
                       bias=spec.stem.bias)
    for block, side in zip(spec.blocks, sides):
        tallies.append((bottleneck_name(block.index), _Tally()))
        _block(tallies[-1][1], block, side)
    last, classifier = _Tally(), _Tally()
    tallies += [(LAST_STAGE, last), (CLASSIFIER, classifier)]
    side, channels = sides[-1], spec.blocks[-1].out
    for layer in spec.head:
        t = classifier if is_logits(spec, layer) else last
        if isinstance(layer, Conv):
            t.conv(side, channels, layer.filters, layer.kernel, bn=layer.batch_norm, bias=layer.bias)
            channels = layer.filters
        elif isinstance(layer, Depthwise):
            t.depthwise(side, channels, layer.kernel)
        elif isinstance(layer, Dense):
            t.conv(1, channels, layer.units, bn=False, bias=True)
            channels = layer.units
        elif isinstance(layer, GlobalPool):
            side = 1
    return tallies


def count_spec(spec: ArchSpec) -> Counts:
    tallies = [t for _, t in _tallies(spec)]
    return Counts(sum(t.madds for t in tallies), sum(t.params for t in tallies))


def madds_by_block(spec: ArchSpec) -> dict[str, int]:
    """MAdds of the stem, each bottleneck, the last stage and the classifier, in network order."""
    return {name: t.madds for name, t in _tallies(spec)}


def count(variant: Variant) -> Counts:
    """MAdds and parameters of the network a variant names."""
    return count_spec(arch_spec(variant))


@dataclass(frozen=True)
class Saving:
    what: str
    baseline: str  # the variant the paper improved upon
    improved: str
    madds_saved: int
    params_saved: int
    paper_madds_saved: int


def savings(width: float = 1.0, resolution: int = 224) -> list[Saving]:
    """The paper's two MAdds claims (§5.1 last stage: 30M; stem: 10M), recomputed."""
    from mnv3bench.variants import Variant

    default = Variant("large", width=width, resolution=resolution)
    rows = [
        ("efficient last stage", Variant("large", width=width, resolution=resolution, last_stage="original"), 30_000_000),
        ("16-filter h-swish stem", Variant("large", width=width, resolution=resolution, stem="32-relu"), 10_000_000),
    ]
    improved = count(default)
    out = []
    for what, baseline, paper in rows:
        base = count(baseline)
        out.append(
            Saving(what, baseline.name, default.name, base.madds - improved.madds, base.params - improved.params, paper)
        )
    return out
