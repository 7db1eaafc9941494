"""Block profiles from the results database: the op rows stored per trial, averaged over a
variant's trials and attributed to blocks. Used by `profile`, `table --op-profile`,
`report` and `compare --blocks`, so that each renders what was measured without measuring.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mnv3bench.flops import CLASSIFIER
from mnv3bench.profile.blocks import (
    PROJECT,
    RESCALE,
    SQUEEZE_EXCITE,
    Attribution,
    attribute,
    network_map,
)

OP_PROFILE_COLUMN = "op_profile"
# The ops the fused h-swish replaces in no-opt (§5.2): x * relu6(x + 3) / 6 as ADD (with
# RELU6 fused, or apart), MUL, MUL; and XNNPACK's names for the same.
HSWISH_OPS = ("HARD_SWISH", "HardSwish (NC)")
HSWISH_REPLACEMENT_OPS = ("ADD", "MUL", "RELU6", "Add (ND)", "Multiply (ND)", "Clamp (NC)")


@dataclass(frozen=True)
class BlockProfile:
    """One variant's block attribution, from its trials' op profiles."""

    variant: str
    trials: int
    attribution: Attribution
    op_rows: list[dict[str, Any]]  # the averaged Run Order rows

    def to_json(self) -> dict[str, Any]:
        data = self.attribution.to_json()
        for block in data["blocks"]:
            block["ms_per_madd"] = block["ms"] / block["madds"] if block["madds"] else None
        return {"variant": self.variant, "trials": self.trials, **data}

    def hswish_split(self) -> tuple[float, float]:
        """(ms in HARD_SWISH, ms in the ADD/MUL/RELU6 that spell h-swish in no-opt).

        ADD/MUL/RELU6 count only where an activation sits (after an expansion, depthwise,
        stem or head conv): SE's hard-sigmoid, residual adds and the input rescaling are
        the same op types but not h-swish.
        """
        hswish = replacement = 0.0
        for row, place in self.attribution.rows:
            ms = float(row.get("avg_ms") or 0.0)
            if row.get("node_type") in HSWISH_OPS:
                hswish += ms
            elif row.get("node_type") in HSWISH_REPLACEMENT_OPS and place is not None \
                    and place.part not in (SQUEEZE_EXCITE, PROJECT, RESCALE) and place.block != CLASSIFIER:
                replacement += ms
        return hswish, replacement


def op_rows(value: Any) -> list[dict[str, Any]]:
    """One trial's stored op rows (JSON text, a list, or nothing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return []
    return [r for r in value if isinstance(r, dict) and "node_type" in r] if isinstance(value, list) else []


def mean_rows(per_trial: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of several trials of one model, each op's avg_ms averaged over the trials."""
    order: list[tuple[Any, ...]] = []
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    times: dict[tuple[Any, ...], list[float]] = {}
    for rows in per_trial:
        for row in rows:
            key = (row.get("node_type"), row.get("name"), row.get("index"))
            if key not in merged:
                order.append(key)
                merged[key] = dict(row)
                times[key] = []
            times[key].append(float(row.get("avg_ms") or 0.0))
    out = []
    for key in order:
        row = merged[key]
        row["avg_ms"] = sum(times[key]) / len(times[key])
        out.append(row)
    return out


def op_type_totals(rows: Iterable[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """(node type, ms per run, share of the op time), largest first."""
    totals: dict[str, float] = {}
    for row in rows:
        totals[str(row.get("node_type"))] = totals.get(str(row.get("node_type")), 0.0) + float(row.get("avg_ms") or 0)
    whole = sum(totals.values())
    return [(t, ms, ms / whole if whole else 0.0) for t, ms in sorted(totals.items(), key=lambda kv: -kv[1])]


def session_op_rows(trials: Any, variants: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """{variant: its trials' op rows averaged}, for the variants that have any."""
    if trials is None or OP_PROFILE_COLUMN not in getattr(trials, "columns", ()):
        return {}
    out = {}
    for name in variants:
        chosen = trials[(trials["variant"] == name) & trials["ok"].astype(bool)]
        per_trial = [rows for rows in (op_rows(v) for v in chosen[OP_PROFILE_COLUMN]) if rows]
        if per_trial:
            out[name] = mean_rows(per_trial)
    return out


def block_profiles(trials: Any, variants: Sequence[str]) -> dict[str, BlockProfile]:
    """{variant: BlockProfile} for the variants whose ok trials carry op profiles."""
    from mnv3bench.variants import parse_variant

    profiles = {}
    counts = trial_counts(trials, variants)
    for name, rows in session_op_rows(trials, variants).items():
        profiles[name] = BlockProfile(name, counts[name], attribute(rows, network_map(parse_variant(name))), rows)
    return profiles


def trial_counts(trials: Any, variants: Sequence[str]) -> dict[str, int]:
    """How many ok trials of each variant carry an op profile."""
    out = {}
    for name in variants:
        chosen = trials[(trials["variant"] == name) & trials["ok"].astype(bool)]
        out[name] = sum(1 for v in chosen[OP_PROFILE_COLUMN] if op_rows(v))
    return out
