"""The results store: every trial as one SQLite row, written when it ends, never rewritten.

Results are facts, tables are views. A trial row is inserted in its own transaction the
moment the trial ends, so a crash, a pulled cable or Ctrl-C loses at most the trial in
flight. Triggers refuse UPDATE and DELETE on trials: the store is append-only by
construction, not by convention. WAL and a busy timeout let two mnv3bench processes share
one database. A schema version table is checked on open so an older mnv3bench never
misreads a newer database.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnv3bench.bench.parser import JSON_KEYS
from mnv3bench.errors import MnvError, UsageError
from mnv3bench.locations import default_db

if TYPE_CHECKING:
    import pandas as pd  # imported where a DataFrame is read: every command imports this module

SCHEMA_VERSION = 8
# How to bring an older database up to date: version -> statements to reach version + 1.
# Columns are only ever added, so old rows stay as they were written.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "ALTER TABLE sessions ADD COLUMN builds_on TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE trials ADD COLUMN freq_cap_khz INTEGER",
    ],
    2: [
        "ALTER TABLE trials ADD COLUMN delegated_nodes REAL",
        "ALTER TABLE trials ADD COLUMN total_nodes REAL",
        "ALTER TABLE trials ADD COLUMN delegate_partitions REAL",
        "ALTER TABLE trials ADD COLUMN delegate TEXT",
        "ALTER TABLE trials ADD COLUMN delegate_left_out TEXT",
    ],
    # device_serial is the phone's ro.serialno from now on; the transport address moves
    # beside it. Older rows keep the identity they were stored with (their address).
    3: [
        "ALTER TABLE sessions ADD COLUMN device_address TEXT",
        "ALTER TABLE trials ADD COLUMN device_address TEXT",
        "ALTER TABLE trials ADD COLUMN cpu_core INTEGER",
        "ALTER TABLE trials ADD COLUMN cpu_cluster TEXT",
        "ALTER TABLE trials ADD COLUMN temp_note TEXT",
    ],
    4: ["ALTER TABLE trials ADD COLUMN op_profile TEXT"],  # every Run Order row of the trial, as JSON
    # The host each session ran on (host.py), and whether its device's sensors were invented
    # by the emulator; older sessions did not record them (NULL).
    5: [
        "ALTER TABLE sessions ADD COLUMN host TEXT",
        "ALTER TABLE sessions ADD COLUMN host_end TEXT",
        "ALTER TABLE sessions ADD COLUMN sensors_emulated INTEGER",
    ],
    # Randomized rounds: the session's order seed, and each trial's round and place in it,
    # so a comparison can pair the trials of one round. Older rows have none (unpaired).
    6: [
        "ALTER TABLE sessions ADD COLUMN seed INTEGER",
        "ALTER TABLE trials ADD COLUMN round_index INTEGER",
        "ALTER TABLE trials ADD COLUMN round_position INTEGER",
    ],
    # Which of its runs' statistics a trial's latency_ms is: "median" or "mean". Older rows
    # have none (NULL): every one of them stored the mean.
    7: ["ALTER TABLE trials ADD COLUMN latency_estimator TEXT"],
}
DEFAULT_DB = Path("reports/results.db")  # inside a checkout; locations.default_db() says where elsewhere
BUSY_TIMEOUT_MS = 30_000

# BenchmarkOutput's numeric fields (bench/parser.py), one column each; the op profiles as JSON text.
PARSED_TEXT_FIELDS = ("graph", "delegate")
PARSED_NUMBER_FIELDS = tuple(k for k in JSON_KEYS if k not in (*PARSED_TEXT_FIELDS, "op_profile_top", "error"))
PARSED_JSON_FIELDS = ("op_profile_top", "op_profile_by_type", "op_profile")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class TrialRecord:
    """One finished trial, ok or failed. latency_ms is None for every failed trial."""

    session_id: int | None
    variant: str
    model_sha256: str
    device_profile: str
    device_serial: str
    device_model: str | None
    device_fingerprint: str | None
    flags: dict[str, str]
    trial_index: int
    started_at: str
    ended_at: str
    ok: bool
    error_message: str | None = None
    latency_ms: float | None = None
    parsed: dict[str, Any] = field(default_factory=dict)  # BenchmarkOutput.to_json()-like
    temp_before_c: float | None = None
    temp_after_c: float | None = None
    freq_before_khz: int | None = None
    freq_after_khz: int | None = None
    freq_cap_khz: int | None = None  # scaling_max_freq after the trial: the thermal cap
    throttled: bool = False
    exit_code: int | None = None
    timed_out: bool = False
    raw_output: str = ""
    tool_version: str = ""
    tf_version: str | None = None
    # Op type -> nodes the delegate left to TFLite's kernels, from the host's analysis of
    # the model; only when the trial's own delegate line matches that analysis.
    delegate_left_out: dict[str, int] | None = None
    device_address: str | None = None  # HOST:PORT or the USB serial; device_serial is ro.serialno
    cpu_core: int | None = None  # the cpu the benchmark was pinned to
    cpu_cluster: str | None = None  # that cpu's cluster as detected on the phone, e.g. "6-7"
    temp_note: str | None = None  # why a temperature is unknown (None), when one is
    round_index: int | None = None  # the session's round (1, 2, ...): every variant runs once per round
    round_position: int | None = None  # its place in that round's random order (1 = first)
    latency_estimator: str | None = None  # latency_ms is its runs' "mean" or "median" (bench/parser.py)

    def __post_init__(self) -> None:
        if self.ok and self.latency_ms is None:
            raise ValueError("an ok trial needs a latency")
        if not self.ok and self.latency_ms is not None:
            raise ValueError("a failed trial never carries a latency")


@dataclass
class SessionRecord:
    command: str
    device_profile: str
    device_serial: str
    device_model: str | None
    device_fingerprint: str | None
    flags: dict[str, str]
    variants: list[str]
    tool_version: str
    tf_version: str | None = None
    device_info: dict[str, Any] = field(default_factory=dict)
    started_at: str = field(default_factory=utc_now)
    resumed_from: int | None = None  # the interrupted session this one finishes (--resume)
    # Earlier trials this session builds on (--resume, --reuse), by variant: with its own
    # trials they are the measurement it reports, so `report` can show the same.
    builds_on: dict[str, list[int]] = field(default_factory=dict)
    device_address: str | None = None
    # host.HostFacts.to_json() at the start; the load at the end comes with end_session.
    host: dict[str, Any] = field(default_factory=dict)
    # True when the temperatures and frequencies of its trials are the emulator's inventions
    # (the emulator or a Pixel twin: runner.on_host_emulator), not measurements.
    sensors_emulated: bool = False
    seed: int | None = None  # the seed the rounds' random orders were drawn from


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    device_profile TEXT NOT NULL,
    device_serial TEXT NOT NULL,
    device_model TEXT,
    device_fingerprint TEXT,
    flags TEXT NOT NULL,
    variants TEXT NOT NULL,
    started_at TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    tf_version TEXT,
    device_info TEXT NOT NULL,
    resumed_from INTEGER REFERENCES sessions(id),
    builds_on TEXT NOT NULL DEFAULT '{{}}',
    device_address TEXT,
    host TEXT,
    host_end TEXT,
    sensors_emulated INTEGER,
    seed INTEGER
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id),
    variant TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    device_profile TEXT NOT NULL,
    device_serial TEXT NOT NULL,
    device_model TEXT,
    device_fingerprint TEXT,
    flags TEXT NOT NULL,
    trial_index INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
    error_message TEXT,
    latency_ms REAL CHECK (ok = 1 OR latency_ms IS NULL),
    {", ".join(f"{name} REAL" for name in PARSED_NUMBER_FIELDS)},
    {", ".join(f"{name} TEXT" for name in PARSED_TEXT_FIELDS)},
    {", ".join(f"{name} TEXT" for name in PARSED_JSON_FIELDS)},
    error INTEGER,
    temp_before_c REAL,
    temp_after_c REAL,
    freq_before_khz INTEGER,
    freq_after_khz INTEGER,
    freq_cap_khz INTEGER,
    throttled INTEGER NOT NULL,
    exit_code INTEGER,
    timed_out INTEGER NOT NULL,
    raw_output TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    tf_version TEXT,
    delegate_left_out TEXT,
    device_address TEXT,
    cpu_core INTEGER,
    cpu_cluster TEXT,
    temp_note TEXT,
    round_index INTEGER,
    round_position INTEGER,
    latency_estimator TEXT
);
CREATE INDEX IF NOT EXISTS trials_lookup ON trials (device_profile, variant, model_sha256);
CREATE TRIGGER IF NOT EXISTS trials_no_update BEFORE UPDATE ON trials
    BEGIN SELECT RAISE(ABORT, 'trials are append-only'); END;
CREATE TRIGGER IF NOT EXISTS trials_no_delete BEFORE DELETE ON trials
    BEGIN SELECT RAISE(ABORT, 'trials are append-only'); END;
"""

_TRIAL_COLUMNS = (
    ["session_id", "variant", "model_sha256", "device_profile", "device_serial", "device_model"]
    + ["device_fingerprint", "flags", "trial_index", "started_at", "ended_at", "ok", "error_message"]
    + ["latency_ms", *PARSED_NUMBER_FIELDS, *PARSED_TEXT_FIELDS, *PARSED_JSON_FIELDS, "error"]
    + ["temp_before_c", "temp_after_c", "freq_before_khz", "freq_after_khz", "freq_cap_khz", "throttled"]
    + ["exit_code", "timed_out", "raw_output", "tool_version", "tf_version", "delegate_left_out"]
    + ["device_address", "cpu_core", "cpu_cluster", "temp_note", "round_index", "round_position"]
    + ["latency_estimator"]
)
_INTEGER_COLUMNS = ("inference_count", "num_threads", "delegated_nodes", "total_nodes", "delegate_partitions")


def flags_json(flags: dict[str, str]) -> str:
    """Canonical JSON (sorted keys) so equal flags compare equal as text in SQL."""
    return json.dumps(flags, sort_keys=True, separators=(",", ":"))


class ResultStore:
    """Append-only SQLite store of sessions and trials.

    read_only=True (report, compare, the Python API's readers) opens the file with SQLite's
    `mode=ro`: nothing is created, migrated or switched to WAL, and it reads while another
    process writes. A writer checks the file first: a foreign SQLite file is refused before
    anything touches it, and a damaged one (PRAGMA quick_check) is never appended to.
    """

    def __init__(self, path: Path | str | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_db()
        self.read_only = read_only
        _check_db_path(self.path, must_exist=read_only)
        self._conn = self._connect()
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = self._check_ours()
            if read_only:
                if version is not None and version < SCHEMA_VERSION:
                    self._migrate_in_memory()
            else:
                if version is not None:
                    self._check_intact()
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA foreign_keys = ON")
                self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise database_error(self.path, exc, writing=not read_only) from exc
        except MnvError:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
            if not _can_write_beside(self.path):
                # A WAL reader needs to make the -shm file; on a read-only mount or folder nobody
                # can be writing, so the file is opened as immutable instead.
                uri += "&immutable=1"
            return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise database_error(self.path, exc, writing=not self.read_only) from exc
        except OSError as exc:
            raise UsageError(
                f"Cannot open the results database {self.path}: {exc}.",
                "Pass a writable path with --db, or fix the folder's permissions.",
            ) from exc

    def _check_ours(self) -> int | None:
        """The schema version of an mnv3bench database, None for an empty file; refuses
        (touching nothing) a database of someone else's or of a newer mnv3bench."""
        tables = {name for (name,) in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            if self.read_only:
                raise UsageError(f"{self.path} is an empty database, with no mnv3bench results in it.",
                                 "Point --db at the database `mnv3bench run` or `table` wrote (default "
                                 "reports/results.db).")
            return None
        if not {"schema_version", "sessions", "trials"} <= tables:
            raise UsageError(
                f"{self.path} is not a usable mnv3bench results database: it is another program's SQLite file "
                f"(tables: {', '.join(sorted(tables)[:5])}). It was left exactly as it was.",
                "Use another file with --db (the default is reports/results.db).",
            )
        version = self._rows("SELECT MAX(version) FROM schema_version")[0][0]
        if version is not None and version > SCHEMA_VERSION:
            raise UsageError(
                f"{self.path} was written by a newer mnv3bench (schema {version}; this one reads up to "
                f"{SCHEMA_VERSION}).",
                "Upgrade mnv3bench (pip install -U mnv3bench), or use another database with --db.",
            )
        return version

    def _check_intact(self) -> None:
        """Appending to a damaged file would bury new trials in it: refuse, naming the recovery."""
        problems = [text for (text,) in self._rows("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise corrupt_error(self.path, "; ".join(problems))

    def _migrate_in_memory(self) -> None:
        """An older database read without writing it: migrate a copy in memory."""
        memory = sqlite3.connect(":memory:", isolation_level=None)
        self._conn.backup(memory)
        self._conn.close()
        self._conn = memory
        self._init_schema()

    def _init_schema(self) -> None:
        with self._transaction():
            has_table = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
            ).fetchone()
            version = None
            if has_table:
                row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                version = row[0] if row else None
            if version is not None:
                for old in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[old]:
                        self._conn.execute(statement)
            for statement in _split_sql(_SCHEMA):
                self._conn.execute(statement)
            if version != SCHEMA_VERSION:
                self._conn.execute("DELETE FROM schema_version")
                self._conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies
        # here instead of failing half-way through.
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                # SQLite has already rolled back after some errors (SQLITE_FULL): the
                # original error is the one to report, not "no transaction is active".
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # disk full, locked too long, read-only file, damaged
            raise database_error(self.path, exc, writing=True) from exc

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A damaged page found while reading is a clear error, never a traceback."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise database_error(self.path, exc, writing=False) from exc
        except Exception as exc:  # pandas wraps the sqlite error in its own DatabaseError
            if isinstance(exc.__cause__, sqlite3.DatabaseError):
                raise database_error(self.path, exc.__cause__, writing=False) from exc
            raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of a query, its cursor closed at once: SQLite keeps a closed connection's
        file open while any statement of it is alive (a read-only mount could not unmount)."""
        with contextlib.closing(self._conn.cursor()) as cursor:
            return cursor.execute(sql, params).fetchall()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def journal_mode(self) -> str:
        return str(self._rows("PRAGMA journal_mode")[0][0])

    # -- writing ---------------------------------------------------------------------------

    def start_session(self, session: SessionRecord) -> int:
        with self._transaction():
            cursor = self._conn.execute(
                "INSERT INTO sessions (command, device_profile, device_serial, device_model, device_fingerprint,"
                " flags, variants, started_at, tool_version, tf_version, device_info, resumed_from, builds_on,"
                " device_address, host, sensors_emulated, seed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.command,
                    session.device_profile,
                    session.device_serial,
                    session.device_model,
                    session.device_fingerprint,
                    flags_json(session.flags),
                    json.dumps(session.variants),
                    session.started_at,
                    session.tool_version,
                    session.tf_version,
                    json.dumps(session.device_info, default=str),
                    session.resumed_from,
                    json.dumps(session.builds_on),
                    session.device_address,
                    json.dumps(session.host) if session.host else None,
                    int(session.sensors_emulated),
                    session.seed,
                ),
            )
            return int(cursor.lastrowid)

    def end_session(self, session_id: int, host_end: dict[str, Any]) -> None:
        """What the host looked like when the session's last trial ended (its load average)."""
        with self._transaction():
            self._conn.execute("UPDATE sessions SET host_end = ? WHERE id = ?", (json.dumps(host_end), session_id))

    def record_trial(self, trial: TrialRecord) -> int:
        """Insert one finished trial in its own transaction; returns its id."""
        parsed = trial.parsed or {}
        values: dict[str, Any] = {
            name: getattr(trial, name)
            for name in (
                "session_id variant model_sha256 device_profile device_serial device_model device_fingerprint"
                " trial_index started_at ended_at error_message latency_ms temp_before_c temp_after_c"
                " freq_before_khz freq_after_khz freq_cap_khz exit_code raw_output tool_version tf_version"
                " device_address cpu_core cpu_cluster temp_note round_index round_position latency_estimator"
            ).split()
        }
        values["flags"] = flags_json(trial.flags)
        values["ok"] = int(trial.ok)
        values["throttled"] = int(trial.throttled)
        values["timed_out"] = int(trial.timed_out)
        for name in PARSED_NUMBER_FIELDS:
            values[name] = parsed.get(name)
        for name in PARSED_TEXT_FIELDS:
            values[name] = parsed.get(name)
        values["delegate_left_out"] = (
            json.dumps(trial.delegate_left_out, sort_keys=True) if trial.delegate_left_out is not None else None
        )
        for name in PARSED_JSON_FIELDS:
            values[name] = json.dumps(parsed[name]) if parsed.get(name) is not None else None
        values["error"] = None if "error" not in parsed else int(bool(parsed["error"]))
        placeholders = ", ".join("?" for _ in _TRIAL_COLUMNS)
        with self._transaction():
            cursor = self._conn.execute(
                f"INSERT INTO trials ({', '.join(_TRIAL_COLUMNS)}) VALUES ({placeholders})",
                [values[name] for name in _TRIAL_COLUMNS],
            )
            return int(cursor.lastrowid)

    # -- reading ---------------------------------------------------------------------------

    def trials(
        self,
        *,
        device: str | None = None,
        variants: Sequence[str] | None = None,
        session: int | None = None,
        ok_only: bool = False,
    ) -> pd.DataFrame:
        """Trials as a DataFrame, oldest first (columns as in docs/CONTRACTS.md)."""
        where, params = [], []
        if device is not None:
            where.append("device_profile = ?")
            params.append(device)
        if variants is not None:
            variants = list(variants)
            where.append(f"variant IN ({', '.join('?' for _ in variants)})" if variants else "0")
            params += variants
        if session is not None:
            where.append("session_id = ?")
            params.append(session)
        if ok_only:
            where.append("ok = 1")
        import pandas as pd

        sql = "SELECT * FROM trials" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        with self._reading():
            frame = pd.read_sql_query(sql, self._conn, params=params)
        for name in ("ok", "throttled", "timed_out"):
            frame[name] = frame[name].astype(bool)
        for name in _INTEGER_COLUMNS:
            frame[name] = frame[name].astype("Int64")
        return frame

    def sessions(self) -> pd.DataFrame:
        import pandas as pd

        with self._reading():
            return pd.read_sql_query("SELECT * FROM sessions ORDER BY id", self._conn)

    def measurement_trials(self, *, device: str | None = None, variants: Sequence[str] | None = None) -> pd.DataFrame:
        """For each variant, the ok trials its newest session reported: the session's own
        and the earlier ones it built on (--resume, --reuse). What `report` re-renders."""
        trials = self.trials(device=device, variants=variants, ok_only=True)
        if trials.empty:
            return trials
        with self._reading():
            builds_on = {int(i): json.loads(text or "{}") for i, text in
                         self._rows("SELECT id, builds_on FROM sessions")}
        keep: list[int] = []
        for (_, variant), group in trials.groupby(["device_profile", "variant"], sort=False):
            sessions = group["session_id"].dropna()
            if sessions.empty:  # trials stored outside any session: all of them
                keep += group["id"].astype(int).tolist()
                continue
            newest = int(sessions.max())
            keep += group.loc[group["session_id"] == newest, "id"].astype(int).tolist()
            keep += [int(i) for i in builds_on.get(newest, {}).get(variant, [])]
        return trials[trials["id"].isin(keep)]

    def measured_trials(self, *, device: str | None = None, variants: Sequence[str] | None = None) -> pd.DataFrame:
        """Ok trials with `measured_in`, the session that measured them: their own session,
        and again each later session that built on them (--resume, --reuse), whose
        measurement they are part of. 0 for trials stored outside any session. What
        selection.py chooses one session's trials from."""
        trials = self.trials(device=device, variants=variants, ok_only=True)
        with self._reading():
            builds_on = self._rows("SELECT id, builds_on FROM sessions")
        parts = [trials.assign(measured_in=trials["session_id"].fillna(0).astype(int))]
        for session_id, text in builds_on:
            ids = [int(i) for ids in json.loads(text or "{}").values() for i in ids]
            if ids:
                parts.append(trials[trials["id"].isin(ids)].assign(measured_in=int(session_id)))
        import pandas as pd

        return pd.concat(parts, ignore_index=True).drop_duplicates(["id", "measured_in"])

    def matching_ok_trials(
        self,
        *,
        variant: str,
        model_sha256: str,
        device_profile: str,
        device_fingerprint: str | None,
        device_serial: str | None,
        flags: dict[str, str],
        scope: str,
    ) -> tuple[pd.DataFrame, int | None]:
        """Ok trials of these exact model bytes, device and flags, oldest first.

        scope "resume": the newest session holding such a trial, plus the sessions it
        resumed (so resuming a resumed run still counts the first part); scope "all":
        every session (reuse for tables). device_serial None matches any serial (the
        emulator gets a new address each start; its fingerprint identifies it).
        Returns (trials, newest session id or None).
        """
        where = "variant = ? AND model_sha256 = ? AND device_profile = ? AND flags = ? AND ok = 1"
        where += " AND device_fingerprint IS ?"
        params: list[Any] = [variant, model_sha256, device_profile, flags_json(flags), device_fingerprint]
        if device_serial is not None:
            where += " AND device_serial = ?"
            params.append(device_serial)
        with self._reading():
            row = self._rows(f"SELECT MAX(session_id) FROM trials WHERE {where}", params)[0]
        newest = None if row[0] is None else int(row[0])
        if scope == "resume":
            if newest is None:
                return self.trials(session=-1), None
            chain = self._session_chain(newest)
            where += f" AND session_id IN ({', '.join('?' for _ in chain)})"
            params += chain
        elif scope != "all":
            raise ValueError(f"unknown scope {scope!r}")
        import pandas as pd

        with self._reading():
            frame = pd.read_sql_query(f"SELECT * FROM trials WHERE {where} ORDER BY id", self._conn, params=params)
        for name in ("ok", "throttled", "timed_out"):
            frame[name] = frame[name].astype(bool)
        return frame, newest

    def last_session(self, *, device_profile: str, device_fingerprint: str | None, device_serial: str | None,
                     variants: Sequence[str]) -> dict[str, Any] | None:
        """The newest session on this device that measured any of these variants (what --resume
        continues): {"id", "flags", "command"}; device_serial None matches any serial."""
        where, params = "device_profile = ? AND device_fingerprint IS ?", [device_profile, device_fingerprint]
        if device_serial is not None:
            where += " AND device_serial = ?"
            params.append(device_serial)
        with self._reading():
            rows = self._rows(f"SELECT id, flags, variants, command FROM sessions WHERE {where} ORDER BY id DESC", params)
        for session_id, flags, names, command in rows:
            if set(json.loads(names or "[]")) & set(variants):
                return {"id": int(session_id), "flags": json.loads(flags), "command": command}
        return None

    def latest_ok_trials(self, *, device: str, variant: str, flags: str | None = None) -> pd.DataFrame:
        """The newest measurement of a variant: ok trials sharing the model bytes, flags and
        device build of its most recent ok trial (flags: canonical JSON text to require)."""
        frame = self.trials(device=device, variants=[variant], ok_only=True)
        if flags is not None:
            frame = frame[frame["flags"] == flags]
        return newest_measurement(frame)

    def _session_chain(self, session_id: int) -> list[int]:
        chain, current = [], session_id
        while current is not None and current not in chain:
            chain.append(current)
            found = self._rows("SELECT resumed_from FROM sessions WHERE id = ?", (current,))
            current = found[0][0] if found else None
        return chain


def newest_measurement(ok_trials: pd.DataFrame) -> pd.DataFrame:
    """Of one variant's ok trials (in id order), those that measured what its newest trial
    measured: the same model bytes, flags and device build, across sessions (a resumed or
    reused run adds to a measurement; a rebuilt model or other flags start a new one)."""
    if ok_trials.empty:
        return ok_trials
    newest = ok_trials.iloc[-1]
    same = (
        (ok_trials["model_sha256"] == newest["model_sha256"])
        & (ok_trials["flags"] == newest["flags"])
        & (ok_trials["device_fingerprint"].fillna("") == (newest["device_fingerprint"] or ""))
    )
    return ok_trials[same]


def _split_sql(script: str) -> list[str]:
    """Statements of the schema script; trigger bodies keep their inner semicolons."""
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        stripped = current.strip()
        if stripped.endswith(";") and (not stripped.upper().startswith("CREATE TRIGGER") or stripped.endswith("END;")):
            statements.append(stripped)
            current = ""
    return statements


def resolve_db_path(db: str | None) -> Path:
    """--db as given: the default when absent; an empty name is a mistake, not the default."""
    if db is None:
        return default_db()
    if not db.strip():
        raise UsageError("--db is empty.", "Name the results database, e.g. --db reports/results.db, or leave "
                         "--db out for the default.")
    return Path(db)


def _check_db_path(path: Path, *, must_exist: bool) -> None:
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a device, pipe or socket)"
        raise UsageError(f"{path} is {kind}; a results database is a regular file.",
                         "Pass the path of a database file with --db (the default is reports/results.db).")
    if must_exist and not path.exists():
        raise UsageError(f"no results database at {path}.",
                         "Measure first (`mnv3bench table 5 --device emulator`), or point --db at the database.")


def _can_write_beside(path: Path) -> bool:
    return os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)


RECOVER_HINT = (
    "Recover what is readable into a new file: `sqlite3 {path} .recover | sqlite3 recovered.db`, then use "
    "--db recovered.db; or start a new database with --db. mnv3bench will not append to a damaged file."
)


def corrupt_error(path: Path, detail: str) -> MnvError:
    return MnvError(f"the results database {path} is damaged ({detail}).", RECOVER_HINT.format(path=path))


def database_error(path: Path, exc: sqlite3.DatabaseError, *, writing: bool) -> MnvError:
    """One message per cause: locked, read-only, full and damaged each have their own fix."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    lowered = text.lower()
    kept = "Every trial stored before this one is kept." if writing else ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in lowered or "not a database" in lowered:
        if "not a database" in lowered or name == "SQLITE_NOTADB":
            return UsageError(f"{path} is not a usable mnv3bench results database ({text}).",
                              "Use another file with --db (the default is reports/results.db).")
        return corrupt_error(path, text)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in lowered:
        return MnvError(
            f"the results database {path} is locked by another process ({text}; waited "
            f"{BUSY_TIMEOUT_MS / 1000:g} s).",
            "Wait for the other mnv3bench (or sqlite3 session) to finish, then run the same command again"
            + (" with --resume. " if writing else ".") + kept,
        )
    read_only_place = writing and path.exists() and not _can_write_beside(path)
    if name.startswith("SQLITE_READONLY") or "readonly" in lowered or "read-only" in lowered or read_only_place:
        return MnvError(
            f"cannot write the results database {path}: it is read-only (the file, its folder or its mount) ({text}).",
            "Fix the permissions, or pass a writable --db (copy the file there to keep its trials). " + kept,
        )
    if name == "SQLITE_FULL" or "full" in lowered or (name.startswith("SQLITE_IOERR") and _disk_nearly_full(path)):
        return MnvError(
            f"cannot write the results database {path}: the disk is full ({text}).",
            "Free disk space, then run the same command again with --resume. " + kept,
        )
    if name == "SQLITE_CANTOPEN" or "unable to open" in lowered:
        return UsageError(f"Cannot open the results database {path}: {text}.",
                          "Pass a readable, writable path with --db, or fix the folder's permissions.")
    return MnvError(
        f"{'cannot write' if writing else 'cannot read'} the results database {path}: {text}",
        "Free disk space or wait for the other writer, then run the same command again with --resume. " + kept
        if writing else "Check the file with `sqlite3 " + str(path) + " 'PRAGMA integrity_check'`.",
    )


def _disk_nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        return False


__all__ = [
    "DEFAULT_DB",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ResultStore",
    "database_error",
    "resolve_db_path",
    "SessionRecord",
    "TrialRecord",
    "utc_now",
]
