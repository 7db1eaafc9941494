"""The store under hostile conditions: read-only readers, foreign and damaged files, and the
four ways a write can fail (locked, read-only, full, corrupt) told apart."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

import mnv3bench.results as results
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.results import ResultStore, resolve_db_path
from tests.results.helpers import as_version, session, trial


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def filled(db: Path, trials: int = 5) -> Path:
    with ResultStore(db) as store:
        sid = session(store)
        for i in range(trials):
            store.record_trial(trial(sid, i))
    return db


def test_a_reader_creates_nothing_and_keeps_the_journal_mode(tmp_path):
    db = filled(tmp_path / "r.db")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    before = digest(db)
    with ResultStore(db, read_only=True) as store:
        assert len(store.trials()) == 5 and len(store.sessions()) == 1
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]  # no -wal, no -shm, no -journal
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_reader_reads_while_another_process_holds_a_write_transaction(tmp_path):
    db = filled(tmp_path / "r.db")
    writer = subprocess.Popen(["sqlite3", str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) \
        if shutil.which("sqlite3") else None
    conn = None
    if writer is not None:
        writer.stdin.write("BEGIN IMMEDIATE; INSERT INTO sessions (command, device_profile, device_serial, flags, "
                           "variants, started_at, tool_version, device_info) VALUES "
                           "('x','d','s','{}','[]','t','0','{}'); SELECT 'holding';\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "holding"
    else:  # the same, from a second connection in this process
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO sessions (command, device_profile, device_serial, flags, variants, started_at, "
                     "tool_version, device_info) VALUES ('x','d','s','{}','[]','t','0','{}')")
    try:
        with ResultStore(db, read_only=True) as store:
            assert len(store.trials()) == 5 and len(store.sessions()) == 1  # the uncommitted row is not seen
    finally:
        if writer is not None:
            writer.stdin.write("ROLLBACK;\n.quit\n")
            writer.stdin.flush()
            writer.wait(timeout=10)
        if conn is not None:
            conn.execute("ROLLBACK")
            conn.close()


def test_an_older_database_is_read_without_being_migrated(tmp_path):
    db = filled(tmp_path / "r.db")
    as_version(db, 2)
    before = digest(db)
    with ResultStore(db, read_only=True) as store:
        frame = store.measurement_trials()
        assert len(frame) == 5 and frame["delegate"].isna().all()
    assert digest(db) == before


@pytest.mark.parametrize("read_only", [True, False], ids=["reader", "writer"])
def test_another_programs_sqlite_file_is_refused_and_left_byte_identical(tmp_path, read_only):
    db = tmp_path / "bookmarks.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table bookmarks(url)")
        conn.execute("insert into bookmarks values ('https://example.org')")
    before = digest(db)
    with pytest.raises(UsageError, match="not a usable mnv3bench results database.*left exactly as it was"):
        ResultStore(db, read_only=read_only)
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bookmarks.db"]


def corrupt_middle_page(db: Path) -> None:
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(size // 2 - 4096)
        f.write(os.urandom(8192))


def test_a_damaged_database_is_never_appended_to_and_names_the_recovery(tmp_path):
    db = filled(tmp_path / "r.db", trials=400)  # raw output makes many pages
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt_middle_page(db)
    before = digest(db)
    with pytest.raises(MnvError, match="damaged") as err:
        ResultStore(db)
    assert ".recover" in err.value.hint and "--db" in err.value.hint
    assert digest(db) == before  # nothing was appended
    # A reader gets the same clear error when it reaches the damaged page (or reads around it).
    with contextlib.suppress(MnvError):
        with ResultStore(db, read_only=True) as store:
            store.trials()
            store.measurement_trials()


def test_a_locked_database_says_locked(tmp_path, monkeypatch):
    db = filled(tmp_path / "r.db")
    monkeypatch.setattr(results, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with ResultStore(db, read_only=True) as reader:  # reading is never blocked
            assert len(reader.trials()) == 5
        with pytest.raises(MnvError, match="locked by another process") as err:
            with ResultStore(db) as store:
                store.record_trial(trial(1, 99))
        assert "--resume" in err.value.hint and "kept" in err.value.hint
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@contextlib.contextmanager
def read_only_mount(folder: Path):
    """folder, remounted read-only (root: a bind mount), or via chmod for other users."""
    view = folder.parent / f"{folder.name}-ro"
    view.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "--bind", str(folder), str(view)], capture_output=True).returncode != 0:
            pytest.skip("cannot bind-mount here")
        try:
            if subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True).returncode != 0:
                pytest.skip("cannot remount read-only here")
            yield view
        finally:
            gone = subprocess.run(["umount", str(view)], capture_output=True, text=True)
            assert gone.returncode == 0, gone.stderr
    else:
        shutil.rmtree(view)
        shutil.copytree(folder, view)
        for p in view.iterdir():
            p.chmod(0o444)
        view.chmod(0o555)
        try:
            yield view
        finally:
            view.chmod(0o755)


def test_a_read_only_mount_reads_fine_and_a_write_says_read_only(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    db = filled(folder / "r.db")
    with contextlib.closing(sqlite3.connect(db)) as conn:  # closed: an open one would pin the mount
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in folder.glob("r.db-*"):
        extra.unlink()
    with read_only_mount(folder) as view:
        with ResultStore(view / "r.db", read_only=True) as store:
            assert len(store.trials()) == 5
        with pytest.raises(MnvError, match="read-only") as err:
            with ResultStore(view / "r.db") as store:
                store.record_trial(trial(1, 9))
        assert "writable --db" in err.value.hint


def test_a_full_database_says_the_disk_is_full(tmp_path):
    """Simulated with max_page_count: SQLite answers SQLITE_FULL exactly as on a full disk."""
    db = filled(tmp_path / "r.db")
    with ResultStore(db) as store:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(MnvError, match="disk is full") as err:
            for i in range(200):
                store.record_trial(trial(1, 100 + i))
        assert "Free disk space" in err.value.hint and "--resume" in err.value.hint


def test_a_full_tmpfs_says_the_disk_is_full(tmp_path):
    """The real thing, where a tiny tmpfs can be mounted (root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(MnvError, match="disk is full"):
            with ResultStore(mount / "r.db") as store:
                sid = session(store)
                for i in range(2000):
                    store.record_trial(trial(sid, i))
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.parametrize("bad", ["", "  "])
def test_an_empty_db_name_is_an_error_not_the_default(bad):
    with pytest.raises(UsageError, match="--db is empty"):
        resolve_db_path(bad)


def test_dev_null_is_refused_and_leaves_no_journal():
    with pytest.raises(UsageError, match="not a regular file"):
        ResultStore("/dev/null")
    assert not Path("/dev/null-journal").exists() and not Path("/dev/null-wal").exists()
