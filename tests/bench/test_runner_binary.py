"""Each session stores the benchmark_model it measured with: its hash and the version it reported."""

from __future__ import annotations

import json
import sqlite3

import pytest

from mnv3bench.device.binary import record_installed
from mnv3bench.testing import FakeDevice
from tests.bench.helpers import make_artifacts, run


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def stored_binary(store) -> list[dict]:
    with sqlite3.connect(store.path) as conn:
        return [json.loads(r[0])["benchmark_binary"] for r in conn.execute("SELECT device_info FROM sessions")]


def test_session_stores_the_binary_set_up_here(tmp_path, profile, store):
    dev = FakeDevice()
    dev.files[profile.benchmark_binary] = "ab" * 32
    record_installed("ab" * 32, "2.3.0", "http://mirror/2.3.0/android_arm64/benchmark_model")
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev)
    assert stored_binary(store) == [{"sha256": "ab" * 32, "version": "2.3.0",
                                     "url": "http://mirror/2.3.0/android_arm64/benchmark_model"}]


def test_a_binary_installed_another_way_has_no_version(tmp_path, profile, store):
    dev = FakeDevice()
    dev.files[profile.benchmark_binary] = "cd" * 32
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev)
    assert stored_binary(store) == [{"sha256": "cd" * 32, "version": None, "url": None}]
