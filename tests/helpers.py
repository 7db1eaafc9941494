"""Helpers shared by tests in more than one folder (plain functions and constants, no fixtures).

Test modules import them as `from tests.helpers import ...`; fixtures stay in conftest.py.
"""

from __future__ import annotations

import importlib
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Real benchmark_model outputs, from phones and from the stand-in.
BENCHMARK_OUTPUTS = REPO / "tests" / "fixtures" / "benchmark_outputs"
# A small, fast variant: ~10 MB, sub-millisecond inference on the host.
SMALL = "small-hswish-fused-r96"
# The tiniest benchmark_model settings that still yield real statistics.
QUICK = ["--num-runs", "3", "--warmup-runs", "1", "--min-secs", "0", "--max-secs", "3", "--precision", "none"]


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


def mnv3_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "mnv3bench", *map(str, argv)]


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


def every_table_variant() -> list[str]:
    """Each variant any table measures, once, in table order."""
    from mnv3bench.tables.definitions import TABLES

    return list(dict.fromkeys(v for table in TABLES.values() for v in table.variants()))


class LazyModule:
    """A module imported on first attribute access. Keras as a module global this way costs a
    test worker nothing at collection; importing it (TensorFlow with it) takes about 8 s."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> object:
        if attribute.startswith("_"):  # pytest probes module globals for its own markers
            raise AttributeError(attribute)
        return getattr(importlib.import_module(self._name), attribute)


# The xdist_group of the test modules that build Keras models: one worker runs them all, so the
# others never load TensorFlow (tests/conftest.py starts the group first).
TENSORFLOW_GROUP = "tensorflow"

# The folder the pytest-xdist workers of one run share models in (set by tests/conftest.py).
SHARED_MODELS_ENV = "MNV3BENCH_TEST_SHARED_MODELS"


def shared_models_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A models dir every pytest-xdist worker of this run shares (a private one without xdist).

    The model cache's build lock makes a worker wait for a model another one is building, so
    each model is converted once per run, not once per worker. If the background build of
    SMALL failed, the first worker that needs it builds it and shows why it fails.
    """
    if shared := os.environ.get(SHARED_MODELS_ENV):
        folder = Path(shared) / name
        folder.mkdir(exist_ok=True)
        return folder
    return tmp_path_factory.mktemp(name)


def prebuild_shared_models(folder: str) -> None:
    """Build what the `tiny_tflite` and `small_model` fixtures hold, in the shared `folder`:
    the tiny model first, since more of the quick tests need it."""
    from mnv3bench.model.builds import ensure_model
    from tests.emulator.helpers import build_tiny_tflite

    for name in ("tiny", "models"):
        (Path(folder) / name).mkdir(exist_ok=True)
    build_tiny_tflite(Path(folder) / "tiny")
    ensure_model(SMALL, models_dir=Path(folder) / "models")


def ctrl_c_reaches_it() -> None:
    """preexec_fn of a process a test will Ctrl-C (SIGINT): SIGINT's default action, as a
    terminal gives it. A shell without job control starts background jobs with SIGINT ignored
    (POSIX), and Python keeps an ignore it inherits, so in a suite started that way (`pytest &`
    in a script) the CLI rightly went on through every Ctrl-C a test sent it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def unused_port() -> int:
    """A loopback TCP port nothing listens on, chosen outside the kernel's ephemeral range.

    A port from bind(0) is free only until it is closed: under xdist another worker's
    emulator or server, binding port 0 itself, can be given it before the test uses it (an
    adb server then met another's listener: "protocol fault (status 30 30 30 63?!)").
    Listeners bound to port 0 never get a port below the ephemeral range, so one chosen
    there stays free unless another test chose the same one (the probe below sees that).
    """
    import random
    import socket

    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default, and what other systems' ranges lie above
    candidates = random.Random(os.getpid() ^ time.monotonic_ns()).sample(range(20000, ephemeral_low), 50)
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free loopback port in 20000-{ephemeral_low - 1} after 50 tries")

