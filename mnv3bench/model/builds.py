"""The verified .tflite of a variant: from the cache when valid, else built now.

Several variants build in parallel worker processes (spawned, so each has its own clean
TensorFlow); the parent resolves cache hits itself and never imports TensorFlow. Workers
return artifacts and raise `MnvError`s, which pickle whole.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from mnv3bench.errors import MnvError, UsageError
from mnv3bench.model.cache import (
    ModelArtifact,
    build_lock,
    cache_key,
    cached_artifact,
    make_models_dir,
    model_path,
    read_cached,
    store,
)
from mnv3bench.model.convert import convert_variant
from mnv3bench.variants import Variant, parse_variant

ProgressCallback = Callable[[str, str, str], None]
"""progress(variant_name, state, detail): state is "cached", "building", "built" or "failed"."""


def _as_variant(variant: Variant | str) -> Variant:
    return variant if isinstance(variant, Variant) else parse_variant(variant)


def _check_weights(weights: Path | str | None) -> Path | None:
    if weights is None:
        return None
    path = Path(weights)
    if not path.is_file():
        raise UsageError(f"weights file {path} does not exist.", "Pass a Keras weights file (.weights.h5) with --weights.")
    return path.resolve()


def ensure_model(
    variant: Variant | str,
    *,
    models_dir: Path | str = Path("models"),
    force: bool = False,
    weights: Path | str | None = None,
) -> ModelArtifact:
    """The verified .tflite for `variant`: from the cache when valid, else built now."""
    v = _as_variant(variant)
    weights_path = _check_weights(weights)
    models_dir = Path(models_dir)
    key = cache_key(v, weights_path)
    path = model_path(v, models_dir, key)
    if not force and (hit := read_cached(v, path, key)):
        return hit
    make_models_dir(models_dir)
    with build_lock(path):
        # Another process may have built it while we waited for the lock.
        if not force and (hit := read_cached(v, path, key)):
            return hit
        return store(convert_variant(v, weights_path), path, key, weights_path)


def _build_in_worker(name: str, models_dir: str, force: bool, weights: str | None) -> ModelArtifact:
    """Worker entry point. Any failure comes back as an MnvError: only the worker has its traceback."""
    try:
        return ensure_model(name, models_dir=Path(models_dir), force=force, weights=weights)
    except MnvError:
        raise
    except Exception as exc:
        raise MnvError(
            f"{name}: build failed: {type(exc).__name__}: {exc}",
            "Report it with the variant name and the worker's traceback:\n"
            + "".join(traceback.format_exception(exc)[-6:]),
        ) from None


def ensure_models(
    variants: Sequence[Variant | str],
    *,
    models_dir: Path | str = Path("models"),
    force: bool = False,
    weights: Path | str | None = None,
    jobs: int = 2,
    progress: ProgressCallback | None = None,
) -> list[ModelArtifact]:
    """Ensure several models, building the missing ones in `jobs` spawned worker processes.

    Returns one artifact per input variant, in input order (duplicates share one build).
    Cache hits are resolved here without spawning anything or importing TensorFlow.
    If builds fail, the others still finish; then the first failure is raised.
    """
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}.", "Use --jobs 1 or more.")
    notify = progress or (lambda name, state, detail: None)
    resolved = [_as_variant(v) for v in variants]
    weights_path = _check_weights(weights)
    models_dir = Path(models_dir)
    unique = list(dict.fromkeys(resolved))
    results: dict[Variant, ModelArtifact] = {}
    missing: list[Variant] = []
    for v in unique:
        hit = None if force else cached_artifact(v, models_dir, weights_path)
        if hit:
            results[v] = hit
            notify(v.name, "cached", str(hit.path))
        else:
            missing.append(v)

    failures: list[MnvError] = []
    if missing:
        make_models_dir(models_dir)
        workers = min(jobs, len(missing))
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = {}
                for v in missing:
                    notify(v.name, "building", "")
                    args = (v.name, str(models_dir), force, str(weights_path) if weights_path else None)
                    futures[pool.submit(_build_in_worker, *args)] = v
                for future in as_completed(futures):
                    v = futures[future]
                    try:
                        artifact = future.result()
                    except MnvError as err:
                        failures.append(err)
                        notify(v.name, "failed", err.message)
                    else:
                        results[v] = artifact
                        notify(v.name, "built", str(artifact.path))
        except BrokenProcessPool as exc:
            raise MnvError(
                "a model-building worker process died (out of memory?).",
                "Build fewer models at once: --jobs 1.",
            ) from exc
    if failures:
        first = failures[0]
        if len(failures) > 1:
            first.hint = (first.hint or "") + f"\n({len(failures) - 1} more builds failed.)"
        raise first
    return [results[v] for v in resolved]
