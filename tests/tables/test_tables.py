"""Table computation on synthetic trials, the paper's numbers, and the table definitions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mnv3bench.errors import UsageError
from mnv3bench.tables import paper
from mnv3bench.tables.compute import compute_table, op_profile_breakdown
from mnv3bench.tables.definitions import TABLES, get_table, table_names
from mnv3bench.variants import parse_variant
from tests.tables.helpers import TABLE5_MS, synthetic_trials


def _row(result, label):
    return result.rows.set_index("row").loc[label]


def _agreement(result, comparison):
    return result.agreement.set_index("comparison").loc[comparison]


# -- paper numbers ---------------------------------------------------------------------------


def test_table5_paper_values_and_versions():
    t5 = paper.TABLE5
    assert (t5["V3"].top1, t5["V3"].latency_ms["P-1"], t5["V3"].noopt_ms["P-1"]) == (75.2, 51.4, 57.5)
    assert (t5["ReLU"].latency_ms["P-1"], t5["ReLU"].noopt_ms["P-1"]) == (50.5, 50.5)
    assert (t5["h-swish @16"].latency_ms["P-1"], t5["h-swish @16"].noopt_ms["P-1"]) == (53.5, 68.9)
    assert (t5["h-swish @112"].top1, t5["h-swish @112"].noopt_ms["P-1"]) == (75.0, 54.4)
    early = t5["0.85"]
    assert early.version == paper.EARLY and early.top1 == 74.3
    assert early.latency_ms == {"P-1": 55} and early.reference_ms == {"P-1": 66} and not early.noopt_ms
    assert all(r.version == paper.FINAL for k, r in t5.items() if k != "0.85")


def test_paper_ratios_stay_within_one_version():
    t5 = paper.TABLE5
    assert paper.paper_ratio(t5["0.85"], t5["V3"], "P-1") == pytest.approx(55 / 66)  # early scale, not 55/51.4
    assert paper.paper_ratio(t5["ReLU"], t5["V3"], "P-1") == pytest.approx(50.5 / 51.4)
    assert paper.paper_noopt_ratio(t5["V3"], "P-1") == pytest.approx(57.5 / 51.4)
    assert paper.paper_ratio(paper.LAST_STAGE, None, "P-1") == pytest.approx(0.89)
    assert paper.paper_ratio(paper.SWISH_INT8, None, "P-1") == pytest.approx(1.15)
    assert paper.paper_ratio(paper.STEM, None, "P-1") == pytest.approx(51.4 / 53.4)
    assert (paper.LAST_STAGE.change_ms, paper.LAST_STAGE.change_madds_m, paper.LAST_STAGE_EARLY.change_ms) == (-7, -30, -10)
    assert (paper.STEM.change_ms, paper.STEM.change_madds_m, paper.STEM_EARLY.change_ms) == (-2, -10, -3)


def test_tables_3_and_4_paper_values():
    assert paper.TABLE3["V3-Large 1.0"].latency_ms == {"P-1": 51, "P-2": 61, "P-3": 44}
    assert paper.TABLE3["V2 0.35"].madds_m == 59.2 and paper.TABLE3["V3-Small 0.75"].latency_ms["P-3"] == 11.7
    assert paper.TABLE4["V2 1.0"].latency_ms == {"P-1": 52, "P-2": 48.3, "P-3": 37.0}


# -- definitions -----------------------------------------------------------------------------


def test_every_table_variant_is_a_canonical_variant_name():
    assert table_names() == ["5", "last-stage", "stem", "swish-int8", "3", "4"]
    for defn in TABLES.values():
        for name in defn.variants():
            assert parse_variant(name).name == name


def test_table5_rows_and_variants():
    t5 = get_table("5")
    assert [r.label for r in t5.rows] == ["V3", "0.85", "ReLU", "h-swish @16", "h-swish @112"]
    for row in t5.rows:
        if row.label == "ReLU":
            assert row.noopt == row.opt == "large-relu" and row.noopt_is_opt
        else:
            assert row.opt.endswith("-fused") and row.noopt == row.opt[: -len("fused")] + "naive"
    assert len(t5.variants()) == 9  # ReLU measured once
    assert get_table("Table 5") is t5


def test_unknown_table_names_the_valid_ones():
    with pytest.raises(UsageError) as err:
        get_table("6")
    assert "5, last-stage, stem, swish-int8, 3, 4" in err.value.message


# -- computation -----------------------------------------------------------------------------


def test_medians_intervals_and_relative_change():
    result = compute_table(get_table("5"), synthetic_trials(TABLE5_MS), device="emulator")
    v3 = _row(result, "V3")
    assert v3["opt_median_ms"] == pytest.approx(20.0)
    assert v3["opt_ci_low_ms"] < 20.0 < v3["opt_ci_high_ms"]
    assert v3["opt_n"] == 5 and v3["noopt_median_ms"] == pytest.approx(23.0)
    assert _row(result, "h-swish @16")["opt_change_pct"] == pytest.approx(5.0)
    assert _row(result, "0.85")["noopt_change_pct"] == pytest.approx((19 / 23 - 1) * 100)
    assert pd.isna(v3["opt_change_pct"])  # the reference row
    assert result.missing == [] and result.sessions == [1]
    assert sorted(result.trial_ids()["large-relu"]) == list(range(21, 26))


def test_relu_noopt_is_the_same_measurement_as_opt():
    result = compute_table(get_table("5"), synthetic_trials(TABLE5_MS), device="emulator")
    relu = _row(result, "ReLU")
    assert relu["variant_noopt"] == relu["variant_opt"] == "large-relu"
    assert relu["noopt_median_ms"] == relu["opt_median_ms"]
    assert relu["noopt_ci_low_ms"] == relu["opt_ci_low_ms"]
    assert "ReLU: no-opt vs opt" not in set(result.agreement["comparison"])


def test_agreement_when_directions_match():
    result = compute_table(get_table("5"), synthetic_trials(TABLE5_MS), device="emulator")
    row = _agreement(result, "h-swish @16 vs V3")
    assert row["measured_ratio"] == pytest.approx(21 / 20)
    assert row["paper_ratio"] == pytest.approx(53.5 / 51.4)
    assert row["agrees"] and row["verdict"] == "agrees"
    v3 = _agreement(result, "V3: no-opt vs opt")
    assert v3["measured_direction"] == v3["paper_direction"] == "slower"
    early = _agreement(result, "0.85 vs V3")
    assert early["paper_version"] == "early" and early["paper_ratio"] == pytest.approx(55 / 66)
    assert _agreement(result, "0.85: no-opt vs opt")["verdict"] == "no paper value"


def test_agreement_when_directions_disagree():
    flipped = dict(TABLE5_MS, **{"large-hswish@16-fused": 18.0})
    result = compute_table(get_table("5"), synthetic_trials(flipped), device="emulator")
    row = _agreement(result, "h-swish @16 vs V3")
    assert row["measured_direction"] == "faster" and row["paper_direction"] == "slower"
    assert row["agrees"] is False and row["verdict"].startswith("disagrees")
    assert _agreement(result, "V3: no-opt vs opt")["agrees"] is True  # the other comparisons are untouched


def test_no_opt_faster_than_opt_disagrees():
    flipped = dict(TABLE5_MS, **{"large-hswish-naive": 18.0})
    result = compute_table(get_table("5"), synthetic_trials(flipped), device="emulator")
    row = _agreement(result, "V3: no-opt vs opt")
    assert row["measured_direction"] == "faster" and row["paper_direction"] == "slower"
    assert row["agrees"] is False


def test_not_the_papers_phone_note():
    trials = synthetic_trials(TABLE5_MS)
    emulator = compute_table(get_table("5"), trials, device="emulator", device_column="", device_is_paper_phone=False)
    pixel3 = compute_table(get_table("5"), trials, device="pixel3", device_column="P-3", device_is_paper_phone=True)
    pixel1 = compute_table(get_table("5"), trials, device="pixel1", device_column="P-1", device_is_paper_phone=True)
    for result in (emulator, pixel3):
        assert not result.absolute_comparable
        assert any("absolute numbers are not comparable, only ratios are" in n for n in result.notes)
    assert pixel1.absolute_comparable
    assert not any("not comparable" in n for n in pixel1.notes)


def test_table3_uses_the_devices_column_or_all_three():
    medians = {"large-hswish-fused": 20, "large-0.75-hswish-fused": 16, "v2-1.0": 25,
               "small-hswish-fused": 7, "small-0.75-hswish-fused": 6, "v2-0.35": 8}
    trials = synthetic_trials(medians)
    pixel3 = compute_table(get_table("3"), trials, device="pixel3", device_column="P-3", device_is_paper_phone=True)
    assert pixel3.paper_columns == ("P-3",) and pixel3.absolute_comparable
    assert _agreement(pixel3, "V3-Large 1.0 vs V2 1.0")["paper_ratio"] == pytest.approx(44 / 56)
    emulator = compute_table(get_table("3"), trials, device="emulator")
    assert emulator.paper_columns == ("P-1", "P-2", "P-3")
    assert {"paper_p1_ms", "paper_p2_ms", "paper_p3_ms"} <= set(emulator.rows.columns)


def test_claim_tables_with_counted_madds():
    class Counts:
        def __init__(self, madds: int, params: int):
            self.madds, self.params = madds, params

    counted = {"large-hswish-fused": Counts(216_600_000, 5_400_000), "large-hswish-fused-original": Counts(251_000_000, 5_500_000)}
    trials = synthetic_trials({"large-hswish-fused": 20.0, "large-hswish-fused-original": 22.5})
    result = compute_table(get_table("last-stage"), trials, device="emulator", counter=counted.__getitem__)
    efficient = _row(result, "efficient last stage")
    assert efficient["madds_change_m"] == pytest.approx(-34.4)
    assert efficient["opt_change_pct"] == pytest.approx((20 / 22.5 - 1) * 100)
    assert efficient["paper_change_pct"] == pytest.approx(-11) and efficient["paper_change_madds_m"] == -30
    assert _agreement(result, "efficient last stage vs original last stage")["agrees"]


def test_missing_variants_are_named():
    partial = {k: v for k, v in TABLE5_MS.items() if k != "large-hswish@16-naive"}
    result = compute_table(get_table("5"), synthetic_trials(partial), device="emulator")
    assert result.missing == ["large-hswish@16-naive"]
    assert pd.isna(_row(result, "h-swish @16")["noopt_median_ms"])
    assert _agreement(result, "h-swish @16: no-opt vs opt")["verdict"] == "not measured"
    assert any("large-hswish@16-naive" in n and "mnv3bench table 5" in n for n in result.notes)


def test_failed_trials_are_left_out():
    trials = synthetic_trials(TABLE5_MS)
    bad = trials.iloc[:1].assign(ok=False, latency_ms=None, id=999)
    result = compute_table(get_table("5"), pd.concat([trials, bad]), device="emulator")
    assert _row(result, "V3")["opt_n"] == 5


def test_op_profile_breakdown_and_its_absence():
    ops_fused = [{"node_type": "CONV_2D", "avg_ms": 10.0, "percent": 60.0, "times_called": 50},
                 {"node_type": "HARD_SWISH", "avg_ms": 1.0, "percent": 6.0, "times_called": 21}]
    ops_naive = [{"node_type": "CONV_2D", "avg_ms": 10.0, "percent": 55.0, "times_called": 50},
                 {"node_type": "ADD", "avg_ms": 1.5, "percent": 8.0, "times_called": 40},
                 {"node_type": "MUL", "avg_ms": 2.5, "percent": 12.0, "times_called": 60}]
    trials = synthetic_trials({"large-hswish-fused": 20.0, "large-hswish-naive": 23.0})
    trials["op_profile_by_type"] = [json.dumps(ops_fused)] * 5 + [json.dumps(ops_naive)] * 5
    table, note = op_profile_breakdown(trials, ["large-hswish-fused", "large-hswish-naive"])
    assert note is None
    fused = table[table.variant == "large-hswish-fused"].set_index("node_type")
    assert fused.loc["HARD_SWISH", "avg_ms"] == pytest.approx(1.0) and fused.loc["HARD_SWISH", "trials"] == 5
    assert list(table.variant.unique()) == ["large-hswish-fused", "large-hswish-naive"]

    bare = synthetic_trials({"large-hswish-fused": 20.0}, raw_output="WARN: op profiling is not supported by this runtime\n")
    table, note = op_profile_breakdown(bare, ["large-hswish-fused"])
    assert table is None
    assert "No op profile data" in note and "WARN: op profiling is not supported" in note
