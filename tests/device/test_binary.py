"""The official benchmark_model download, against a loopback HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mnv3bench.device.binary import (
    BASE_URL_ENV,
    binary_identity,
    cached_path,
    fetch_official_binary,
    litert_version,
    record_installed,
    reported_version,
)
from mnv3bench.device.protocol import ShellResult
from mnv3bench.errors import MnvError, UsageError
from tests.device.helpers import dead_url, serving

BODY = b"\x7fELF" + bytes(range(256)) * 4000  # about 1 MB: several chunks
PATH = "/2.3.0/android_arm64/benchmark_model"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_downloads_records_the_hash_and_reuses_it(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    with serving({PATH: BODY}) as url:
        monkeypatch.setenv(BASE_URL_ENV, url)
        got = fetch_official_binary("arm64-v8a", "2.3.0", device="pixel3", progress=lambda d, t: seen.append((d, t)))
    digest = hashlib.sha256(BODY).hexdigest()
    assert got.downloaded and got.sha256 == digest and got.url == url + PATH
    assert got.path == cached_path("2.3.0", "arm64-v8a") == cache / "mnv3bench/binaries/2.3.0/android_arm64/benchmark_model"
    assert got.path.read_bytes() == BODY and got.path.stat().st_mode & 0o111
    assert got.path.with_name("benchmark_model.sha256").read_text().split()[0] == digest
    assert seen[-1] == (len(BODY), len(BODY)) and len(seen) > 1
    assert sorted(p.name for p in leftovers(cache)) == ["benchmark_model", "benchmark_model.sha256"]
    # No server now: the cached copy is used.
    monkeypatch.setenv(BASE_URL_ENV, dead_url())
    again = fetch_official_binary("arm64-v8a", "2.3.0", device="pixel3")
    assert not again.downloaded and again.sha256 == digest


def test_a_damaged_cached_copy_is_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving({PATH: BODY}) as url:
        monkeypatch.setenv(BASE_URL_ENV, url)
        first = fetch_official_binary("arm64-v8a", "2.3.0", device="pixel3")
        first.path.write_bytes(b"half")
        second = fetch_official_binary("arm64-v8a", "2.3.0", device="pixel3")
    assert second.downloaded and second.path.read_bytes() == BODY


@pytest.mark.parametrize(("files", "truncate", "expected"), [
    ({PATH: BODY}, 1000, "stopped at 1,000 of"),
    ({}, None, "HTTP 404"),
    (None, None, "cannot reach"),
])
def test_failures_name_the_manual_route_and_leave_nothing(monkeypatch: pytest.MonkeyPatch, cache: Path,
                                                          files: dict | None, truncate: int | None,
                                                          expected: str) -> None:
    def attempt(url: str) -> MnvError:
        monkeypatch.setenv(BASE_URL_ENV, url)
        with pytest.raises(MnvError) as caught:
            fetch_official_binary("arm64-v8a", "2.3.0", device="pixel3")
        return caught.value

    if files is None:
        err = attempt(dead_url())
    else:
        with serving(files, truncate_to=truncate) as url:
            err = attempt(url)
    assert expected in err.message
    assert PATH in (err.hint or "") and "--benchmark-binary PATH" in (err.hint or "") and BASE_URL_ENV in (err.hint or "")
    assert leftovers(cache) == []


def test_version_defaults_to_the_installed_litert_and_is_checked() -> None:
    import importlib.metadata

    assert litert_version(None) == importlib.metadata.version("ai-edge-litert")
    assert litert_version("latest") == "latest"
    with pytest.raises(UsageError):
        litert_version("../../etc")


def test_no_official_binary_for_other_abis() -> None:
    with pytest.raises(UsageError, match="x86_64"):
        fetch_official_binary("x86_64", "2.3.0", device="emulator")


def test_identity_of_a_binary_set_up_here_and_of_an_unknown_one() -> None:
    record_installed("ab" * 32, None, "http://mirror/benchmark_model")
    assert binary_identity("ab" * 32) == {"sha256": "ab" * 32, "version": None, "url": "http://mirror/benchmark_model"}
    assert binary_identity("cd" * 32) == {"sha256": "cd" * 32, "version": None, "url": None}


class _Answers:
    serial = "fake"
    transport_name = "tcp"

    def __init__(self, output: str):
        self.output = output

    def shell(self, command: str, *, timeout_s: float = 60.0) -> ShellResult:
        return ShellResult(self.output, 1, False)


@pytest.mark.parametrize(("output", "expected"), [
    ("INFO: STARTING!\nWARN: Unconsumed cmdline flags: --version\nERROR: Please specify the input file\n", None),
    ("INFO: STARTING!\nINFO: LiteRT version: 2.3.0\n", "2.3.0"),
    ("benchmark_model version 1.4.0-rc1\n", "1.4.0-rc1"),
])
def test_reported_version_is_what_the_binary_says_or_none(output: str, expected: str | None) -> None:
    assert reported_version(_Answers(output), "/data/local/tmp/benchmark_model") == expected  # type: ignore[arg-type]
