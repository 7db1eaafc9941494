"""Model variants and their names.

A `Variant` is a small, frozen value: which network, and which of the paper's design
choices it makes. Its canonical name is the only way users refer to it, so the grammar
must round-trip exactly: `parse_variant(v.name) == v` for every variant.

Grammar (parts joined by "-"; the order of the trailing modifiers is free on input and
fixed in the canonical name):

    large|small [-WIDTH] [-NONLINEARITY [-IMPL]] [-original] [-stem32relu] [-rRES] [-int8|-fp32]
    v2 [-WIDTH] [-rRES] [-int8|-fp32]

    WIDTH         width multiplier, a number > 0 (1.0 default; the paper uses 0.75, 0.85)
    NONLINEARITY  hswish      the paper's default placement (h-swish in the stem, the layers
                              from the first 80-channel bottleneck on (Large) and the head)
                  hswish@N    h-swish from the first bottleneck with N output channels on
                              (Table 5's "h-swish @16", "@112"); ReLU before it
                  relu        ReLU everywhere (no h-swish at all)
                  swish       x*sigmoid(x) wherever the default uses h-swish
    IMPL          fused       h-swish written so TFLite converts it to one HARD_SWISH op
                  naive       h-swish from primitive ops the converter cannot fuse ("no-opt")
    original      the MobileNetV2-style last stage of the paper's Figure 5 (Large only)
    stem32relu    a 32-filter ReLU stem instead of 16 filters with h-swish
    rRES          input resolution (224 default)
    int8          full-integer post-training quantization (fp32 default)

Canonical names always spell the nonlinearity and, for h-swish plans, the
implementation; they omit defaults otherwise: `large-hswish-fused`, `large-relu`,
`large-0.85-hswish-naive`, `large-hswish-fused-original`, `small-hswish-fused-int8`.
MobileNetV2 baselines always spell their width: `v2-1.0`, `v2-0.35-int8`.
`large-stem32relu` is accepted and means `large-hswish-fused-stem32relu`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from decimal import Decimal

from mnv3bench.errors import UsageError

FAMILIES = ("large", "small", "v2")
PLAIN_NONLINEARITIES = ("hswish", "relu", "swish")
HSWISH_IMPLS = ("fused", "naive")
LAST_STAGES = ("efficient", "original")
STEMS = ("16-hswish", "32-relu")
PRECISIONS = ("fp32", "int8")
DEFAULT_RESOLUTION = 224
MIN_RESOLUTION = 32  # Keras refuses smaller inputs.

# Unscaled output channels of each family's bottlenecks (Tables 1 and 2): the valid N of
# "hswish@N". The paper's default placement starts at 80 (Large) / 40 (Small).
BOTTLENECK_OUT_CHANNELS = {
    "large": (16, 24, 40, 80, 112, 160),
    "small": (16, 24, 40, 48, 96),
}
DEFAULT_HSWISH_FROM = {"large": 80, "small": 40}

GRAMMAR = (
    "large|small[-WIDTH][-hswish|hswish@N|relu|swish][-fused|naive][-original][-stem32relu][-rRES][-int8]"
    "  or  v2[-WIDTH][-rRES][-int8]"
)


@dataclass(frozen=True)
class Variant:
    family: str
    width: float = 1.0
    nonlinearity: str = "hswish"
    hswish_impl: str = "fused"
    last_stage: str = "efficient"
    stem: str = "16-hswish"
    resolution: int = DEFAULT_RESOLUTION
    precision: str = "fp32"

    def __post_init__(self) -> None:
        # Keep the invariants of the grammar in the value itself, so that no code path can
        # make a Variant whose name would not parse back to it.
        if self.family == "v2":
            object.__setattr__(self, "nonlinearity", "relu")  # MobileNetV2 is ReLU6 only
        elif self.nonlinearity == f"hswish@{DEFAULT_HSWISH_FROM.get(self.family)}":
            # The paper's own placement: one network, one name (and one cache entry).
            object.__setattr__(self, "nonlinearity", "hswish")
        if self.hswish_impl and not self.uses_hswish:
            object.__setattr__(self, "hswish_impl", "")
        if not self.hswish_impl and self.uses_hswish:
            object.__setattr__(self, "hswish_impl", "fused")
        object.__setattr__(self, "width", float(self.width))

    @property
    def uses_hswish(self) -> bool:
        return self.family != "v2" and self.nonlinearity.startswith("hswish")

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


def _format_width(width: float) -> str:
    # repr is the shortest text that reads back to the same float: 0.85 -> "0.85". Decimal
    # spells out the rare exponent form (1e-05 -> "0.00001"), which the grammar cannot read.
    text = repr(float(width))
    return format(Decimal(text), "f") if "e" in text else text


def format_variant(v: Variant) -> str:
    if v.family == "v2":
        parts = ["v2", _format_width(v.width)]
    else:
        parts = [v.family]
        if v.width != 1.0:
            parts.append(_format_width(v.width))
        parts.append(v.nonlinearity)
        if v.uses_hswish:
            parts.append(v.hswish_impl)
        if v.last_stage == "original":
            parts.append("original")
        if v.stem == "32-relu":
            parts.append("stem32relu")
    if v.resolution != DEFAULT_RESOLUTION:
        parts.append(f"r{v.resolution}")
    if v.precision == "int8":
        parts.append("int8")
    return "-".join(parts)


def _closest(word: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def _fail(name: str, problem: str, hint: str) -> UsageError:
    return UsageError(
        f"invalid variant name '{name}': {problem}",
        f"{hint}\nGrammar: {GRAMMAR}. See `mnv3bench variants` for the catalog.",
    )


_WIDTH_RE = re.compile(r"^\d+(\.\d*)?$|^\.\d+$")
_RES_RE = re.compile(r"^r(\d+)$")
_HSWISH_AT_RE = re.compile(r"^hswish@(\d+)$")


def parse_variant(name: str) -> Variant:
    """Read a variant name; raise UsageError naming the wrong part and the valid choices."""
    text = name.strip().lower()
    parts = text.split("-") if text else [""]
    family = parts[0]
    if family not in FAMILIES:
        closest = _closest(family, list(FAMILIES)) or _closest(text, [v.name for v in catalog()])
        raise _fail(name, f"unknown model family '{family}'.", f"Valid families: {', '.join(FAMILIES)}.{closest}")
    rest = parts[1:]
    fields: dict[str, object] = {"family": family}
    seen: dict[str, str] = {}

    def take(field: str, value: object, token: str) -> None:
        if field in seen:
            raise _fail(name, f"'{token}' and '{seen[field]}' both set the {field.replace('_', ' ')}.", "Give it once.")
        seen[field] = token
        fields[field] = value

    if rest and _WIDTH_RE.match(rest[0]):
        token = rest.pop(0)
        width = float(token)
        if not width > 0:
            raise _fail(name, f"width '{token}' must be a number greater than 0.", "Use e.g. 1.0, 0.85 or 0.75.")
        take("width", width, token)

    for token in rest:
        if m := _HSWISH_AT_RE.match(token):
            take("nonlinearity", f"hswish@{int(m.group(1))}", token)  # hswish@080 is hswish@80
        elif token in PLAIN_NONLINEARITIES:
            take("nonlinearity", token, token)
        elif token in HSWISH_IMPLS:
            take("hswish_impl", token, token)
        elif token == "original":
            take("last_stage", "original", token)
        elif token == "efficient":
            take("last_stage", "efficient", token)
        elif token == "stem32relu":
            take("stem", "32-relu", token)
        elif m := _RES_RE.match(token):
            take("resolution", int(m.group(1)), token)
        elif token in PRECISIONS:
            take("precision", token, token)
        elif _WIDTH_RE.match(token) or token.startswith("@"):
            raise _fail(name, f"'{token}' is not where it belongs.", "The width comes right after the family (large-0.85-...); h-swish placement is written hswish@N.")
        else:
            valid = ["hswish", "hswish@N", "relu", "swish", "fused", "naive", "original", "stem32relu", "rRES", "int8", "fp32"]
            raise _fail(name, f"unknown part '{token}'.", f"Valid parts after the family and width: {', '.join(valid)}.{_closest(token, valid)}")

    if family == "v2":
        v3_only = [t for f, t in seen.items() if f in ("nonlinearity", "hswish_impl", "last_stage", "stem")]
        if v3_only:
            raise _fail(name, f"'{v3_only[0]}' is a MobileNetV3 choice; v2 baselines take only a width, rRES and int8.", "Write e.g. v2-1.0 or v2-0.35-int8.")
        variant = Variant(**fields)  # type: ignore[arg-type]
        return _check_resolution(name, variant)

    nonlinearity = str(fields.get("nonlinearity", "hswish"))
    impl = fields.get("hswish_impl")
    if impl and not nonlinearity.startswith("hswish"):
        suggestion = f"{family}-{nonlinearity}" if nonlinearity != "relu" else f"{family}-relu (or {family}-hswish-{impl})"
        raise _fail(name, f"'{impl}' is an h-swish implementation, but '{nonlinearity}' has no h-swish.", f"Drop '-{impl}': {suggestion}.")
    n = fields.get("nonlinearity")
    if isinstance(n, str) and n.startswith("hswish@"):
        channels = int(n.split("@", 1)[1])
        valid_n = BOTTLENECK_OUT_CHANNELS[family]
        if channels not in valid_n:
            raise _fail(name, f"no {family} bottleneck has {channels} output channels, so '{n}' names no layer.", f"Valid N for {family}: {', '.join(map(str, valid_n))} (hswish@{valid_n[0]} = h-swish everywhere).")
    if fields.get("last_stage") == "original" and family != "large":
        raise _fail(name, "the original (MobileNetV2-style) last stage is defined for large only.", "Drop '-original' or use large-...-original.")
    variant = Variant(**fields)  # type: ignore[arg-type]
    return _check_resolution(name, variant)


def _check_resolution(name: str, variant: Variant) -> Variant:
    if variant.resolution < MIN_RESOLUTION:
        raise _fail(name, f"resolution r{variant.resolution} is below the minimum of {MIN_RESOLUTION}.", "Use e.g. r224, r192 or r96.")
    return variant


@dataclass(frozen=True)
class CatalogEntry:
    variant: Variant
    used_in: tuple[str, ...]  # which tables/claims measure it


# The paper's variants, grouped by the table or claim that measures them.
_CATALOG_NAMES: list[tuple[str, tuple[str, ...]]] = [
    ("large-hswish-fused", ("5", "3", "last-stage", "stem")),
    ("large-hswish-naive", ("5",)),
    ("large-0.85-hswish-fused", ("5",)),
    ("large-0.85-hswish-naive", ("5",)),
    ("large-relu", ("5",)),
    ("large-hswish@16-fused", ("5",)),
    ("large-hswish@16-naive", ("5",)),
    ("large-hswish@112-fused", ("5",)),
    ("large-hswish@112-naive", ("5",)),
    ("large-hswish-fused-original", ("last-stage",)),
    ("large-hswish-fused-stem32relu", ("stem",)),
    ("large-0.75-hswish-fused", ("3",)),
    ("small-hswish-fused", ("3",)),
    ("small-0.75-hswish-fused", ("3",)),
    ("v2-1.0", ("3",)),
    ("v2-0.35", ("3",)),
    ("large-hswish-fused-int8", ("4", "swish-int8")),
    ("large-swish-int8", ("swish-int8",)),
    ("small-hswish-fused-int8", ("4",)),
    ("v2-1.0-int8", ("4",)),
    ("v2-0.35-int8", ("4",)),
]


def catalog_entries() -> list[CatalogEntry]:
    return [CatalogEntry(parse_variant(n), tables) for n, tables in _CATALOG_NAMES]


def catalog() -> list[Variant]:
    return [e.variant for e in catalog_entries()]


def grammar_axes() -> dict[str, list[str]]:
    """The grammar's axes and their values, for `mnv3bench variants`."""
    return {
        "family": list(FAMILIES),
        "width": ["1.0 (default)", "0.85", "0.75", "any number > 0"],
        "nonlinearity": ["hswish (default)", "hswish@N", "relu", "swish"],
        "hswish implementation": ["fused (default)", "naive"],
        "last stage": ["efficient (default)", "original"],
        "stem": ["16-hswish (default)", "stem32relu"],
        "resolution": ["r224 (default)", "rRES"],
        "precision": ["fp32 (default)", "int8"],
    }
