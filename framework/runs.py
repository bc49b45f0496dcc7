"""Run records: every pipeline run with its stage timings, row counts, status and error."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from framework import logs
from framework.settings.envvars import redact


def worker_id() -> str:
    """Who runs: `FRAMEWORK_WORKER_ID`, else the host name (one machine can stand in for two)."""
    return os.environ.get("FRAMEWORK_WORKER_ID") or socket.gethostname()


@dataclass
class RunRecord:
    run_id: str
    pipeline: str
    target: str
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished_at: str | None = None
    status: str = "running"
    load_ids: list[str] = field(default_factory=list)
    rows_extracted: int = 0
    rows_processed: int = 0
    rows_quarantined: int = 0
    rows_loaded: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    # The pipeline's own stages (loaded | quarantined | failed) apart from the shared dbt
    # build (models_status: built | failed | None when no build ran for it); `status` sums
    # both up: success, quarantined, failed or `models failed`.
    stages_status: str | None = None
    models_status: str | None = None
    # The run's dbt build, one entry shared by all the run's records (its seconds are the
    # run's, not the pipeline's): status, seconds, failures, warnings, orphans.
    dbt: dict[str, Any] | None = None
    # The compiled pipeline's fingerprint (`framework.compiled`), as the ledger stores it with
    # each batch this run loaded.
    fingerprint: str | None = None
    # The worker that ran it: every worker's records meet in the warehouse (`history`).
    worker: str = field(default_factory=worker_id)

    @property
    def load_id(self) -> str | None:
        return self.load_ids[-1] if self.load_ids else None

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["load_id"] = self.load_id
        data["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return data


INDEXES = ("runs_by_pipeline", "runs_by_time", "runs_unsynced")
T = TypeVar("T")
# SQLite's words for a folder or file it may not write.
_UNWRITABLE = re.compile(r"full|readonly|read-only|unable to open|disk I/O", re.IGNORECASE)
# SQLite's words for a file that is no (longer a) database.
_DAMAGED = re.compile(r"malformed|not a database|file is encrypted", re.IGNORECASE)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _damaged(path: Path) -> bool:
    """Whether SQLite finds the file damaged, on a connection of its own."""
    if not path.is_file():
        return False
    try:
        con = sqlite3.connect(path, timeout=30)
    except sqlite3.DatabaseError:
        return False
    try:
        return bool(con.execute("PRAGMA quick_check").fetchone()[0] != "ok")
    except sqlite3.DatabaseError as exc:
        return bool(_DAMAGED.search(str(exc)))
    finally:
        con.close()


class RunLog:
    """An SQLite file in the state folder; small, local, queryable with any SQL tool.

    The warehouse holds every worker's records (framework/shared_runs.py); this file is the
    machine's cache of its own, and their only home while the warehouse cannot be reached:
    `synced` is 0 until a record's latest version is in the warehouse.
    """

    def __init__(self, path: Path) -> None:
        with suppress(OSError):  # a read-only parent: said by the first use below
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._inode: int | None = None  # of the file `_con` opened
        self._said = False
        self._use(self._set_up, None)

    def _set_up(self, con: sqlite3.Connection) -> None:
        if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # A write-ahead log: a commit costs no fsync at `synchronous = NORMAL` (one
            # took 16 ms here, and a run commits twice per pipeline), and readers never
            # wait for the writer. Kept in the file once set (busy: tried next time).
            with suppress(sqlite3.OperationalError):
                con.execute("PRAGMA journal_mode = WAL")
        if self._current(con):  # the usual case: a read, no lock
            return
        # Threads of one run open a new log at once: take the write lock before looking
        # at the schema again, or two of them both add the missing column.
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE IF NOT EXISTS runs (run_id TEXT, pipeline TEXT, target TEXT, "
                    "started_at TEXT, finished_at TEXT, status TEXT, record TEXT, "
                    "synced INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, pipeline))")
        columns = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
        if "synced" not in columns:  # a log made before records reached the warehouse
            con.execute("ALTER TABLE runs ADD COLUMN synced INTEGER NOT NULL DEFAULT 0")
        # The warehouse ledger's quarantined batches, as the last run or replay saw them.
        con.execute("CREATE TABLE IF NOT EXISTS quarantined (pipeline TEXT, target TEXT, "
                    "load_id TEXT, reason TEXT, PRIMARY KEY (pipeline, target, load_id))")
        # The log grows by every pipeline's every run (50 pipelines every 15 minutes: 100k
        # records in three weeks): `list`, `history` and each run's push read by these,
        # not by a scan of them all (a 300k-record log made `list` take 78 s).
        con.execute("CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs "
                    "(pipeline, started_at)")
        con.execute("CREATE INDEX IF NOT EXISTS runs_by_time ON runs (started_at)")
        con.execute("CREATE INDEX IF NOT EXISTS runs_unsynced ON runs (started_at) "
                    "WHERE synced = 0")

    @staticmethod
    def _current(con: sqlite3.Connection) -> bool:
        """Both tables exist with today's columns and indexes."""
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN "
                                           "('table', 'index')")}
        return set(INDEXES) | {"runs", "quarantined"} <= names and \
            "synced" in {r[1] for r in con.execute("PRAGMA table_info(runs)")}

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """The log's one connection, for one transaction at a time (committed, or rolled back
        on an error): the `--threads` workers share it. Kept open while the log is: the last
        connection to close checkpoints the write-ahead log, with an fsync. A killed process
        leaves the log whole; a power cut may lose its last commits, which are a cache of the
        warehouse's records (see the class)."""
        with self._lock:
            if self._inode != _inode(self.path):
                self._drop()  # another process set the file aside: the new one, now
            if self._con is None:
                self._con, self._inode = self._open(), _inode(self.path)
            with self._con:
                yield self._con

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        con.execute("PRAGMA synchronous = NORMAL")
        return con

    def _drop(self) -> None:
        """Close the connection; the caller holds the lock."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _use(self, work: Callable[[sqlite3.Connection], T], otherwise: T) -> T:
        """`work` in one transaction. The log is a cache of records the warehouse keeps too: a
        damaged file is set aside and a new one started; one that cannot be read or written (a
        full or read-only state folder, another user's) costs one warning and `otherwise`. A
        run failed whole on either, its other pipelines unrun, its own outcome hidden."""
        for attempt in (1, 2):
            try:
                with self._connect() as con:
                    return work(con)
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and _DAMAGED.search(str(exc)) and self._set_aside(exc):
                    continue
                if not self._said:
                    self._said = True
                    hint = "; free space in the state folder, or make it writable" \
                        if _UNWRITABLE.search(str(exc)) else ""
                    logs.logger.warning(f"run records not kept in {self.path} ({exc}){hint}; "
                                        "`history` lacks them")
        return otherwise

    def _set_aside(self, exc: Exception) -> bool:
        """Move the damaged log aside and start a new one; whether the work may be tried again.
        Under the lock and a lock file: the `--threads` workers and other runs on this state
        folder meet the damage too, and one of them may have set it aside already (the file
        is checked again on a connection of its own: a healthy log is never moved)."""
        import fcntl

        with self._lock, open(self.path.with_name(self.path.name + ".lock"), "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            self._drop()
            if not _damaged(self.path):
                return True  # set aside by another thread or process already
            aside = self.path.with_name(f"{self.path.name}.damaged-"
                                        f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}")
            try:
                for extra in ("-wal", "-shm", ""):  # kept with it: another run may still write
                    with suppress(FileNotFoundError):
                        self.path.with_name(self.path.name + extra).rename(f"{aside}{extra}")
            except OSError:
                return False
            logs.logger.warning(f"run log {self.path} was damaged ({exc}): moved aside to "
                                f"{aside}, a new one started (its records that never reached "
                                "the warehouse are in the old one)")
            try:
                con = self._open()
                with con:
                    self._set_up(con)
            except sqlite3.DatabaseError:
                return False
            self._con, self._inode = con, _inode(self.path)
            return True

    def save(self, record: RunRecord) -> None:
        if record.error:
            record.error = redact(record.error)
        payload = redact(json.dumps(record.summary()))
        self._use(lambda con: con.execute(
            "INSERT OR REPLACE INTO runs (run_id, pipeline, target, started_at, finished_at, "
            "status, record, synced) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
            (record.run_id, record.pipeline, record.target, record.started_at,
             record.finished_at, record.status, payload)), None)

    def unsynced(self) -> list[str]:
        """The records (JSON text) whose latest version the warehouse has not got."""
        return self._use(lambda con: [r[0] for r in con.execute(
            "SELECT record FROM runs WHERE synced = 0 ORDER BY started_at")], [])

    def mark_synced(self, records: Iterable[str]) -> None:
        """These versions reached the warehouse (a record saved again since stays unsynced)."""
        keyed = [(json.loads(r), r) for r in records]
        self._use(lambda con: con.executemany(
            "UPDATE runs SET synced = 1 WHERE run_id = ? AND pipeline = ? AND record = ?",
            [(k["run_id"], k["pipeline"], r) for k, r in keyed]), None)

    def synced_keys(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (run id, pipeline) keys' latest versions are in the warehouse."""
        return self._use(lambda con: {key for key in keys if con.execute(
            "SELECT 1 FROM runs WHERE run_id = ? AND pipeline = ? AND synced = 1",
            key).fetchone()}, set())

    def history(self, pipeline: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        query = "SELECT record FROM runs"
        args: tuple[Any, ...] = ()
        if pipeline:
            query += " WHERE pipeline = ?"
            args = (pipeline,)
        query += " ORDER BY started_at DESC LIMIT ?"
        rows: list[Any] = self._use(lambda con: con.execute(query, (*args, limit)).fetchall(), [])
        return [json.loads(r[0]) for r in rows]

    def last(self, pipeline: str, target: str) -> dict[str, Any] | None:
        row = self._use(lambda con: con.execute(
            "SELECT record FROM runs WHERE pipeline = ? AND target = ? ORDER BY started_at "
            "DESC LIMIT 1", (pipeline, target)).fetchone(), None)
        return json.loads(row[0]) if row else None

    def hold(self, pipeline: str, target: str, held: dict[str, str]) -> None:
        """The pipeline's quarantined batches are now `held` (load id -> reason)."""
        def replace(con: sqlite3.Connection) -> None:
            con.execute("DELETE FROM quarantined WHERE pipeline = ? AND target = ?",
                        (pipeline, target))
            con.executemany("INSERT INTO quarantined VALUES (?, ?, ?, ?)",
                            [(pipeline, target, k, redact(v)) for k, v in held.items()])

        self._use(replace, None)

    def held(self, target: str | None = None) -> dict[str, dict[str, str]]:
        """Pipeline -> its quarantined batches (load id -> reason), for one target or all."""
        query = "SELECT pipeline, load_id, reason FROM quarantined"
        args: tuple[str, ...] = ()
        if target:
            query, args = query + " WHERE target = ?", (target,)
        rows: list[Any] = self._use(lambda con: con.execute(query + " ORDER BY pipeline, load_id",
                                                 args).fetchall(), [])
        found: dict[str, dict[str, str]] = {}
        for pipeline, load_id, reason in rows:
            found.setdefault(pipeline, {})[load_id] = reason
        return found
