"""Fixtures shared by every folder of tests (plain helpers are in tests/helpers.py).

The suite runs on several pytest-xdist workers. Session fixtures are per worker, except the
models dirs, which the workers share (`shared_models_dir`).

One fixture is autouse, for every test: `_user_cache_in_tmp` points XDG_CACHE_HOME at a
session tmp dir, so device locks and emulator roots never land in the real ~/.cache.
The others apply only where a test asks for them:
- `adb_key`: one adb key pair for the whole session (what the emulators trust).
- `rel_env`: a per-test HOME, XDG cache, MNV3BENCH_ADBKEY and CI=1, and no MNV3BENCH_ADB.
- `small_model`: a models dir holding SMALL, built once per run with the real converter.
- `table_models`: a models dir holding every variant any table uses, at full size, built
  once per run, two at a time (the slow tests of tests/tables/test_every_table.py share it).
- `models_copy`: a private copy of that models dir, for tests that damage the cache.
- `emulator`: start_in_process with given faults and a tmp root; stopped after the test.
- `mnv3` / `cli`: the CLI in a subprocess / in this process, returning (code, stdout, stderr).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    REPO,
    SHARED_MODELS_ENV,
    SMALL,
    TENSORFLOW_GROUP,
    CliResult,
    every_table_variant,
    mnv3_command,
    shared_models_dir,
    unused_port,
    wait_until,
)

# PYTHONDONTWRITEBYTECODE (set in some CI images and sandboxes) makes every xdist worker, and
# every `python -m mnv3bench` a test starts, compile the project and rewrite the tests'
# asserts again: ~4 s of CPU a worker, a tenth of each CLI process. Their bytecode goes to
# .pytest_cache/ instead, still outside the source tree.
if sys.dont_write_bytecode:
    sys.pycache_prefix = str(REPO / ".pytest_cache" / "pycache")
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix  # for the workers and subprocesses
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): at most four workers, since each loads TensorFlow (more
    than half a GB) and the emulator's timing tests want cores left."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # One more than the cpus: a third of the suite's time is tests waiting (on sockets,
    # timeouts, child processes), and another worker fills it.
    return max(1, min(4, usable + 1))


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


# -- models shared by the pytest-xdist workers of one run --------------------------------------

_SHARED_KEY = pytest.StashKey[tuple[Path, "subprocess.Popen[bytes]"]]()
# Fixtures that convert a model with the real converter, and the tests that use them run last.
MODEL_FIXTURES = frozenset({"small_model", "models_copy", "tiny_tflite", "table_models"})


def pytest_sessionstart(session: pytest.Session) -> None:
    """On the controller of several workers: a models folder they all share (they inherit its
    path in the environment), and the tiny model and SMALL built there in the background while
    the workers collect and run the tests that need no model. The build locks make a worker
    that needs one sooner wait for it."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    shared = Path(tempfile.mkdtemp(prefix="mnv3bench-test-models-"))
    os.environ[SHARED_MODELS_ENV] = str(shared)
    builder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tests.helpers import prebuild_shared_models; "
                               "prebuild_shared_models(sys.argv[1])", str(shared)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config.stash[_SHARED_KEY] = (shared, builder)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The same order on every worker: the tensorflow group first, since one worker runs all of
    it; the tests that need a converted model last, when the background build has made it."""

    def order(item: pytest.Item) -> tuple[bool, bool]:
        needs_model = bool(MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        in_tensorflow_group = any(mark.args == (TENSORFLOW_GROUP,) for mark in item.iter_markers("xdist_group"))
        return needs_model, not in_tensorflow_group

    items.sort(key=order)


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED_KEY, None)
    if shared is None:
        return
    folder, builder = shared
    if builder.poll() is None:  # the run needed neither model and ended first
        builder.kill()
    builder.wait()
    shutil.rmtree(folder, ignore_errors=True)
    os.environ.pop(SHARED_MODELS_ENV, None)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with SMALL built by the real Keras builder and TFLite converter."""
    from mnv3bench.model.builds import ensure_model
    from mnv3bench.variants import parse_variant

    models = shared_models_dir(tmp_path_factory, "models")
    ensure_model(parse_variant(SMALL), models_dir=models)
    return models


@pytest.fixture(scope="session")
def table_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with every table's variants (~21 full-size models) built and verified by
    the real converter, two at a time: minutes of work, so done once per session."""
    from mnv3bench.model.builds import ensure_models

    models = shared_models_dir(tmp_path_factory, "table-models")
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
        server = start_in_process(profile or load_profile("emulator", REPO / "mnv3bench" / "devices"),
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


@pytest.fixture
def mnv3(rel_env: dict[str, str]) -> Callable[..., CliResult]:
    """`python -m mnv3bench ARGS` in a subprocess with the isolated environment."""

    def run(*argv: str, timeout: float = 120, env: dict[str, str] | None = None) -> CliResult:
        done = subprocess.run(mnv3_command(*argv), capture_output=True, text=True, timeout=timeout,
                              env=env or dict(os.environ))
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


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
    if not shutil.which("adb"):
        pytest.skip("Debian's adb is not installed (apt-get install adb)")
    home = tmp_path / "adb-home"
    (home / ".android").mkdir(parents=True)
    # The server signs with $HOME/.android/adbkey: the key the emulators trust.
    shutil.copy(adb_key, home / ".android" / "adbkey")
    shutil.copy(f"{adb_key}.pub", home / ".android" / "adbkey.pub")
    port = unused_port()
    env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    env.pop("ADB_VENDOR_KEYS", None)
    server = AdbServer(port, env)
    server.adb("start-server")
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    yield server
    server.adb("kill-server", check=False)
