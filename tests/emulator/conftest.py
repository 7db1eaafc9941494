"""Fixtures of the emulator's tests: a tiny converted model, and for the adbd tests a host key
pair, its signer, and a fake phone to serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner

from mnv3bench.device.adb import load_signer
from tests.emulator.helpers import FakePhone, build_tiny_tflite
from tests.helpers import shared_models_dir


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conv net of microseconds a run, converted once per test run (shared by the workers)."""
    return build_tiny_tflite(shared_models_dir(tmp_path_factory, "tiny"))


@pytest.fixture
def host_key(tmp_path: Path) -> Path:
    key = tmp_path / "keys" / "adbkey"
    key.parent.mkdir()
    keygen(str(key))
    return key


@pytest.fixture
def signer(host_key: Path) -> CryptographySigner:
    return load_signer(host_key)


@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    return FakePhone(tmp_path / "phone")
