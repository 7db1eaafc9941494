"""`report` and `compare` on hostile databases: names that climb out of reports/, other
programs' files, damaged and locked files. Nothing is written outside what the user named,
no file is changed, and every failure is a message, never a traceback."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from mnv3bench.commands.paths import is_safe_component
from mnv3bench.results import ResultStore
from tests.commands.helpers import store_session
from tests.tables.helpers import TABLE5_MS


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "..", ".", "", ".hidden", "x\x00y", "-rf"])
def test_names_that_are_not_one_plain_path_component(name):
    assert not is_safe_component(name)


@pytest.mark.parametrize("name", ["pixel3", "emulator", "5", "large-hswish-fused-r224", "v2_1.0"])
def test_plain_names_are_safe(name):
    assert is_safe_component(name)


@pytest.mark.parametrize("evil", ["../x", "/abs"])
def test_a_device_name_from_the_database_never_writes_outside_reports(evil, tmp_path, cli):
    work = tmp_path / "work"
    work.mkdir()
    db = work / "results.db"
    with ResultStore(db) as store:
        store_session(store, TABLE5_MS, device=evil if evil != "/abs" else str(tmp_path / "abs"))
        store_session(store, TABLE5_MS, device="emulator")
    before = files_under(tmp_path)
    result = cli("report", "--table", "5", "--db", db, "--reports-dir", work / "reports", "--json")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err and "not a safe folder name" in result.err
    # A WAL reader keeps SQLite's -wal/-shm beside the database (as the sqlite3 shell does).
    written = {p for p in files_under(tmp_path) - before if not p.name.startswith("results.db-")}
    assert written and all((work / "reports" / "emulator") in p.parents for p in written)
    assert not (tmp_path / "x").exists() and not (tmp_path / "abs").exists()


def test_only_unsafe_devices_means_nothing_is_written(tmp_path, cli):
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, TABLE5_MS, device="../x")
    result = cli("report", "--db", db, "--reports-dir", tmp_path / "reports")
    assert result.code == 1 and "Traceback" not in result.err
    assert not (tmp_path / "reports").exists() and not (tmp_path / "x").exists()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_foreign_sqlite_file_is_refused_and_left_byte_identical(command, tmp_path, cli):
    db = tmp_path / "bookmarks.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table bookmarks(url)")
    conn.close()
    before = digest(db)
    argv = (["report", "--db", db] if command == "report"
            else ["compare", "large-hswish-fused", "large-relu", "--device", "emulator", "--db", db])
    result = cli(*argv)
    assert result.code == 2 and "Traceback" not in result.err
    assert "not a usable mnv3bench results database" in result.err
    assert digest(db) == before and sorted(p.name for p in tmp_path.iterdir()) == ["bookmarks.db"]


def test_a_damaged_database_gives_the_recovery_not_a_traceback(tmp_path, cli):
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        for _ in range(8):
            store_session(store, TABLE5_MS)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(size // 2 - 4096)
        f.write(os.urandom(8192))
    for argv in (["report", "--db", db, "--reports-dir", tmp_path / "reports"],
                 ["compare", "large-hswish-fused", "large-relu", "--device", "emulator", "--db", db]):
        result = cli(*argv)
        assert "Traceback" not in result.err, result.err
        if result.code:  # reading may miss the damaged page; when it meets it, the recovery is named
            assert "damaged" in result.err and ".recover" in result.err or "not a usable" in result.err


def test_report_reads_while_a_writer_holds_the_database(tmp_path, cli):
    db = tmp_path / "results.db"
    with ResultStore(db) as store:
        store_session(store, TABLE5_MS)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        result = cli("report", "--table", "5", "--device", "emulator", "--db", db, "--reports-dir", tmp_path / "r")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.code == 0, result.err


def test_an_empty_or_non_regular_db_is_refused(tmp_path, cli):
    for argv in (["report", "--db", ""], ["report", "--db", "/dev/null"], ["compare", "a", "b", "--device", "x",
                                                                            "--db", "/dev/null"]):
        result = cli(*argv)
        assert result.code == 2 and "Traceback" not in result.err, (argv, result.err)
    assert not Path("/dev/null-journal").exists()
