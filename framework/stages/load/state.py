"""State every worker shares, kept in the warehouse next to the batch ledger.

Three small tables in `landing` (the ledger's schema), written with the same SQL on DuckDB and
on Snowflake (which enforces no primary key, so nothing here relies on one):

- `_framework_leases`: one row per pipeline and target, the run lease (holder, token, expiry).
  Taking it is a compare-and-swap: an UPDATE conditioned on the token read just before, then a
  read-back of the token; a worker that finds another token lost the race.
- `_framework_runs`: every worker's run records (the JSON of a RunRecord), for `history`.
- `_framework_owed`: the dbt selections owed a build, with the token of their latest mark.

A warehouse hands out a `SharedState` over its connection (`Warehouse.shared_state()`), or over
a session of its own for a heartbeat thread, so a lease renewal never joins a load's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

STATE_SCHEMA = "landing"
LEASES, RUNS, OWED = "_framework_leases", "_framework_runs", "_framework_owed"

# DDL both warehouses read the same way (Snowflake: TIMESTAMP is TIMESTAMP_NTZ, BIGINT is
# NUMBER(38,0)).
_TABLES = {
    LEASES: "pipeline VARCHAR, target VARCHAR, token VARCHAR, holder VARCHAR, host VARCHAR, "
            "pid BIGINT, run_id VARCHAR, acquired_at TIMESTAMP, expires_at TIMESTAMP, "
            "heartbeat TIMESTAMP",
    RUNS: "run_id VARCHAR, pipeline VARCHAR, target VARCHAR, worker VARCHAR, "
          "started_at VARCHAR, finished_at VARCHAR, status VARCHAR, record VARCHAR",
    OWED: "target VARCHAR, selection VARCHAR, token VARCHAR, marked_at TIMESTAMP",
}


def utcnow() -> datetime:
    """Naive UTC, as the warehouses store timestamps (workers' clocks are assumed in step)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Lease:
    pipeline: str
    target: str
    token: str | None
    holder: str | None
    host: str | None
    pid: int | None
    run_id: str | None
    expires_at: datetime | None
    acquired_at: datetime | None = None  # the holder's clock; on its host, as `pid` is

    @property
    def held(self) -> bool:
        return bool(self.token)


def _among(lease: Lease, token: str) -> bool:
    """`token` is one of the held rows of a lease two workers raced for."""
    return bool(lease.token and lease.token.startswith("?")
                and token in lease.token[1:].split("|"))


class SharedState:
    """Leases, run records and owed dbt selections over one warehouse session.

    Args:
        run: executes one statement with `?` placeholders and returns its rows.
        table: the quoted name of a state table in `STATE_SCHEMA`.
        transaction: a context manager around several statements.
        close: ends the session when this object owns it (a heartbeat's own session).
        creating: held while the tables are made, when sessions of one process may make them
            at once (DuckDB cursors of `run --threads N` conflict on the catalog otherwise).
        ready: the tables known to exist, shared by those sessions.
    """

    def __init__(self, run: Callable[[str, list[Any]], list[tuple[Any, ...]]],
                 table: Callable[[str], str],
                 transaction: Callable[[], AbstractContextManager[None]],
                 close: Callable[[], None] = lambda: None,
                 creating: AbstractContextManager[Any] | None = None,
                 ready: set[str] | None = None) -> None:
        self._run, self._table, self._transaction, self.close = run, table, transaction, close
        self._creating = creating or nullcontext()
        self._ready: set[str] = set() if ready is None else ready

    def _t(self, name: str) -> str:
        table = self._table(name)
        if name in self._ready:
            return table
        with self._creating:
            if name not in self._ready:
                schema = table.rsplit(".", 1)[0]
                self._run(f"CREATE SCHEMA IF NOT EXISTS {schema}", [])
                self._run(f"CREATE TABLE IF NOT EXISTS {table} ({_TABLES[name]})", [])
                self._ready.add(name)
        return table

    # -- leases -------------------------------------------------------------------------------

    def lease(self, pipeline: str, target: str) -> Lease:
        """The lease as stored now (a free one if no row yet). Two workers making the first
        row at once may leave two rows: a free one is ignored beside a held one, and two held
        ones are a race (`?` and both tokens) until the loser gives way."""
        rows = self._run(f"SELECT token, holder, host, pid, run_id, expires_at, acquired_at FROM "
                         f"{self._t(LEASES)} WHERE pipeline = ? AND target = ?",
                         [pipeline, target])
        if not rows:
            return Lease(pipeline, target, None, None, None, None, None, None)
        held = [r for r in rows if r[0]] or rows
        tokens = {r[0] for r in held}
        if len(tokens) > 1:  # nobody holds it for sure until it settles or every row expires
            expiries = [r[5] for r in held if r[5] is not None]
            return Lease(pipeline, target, "?" + "|".join(sorted(tokens)), None, None, None,
                         None, max(expiries) if expiries else None)
        token, holder, host, pid, run_id, expires, acquired = held[0]
        return Lease(pipeline, target, token, holder, host, int(pid) if pid is not None else None,
                     run_id, expires, acquired)

    def swap_lease(self, seen: Lease, token: str, holder: str, host: str, pid: int, run_id: str,
                   ttl: float) -> bool:
        """Take the lease if it is still as `seen`; True when this worker now holds it."""
        table = self._t(LEASES)
        now = utcnow()
        if not self._run(f"SELECT 1 FROM {table} WHERE pipeline = ? AND target = ?",
                         [seen.pipeline, seen.target]):
            self._run(f"INSERT INTO {table} (pipeline, target, token) VALUES (?, ?, '')",
                      [seen.pipeline, seen.target])
        if seen.token and seen.token.startswith("?"):  # an expired race: settle its rows,
            # still only if they are as seen (two settlers: the second one matches nothing)
            tokens = ["", *seen.token[1:].split("|")]
            condition = f" AND coalesce(token, '') IN ({', '.join('?' * len(tokens))})"
            args = tokens
        else:
            condition, args = " AND coalesce(token, '') = ?", [seen.token or ""]
        self._run(f"UPDATE {table} SET token = ?, holder = ?, host = ?, pid = ?, run_id = ?, "
                  "acquired_at = ?, expires_at = ?, heartbeat = ? WHERE pipeline = ? AND "
                  f"target = ?{condition}",
                  [token, holder, host, pid, run_id, now, _after(now, ttl), now,
                   seen.pipeline, seen.target, *args])
        stored = self.lease(seen.pipeline, seen.target)
        if stored.token == token:
            return True
        if _among(stored, token):  # our row landed beside a holder's: give way, never share
            self.release_lease(seen.pipeline, seen.target, token)
        return False

    def renew_lease(self, pipeline: str, target: str, token: str, ttl: float) -> bool:
        """Push the expiry on; False if the lease is no longer this token's (taken over). A
        worker whose late first row stands beside ours for a moment gives way: still ours."""
        now = utcnow()
        self._run(f"UPDATE {self._t(LEASES)} SET expires_at = ?, heartbeat = ? WHERE "
                  "pipeline = ? AND target = ? AND token = ?",
                  [_after(now, ttl), now, pipeline, target, token])
        stored = self.lease(pipeline, target)
        return stored.token == token or _among(stored, token)

    def release_lease(self, pipeline: str, target: str, token: str) -> None:
        self._run(f"UPDATE {self._t(LEASES)} SET token = '', holder = NULL, host = NULL, "
                  "pid = NULL, run_id = NULL, expires_at = NULL WHERE pipeline = ? AND "
                  "target = ? AND token = ?", [pipeline, target, token])

    # -- run records ----------------------------------------------------------------------------

    def save_runs(self, records: Iterable[dict[str, Any]]) -> None:
        """Insert or replace run records (RunRecord summaries), in one transaction."""
        table = self._t(RUNS)
        with self._transaction():
            for r in records:
                self._run(f"DELETE FROM {table} WHERE run_id = ? AND pipeline = ?",
                          [r["run_id"], r["pipeline"]])
                self._run(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          [r["run_id"], r["pipeline"], r["target"], r.get("worker"),
                           r["started_at"], r.get("finished_at"), r["status"], json.dumps(r)])

    def runs(self, pipeline: str | None = None, limit: int = 20,
             run_id: str | None = None) -> list[dict[str, Any]]:
        where, args = [], []
        for column, value in (("pipeline", pipeline), ("run_id", run_id)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._run(f"SELECT record FROM {self._t(RUNS)}{clause} "
                         f"ORDER BY started_at DESC LIMIT {int(limit)}", args)
        return [json.loads(r[0]) for r in rows]

    # -- owed dbt selections --------------------------------------------------------------------

    def owe(self, target: str, marks: dict[str, str]) -> None:
        """Mark selections owed a build (selection -> a fresh token)."""
        table = self._t(OWED)
        now = utcnow()
        with self._transaction():
            for selection, token in marks.items():
                self._run(f"DELETE FROM {table} WHERE target = ? AND selection = ?",
                          [target, selection])
                self._run(f"INSERT INTO {table} VALUES (?, ?, ?, ?)",
                          [target, selection, token, now])

    def owed(self, target: str) -> dict[str, str]:
        rows = self._run(f"SELECT selection, token FROM {self._t(OWED)} WHERE target = ? "
                         "ORDER BY selection", [target])
        return {r[0]: r[1] for r in rows}

    def settle(self, target: str, built: dict[str, str]) -> None:
        """Forget the marks a build covered; marks made since (another token) stay."""
        table = self._t(OWED)
        with self._transaction():
            for selection, token in built.items():
                self._run(f"DELETE FROM {table} WHERE target = ? AND selection = ? AND token = ?",
                          [target, selection, token])


def _after(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def qmark_to_format(sql: str) -> str:
    """`?` placeholders as the Snowflake connector's `%s` (the state SQL holds no other `?`
    nor `%`)."""
    return sql.replace("?", "%s")
