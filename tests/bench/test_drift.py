"""Order and drift diagnostics over rounds."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mnv3bench.bench.drift import OrderedTrial, order_warnings


def rounds(n_rounds=10, variants=("a", "b", "c"), position_effect=0.0, drift=0.0, noise=0.002, seed=2):
    rng = np.random.default_rng(seed)
    out = []
    for r in range(1, n_rounds + 1):
        for position, v in enumerate(rng.permutation(list(variants)), start=1):
            base = {"a": 5.0, "b": 6.0, "c": 7.0}[v]
            ms = base * (1 + position_effect * (position - 1)) * (1 + drift * (r - 1)) * (1 + rng.normal(0, noise))
            out.append(OrderedTrial(v, r, position, ms))
    return out


def effect(message: str) -> float:
    return float(re.search(r"([+-][0-9.]+)%", message).group(1)) / 100


def test_quiet_rounds_give_no_warning():
    assert order_warnings(rounds()) == []


def test_a_position_effect_is_named_with_its_size():
    (w,) = order_warnings(rounds(position_effect=0.02))
    assert w.code == "position-effect" and effect(w.message) == pytest.approx(0.04, abs=0.005)
    assert "--cooldown" in w.advice


def test_drift_across_rounds_is_named_with_its_size():
    (w,) = order_warnings(rounds(drift=0.01))
    assert w.code == "drift" and effect(w.message) == pytest.approx(0.09, abs=0.005) and "paired" in w.advice


def test_too_few_rounds_say_nothing():
    assert order_warnings(rounds(n_rounds=2, drift=0.05)) == []


def test_a_table_notes_drift_in_its_session():
    import pandas as pd

    from mnv3bench.tables.compute import compute_table
    from mnv3bench.tables.definitions import get_table

    trials = rounds(variants=("a", "b", "c"), drift=0.01)
    names = {"a": "large-hswish-fused", "b": "large-hswish-naive", "c": "large-relu"}
    frame = pd.DataFrame([{"id": i, "session_id": 1, "variant": names[t.variant], "round_index": t.round_index,
                           "round_position": t.position, "ok": True, "latency_ms": t.latency_ms, "throttled": False}
                          for i, t in enumerate(trials, start=1)])
    notes = compute_table(get_table("5"), frame, device="emulator").notes
    assert any(n.startswith("Warning: Latency drifted +9.") for n in notes)


def test_the_runner_warns_of_drift(tmp_path, profile, store):
    from mnv3bench.bench.runner import RunConfig
    from mnv3bench.device.protocol import ShellResult
    from mnv3bench.testing import FakeDevice, benchmark_output
    from tests.bench.helpers import Messages, make_artifacts, run

    progress = Messages()
    warming = FakeDevice(lambda g, n: ShellResult(benchmark_output(5000 + 100 * n), 0, False))  # slower each trial
    run(profile, store, ["a", "b"], make_artifacts(tmp_path, ["a", "b"]), warming, RunConfig(trials=8),
        progress=progress)
    assert any(line.startswith("warning: Latency drifted +") for line in progress.lines)
