"""Fixtures of the adbd tests: a host key pair, its signer, and a fake phone to serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner

from tests.emulator.helpers import FakePhone


@pytest.fixture
def host_key(tmp_path: Path) -> Path:
    key = tmp_path / "keys" / "adbkey"
    key.parent.mkdir()
    keygen(str(key))
    return key


@pytest.fixture
def signer(host_key: Path) -> PythonRSASigner:
    return PythonRSASigner.FromRSAKeyPath(str(host_key))


@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    return FakePhone(tmp_path / "phone")
