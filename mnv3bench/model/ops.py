"""What a .tflite holds: its operators by name, and whether they keep the variant's plan.

The op inventory reads the flatbuffer with LiteRT's generated schema: no TensorFlow, no
interpreter, so the cache and the CLI can show it cheaply. The check after every conversion
is that the inventory shows the variant's h-swish plan (one HARD_SWISH per h-swish site
when fused, none when naive, relu or swish); a violation is an `MnvError`, never a
silently wrong model.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from mnv3bench.errors import MnvError

if TYPE_CHECKING:
    from mnv3bench.variants import Variant


def op_inventory(path: Path | str) -> dict[str, int]:
    """Count the operators of a .tflite file by name (e.g. {"HARD_SWISH": 21, ...})."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MnvError(f"cannot read model file {path}: {exc.strerror}", "Check the path.") from exc
    return op_inventory_from_bytes(data, source=str(path))


def op_inventory_from_bytes(data: bytes, *, source: str = "model") -> dict[str, int]:
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise MnvError(f"{source} is not a TFLite flatbuffer (no TFL3 identifier).", "Rebuild it with `mnv3bench build`.")
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        builtin_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
        op_names = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            # Codes above 127 live in builtin_code; older files use deprecated_builtin_code.
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                op_names.append(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
            else:
                op_names.append(builtin_names.get(builtin, f"BUILTIN_{builtin}"))
        counts: Counter[str] = Counter()
        for g in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(g)
            for j in range(subgraph.OperatorsLength()):
                counts[op_names[subgraph.Operators(j).OpcodeIndex()]] += 1
    except Exception as exc:  # a truncated buffer fails deep inside flatbuffers
        raise MnvError(f"{source} is not a readable TFLite model ({exc}).", "Rebuild it with `mnv3bench build --force`.") from exc
    return dict(sorted(counts.items()))


def verify_ops(variant: Variant, ops: dict[str, int], hswish_sites: int) -> None:
    """Raise MnvError unless the op inventory shows the variant's nonlinearity plan."""
    hard_swish = ops.get("HARD_SWISH", 0)
    name = variant.name
    hint = (
        "Report it with the variant name and TF version: the converter did not produce the graph "
        "this variant promises (`mnv3bench variants` says what each variant's graph holds)."
    )
    if variant.uses_hswish and variant.hswish_impl == "fused":
        if hard_swish != hswish_sites:
            raise MnvError(
                f"{name}: expected {hswish_sites} HARD_SWISH ops (one per h-swish site), found {hard_swish}.", hint
            )
        return
    if hard_swish:
        raise MnvError(f"{name}: expected no HARD_SWISH ops, found {hard_swish}.", hint)
    if variant.uses_hswish:  # naive: every site must still be computed, from ADD and MUL
        adds, muls = ops.get("ADD", 0), ops.get("MUL", 0)
        if adds < hswish_sites or muls < hswish_sites:
            raise MnvError(
                f"{name}: a naive h-swish needs an ADD and a MUL per site ({hswish_sites} sites), "
                f"found ADD={adds}, MUL={muls}.",
                hint,
            )
    if variant.nonlinearity == "swish" and not ops.get("LOGISTIC", 0):
        raise MnvError(f"{name}: swish (x*sigmoid(x)) needs LOGISTIC ops, found none.", hint)
