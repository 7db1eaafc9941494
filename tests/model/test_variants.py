"""The variant name grammar: canonical names round-trip, bad names say what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnv3bench.errors import UsageError
from mnv3bench.variants import BOTTLENECK_OUT_CHANNELS, Variant, catalog, parse_variant


@pytest.mark.parametrize(
    "name",
    [
        "large-hswish-fused",
        "large-hswish-naive",
        "large-relu",
        "large-hswish@16-naive",
        "large-0.85-hswish-fused",
        "large-hswish-fused-original",
        "small-hswish-fused-int8",
        "large-hswish-fused-r192",
        "large-swish-int8",
        "v2-1.0",
        "v2-0.35-int8",
    ],
)
def test_canonical_names_round_trip(name: str) -> None:
    assert parse_variant(name).name == name


def test_issue_examples_parse_to_the_intended_fields() -> None:
    assert parse_variant("large-hswish@16-naive") == Variant("large", nonlinearity="hswish@16", hswish_impl="naive")
    assert parse_variant("large-0.85-hswish-fused").width == 0.85
    assert parse_variant("large-hswish-fused-original").last_stage == "original"
    assert parse_variant("small-hswish-fused-int8").precision == "int8"
    assert parse_variant("large-hswish-fused-r192").resolution == 192
    # The stem example omits the nonlinearity: it means the default, fused.
    assert parse_variant("large-stem32relu") == Variant("large", stem="32-relu")
    assert parse_variant("large-stem32relu").name == "large-hswish-fused-stem32relu"
    assert parse_variant("large-relu").hswish_impl == ""
    # The default placement written out is the default network, under its one name.
    assert parse_variant("large-hswish@80-naive").name == "large-hswish-naive"
    assert parse_variant("small-hswish@40-fused").name == "small-hswish-fused"
    assert parse_variant("large-hswish@016-naive").name == "large-hswish@16-naive"
    # Widths whose shortest repr is an exponent are spelled out, so they parse back.
    assert parse_variant("large-0.00001").name == "large-0.00001-hswish-fused"


def test_catalog_is_canonical_and_unique() -> None:
    names = [v.name for v in catalog()]
    assert len(names) == len(set(names))
    assert all(parse_variant(n).name == n for n in names)


@st.composite
def variants(draw: st.DrawFn) -> Variant:
    family = draw(st.sampled_from(["large", "small", "v2"]))
    width = draw(st.floats(min_value=1e-7, max_value=1e20, allow_nan=False, allow_infinity=False))
    resolution = draw(st.integers(min_value=32, max_value=512))
    precision = draw(st.sampled_from(["fp32", "int8"]))
    if family == "v2":
        return Variant(family, width=width, resolution=resolution, precision=precision)
    n = draw(st.sampled_from(BOTTLENECK_OUT_CHANNELS[family]))
    nonlinearity = draw(st.sampled_from(["hswish", "relu", "swish", f"hswish@{n}"]))
    return Variant(
        family,
        width=width,
        nonlinearity=nonlinearity,
        hswish_impl=draw(st.sampled_from(["fused", "naive"])),
        last_stage=draw(st.sampled_from(["efficient", "original"])) if family == "large" else "efficient",
        stem=draw(st.sampled_from(["16-hswish", "32-relu"])),
        resolution=resolution,
        precision=precision,
    )


@pytest.mark.fuzz
@given(variants())
def test_every_variant_round_trips(v: Variant) -> None:
    assert parse_variant(v.name) == v
    assert parse_variant(v.name).name == v.name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("large-relu-naive", "'naive' is an h-swish implementation, but 'relu' has no h-swish"),
        ("medium", "unknown model family 'medium'"),
        ("large-0", "width '0' must be a number greater than 0"),
        ("large-hswish@17", "Use an N valid for large: 16, 24, 40, 80, 112, 160"),
        ("large-fsued", "Did you mean 'fused'"),
        ("lrage-relu", "Did you mean 'large'"),
        ("small-hswish-fused-original", "defined for large only"),
        ("v2-1.0-relu", "v2 baselines take only"),
        ("large-relu-swish", "both set the nonlinearity"),
        ("large-r8", "below the minimum"),
    ],
)
def test_bad_names_say_which_part_is_wrong(name: str, says: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_variant(name)
    assert says in str(err.value)
    assert err.value.exit_code == 2


def test_the_axes_are_the_variant_fields_and_make_the_grammar() -> None:
    import dataclasses

    from mnv3bench.variants import AXES, GRAMMAR, grammar_axes

    assert list(AXES) == [f.name for f in dataclasses.fields(Variant)]
    assert GRAMMAR == (
        "large|small[-WIDTH][-hswish|hswish@N|relu|swish][-fused|naive][-original][-stem32relu][-rRES][-int8]"
        "  or  v2[-WIDTH][-rRES][-int8]"
    )
    assert list(grammar_axes()) == [axis.label for axis in AXES.values()]
    assert grammar_axes()["stem"] == ["16-hswish (default)", "stem32relu"]


def test_a_rule_is_the_same_for_names_and_for_values() -> None:
    # One rule per axis: parse_variant reports it for a name, Variant.validate (and so
    # arch_spec, count and build) for a value made in code.
    for name, value in [
        ("large-hswish@17", Variant("large", nonlinearity="hswish@17")),
        ("small-hswish-fused-original", Variant("small", last_stage="original")),
        ("large-r8", Variant("large", resolution=8)),
    ]:
        problem = value.problem()
        assert problem is not None
        with pytest.raises(UsageError) as from_name:
            parse_variant(name)
        with pytest.raises(UsageError) as from_value:
            value.validate()
        assert problem[0] in from_name.value.message and problem[0] in from_value.value.message
        assert (from_value.value.hint or "") == problem[1]


def test_catalog_is_every_variant_of_the_table_definitions() -> None:
    from mnv3bench.tables.definitions import TABLES
    from mnv3bench.variants import catalog_entries

    entries = {e.variant.name: e.used_in for e in catalog_entries()}
    expected: dict[str, set[str]] = {}
    for table in TABLES.values():
        for name in table.variants():
            expected.setdefault(parse_variant(name).name, set()).add(table.name)
    assert {n: set(t) for n, t in entries.items()} == expected
    # fp32 before int8, large before small before v2; the paper's tables before its text.
    assert list(entries)[:2] == ["large-hswish-fused", "large-hswish-naive"]
    assert entries["large-hswish-fused"] == ("5", "3", "last-stage", "stem")
    assert entries["large-hswish-fused-int8"] == ("4", "swish-int8")
    assert list(entries)[-2:] == ["v2-1.0-int8", "v2-0.35-int8"]


def test_v2_values_keep_only_the_axes_v2_has() -> None:
    # MobileNetV2 has no h-swish, stem or last-stage choice: a value made in code with one
    # is the plain baseline, so it has one name and one cache entry.
    assert Variant("v2", stem="32-relu", last_stage="original", nonlinearity="swish") == parse_variant("v2-1.0")
