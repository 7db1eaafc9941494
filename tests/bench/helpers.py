"""Model artifacts for runner tests: small files that stand in for built .tflite models."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mnv3bench.convert import ModelArtifact


def make_artifacts(tmp_path: Path, names: list[str]):
    out = []
    for name in names:
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(f"TFL3 model bytes of {name}".encode())
        out.append(ModelArtifact(variant=name, path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                 size_bytes=path.stat().st_size, ops={}, madds=0, params=0, tf_version="2.21.0"))
    return out
