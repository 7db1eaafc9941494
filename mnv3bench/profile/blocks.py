"""Where the time goes: each op-profile row mapped back to the network a researcher designed.

The blocks are the input rescaling, the stem, bottleneck 1..N (split into expansion,
depthwise, squeeze-and-excite and projection), the last stage and the classifier.

- TFLite nodes (builtin kernels, and the ops a delegate leaves to TFLite) carry their output
  tensor's name, which holds the builder's layer names (build.py names every layer by block:
  `expanded_conv_3_expand`, `expanded_conv_3_squeeze_excite_conv`, ...). A node whose name
  holds no layer (an unnamed activation, SE's hard-sigmoid arithmetic, Flatten's shape ops,
  the softmax) consumes the previous node's output in these sequential networks, so it takes
  the previous node's place.
- Delegate operators (XNNPACK's "Convolution (NHWC, F32) DWConv", "Fully Connected ...") carry
  no tensor name. Their weighted operators are matched in order with the spec's weighted
  layers (conv/1x1 conv/FC vs depthwise); the operators between them belong to the weighted
  operator before them, except a pooling right before an SE layer, which is the SE's. At the
  first weighted operator whose kind does not match the spec, matching stops: that operator
  and the rest of the delegate's are reported as unattributed rather than guessed.

The rows are benchmark_model's "Run Order" rows, as the parser reads them from a phone's
output or the emulator's stand-in prints them, so the same mapping serves both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mnv3bench.arch import ArchSpec, Conv, Dense, Depthwise, GlobalPool
from mnv3bench.flops import (
    CLASSIFIER,
    LAST_STAGE,
    STEM,
    bottleneck_name,
    is_logits,
    madds_by_block,
)

INPUT = "input"

# Parts of a block.
CONV = "conv"
RESCALE = "rescale"
EXPAND = "expand"
DEPTHWISE = "depthwise"
SQUEEZE_EXCITE = "squeeze-excite"
PROJECT = "project"
POOL = "pool"
LOGITS = "logits"

DELEGATE_PREFIX = "Delegate/"
# Rows that are the runtime's, not the network's (LiteRT's "LiteRT::Run[buffer registration]",
# "AllocateTensors"): kept apart from the op time that shares are taken of.
_RUNTIME_ROW = re.compile(r"^(?:LiteRT::|AllocateTensors$|ModifyGraphWithDelegate$)")
_MODEL_SCOPE = "mnv3bench_"  # build.keras_model_name's prefix
_SUFFIX = re.compile(r"(?:_\d+)*")
_RESCALING = re.compile(r"^rescaling(?:_\d+)*$")
_POOLING_OP = re.compile(r"^(?:Mean|Sum|Global Average Pooling|Average Pooling|MEAN|SUM|AVERAGE_POOL_2D)\b")


@dataclass(frozen=True)
class Place:
    block: str
    part: str


@dataclass(frozen=True)
class _Slot:
    """One weighted layer of the spec, in execution order."""

    place: Place
    kind: str  # "conv" (any matrix multiply) | "depthwise"


@dataclass
class BlockTime:
    name: str
    ms: float = 0.0
    ops: int = 0
    madds: int = 0
    parts: dict[str, float] = field(default_factory=dict)  # part -> ms

    def share(self, total_ms: float) -> float:
        return self.ms / total_ms if total_ms > 0 else 0.0

    @property
    def ms_per_madd(self) -> float | None:
        return self.ms / self.madds if self.madds else None


@dataclass
class Attribution:
    """Per-block time of one profiled run (ms per run); shares are of the network's op time."""

    blocks: list[BlockTime]
    unattributed_ms: float
    runtime_ms: float  # the runtime's own rows (buffer registration, ...), not in total_ms
    rows: list[tuple[Mapping[str, Any], Place | None]]

    @property
    def total_ms(self) -> float:
        return sum(b.ms for b in self.blocks) + self.unattributed_ms

    @property
    def unattributed_share(self) -> float:
        return self.unattributed_ms / self.total_ms if self.total_ms > 0 else 0.0

    def block(self, name: str) -> BlockTime:
        return next(b for b in self.blocks if b.name == name)

    def to_json(self) -> dict[str, Any]:
        total = self.total_ms
        return {
            "total_ms": round(total, 6),
            "blocks": [{"name": b.name, "ms": round(b.ms, 6), "share": round(b.share(total), 6), "ops": b.ops,
                        "madds": b.madds, "parts": {k: round(v, 6) for k, v in b.parts.items()}}
                       for b in self.blocks],
            "unattributed_ms": round(self.unattributed_ms, 6),
            "unattributed_share": round(self.unattributed_share, 6),
            "runtime_ms": round(self.runtime_ms, 6),
        }


class NetworkMap:
    """The layer names and weighted layers of one ArchSpec, as its builder names them."""

    def __init__(self, spec: ArchSpec, model_name: str | None = None) -> None:
        self.spec = spec
        self.model_name = model_name.lower() if model_name else None
        self.layers: dict[str, Place] = {}
        self.slots: list[_Slot] = []
        self.block_names = [INPUT, STEM, *(bottleneck_name(b.index) for b in spec.blocks), LAST_STAGE, CLASSIFIER]
        naming = spec.naming
        stem = Place(STEM, CONV)
        self._add_conv(spec.stem, stem)
        self.slots.append(_Slot(stem, "conv"))
        for block in spec.blocks:
            name, prefix = bottleneck_name(block.index), naming.prefix(block.index)
            act = (lambda conv: naming.activation.format(conv)) if naming.activation else (lambda conv: None)
            parts = ((EXPAND, "expand"),) if block.has_expansion else ()
            for part, layer in (*parts, (DEPTHWISE, "depthwise"), (PROJECT, "project")):
                place = Place(name, part)
                self._add(place, prefix + layer, naming.bn.format(prefix + layer), act(prefix + layer))
            self._add(Place(name, DEPTHWISE), naming.pad.format(prefix))
            self._add(Place(name, PROJECT), prefix + "add")
            se = Place(name, SQUEEZE_EXCITE)
            if block.se_channels:
                self._add(se, *(prefix + "squeeze_excite_" + s for s in ("avg_pool", "conv", "relu", "conv_1", "mul")))
            if block.has_expansion:
                self.slots.append(_Slot(Place(name, EXPAND), "conv"))
            self.slots.append(_Slot(Place(name, DEPTHWISE), "depthwise"))
            if block.se_channels:
                self.slots += [_Slot(se, "conv"), _Slot(se, "conv")]
            self.slots.append(_Slot(Place(name, PROJECT), "conv"))
        for layer in spec.head:
            if is_logits(spec, layer):
                place = Place(CLASSIFIER, LOGITS)
            elif isinstance(layer, Depthwise):
                place = Place(LAST_STAGE, DEPTHWISE)
            elif isinstance(layer, GlobalPool):
                place = Place(LAST_STAGE, POOL)
            else:
                place = Place(LAST_STAGE, getattr(layer, "name", CONV))
            if isinstance(layer, Conv):
                self._add_conv(layer, place)
                self.slots.append(_Slot(place, "conv"))
            elif isinstance(layer, Depthwise):
                self._add(place, layer.name, naming.bn.format(layer.name))
                self.slots.append(_Slot(place, "depthwise"))
            elif isinstance(layer, Dense):
                self._add(place, layer.name)
                self.slots.append(_Slot(place, "conv"))
            elif isinstance(layer, GlobalPool):
                self._add(place, layer.name)
        self._add(Place(CLASSIFIER, LOGITS), "predictions")

    def _add(self, place: Place, *names: str | None) -> None:
        for name in names:
            if name:
                self.layers[name.lower()] = place

    def _add_conv(self, conv: Conv, place: Place) -> None:
        self._add(place, conv.name, conv.bn_name or f"{conv.name}_bn", conv.activation_name)

    def place_of_tensor(self, tensor_name: str) -> Place | None:
        """The layer a TFLite tensor name (fused names joined by ';') belongs to, if any."""
        for piece in tensor_name.split(";"):
            components = [c for c in piece.lower().split("/") if c]
            suffix = self._scope_suffix(components)
            for component in components[1:] if suffix is not None else components:
                place = self._lookup(component, suffix)
                if place is not None:
                    return place
        return None

    def _scope_suffix(self, components: Sequence[str]) -> str | None:
        # Keras 3's exported graphs suffix every name scope alike ("<model>_1/conv_bn_1/..."):
        # the model's scope tells which suffix to strip, so that the stem's "conv" + "_1" is
        # not taken for the last stage's "conv_1".
        if not components or not components[0].startswith(_MODEL_SCOPE):
            return None
        scope = components[0]
        if self.model_name and scope.startswith(self.model_name) and _SUFFIX.fullmatch(scope[len(self.model_name):]):
            return scope[len(self.model_name):]
        match = re.search(r"_\d+$", scope)  # another model's scope: its last number is the suffix
        return match.group(0) if match else ""

    def _lookup(self, component: str, suffix: str | None) -> Place | None:
        if _RESCALING.match(component):  # the builder leaves Keras to number it
            return Place(INPUT, RESCALE)
        if suffix:
            return self.layers.get(component[: -len(suffix)]) if component.endswith(suffix) else None
        if component in self.layers:
            return self.layers[component]
        stripped = re.sub(r"_\d+$", "", component)
        return self.layers.get(stripped)


def _delegate_kind(node_type: str) -> str | None:
    """'depthwise' / 'conv' for XNNPACK's weighted operators, None for the others."""
    if node_type.startswith("Convolution") and "DWConv" in node_type:
        return "depthwise"
    if node_type.startswith(("Convolution", "Fully Connected", "Deconvolution", "Dynamic Fully Connected")):
        return "conv"
    return None


def attribute(rows: Iterable[Mapping[str, Any]], network: NetworkMap) -> Attribution:
    """Map Run Order rows ({node_type, name, avg_ms, ...}) to blocks; see the module docstring."""
    rows = list(rows)
    madds = madds_by_block(network.spec)
    blocks = {name: BlockTime(name, madds=madds.get(name, 0)) for name in network.block_names}
    placed: list[tuple[Mapping[str, Any], Place | None]] = []
    runtime_ms = unattributed_ms = 0.0
    previous: Place | None = None
    slot = 0
    delegate_lost = False
    for index, row in enumerate(rows):
        node_type, name = str(row.get("node_type", "")), str(row.get("name", ""))
        ms = float(row.get("avg_ms") or 0.0)
        if _RUNTIME_ROW.match(node_type) or row.get("times_called") == 0:
            runtime_ms += ms
            continue
        place: Place | None = None
        if name.startswith(DELEGATE_PREFIX) or (not name and _delegate_kind(node_type)):
            kind = _delegate_kind(node_type)
            if delegate_lost:
                place = None
            elif kind is not None:
                if slot < len(network.slots) and network.slots[slot].kind == kind:
                    place = network.slots[slot].place
                    slot += 1
                else:
                    delegate_lost = True
            elif _POOLING_OP.match(node_type) and slot < len(network.slots) \
                    and network.slots[slot].place.part == SQUEEZE_EXCITE:
                place = network.slots[slot].place
            else:
                place = previous if previous is not None else (Place(INPUT, RESCALE) if slot == 0 else None)
        else:
            place = network.place_of_tensor(name) or previous
            if place is not None:
                slot = _next_slot_after(network, place, slot)
        placed.append((row, place))
        if place is None:
            unattributed_ms += ms
            continue
        previous = place
        block = blocks[place.block]
        block.ms += ms
        block.ops += 1
        block.parts[place.part] = block.parts.get(place.part, 0.0) + ms
    kept = [b for b in blocks.values() if b.ops or b.madds]
    return Attribution(kept, unattributed_ms, runtime_ms, placed)


def _next_slot_after(network: NetworkMap, place: Place, slot: int) -> int:
    """Keep the delegate's slot pointer past layers that TFLite ran itself."""
    for i in range(slot, len(network.slots)):
        if network.slots[i].place == place:
            return i + 1
    return slot


def network_map(variant: Any) -> NetworkMap:
    """The NetworkMap of a variant, with its builder's model name."""
    from mnv3bench.arch import arch_spec
    from mnv3bench.build import keras_model_name

    return NetworkMap(arch_spec(variant), keras_model_name(variant))
