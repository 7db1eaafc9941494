"""A variant's size, estimated before anything is built: MAdds and parameters from its
spec (flops.py, pure arithmetic, no TensorFlow), checked against what this kind of machine
can build.

Building and converting allocate several copies of the weights and the activations, so
memory grows with MAdds (activations, roughly resolution squared) and parameters (width
squared). Measured on a 2-core, 24 GB machine: large-hswish-fused-r4096 (71 G MAdds, 5.5 M
parameters) peaked at 21.9 GB RSS, large-1000-hswish-fused (4 T parameters) reached 17.6 GB
before failing; large-2.0-hswish-fused-r448 (3.2 G MAdds, 19 M parameters) builds well
within it. The bounds keep a 3x margin under the first measurement (about 0.3 GB per
G MAdds) and refuse the second by far; --allow-huge lifts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer

from mnv3bench.errors import UsageError

if TYPE_CHECKING:
    from mnv3bench.flops import Counts
    from mnv3bench.variants import Variant

MAX_MADDS = 20_000_000_000
MAX_PARAMS = 200_000_000
AllowHugeOpt = Annotated[bool, typer.Option("--allow-huge", help="Build variants above the size bounds "
                                            "(20 G MAdds, 200 M parameters) anyway.")]


def estimate(variant: Variant) -> Counts:
    from mnv3bench.flops import count

    return count(variant)


def check_sizes(variants: Iterable[Variant], *, allow_huge: bool) -> None:
    """UsageError for the first variant above the bounds, saying what was estimated."""
    if allow_huge:
        return
    for variant in variants:
        counts = estimate(variant)
        if counts.madds <= MAX_MADDS and counts.params <= MAX_PARAMS:
            continue
        raise UsageError(
            f"variant {variant.name} is too big to build here: an estimated {_amount(counts.madds)} MAdds and "
            f"{_amount(counts.params)} parameters, above the bounds of {_amount(MAX_MADDS)} MAdds and "
            f"{_amount(MAX_PARAMS)} parameters (large-hswish-fused-r4096, at 71 G MAdds, took 21.9 GB of memory).",
            "Pick a smaller resolution (rRES) or width, or pass --allow-huge to build it anyway.",
        )


def _amount(n: int) -> str:
    for size, unit in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)
