"""Command test helpers: a stored Table 5 session to render reports from; stand-in models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mnv3bench.results import ResultStore, SessionRecord, TrialRecord
from tests.tables.helpers import SPREAD


def store_session(store: ResultStore, medians: dict[str, float], device: str = "emulator") -> int:
    session = store.start_session(
        SessionRecord(command="table 5", device_profile=device, device_serial="127.0.0.1:5555", device_model="m",
                      device_fingerprint="fp", flags={}, variants=list(medians), tool_version="test")
    )
    for variant, ms in medians.items():
        for index, offset in enumerate(SPREAD):
            store.record_trial(
                TrialRecord(session_id=session, variant=variant, model_sha256="a" * 64, device_profile=device,
                            device_serial="127.0.0.1:5555", device_model="m", device_fingerprint="fp", flags={},
                            trial_index=index, started_at="2026-01-01T00:00:00", ended_at="2026-01-01T00:00:01",
                            ok=True, latency_ms=ms * (1 + offset), tool_version="test")
            )
    return session


def store_interleaved(store: ResultStore, medians: dict[str, float], *, rounds: int = 8, device: str = "emulator",
                      builds_on: dict[str, list[int]] | None = None) -> int:
    """A session of `rounds` randomized rounds (each variant once per round): pairs for paired comparisons."""
    session = store.start_session(
        SessionRecord(command="run", device_profile=device, device_serial="127.0.0.1:5555", device_model="m",
                      device_fingerprint="fp", flags={}, variants=list(medians), tool_version="test",
                      builds_on=builds_on or {})
    )
    for index in range(rounds):
        offset = SPREAD[index % len(SPREAD)]
        for position, (variant, ms) in enumerate(medians.items(), start=1):
            store.record_trial(
                TrialRecord(session_id=session, variant=variant, model_sha256="a" * 64, device_profile=device,
                            device_serial="127.0.0.1:5555", device_model="m", device_fingerprint="fp", flags={},
                            trial_index=index + 1, started_at="2026-01-01T00:00:00", ended_at="2026-01-01T00:00:01",
                            ok=True, latency_ms=ms * (1 + offset), tool_version="test", round_index=index + 1,
                            round_position=position)
            )
    return session


def stand_in_models(small_models: Path, variants: list[str], models_dir: Path) -> Path:
    """A models dir where each of `variants` is cached as a copy of SMALL's built model.

    For runs whose benchmark never reads the model (the emulator's `fixed-time` fault): the
    cache accepts each file (its sidecar names the variant's key), so no full-size model is
    built, and the phone is pushed a real .tflite all the same."""
    from mnv3bench.model.cache import cache_key, model_path, sidecar_path
    from mnv3bench.variants import parse_variant
    from tests.helpers import SMALL

    source = next(p for p in small_models.rglob("*.tflite") if SMALL in p.name)
    meta = json.loads(sidecar_path(source).read_text())
    for name in variants:
        variant = parse_variant(name)
        key = cache_key(variant)
        path = model_path(variant, models_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        sidecar_path(path).write_text(json.dumps({**meta, "variant": variant.name, "name": variant.name,
                                                  "cache_key": key, "path": str(path)}))
    return models_dir
