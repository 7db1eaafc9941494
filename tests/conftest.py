"""Shared fixtures for the reliability, bad-input and security tests (issue 6).

One fixture is autouse, for every test: `_user_cache_in_tmp` points XDG_CACHE_HOME at a
session tmp dir, so device locks and emulator roots never land in the real ~/.cache.
The others apply only where a test asks for them:
- `adb_key`: one adb key pair for the whole session (what the emulators trust).
- `rel_env`: a per-test HOME, XDG cache, MNV3BENCH_ADBKEY and CI=1, and no MNV3BENCH_ADB.
- `small_model`: a models dir holding SMALL, built once per session with the real converter.
- `table_models`: a models dir holding every variant any table uses, at full size, built
  once per session on both cores (the slow tests of tests/test_every_table.py share it).
- `emulator`: start_in_process with given faults and a tmp root; stopped after the test.
- `mnv3` / `cli`: the CLI in a subprocess / in this process, returning (code, stdout, stderr).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A small, fast variant: ~10 MB, sub-millisecond inference on the host.
SMALL = "small-hswish-fused-r96"
# The tiniest benchmark_model settings that still yield real statistics.
QUICK = ["--num-runs", "3", "--warmup-runs", "1", "--min-secs", "0", "--max-secs", "3"]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def main_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """mnv3bench.cli.main(argv) with capsys: (exit code, stdout, stderr)."""
    from mnv3bench.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True, scope="session")
def _user_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def adb_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adb private key (with .pub beside it), made once with adb-shell's keygen."""
    from adb_shell.auth.keygen import keygen

    key = tmp_path_factory.mktemp("adbkey") / "adbkey"
    keygen(str(key))
    return key


@pytest.fixture
def rel_env(tmp_path: Path, adb_key: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Isolate the user's files: HOME, caches and the adb key live under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MNV3BENCH_ADBKEY", str(adb_key))
    monkeypatch.setenv("CI", "1")
    monkeypatch.delenv("MNV3BENCH_ADB", raising=False)
    monkeypatch.delenv("MNV3BENCH_DEVICES", raising=False)
    # No user's adb server: a test that wants one starts its own (the adb_server fixture).
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "9")
    monkeypatch.chdir(tmp_path)
    return dict(os.environ)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with SMALL built by the real Keras builder and TFLite converter."""
    from mnv3bench.model.builds import ensure_model
    from mnv3bench.variants import parse_variant

    models = tmp_path_factory.mktemp("models")
    ensure_model(parse_variant(SMALL), models_dir=models)
    return models


def every_table_variant() -> list[str]:
    """Each variant any table measures, once, in table order."""
    from mnv3bench.tables.definitions import TABLES

    return list(dict.fromkeys(v for table in TABLES.values() for v in table.variants()))


@pytest.fixture(scope="session")
def table_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with every table's variants (~21 full-size models) built and verified by
    the real converter, two at a time: minutes of work, so done once per session."""
    from mnv3bench.model.builds import ensure_models

    models = tmp_path_factory.mktemp("table-models")
    ensure_models(every_table_variant(), models_dir=models, jobs=2)
    return models


@pytest.fixture
def models_copy(small_model: Path, tmp_path: Path) -> Path:
    """A private copy of the built models dir (for tests that damage the cache)."""
    copy = tmp_path / "models"
    shutil.copytree(small_model, copy)
    return copy


@pytest.fixture
def emulator(adb_key: Path, tmp_path: Path) -> Iterator[Callable[..., object]]:
    """start(faults=(), root=None, profile=None) -> a running EmulatorServer trusting adb_key."""
    from mnv3bench.device.profiles import load_profile
    from mnv3bench.emulator import start_in_process

    servers = []

    def start(faults: tuple[str, ...] = (), root: Path | None = None, profile: object = None) -> object:
        server = start_in_process(profile or load_profile("emulator", REPO / "devices"),
                                  root=root or tmp_path / "phone", faults=faults,
                                  trusted_keys=[Path(f"{adb_key}.pub")])
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """mnv3bench.cli.main(argv) in this process: (exit code, stdout, stderr)."""
    from mnv3bench.cli import main

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def mnv3_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "mnv3bench", *map(str, argv)]


@pytest.fixture
def mnv3(rel_env: dict[str, str]) -> Callable[..., CliResult]:
    """`python -m mnv3bench ARGS` in a subprocess with the isolated environment."""

    def run(*argv: str, timeout: float = 120, env: dict[str, str] | None = None) -> CliResult:
        done = subprocess.run(mnv3_command(*argv), capture_output=True, text=True, timeout=timeout,
                              env=env or dict(os.environ))
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


# -- helpers for watching a database while a run writes to it ------------------------------


def trial_count(db: Path, table: str = "trials") -> int:
    """Rows in trials (or sessions), read with a separate connection (WAL allows it mid-run)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class WhenTrials(threading.Thread):
    """Calls `action()` once `db` holds `count` rows in `table` (to inject a fault mid-run).

    A session row is written after preflight and before the first push, so
    table="sessions" fires once the device has passed its checks."""

    def __init__(self, db: Path, count: int, action: Callable[[], None], timeout: float = 90,
                 table: str = "trials") -> None:
        super().__init__(daemon=True)
        self.db, self.count, self.action, self.timeout, self.table = db, count, action, timeout, table
        self.fired = threading.Event()

    def run(self) -> None:
        if wait_until(lambda: trial_count(self.db, self.table) >= self.count, self.timeout):
            self.action()
            self.fired.set()


def integrity_ok(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


# -- Debian's adb server, for the adb-server route ---------------------------------------------


@dataclass
class AdbServer:
    """A real adb server on a test-chosen port, whose HOME holds the test key the emulators trust."""

    port: int
    env: dict[str, str]

    def adb(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([shutil.which("adb") or "/usr/bin/adb", *args], env=self.env, capture_output=True,
                              text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"adb {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def attach(self, address: str) -> str:
        """`adb connect ADDRESS`, waiting until the server reports the device ready; returns the serial."""
        self.adb("connect", address)
        ok = wait_until(lambda: self.adb("-s", address, "get-state", check=False).stdout.strip() == "device", 15,
                        interval=0.1)
        assert ok, self.adb("devices", "-l").stdout
        return address


@pytest.fixture
def adb_server(adb_key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdbServer]:
    """Debian's adb server on a free port, made the default for this test (ANDROID_ADB_SERVER_PORT)."""
    import socket

    if not shutil.which("adb"):
        pytest.skip("Debian's adb is not installed (apt-get install adb)")
    home = tmp_path / "adb-home"
    (home / ".android").mkdir(parents=True)
    # The server signs with $HOME/.android/adbkey: the key the emulators trust.
    shutil.copy(adb_key, home / ".android" / "adbkey")
    shutil.copy(f"{adb_key}.pub", home / ".android" / "adbkey.pub")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    env.pop("ADB_VENDOR_KEYS", None)
    server = AdbServer(port, env)
    server.adb("start-server")
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    yield server
    server.adb("kill-server", check=False)
