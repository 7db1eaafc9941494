"""Latency along the network: one PNG with each variant's ms per block, stem to classifier."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mnv3bench.profile.stored import BlockProfile


def plot_blocks(profiles: Sequence[BlockProfile], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names: list[str] = []
    for profile in profiles:  # the union of the blocks, in network order
        for block in profile.attribution.blocks:
            if block.name not in names:
                names.append(block.name)
    labels = [n.replace("bottleneck ", "b") for n in names]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(profiles))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4), dpi=100)
    try:
        for i, profile in enumerate(profiles):
            ms = {b.name: b.ms for b in profile.attribution.blocks}
            ax.bar(x + (i - (len(profiles) - 1) / 2) * width, [ms.get(n, 0.0) for n in names], width,
                   label=f"{profile.variant} ({profile.attribution.unattributed_share:.0%} unattributed)")
        ax.set_xticks(x, labels, rotation=45, ha="right")
        ax.set_ylabel("ms per run (op profile)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
