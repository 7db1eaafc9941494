"""Model variants, their names, and the axes they are made of.

A `Variant` is a small, frozen value: which network, and which of the paper's design
choices it makes. Its canonical name is the only way users refer to it, so the grammar
must round-trip exactly: `parse_variant(v.name) == v` for every variant.

Every field of `Variant` is an axis, and its `Axis` entry (the field's metadata) is the
whole of what the package knows about it: the name parts that spell it, its default and
allowed values, its rule, how it is written in a canonical name, and its rewrite of the
architecture plan (a function in arch.py). Parsing, formatting, validation, `GRAMMAR`,
`grammar_axes()` and `AXES` are all read from those entries. Adding an axis is one field
here and one rewrite in arch.py.

Grammar (parts joined by "-"; the order of the trailing modifiers is free on input and
fixed in the canonical name): see `GRAMMAR`, and each axis's `doc` below.

Canonical names always spell the nonlinearity and, for h-swish plans, the
implementation; they omit defaults otherwise: `large-hswish-fused`, `large-relu`,
`large-0.85-hswish-naive`, `large-hswish-fused-original`, `small-hswish-fused-int8`.
MobileNetV2 baselines always spell their width: `v2-1.0`, `v2-0.35-int8`.
`large-stem32relu` is accepted and means `large-hswish-fused-stem32relu`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mnv3bench import arch
from mnv3bench.arch import DEFAULT_RESOLUTION, MIN_RESOLUTION, PLANS, V3_FAMILIES
from mnv3bench.errors import UsageError

FAMILIES = tuple(PLANS)
# The valid N of "hswish@N" (the families' distinct bottleneck outputs, Tables 1 and 2),
# and the paper's own placement (80 for Large, 40 for Small).
BOTTLENECK_OUT_CHANNELS = {family: arch.bottleneck_out_channels(family) for family in V3_FAMILIES}
DEFAULT_HSWISH_FROM = {family: arch.default_hswish_from(family) for family in V3_FAMILIES}

Problem = tuple[str, str]  # (what is wrong, how to fix it)


@dataclass(frozen=True)
class Axis:
    """One design choice a variant makes: how it is named, checked and built."""

    label: str  # in `mnv3bench variants` and in messages: "hswish implementation"
    choices: tuple[str, ...]  # as `mnv3bench variants` lists them; the default first
    doc: str  # what the choice means, for readers of the grammar
    words: tuple[str, ...] = ()  # the name parts listed in "Valid parts" ("hswish@N", "rRES")
    grammar: str = ""  # this axis's part of GRAMMAR; "" for the family
    phrase: str = ""  # in "v2 baselines take only a width, rRES and int8"; default: grammar
    families: tuple[str, ...] = FAMILIES  # the families it applies to
    read: Callable[[str], Any] | None = None  # a name part -> value, or None: not this axis's
    spell: Callable[[Any], str | None] = lambda variant: None  # its canonical part, or None
    check: Callable[[Any, str], Problem | None] | None = None  # (variant, as spelled) -> problem
    refuse: Callable[[Any, str], Problem | None] | None = None  # a part given where it cannot apply
    normalize: Callable[[Any, Any], Any] | None = None  # (variant, value) -> the one value meant
    rewrite: Callable[[arch.Plan, Any], arch.Plan] | None = None  # its change to the network
    positional: bool = False  # read only right after the family (the width)
    absent: Any = None  # its value in families it does not apply to; None: its default


def axis(**entry: Any) -> Any:
    """A Variant field whose metadata is its Axis entry (the default comes from `default`)."""
    if "default" in entry:
        default = entry.pop("default")
        return dataclasses.field(default=default, metadata={"axis": Axis(**entry)})
    return dataclasses.field(metadata={"axis": Axis(**entry)})


# ---------------------------------------------------------------------------------------
# The axes' readers, spellings and rules.


def _one_of(values: tuple[str, ...], noun: str, plural: str) -> Callable[[Any, str], Problem | None]:
    def check(variant: Any, spelled: str) -> Problem | None:
        if spelled in values:
            return None
        return f"unknown {noun} '{spelled}'.", f"Use one of the {plural}: {', '.join(values)}."

    return check


def _format_width(width: float) -> str:
    # repr is the shortest text that reads back to the same float: 0.85 -> "0.85". Decimal
    # spells out the rare exponent form (1e-05 -> "0.00001"), which the grammar cannot read.
    text = repr(float(width))
    return format(Decimal(text), "f") if "e" in text else text


_WIDTH_RE = re.compile(r"^\d+(\.\d*)?$|^\.\d+$")
_RES_RE = re.compile(r"^r(\d+)$")
_HSWISH_AT_RE = re.compile(r"^hswish@(\d+)$")
_PLAIN_NONLINEARITIES = ("hswish", "relu", "swish")


def _read_width(token: str) -> float | None:
    return float(token) if _WIDTH_RE.match(token) else None


def _spell_width(v: Variant) -> str | None:
    # MobileNetV2 baselines always spell their width (v2-1.0), V3 only when it is not 1.0.
    return _format_width(v.width) if v.family == "v2" or v.width != 1.0 else None


def _check_width(v: Variant, spelled: str) -> Problem | None:
    if v.width > 0:
        return None
    return f"width '{spelled}' must be a number greater than 0.", "Use e.g. 1.0, 0.85 or 0.75."


def _read_nonlinearity(token: str) -> str | None:
    if m := _HSWISH_AT_RE.match(token):
        return f"hswish@{int(m.group(1))}"  # hswish@080 is hswish@80
    return token if token in _PLAIN_NONLINEARITIES else None


def _normalize_nonlinearity(v: Variant, value: str) -> str:
    # The paper's own placement written out: one network, one name (and one cache entry).
    return "hswish" if value == f"hswish@{DEFAULT_HSWISH_FROM.get(v.family)}" else value


def _check_nonlinearity(v: Variant, spelled: str) -> Problem | None:
    plan = v.nonlinearity
    if plan in _PLAIN_NONLINEARITIES:
        return None
    if not plan.startswith("hswish@"):
        return f"unknown nonlinearity plan '{plan}'.", "Use one of the plans: hswish, hswish@N, relu, swish."
    text = plan.split("@", 1)[1]
    valid = BOTTLENECK_OUT_CHANNELS[v.family]
    if text.isdigit() and int(text) in valid:
        return None
    return (
        f"no {v.family} bottleneck has {text} output channels, so '{plan}' names no layer.",
        f"Use an N valid for {v.family}: {', '.join(map(str, valid))} (hswish@{valid[0]} = h-swish everywhere).",
    )


def _normalize_hswish_impl(v: Variant, value: str) -> str:
    # Only an h-swish plan has an implementation; it is fused unless said otherwise.
    if not v.uses_hswish:
        return ""
    return value or "fused"


def _check_hswish_impl(v: Variant, spelled: str) -> Problem | None:
    if not v.uses_hswish:
        return None
    return _one_of(("fused", "naive"), "h-swish implementation", "h-swish implementations")(v, spelled)


def _refuse_hswish_impl(v: Variant, token: str) -> Problem | None:
    if v.uses_hswish:
        return None
    plan, family = v.nonlinearity, v.family
    suggestion = f"{family}-{plan}" if plan != "relu" else f"{family}-relu (or {family}-hswish-{token})"
    return f"'{token}' is an h-swish implementation, but '{plan}' has no h-swish.", f"Drop '-{token}': {suggestion}."


def _check_last_stage(v: Variant, spelled: str) -> Problem | None:
    if problem := _one_of(("efficient", "original"), "last stage", "last stages")(v, spelled):
        return problem
    if spelled == "original" and v.family != "large":
        return (
            "the original (MobileNetV2-style) last stage is defined for large only.",
            "Drop '-original' or use large-...-original.",
        )
    return None


def _read_resolution(token: str) -> int | None:
    return int(m.group(1)) if (m := _RES_RE.match(token)) else None


def _check_resolution(v: Variant, spelled: str) -> Problem | None:
    if v.resolution >= MIN_RESOLUTION:
        return None
    return f"resolution r{v.resolution} is below the minimum of {MIN_RESOLUTION}.", "Use e.g. r224, r192 or r96."


def _reads(*words: str, value: str | None = None) -> Callable[[str], str | None]:
    """A reader for fixed words: each is its own value, or all mean `value`."""
    return lambda token: (value or token) if token in words else None


# ---------------------------------------------------------------------------------------
# The variant: one field per axis.


@dataclass(frozen=True)
class Variant:
    family: str = axis(
        label="family",
        choices=FAMILIES,
        doc="large, small: MobileNetV3 (Tables 1 and 2); v2: the MobileNetV2 baseline",
        check=_one_of(FAMILIES, "model family", "families"),
    )
    width: float = axis(
        default=1.0,
        label="width",
        choices=("1.0", "0.85", "0.75", "any number > 0"),
        doc="width multiplier, a number > 0 (1.0 default; the paper uses 0.75, 0.85)",
        grammar="WIDTH",
        phrase="a width",
        positional=True,
        read=_read_width,
        spell=_spell_width,
        check=_check_width,
        normalize=lambda v, value: float(value),
        rewrite=arch.rewrite_width,
    )
    nonlinearity: str = axis(
        default="hswish",
        label="nonlinearity",
        choices=("hswish", "hswish@N", "relu", "swish"),
        doc=(
            "hswish: the paper's placement (h-swish in the stem, the layers from the first "
            "80-channel bottleneck on (Large) and the head); hswish@N: h-swish from the first "
            "bottleneck with N output channels on (Table 5's \"h-swish @16\", \"@112\"), ReLU "
            "before it; relu: ReLU everywhere; swish: x*sigmoid(x) wherever the default uses h-swish"
        ),
        words=("hswish", "hswish@N", "relu", "swish"),
        families=V3_FAMILIES,
        absent="relu",  # MobileNetV2 is ReLU6 only
        read=_read_nonlinearity,
        spell=lambda v: v.nonlinearity,
        check=_check_nonlinearity,
        normalize=_normalize_nonlinearity,
        rewrite=arch.rewrite_nonlinearity,
    )
    hswish_impl: str = axis(
        default="fused",
        label="hswish implementation",
        choices=("fused", "naive"),
        doc=(
            "fused: h-swish written so TFLite converts it to one HARD_SWISH op; naive: h-swish "
            "from primitive ops the converter cannot fuse (\"no-opt\"); none for relu and swish"
        ),
        words=("fused", "naive"),
        families=V3_FAMILIES,
        read=_reads("fused", "naive"),
        spell=lambda v: v.hswish_impl if v.uses_hswish else None,
        check=_check_hswish_impl,
        refuse=_refuse_hswish_impl,
        normalize=_normalize_hswish_impl,
        rewrite=arch.rewrite_hswish_impl,
    )
    last_stage: str = axis(
        default="efficient",
        label="last stage",
        choices=("efficient", "original"),
        doc="original: the MobileNetV2-style last stage of the paper's Figure 5 (Large only)",
        words=("original",),
        families=V3_FAMILIES,
        read=lambda token: token if token in ("original", "efficient") else None,
        spell=lambda v: "original" if v.last_stage == "original" else None,
        check=_check_last_stage,
        rewrite=arch.rewrite_last_stage,
    )
    stem: str = axis(
        default="16-hswish",
        label="stem",
        choices=("16-hswish", "stem32relu"),
        doc="stem32relu: a 32-filter ReLU stem instead of 16 filters with h-swish",
        words=("stem32relu",),
        families=V3_FAMILIES,
        read=_reads("stem32relu", value="32-relu"),
        spell=lambda v: "stem32relu" if v.stem == "32-relu" else None,
        check=_one_of(("16-hswish", "32-relu"), "stem", "stems"),
        rewrite=arch.rewrite_stem,
    )
    resolution: int = axis(
        default=DEFAULT_RESOLUTION,
        label="resolution",
        choices=(f"r{DEFAULT_RESOLUTION}", "rRES"),
        doc=f"rRES: input resolution ({DEFAULT_RESOLUTION} default, at least {MIN_RESOLUTION})",
        words=("rRES",),
        read=_read_resolution,
        spell=lambda v: f"r{v.resolution}" if v.resolution != DEFAULT_RESOLUTION else None,
        check=_check_resolution,
        rewrite=arch.rewrite_resolution,
    )
    precision: str = axis(
        default="fp32",
        label="precision",
        choices=("fp32", "int8"),
        doc="int8: full-integer post-training quantization (fp32 default); a conversion choice",
        words=("int8", "fp32"),
        grammar="int8",
        read=_reads("fp32", "int8"),
        spell=lambda v: "int8" if v.precision == "int8" else None,
        check=_one_of(("fp32", "int8"), "precision", "precisions"),
    )

    def __post_init__(self) -> None:
        # Keep the invariants of the grammar in the value itself, so that no code path can
        # make a Variant whose name would not parse back to it. An axis that does not apply
        # to the family takes its `absent` value, so the variant has one name.
        for name, entry in AXES.items():
            if self.family in FAMILIES and self.family not in entry.families:
                value = _FIELDS[name].default if entry.absent is None else entry.absent
            else:
                value = getattr(self, name)
            if entry.normalize is not None:
                value = entry.normalize(self, value)
            object.__setattr__(self, name, value)

    @property
    def uses_hswish(self) -> bool:
        return self.family in V3_FAMILIES and self.nonlinearity.startswith("hswish")

    @property
    def hswish_from_channels(self) -> int | None:
        """N of "hswish@N", or None for the other plans."""
        if self.nonlinearity.startswith("hswish@"):
            return int(self.nonlinearity.split("@", 1)[1])
        return None

    @property
    def name(self) -> str:
        return format_variant(self)

    def __str__(self) -> str:
        return self.name

    def problem(self) -> Problem | None:
        """The first rule, in axis order, that this variant breaks."""
        for name, entry in self.axes():
            value = getattr(self, name)
            spelled = _format_width(value) if isinstance(value, float) else str(value)
            if entry.check is not None and (problem := entry.check(self, spelled)):
                return problem
        return None

    def validate(self) -> None:
        """Raise UsageError when the variant breaks an axis's rule (a value made in code)."""
        if problem := self.problem():
            raise UsageError(f"variant {self.name}: {problem[0]}", problem[1])

    def axes(self) -> Iterator[tuple[str, Axis]]:
        """The axes that apply to this variant's family, in order."""
        for name, entry in AXES.items():
            if self.family not in FAMILIES or self.family in entry.families:
                yield name, entry
            if self.family not in FAMILIES:
                return  # no other axis means anything for an unknown family

    def rewrites(self) -> list[tuple[Callable[[arch.Plan, Any], arch.Plan], Any]]:
        """Each applying axis's rewrite of the family's plan, with this variant's value."""
        return [(entry.rewrite, getattr(self, name)) for name, entry in self.axes() if entry.rewrite]


_FIELDS = {f.name: f for f in dataclasses.fields(Variant)}
AXES: dict[str, Axis] = {name: f.metadata["axis"] for name, f in _FIELDS.items()}



def _part(entry: Axis) -> str:
    return entry.grammar or "|".join(entry.words)


def _grammar() -> str:
    # One line per group of families that take the same axes: large|small[...]  or  v2[...].
    groups: dict[tuple[str, ...], list[str]] = {}
    for family in FAMILIES:
        takes = tuple(_part(e) for n, e in AXES.items() if n != "family" and family in e.families)
        groups.setdefault(takes, []).append(family)
    return "  or  ".join("|".join(fams) + "".join(f"[-{p}]" for p in takes) for takes, fams in groups.items())


GRAMMAR = _grammar()


def format_variant(v: Variant) -> str:
    parts = [v.family]
    for _name, entry in v.axes():
        if (part := entry.spell(v)) is not None:
            parts.append(part)
    return "-".join(parts)


def _closest(word: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def _fail(name: str, problem: Problem) -> UsageError:
    what, hint = problem
    return UsageError(
        f"invalid variant name '{name}': {what}",
        f"{hint}\nGrammar: {GRAMMAR}. See `mnv3bench variants` for the catalog.",
    )


def _not_for_family(token: str, family: str) -> Problem:
    takes = [entry.phrase or _part(entry) for n, entry in AXES.items() if n != "family" and family in entry.families]
    listed = ", ".join(takes[:-1]) + f" and {takes[-1]}" if len(takes) > 1 else "".join(takes)
    return (
        f"'{token}' is a MobileNetV3 choice; {family} baselines take only {listed}.",
        f"Write e.g. {family}-1.0 or {family}-0.35-int8.",
    )


def parse_variant(name: str) -> Variant:
    """Read a variant name; raise UsageError naming the wrong part and the valid choices."""
    text = name.strip().lower()
    parts = text.split("-") if text else [""]
    family, rest = parts[0], parts[1:]
    if family not in FAMILIES:
        closest = _closest(family, list(FAMILIES)) or _closest(text, [v.name for v in catalog()])
        raise _fail(name, (f"unknown model family '{family}'.", f"Use one of the families: {', '.join(FAMILIES)}.{closest}"))
    values: dict[str, Any] = {}
    given: dict[str, str] = {}  # axis -> the part that set it, in the order given

    def take(axis_name: str, value: Any, token: str) -> None:
        if axis_name in given:
            raise _fail(name, (f"'{token}' and '{given[axis_name]}' both set the {axis_name.replace('_', ' ')}.", "Give it once."))
        given[axis_name] = token
        values[axis_name] = value

    # Positional parts (the width) come right after the family and are checked as read.
    for axis_name, entry in AXES.items():
        if entry.positional and rest and entry.read and (value := entry.read(rest[0])) is not None:
            token = rest.pop(0)
            take(axis_name, value, token)
            if entry.check and (problem := entry.check(Variant(family, **values), token)):
                raise _fail(name, problem)

    free = [(n, e.read, e) for n, e in AXES.items() if e.read and not e.positional]
    for token in rest:
        for axis_name, read, _entry in free:
            if (value := read(token)) is not None:
                take(axis_name, value, token)
                break
        else:
            if _WIDTH_RE.match(token) or token.startswith("@"):
                raise _fail(name, (f"'{token}' is not where it belongs.", "Put the width right after the family (large-0.85-...) and write h-swish placement as hswish@N."))
            valid = [word for _, _read, entry in free for word in entry.words]
            raise _fail(name, (f"unknown part '{token}'.", f"Use one of the parts after the family and width: {', '.join(valid)}.{_closest(token, valid)}"))

    variant = Variant(family, **values)
    for axis_name, token in given.items():
        entry = AXES[axis_name]
        if family not in entry.families:
            raise _fail(name, _not_for_family(token, family))
        if entry.refuse and (problem := entry.refuse(variant, token)):
            raise _fail(name, problem)
    if problem := variant.problem():
        raise _fail(name, problem)
    return variant


# ---------------------------------------------------------------------------------------
# The catalog: every variant the paper's tables and claims measure.


@dataclass(frozen=True)
class CatalogEntry:
    variant: Variant
    used_in: tuple[str, ...]  # which tables/claims measure it


def catalog_entries() -> list[CatalogEntry]:
    """The tables' variants (tables/definitions.py), by precision, family, then table order.

    Each lists the tables that measure it: the paper's numbered tables first, then the
    claims of its text (§5.1, §5.2).
    """
    from mnv3bench.tables.definitions import (
        TABLES,  # data only; tables never import variants
    )

    used_in: dict[Variant, list[str]] = {}
    for table in TABLES.values():
        for variant_name in table.variants():
            used_in.setdefault(parse_variant(variant_name), []).append(table.name)
    numbered_first = {t.name: (not t.source.startswith("Table"), i) for i, t in enumerate(TABLES.values())}
    precisions, families = AXES["precision"].choices, FAMILIES
    first_seen = {v: i for i, v in enumerate(used_in)}
    order = sorted(used_in, key=lambda v: (precisions.index(v.precision), families.index(v.family), first_seen[v]))
    return [CatalogEntry(v, tuple(sorted(used_in[v], key=numbered_first.__getitem__))) for v in order]


def catalog() -> list[Variant]:
    return [e.variant for e in catalog_entries()]


def grammar_axes() -> dict[str, list[str]]:
    """The grammar's axes and their values, for `mnv3bench variants`."""
    return {
        entry.label: [f"{entry.choices[0]} (default)", *entry.choices[1:]] if name != "family" else list(entry.choices)
        for name, entry in AXES.items()
    }
