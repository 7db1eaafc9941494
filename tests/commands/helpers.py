"""Command test helpers: a stored Table 5 session to render reports from."""

from __future__ import annotations

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
