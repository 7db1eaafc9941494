"""The content-addressed model cache: `models/<variant>-<key12>.tflite` and its sidecar.

The key hashes the canonical variant name, the weights file, the source files that decide
what a built model contains and the TensorFlow, Keras and LiteRT versions, so a code or
converter change rebuilds and nothing else does. The sidecar `<path>.json` describes the
model (the `ModelArtifact` fields, the numeric check, the delegation analysis). A cache hit
reads only the sidecar and the file's hash: it imports no TensorFlow. Writes are atomic
(model first, then sidecar), and a build holds a lock on its model's path so two processes
never build one model at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnv3bench.errors import MnvError, UsageError
from mnv3bench.locks import FileLock

if TYPE_CHECKING:
    from mnv3bench.model.convert import Conversion
    from mnv3bench.variants import Variant

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The sources whose bytes decide what a built model contains, relative to the package. A
# change to any of them changes the cache key, so edited builder code can never be served a
# stale model. The name parser (variants) decides which model a name means; the cache
# module decides what a sidecar holds. tests/test_convert.py fails when the conversion
# imports a module that is missing here.
BUILDER_SOURCES = (
    "arch.py",
    "build.py",
    "calibrate.py",
    "delegation.py",
    "variants.py",
    "model/cache.py",
    "model/convert.py",
    "model/ops.py",
)
SIDECAR_VERSION = 2  # 2: numeric checks never skip; models are batch-norm recalibrated


@dataclass(frozen=True)
class ModelArtifact:
    variant: str
    path: Path
    sha256: str
    size_bytes: int
    ops: dict[str, int]
    madds: int
    params: int
    tf_version: str
    # How the host's LiteRT delegates the model to XNNPACK (delegation.Delegation.to_json()).
    delegation: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["name"] = self.variant
        return data


# ---------------------------------------------------------------------------- the key


def _package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def tf_version() -> str:
    """The installed TensorFlow's version, read from package metadata (TF is not imported)."""
    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise MnvError(
        "TensorFlow is not installed, so models cannot be converted.",
        "Install the package with its dependencies: pip install -e '.[test]' (or pip install tensorflow-cpu).",
    )


def builder_code_version() -> str:
    digest = hashlib.sha256()
    for name in BUILDER_SOURCES:
        source = PACKAGE_DIR / name
        digest.update(name.encode() + b"\0")
        digest.update(source.read_bytes() if source.exists() else b"<missing>")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(variant: Variant, weights: Path | None = None) -> str:
    parts = {
        "variant": variant.name,
        "weights_sha256": file_sha256(weights) if weights else None,
        "builder": builder_code_version(),
        "tf_version": tf_version(),
        # Keras decides how h-swish is written (and so whether it fuses); LiteRT reads the file.
        "keras_version": _package_version("keras"),
        "litert_version": _package_version("ai-edge-litert"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- files


def model_path(variant: Variant, models_dir: Path, key: str) -> Path:
    return Path(models_dir) / f"{variant.name}-{key[:12]}.tflite"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def make_models_dir(models_dir: Path) -> None:
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use {models_dir} as the models folder: {exc.strerror or exc}",
                         "Pass --models-dir with a folder you can write.") from exc


def build_lock(path: Path) -> FileLock:
    """The lock a process holds while it builds the model at `path` (others wait for it)."""
    return FileLock(path.with_name(f".{path.name}.lock"))


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory and os.replace: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _counts(variant: Variant) -> tuple[int, int]:
    from mnv3bench import flops

    counts = flops.count(variant)
    return int(counts.madds), int(counts.params)


# ---------------------------------------------------------------------------- reading and writing


def cached_artifact(variant: Variant, models_dir: Path, weights: Path | None = None) -> ModelArtifact | None:
    """The cached model for `variant` if it exists and its bytes match its sidecar, else None.

    Imports no TensorFlow. MAdds and params are recomputed from the spec (cheap), so a fix in
    flops.py shows up without rebuilding models.
    """
    key = cache_key(variant, weights)
    return read_cached(variant, model_path(variant, models_dir, key), key)


def read_cached(variant: Variant, path: Path, key: str) -> ModelArtifact | None:
    """The model at `path` if its sidecar names this variant and key and its bytes match."""
    meta_path = sidecar_path(path)
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("cache_key") != key or meta.get("variant") != variant.name:
            return None
        if path.stat().st_size != meta["size_bytes"] or file_sha256(path) != meta["sha256"]:
            return None  # truncated or corrupt: the caller rebuilds it
    except (OSError, ValueError, KeyError, TypeError):
        return None
    madds, params = _counts(variant)
    if (madds, params) != (meta.get("madds"), meta.get("params")):
        meta.update(madds=madds, params=params)
        _write_json(meta_path, meta)
    return ModelArtifact(
        variant=variant.name,
        path=path,
        sha256=meta["sha256"],
        size_bytes=meta["size_bytes"],
        ops={k: int(v) for k, v in meta["ops"].items()},
        madds=madds,
        params=params,
        tf_version=meta["tf_version"],
        delegation=meta.get("delegation"),
    )


def store(conversion: Conversion, path: Path, key: str, weights: Path | None) -> ModelArtifact:
    """Write a verified conversion to `path` and its sidecar; the artifact that describes it."""
    variant = conversion.variant
    madds, params = _counts(variant)
    artifact = ModelArtifact(
        variant=variant.name,
        path=path,
        sha256=hashlib.sha256(conversion.tflite).hexdigest(),
        size_bytes=len(conversion.tflite),
        ops=conversion.ops,
        madds=madds,
        params=params,
        tf_version=tf_version(),
        delegation=conversion.delegation.to_json(),
    )
    sidecar = artifact.to_json() | {
        "sidecar_version": SIDECAR_VERSION,
        "cache_key": key,
        "hswish_sites": conversion.hswish_sites,
        "precision": variant.precision,
        "resolution": variant.resolution,
        "weights": str(weights) if weights else None,
        "numeric_check": asdict(conversion.numerics),
        "build_seconds": round(conversion.seconds, 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # The model first, then its sidecar: a crash in between leaves a model without a valid
    # sidecar, which the next run treats as a miss and rebuilds.
    _atomic_write(path, conversion.tflite)
    _write_json(sidecar_path(path), sidecar)
    return artifact
