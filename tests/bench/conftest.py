"""Fixtures of the runner tests: the profile they run as, and a fresh results store."""

from __future__ import annotations

import pytest

from mnv3bench.device.profiles import load_profile
from mnv3bench.results import ResultStore


@pytest.fixture
def profile():
    return load_profile("pixel3")


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "results.db") as s:
        yield s
