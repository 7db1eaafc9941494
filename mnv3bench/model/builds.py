"""The verified .tflite of a variant: from the cache when valid, else built now.

Several variants build in parallel worker processes (spawned, so each has its own clean
TensorFlow); the parent resolves cache hits itself and never imports TensorFlow. Workers
return artifacts and raise `MnvError`s, which pickle whole. A worker says on a queue when it
starts a model: the pool takes every job at once, so only the worker knows which models are
really building and which still wait for a free worker.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from queue import Empty
from typing import Any

from mnv3bench.errors import MnvError, UsageError
from mnv3bench.locations import default_models_dir
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
"""progress(variant_name, state, detail): state is "cached", "queued" (waiting for a worker),
"building" (a worker started it), "built" or "failed"."""

# Set in each worker process by the pool's initializer: where it says which model it starts.
_started_queue: Any = None


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
    models_dir: Path | str | None = None,  # None: locations.default_models_dir()
    force: bool = False,
    weights: Path | str | None = None,
) -> ModelArtifact:
    """The verified .tflite for `variant`: from the cache when valid, else built now."""
    v = _as_variant(variant)
    weights_path = _check_weights(weights)
    models_dir = default_models_dir() if models_dir is None else Path(models_dir)
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


def _remember_queue(queue: Any) -> None:
    global _started_queue
    _started_queue = queue


def _build_in_worker(name: str, models_dir: str, force: bool, weights: str | None) -> ModelArtifact:
    """Worker entry point. Any failure comes back as an MnvError: only the worker has its traceback."""
    if _started_queue is not None:
        _started_queue.put(name)
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


class _Starts:
    """Turns the workers' start messages into "building" events, never more at once than workers.

    A worker that finishes a model starts the next one before its result reaches us, so a
    start can arrive while the model it follows still counts as building: it is held until
    that result is in.
    """

    def __init__(self, queue: Any, workers: int, notify: ProgressCallback) -> None:
        self.queue, self.workers, self.notify = queue, workers, notify
        self.told: set[str] = set()
        self.building: set[str] = set()
        self.held: list[str] = []

    def read(self) -> None:
        while True:
            try:
                name = self.queue.get_nowait()
            except Empty:
                break
            if name not in self.told and name not in self.held:
                self.held.append(name)
        while self.held and len(self.building) < self.workers:
            self._tell(self.held.pop(0))

    def was_told(self, name: str) -> bool:
        return name in self.told

    def finishing(self, name: str) -> None:
        """Its result is in: it has been building (said now if its start message is late)."""
        if name in self.held:
            self.held.remove(name)
        if name not in self.told:
            self._tell(name)
        self.building.discard(name)

    def _tell(self, name: str) -> None:
        self.told.add(name)
        self.building.add(name)
        self.notify(name, "building", "")


def ensure_models(
    variants: Sequence[Variant | str],
    *,
    models_dir: Path | str | None = None,  # None: locations.default_models_dir()
    force: bool = False,
    weights: Path | str | None = None,
    jobs: int = 2,
    progress: ProgressCallback | None = None,
) -> list[ModelArtifact]:
    """Ensure several models, building the missing ones in `jobs` spawned worker processes.

    Returns one artifact per input variant, in input order (duplicates share one build).
    Cache hits are resolved here without spawning anything or importing TensorFlow.
    If builds fail, the others still finish; then the first failure (in the order given) is raised.
    """
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}.", "Use --jobs 1 or more.")
    notify = progress or (lambda name, state, detail: None)
    resolved = [_as_variant(v) for v in variants]
    weights_path = _check_weights(weights)
    models_dir = default_models_dir() if models_dir is None else Path(models_dir)
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

    failed: dict[Variant, MnvError] = {}
    if missing:
        make_models_dir(models_dir)
        workers = min(jobs, len(missing))
        context = get_context("spawn")
        started_queue = context.Queue()
        starts = _Starts(started_queue, workers, notify)
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_remember_queue,
                                     initargs=(started_queue,)) as pool:
                futures: dict[Future[ModelArtifact], Variant] = {}
                for v in missing:
                    notify(v.name, "queued", "")
                    args = (v.name, str(models_dir), force, str(weights_path) if weights_path else None)
                    futures[pool.submit(_build_in_worker, *args)] = v
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    # Those already said to build first: their slots free up before a late start is said.
                    for future in sorted(finished, key=lambda f: not starts.was_told(futures[f].name)):
                        v = futures[future]
                        starts.finishing(v.name)
                        try:
                            artifact = future.result()
                        except MnvError as err:
                            failed[v] = err
                            notify(v.name, "failed", err.message)
                        else:
                            results[v] = artifact
                            notify(v.name, "built", str(artifact.path))
                    starts.read()
        except BrokenProcessPool as exc:
            raise MnvError(
                "a model-building worker process died (out of memory?).",
                "Build fewer models at once: --jobs 1.",
            ) from exc
        finally:
            started_queue.close()
            started_queue.join_thread()
    # The first in the order asked, not in the order they ended (one wait can return several).
    failures = [failed[v] for v in missing if v in failed]
    if failures:
        first = failures[0]
        if len(failures) > 1:
            first.hint = (first.hint or "") + f"\n({len(failures) - 1} more builds failed.)"
        raise first
    return [results[v] for v in resolved]
