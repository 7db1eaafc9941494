"""Runner test helpers: small files that stand in for built .tflite models, and a run on the fake device."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

from mnv3bench.bench.runner import RunConfig, run_session
from mnv3bench.model.cache import ModelArtifact
from mnv3bench.testing import FakeSensors


def make_artifacts(tmp_path: Path, names: list[str]):
    out = []
    for name in names:
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(f"TFL3 model bytes of {name}".encode())
        out.append(ModelArtifact(variant=name, path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                 size_bytes=path.stat().st_size, ops={}, madds=0, params=0, tf_version="2.21.0"))
    return out


def run(profile, store, names, artifacts, device, config=None, sensors=None, **kw):
    """run_session on the fake device with no real sleeping: (result, the sleeps it asked for)."""
    sleeps: list[float] = []
    result = run_session(profile, [SimpleNamespace(name=n) for n in names], config or RunConfig(trials=3),
                         store, device=device, artifacts=artifacts, sensors=sensors or FakeSensors(),
                         sleep=sleeps.append, **kw)
    return result, sleeps


class Messages:
    """A Progress that keeps the runner's messages (progress lines and warnings)."""

    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)

    def precision(self, line):
        self.lines.append(line)

    def push(self, *args):
        pass

    def trial_started(self, *args):
        pass

    def trial_finished(self, *args):
        pass
