"""Synthetic trials for table tests: medians shaped like the paper's Table 5, a known spread."""

from __future__ import annotations

import pandas as pd

# Medians shaped like the paper's Table 5 ratios, on an arbitrary (host) scale.
TABLE5_MS = {
    "large-hswish-fused": 20.0,
    "large-hswish-naive": 23.0,
    "large-0.85-hswish-fused": 17.0,
    "large-0.85-hswish-naive": 19.0,
    "large-relu": 19.5,
    "large-hswish@16-fused": 21.0,
    "large-hswish@16-naive": 27.0,
    "large-hswish@112-fused": 19.8,
    "large-hswish@112-naive": 21.0,
}
SPREAD = (-0.02, -0.01, 0.0, 0.01, 0.02)  # per-trial relative offsets: the median is the centre


def synthetic_trials(medians: dict[str, float], *, session_id: int = 1, first_id: int = 1, **extra) -> pd.DataFrame:
    """Trials with the ResultStore.trials() columns the tables read."""
    rows = []
    next_id = first_id
    for variant, ms in medians.items():
        for index, offset in enumerate(SPREAD):
            rows.append(
                {
                    "id": next_id,
                    "session_id": session_id,
                    "variant": variant,
                    "model_sha256": "0" * 64,
                    "device_profile": "emulator",
                    "trial_index": index,
                    "ok": True,
                    "latency_ms": ms * (1 + offset),
                    "throttled": False,
                    "op_profile_by_type": None,
                    "raw_output": "",
                    **extra,
                }
            )
            next_id += 1
    return pd.DataFrame(rows)
