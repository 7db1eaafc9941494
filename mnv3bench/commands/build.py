"""`mnv3bench build VARIANT...`: build, convert and verify models into the cache."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from mnv3bench.api import build_models
from mnv3bench.cliapp import JsonOpt, app, plain_output, print_json, stderr, stdout
from mnv3bench.commands.progress import PlainProgress, RichProgress, rich_bar
from mnv3bench.delegation import Delegation
from mnv3bench.locations import default_models_dir
from mnv3bench.model.cache import ModelArtifact
from mnv3bench.model.size import AllowHugeOpt
from mnv3bench.variants import GRAMMAR

_HELP = (
    "Build model variants and convert them to verified .tflite files.\n\n"
    "Each model is checked after conversion (one HARD_SWISH op per h-swish site when fused, none "
    "when naive; the .tflite output matches the Keras model) and cached under the models directory "
    "by content: building it again is instant until the variant, the builder code, the weights or "
    "the TensorFlow version change. Missing models build in parallel worker processes (--jobs).\n\n"
    f"Variant names: {GRAMMAR}\n\n"
    "Examples: large-hswish-fused, large-hswish-naive, large-relu, large-hswish@16-naive, "
    "large-0.85-hswish-fused, small-hswish-fused-int8, large-hswish-fused-r192. "
    "`mnv3bench variants` lists the paper's variants."
)

JSON_KEYS = ("name", "path", "sha256", "size_bytes", "ops", "madds", "params", "delegation")


@app.command("build", help=_HELP)
def build_command(
    variants: Annotated[list[str], typer.Argument(help="Variant names, e.g. large-hswish-fused.", metavar="VARIANT...")],
    json_output: JsonOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when a valid cached model exists.")] = False,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Load trained Keras weights from FILE instead of seeded random ones.", metavar="FILE")
    ] = None,
    models_dir: Annotated[Path | None, typer.Option("--models-dir", help="Model cache directory (default: see README, "
                                                    "\"Where files go\").", metavar="DIR")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Models to build at once (one process each, 1-64).")] = 2,
    allow_huge: AllowHugeOpt = False,
) -> None:
    """Build and convert model variants, printing path, size, sha256, ops, MAdds and params."""
    models_dir = models_dir or default_models_dir()
    build = functools.partial(build_models, variants, models_dir=models_dir, force=force, weights=weights, jobs=jobs,
                              allow_huge=allow_huge)
    if plain_output():
        artifacts = build(progress=PlainProgress().build)
    else:
        with rich_bar(stderr) as bar:
            artifacts = build(progress=RichProgress(bar).build)

    if json_output:
        print_json([_to_json(a) for a in artifacts])
    else:
        shown: set[str] = set()
        for artifact in artifacts:
            if artifact.variant not in shown:
                shown.add(artifact.variant)
                _render(artifact)
    stderr.print(f"models are in {models_dir}", highlight=False, soft_wrap=True)


def _to_json(artifact: ModelArtifact) -> dict:
    data = artifact.to_json()
    return {key: data[key] for key in JSON_KEYS}


def _render(artifact: ModelArtifact) -> None:
    ops = " · ".join(f"{name} {count}" for name, count in sorted(artifact.ops.items(), key=lambda kv: (-kv[1], kv[0])))
    stdout.print(f"[bold]{artifact.variant}[/]", highlight=False)
    stdout.print(f"  path    {artifact.path}", highlight=False, soft_wrap=True)
    stdout.print(f"  size    {artifact.size_bytes / 1e6:.2f} MB ({artifact.size_bytes:,} bytes)", highlight=False)
    stdout.print(f"  sha256  {artifact.sha256}", highlight=False)
    stdout.print(f"  MAdds   {artifact.madds / 1e6:.1f} M ({artifact.madds:,})", highlight=False)
    stdout.print(f"  params  {artifact.params:,}", highlight=False)
    stdout.print(f"  ops     {ops}", highlight=False, soft_wrap=True)
    if artifact.delegation:
        delegation = Delegation.from_json(artifact.delegation)
        stdout.print(f"  XNNPACK {delegation.summary()} [dim]({delegation.runtime}, on this host)[/]", highlight=False,
                     soft_wrap=True)
