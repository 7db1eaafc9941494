"""Table comparisons from rounds: paired estimates, the method named, verdicts that do not flip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mnv3bench.bench.paired import PAIRED, RATIO_OF_MEDIANS
from mnv3bench.tables.compute import comparison_pairs, compute_table
from mnv3bench.tables.definitions import TABLES, get_table
from mnv3bench.tables.export.json import to_json
from mnv3bench.tables.export.markdown import to_markdown
from tests.tables.helpers import TABLE5_MS, synthetic_trials


def rounds_trials(medians: dict[str, float], rounds: int, drift: float = 0.02, seed: int = 3) -> pd.DataFrame:
    """Every variant once per round, on a machine that slows down a little each round."""
    rng = np.random.default_rng(seed)
    rows, next_id = [], 1
    for r in range(1, rounds + 1):
        order = rng.permutation(list(medians))
        for position, variant in enumerate(order, start=1):
            ms = medians[variant] * (1 + drift) ** r * (1 + rng.normal(0, 0.002))
            rows.append({"id": next_id, "session_id": 1, "variant": variant, "model_sha256": "0" * 64,
                         "device_profile": "emulator", "trial_index": r, "round_index": r,
                         "round_position": position, "ok": True, "latency_ms": ms, "throttled": False,
                         "op_profile_by_type": None, "raw_output": ""})
            next_id += 1
    return pd.DataFrame(rows)


def _agreement(result, comparison):
    return result.agreement.set_index("comparison").loc[comparison]


def test_rounds_give_paired_comparisons_that_resolve_through_drift():
    result = compute_table(get_table("5"), rounds_trials(TABLE5_MS, 10), device="emulator")
    v3 = _agreement(result, "V3: no-opt vs opt")
    assert v3["method"] == PAIRED and v3["rounds"] == 10
    assert abs(v3["measured_ratio"] - 23 / 20) < 0.005 and v3["precision"] < 0.01
    assert v3["verdict"] == "agrees" and v3["resolved"]
    counts = result.verdict_counts()
    assert counts.agrees + counts.disagrees + counts.not_resolved == result.agreement_counts()[1]
    assert counts.not_resolved == 0  # drift of 2% a round, yet every direction is resolved


def test_the_same_drift_without_rounds_leaves_small_differences_unresolved():
    frame = rounds_trials(TABLE5_MS, 10).drop(columns=["round_index", "round_position"])
    result = compute_table(get_table("5"), frame, device="emulator")
    small = _agreement(result, "h-swish @112 vs V3")  # paper -0.8%, measured 19.8 vs 20
    assert small["method"] == RATIO_OF_MEDIANS
    assert small["verdict"].startswith("not resolved at ±") and not small["resolved"]
    assert result.verdict_counts().not_resolved > 0


def test_fixed_five_trials_keep_the_ratio_of_medians():
    result = compute_table(get_table("5"), synthetic_trials(TABLE5_MS), device="emulator")
    assert set(result.agreement["method"].dropna()) == {RATIO_OF_MEDIANS}


def test_reports_carry_the_method_the_precision_and_the_headline():
    result = compute_table(get_table("5"), rounds_trials(TABLE5_MS, 8), device="emulator")
    data = json.loads(to_json(result))
    row = next(c for c in data["agreement"] if c["comparison"] == "V3: no-opt vs opt")
    assert {"method", "precision", "rounds", "resolved", "verdict", "agrees"} <= set(row)
    summary = data["agreement_summary"]
    assert summary["agrees"] + summary["disagrees"] + summary["not_resolved"] == summary["judged"]
    assert data["precision"]["cells"]["large-hswish-fused"]["trials"] == 8
    assert data["precision"]["target"] is None and data["precision"]["missed"] == []
    text = to_markdown(result)
    assert f"{summary['agrees']} agree, {summary['disagrees']} disagree, {summary['not_resolved']} not resolved" in text
    assert "paired, 8 rounds, ±" in text
    assert "(not significant)" not in text


def test_a_precision_target_flags_what_did_not_reach_it():
    result = compute_table(get_table("5"), rounds_trials(TABLE5_MS, 8), device="emulator")
    result.set_precision_target(0.001, "max-time")
    data = json.loads(to_json(result))["precision"]
    assert data["target"] == 0.001 and data["stopped"] == "max-time"
    assert data["missed"] and all(data["cells"][v]["reached"] is False for v in data["cells"] if v in data["missed"])
    assert any(n.startswith("Precision ±0.1% not reached (max-time) by: ") for n in result.notes)
    result.set_precision_target(0.5, "reached")
    assert json.loads(to_json(result))["precision"]["missed"] == []


def test_comparison_pairs_are_the_comparisons_every_table_makes():
    for name, defn in TABLES.items():
        result = compute_table(defn, rounds_trials({v: 1.0 for v in defn.variants()}, 1), device="emulator")
        made = {(c.variant, c.baseline_variant) for c in result.comparisons if c.variant and c.baseline_variant}
        assert set(comparison_pairs(defn)) == made, name
