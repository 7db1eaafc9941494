"""The official prebuilt benchmark_model: where it is published, the user cache, the download.

LiteRT publishes one Android binary per release at BASE/<version>/<abi folder>/benchmark_model.
The release that matches the installed ai-edge-litert wheel is the default, so the phone runs
the same LiteRT as the host that converted and checked the models. Only the standard library
is used (urllib): a download must work on a bare machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.metadata
import json
import os
import re
import shlex
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mnv3bench.device.protocol import Device
from mnv3bench.errors import MnvError, UsageError

DEFAULT_BASE_URL = "https://storage.googleapis.com/litert/binaries"
# A mirror (a lab without internet access, a local copy) or a test server on loopback.
BASE_URL_ENV = "MNV3BENCH_BINARIES_URL"
BINARY_NAME = "benchmark_model"
# Only android_arm64 is published; every Pixel is arm64-v8a.
ABI_FOLDERS = {"arm64-v8a": "android_arm64"}
CHUNK = 256 * 1024

# (bytes done, bytes expected or None when the server does not say)
DownloadProgress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class OfficialBinary:
    """A benchmark_model in the user cache, checked against its recorded sha256."""

    path: Path
    sha256: str
    url: str  # where it was downloaded from
    litert_version: str
    downloaded: bool  # False: reused from the cache


def litert_version(override: str | None = None) -> str:
    """The release to fetch: the override, else the installed ai-edge-litert, else "latest"."""
    if override:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", override):
            raise UsageError(f"--litert-version {override!r} is not a release name",
                             "Give a version like 2.3.0, or latest.")
        return override
    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return "latest"


def base_url() -> str:
    return (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def abi_folder(abi: str) -> str:
    try:
        return ABI_FOLDERS[abi]
    except KeyError:
        raise UsageError(
            f"no official prebuilt benchmark_model is published for ABI {abi} (only for "
            f"{', '.join(ABI_FOLDERS)})",
            "Build it for this ABI (bazel build -c opt --config=android_arm "
            "//tensorflow/lite/tools/benchmark:benchmark_model) and give it with --benchmark-binary PATH.",
        ) from None


def binary_url(version: str, abi: str) -> str:
    return f"{base_url()}/{version}/{abi_folder(abi)}/{BINARY_NAME}"


def cache_root() -> Path:
    """$XDG_CACHE_HOME/mnv3bench/binaries (~/.cache when unset), as every Linux tool does."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "mnv3bench" / "binaries"


def cached_path(version: str, abi: str) -> Path:
    return cache_root() / version / abi_folder(abi) / BINARY_NAME


def manual_route(url: str, device: str) -> str:
    return (f"Download it yourself from {url} (or build benchmark_model for the phone), then run "
            f"`mnv3bench device setup --device {device} --benchmark-binary PATH`. A mirror can be "
            f"named with {BASE_URL_ENV}=URL.")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _cached(path: Path) -> tuple[str, str] | None:
    """(sha256, source URL) if the cached file still has its recorded hash; None: fetch it again."""
    side = _sidecar(path)
    if not (path.is_file() and side.is_file()):
        return None
    lines = side.read_text(encoding="utf-8").splitlines()
    digest = lines[0].split()[0] if lines and lines[0].split() else ""
    source = next((line.removeprefix("# from ") for line in lines if line.startswith("# from ")), "")
    return (digest, source) if digest and file_sha256(path) == digest else None


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    """A temporary file in the destination's folder (so the rename is atomic), gone on any failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def fetch_official_binary(abi: str, version: str, *, device: str, progress: DownloadProgress | None = None,
                          timeout_s: float = 30.0) -> OfficialBinary:
    """The official benchmark_model for `abi` at release `version`, from the cache or downloaded."""
    url = binary_url(version, abi)
    path = cached_path(version, abi)
    recorded = _cached(path)
    if recorded:
        return OfficialBinary(path, recorded[0], recorded[1] or url, version, downloaded=False)
    with _temp_beside(path) as temp:
        digest = _download(url, temp, device=device, progress=progress, timeout_s=timeout_s)
        temp.chmod(0o755)
        os.replace(temp, path)
    with _temp_beside(_sidecar(path)) as temp:
        temp.write_text(f"{digest}  {BINARY_NAME}\n# from {url}\n", encoding="utf-8")
        os.replace(temp, _sidecar(path))
    return OfficialBinary(path, digest, url, version, downloaded=True)


def _download(url: str, dest: Path, *, device: str, progress: DownloadProgress | None, timeout_s: float) -> str:
    def fail(what: str) -> MnvError:
        return MnvError(f"could not download the official benchmark_model: {what}", manual_route(url, device))

    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with dest.open("wb") as out:
                while block := response.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, expected)
    except urllib.error.HTTPError as err:
        raise fail(f"{url} answered HTTP {err.code} ({err.reason})"
                   + (" - is there a release of that version?" if err.code == 404 else "")) from None
    except urllib.error.URLError as err:
        raise fail(f"cannot reach {url} ({err.reason}); are you offline?") from None
    except (OSError, ValueError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
        raise fail(f"the transfer from {url} broke off after {done:,} bytes ({err})") from None
    if expected is not None and done != expected:
        raise fail(f"the transfer from {url} stopped at {done:,} of {expected:,} bytes")
    if done == 0:
        raise fail(f"{url} sent an empty file")
    return digest.hexdigest()


_VERSION = re.compile(r"(?i)\b(?:version|litert|tensorflow lite|tflite)\b[^0-9\n]{0,20}(\d+\.\d+(?:\.\d+)?[\w.+-]*)")


def reported_version(device: Device, remote: str) -> str | None:
    """The version benchmark_model states about itself (`--version`), or None: official builds
    state none today, and a None here says exactly that rather than guessing from the URL."""
    result = device.shell(f"{shlex.quote(remote)} --version", timeout_s=30.0)
    match = _VERSION.search(result.output or "")
    return match.group(1) if match else None


def _installed_record() -> Path:
    return cache_root() / "installed.json"


def record_installed(sha256: str, version: str | None, url: str | None) -> None:
    """Remember what `device setup` learned about a binary, so that each session can store it
    from the hash alone (asking the binary again at every run would cost a run on the phone)."""
    known = _read_installed()
    known[sha256] = {"version": version, "url": url}
    path = _installed_record()
    with _temp_beside(path) as temp:
        temp.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temp, path)


def _read_installed() -> dict[str, dict[str, str | None]]:
    try:
        data = json.loads(_installed_record().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def binary_identity(sha256: str) -> dict[str, str | None]:
    """What a session stores about its benchmark_model: the hash, the version the binary
    reported at `device setup` (None: it reports none, or it was installed another way) and
    the official URL it came from (None: given with --benchmark-binary or unknown)."""
    entry = _read_installed().get(sha256)
    entry = entry if isinstance(entry, dict) else {}
    return {"sha256": sha256, "version": entry.get("version"), "url": entry.get("url")}
