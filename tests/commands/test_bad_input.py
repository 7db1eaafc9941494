"""Bad input: each one a one-paragraph error naming the problem and the fix, never a traceback.

Exit status 2 for usage errors (the command line or an input file is wrong), 1 for runtime
failures. Most cases fail before any device or build, so they run in this process; two run
`python -m mnv3bench` to check what a real shell sees, including --debug's traceback.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from mnv3bench.results import ResultStore, TrialRecord, utc_now
from tests.helpers import QUICK, REPO, SMALL, trial_count

pytestmark = pytest.mark.reliability


def assert_error(result, code: int, *needles: str) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    assert result.err.strip(), "no message for the user"
    for needle in needles:
        assert needle in result.err, (needle, result.err)


def run_argv(*extra: str, variant: str = SMALL, device: str = "emulator") -> list[str]:
    return ["run", "--device", device, "--variant", variant, "--trials", "1", *QUICK, *extra]


# -- names -----------------------------------------------------------------------------------


def test_unknown_variant_name(rel_env, cli):
    assert_error(cli(*run_argv(variant="small-foo")), 2, "unknown part 'foo'", "Use one of the parts")


@pytest.mark.parametrize(("name", "says"), [("large-relu-fused", "Drop '-fused'"),
                                            ("large-hswish-relu", "both set the nonlinearity"),
                                            ("v2-hswish", "v2 baselines take only")])
def test_contradictory_variant_name(name, says, rel_env, cli):
    assert_error(cli(*run_argv(variant=name)), 2, f"invalid variant name '{name}'", says)


def test_the_same_variant_twice(rel_env, cli):
    assert_error(cli(*run_argv("--variant", SMALL)), 2, "listed twice")


def test_unknown_table(rel_env, cli):
    assert_error(cli("table", "9", "--device", "emulator"), 2, "unknown table '9'", "mnv3bench table --list")


def test_unknown_device(rel_env, cli):
    assert_error(cli(*run_argv(device="pixel99")), 2, "pixel99", "pixel3")  # pixel9 is a profile now


def test_shell_metacharacters_in_a_device_name_are_just_an_unknown_name(rel_env, cli, tmp_path):
    marker = tmp_path / "injected"
    assert_error(cli(*run_argv(device=f"emulator;touch {marker}")), 2)
    assert not marker.exists()


@pytest.mark.parametrize(("content", "says"), [
    ('name = "broken"\nabi = "arm64-v8a\n', "broken.toml"),  # not TOML at all
    ('name = "broken"\ndescription = "no cores or binary"\n', "broken.toml"),  # required keys missing
    ((REPO / "mnv3bench" / "devices" / "pixel3.toml").read_text().replace("pin_core = 4", 'pin_core = "four"')
     .replace('name = "pixel3"', 'name = "broken"'), "pin_core"),  # a key of the wrong type
])
def test_malformed_device_profile(content, says, rel_env, cli, tmp_path, monkeypatch):
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "broken.toml").write_text(content)
    monkeypatch.setenv("MNV3BENCH_DEVICES", str(devices))
    result = cli(*run_argv(device="broken"))
    assert_error(result, 2, says)
    assert "broken.toml" in result.err  # the file is always named


def test_bad_numbers_are_usage_errors(rel_env, cli):
    assert_error(cli(*run_argv("--trials", "0")), 2, "--trials must be at least 1")
    assert_error(cli(*run_argv("--timeout", "-1")), 2, "--timeout must be positive")
    assert_error(cli(*run_argv("--min-secs", "5", "--max-secs", "1")), 2, "--max-secs must be above --min-secs")


def test_missing_option_and_unknown_fault_are_usage_errors(rel_env, cli):
    assert_error(cli("run", "--device", "emulator"), 2, "--variant")
    assert_error(cli("emulator", "serve", "--fault", "meltdown"), 2, "unknown emulator fault 'meltdown'", "drop-push")


def test_unreachable_device_address(rel_env, cli, tmp_path):
    result = cli(*run_argv("--adb", "127.0.0.1:1", "--db", str(tmp_path / "r.db")))
    assert_error(result, 1, "connection refused", "mnv3bench emulator serve")
    assert trial_count(tmp_path / "r.db") == 0


# -- files -----------------------------------------------------------------------------------


def test_missing_weights_file(rel_env, cli, tmp_path):
    result = cli("build", "small-0.35-relu-r32", "--weights", str(tmp_path / "nope.weights.h5"),
                 "--models-dir", str(tmp_path / "models"))
    assert_error(result, 2, "does not exist", "--weights")


@pytest.mark.slow
def test_unreadable_weights_file(rel_env, cli, small_model, tmp_path):  # small_model: TensorFlow is loaded
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"these are not HDF5 weights\n" * 10)
    result = cli("build", "small-0.35-relu-r32", "--weights", str(junk), "--models-dir", str(tmp_path / "models"))
    assert_error(result, 2, "cannot load weights", "model.save_weights")


@pytest.mark.slow
def test_corrupt_cached_model_is_rebuilt_not_used(rel_env, cli, models_copy):
    [model] = models_copy.glob(f"{SMALL}-*.tflite")
    sidecar = json.loads(Path(f"{model}.json").read_text())
    data = bytearray(model.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64  # same size, damaged in the middle
    model.write_bytes(bytes(data))
    result = cli("build", SMALL, "--models-dir", str(models_copy), "--json")
    assert result.code == 0, result.err
    rebuilt = model.read_bytes()
    assert rebuilt != bytes(data)
    assert hashlib.sha256(rebuilt).hexdigest() == json.loads(Path(f"{model}.json").read_text())["sha256"]
    assert len(rebuilt) == sidecar["size_bytes"]
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_content=rebuilt).allocate_tensors()  # a whole, loadable model


def _store_trials_for_table_5(db: Path) -> None:
    """A few real trial rows (through ResultStore) for table 5's first variant."""
    from mnv3bench.tables.definitions import get_table

    variant = get_table("5").variants()[0]
    with ResultStore(db) as store:
        for index in (1, 2, 3):
            store.record_trial(TrialRecord(
                session_id=None, variant=variant, model_sha256="0" * 64, device_profile="emulator",
                device_serial="127.0.0.1:1", device_model="m", device_fingerprint="f", flags={"num_threads": "1"},
                trial_index=index, started_at=utc_now(), ended_at=utc_now(), ok=True, latency_ms=10.0 + index,
                parsed={"inference_avg_us": (10.0 + index) * 1000}, raw_output="stats", tool_version="test"))


def test_unwritable_reports_folder(rel_env, cli, tmp_path):
    db = tmp_path / "r.db"
    _store_trials_for_table_5(db)
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a folder should be")
    result = cli("report", "--device", "emulator", "--table", "5", "--db", str(db),
                 "--reports-dir", str(blocker / "reports"))
    assert result.code in (1, 2), result.err
    assert_error(result, result.code, str(blocker))


def test_unwritable_models_folder(rel_env, cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the models folder should be")
    result = cli("build", "small-hswish-fused-r96", "--models-dir", str(blocker))
    assert_error(result, 2, str(blocker), "--models-dir")


def test_database_from_a_newer_schema(rel_env, cli, tmp_path):
    db = tmp_path / "r.db"
    ResultStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    assert_error(cli(*run_argv("--db", str(db))), 2, "newer mnv3bench", "--db")
    assert_error(cli("report", "--db", str(db)), 2, "newer mnv3bench")


def test_a_file_that_is_not_a_database(rel_env, cli, tmp_path):
    db = tmp_path / "notes.db"
    db.write_text("shopping list\n" * 100)
    assert_error(cli(*run_argv("--db", str(db))), 2, "not a usable mnv3bench results database")
    assert db.read_text() == "shopping list\n" * 100  # untouched


# -- what a real shell sees ------------------------------------------------------------------


def test_real_process_exit_codes_and_debug_traceback(mnv3):
    plain = mnv3(*run_argv(variant="small-foo"))
    assert plain.code == 2 and "Traceback" not in plain.err and "unknown part 'foo'" in plain.err
    debug = mnv3("--debug", *run_argv(variant="small-foo"))
    assert debug.code != 0 and "Traceback" in debug.err and "UsageError" in debug.err
