"""The DuckDB warehouse: the embedded default, one file on disk."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.context import RunContext
from framework.errors import FrameworkError, ServiceError, StageError
from framework.faults import checkpoint
from framework.locks import warehouse_lock
from framework.settings.targets import Target
from framework.spec.columns import framework_column_clash
from framework.stages.load import (
    LEDGER,
    LOADED,
    QUARANTINED,
    RELEASED,
    REPLACED_TABLE,
    Loaded,
    as_files,
    deleted_keys_table,
    effective_disposition,
    newer_batch,
    now_as_load_id,
    quote,
    soft_deleted,
)
from framework.stages.load.state import STATE_SCHEMA, SharedState

if TYPE_CHECKING:
    import duckdb


class DuckDBWarehouse:
    def __init__(self, target: Target, wait: float | None = None) -> None:
        import duckdb

        path = self.path = target.warehouse.path
        if not path:
            raise ServiceError("warehouse", "the DuckDB target needs a 'path' (DUCKDB_PATH)")
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        limit = memory_limit()  # a bad FRAMEWORK_DUCKDB_MEMORY fails before the file is taken
        # DuckDB allows one process per file: another run (a parallel Airflow task) waits its
        # turn here, until close(), instead of failing to open the file.
        self._turn = ExitStack()
        self._turn.enter_context(warehouse_lock(target, wait))
        try:
            self.con = connect(path)
        except duckdb.Error as exc:
            self._turn.close()
            raise ServiceError(f"warehouse {path}", str(exc).splitlines()[0]) from None
        try:
            self._x("SET TimeZone = 'UTC'")
            # Bounded memory: big merges spill to disk instead of growing the process.
            self._x(f"SET memory_limit = '{limit}'")
            self._x("SET preserve_insertion_order = false")
        except duckdb.Error as exc:  # a setting DuckDB refuses: let the file go, one line
            self.close()
            raise ServiceError(f"warehouse {path}", str(exc).splitlines()[0]) from None
        self._registered = False
        self._ready: set[str] = set()
        # Shared with for_thread() twins: one at a time creates a ledger or a state table.
        self._creating = threading.Lock()
        self._state_ready: set[str] = set()

    def for_thread(self) -> DuckDBWarehouse:
        """A handle on the same database for another thread (`run --threads N`): a DuckDB
        connection is not safe to share between threads, a cursor of it is its own connection
        (own transactions, own temp views). The file's turn stays with this warehouse; the twin
        must be closed before it."""
        twin = copy.copy(self)
        twin.con = self.con.cursor()
        twin._turn = ExitStack()
        return twin

    def _x(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Execute and fetch everything: DuckDB refuses new work beside an unfinished result."""
        return self.con.execute(sql, params).fetchall()

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self._turn.close()

    def shared_state(self, own_session: bool = False) -> SharedState:
        """Leases, run records and owed models (framework/stages/load/state.py); with
        `own_session`, over a cursor of its own, for another thread (a lease's heartbeat)."""
        import duckdb

        con = self.con.cursor() if own_session else self.con

        def run(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
            try:
                return con.execute(sql, params).fetchall()
            except duckdb.Error as exc:
                raise ServiceError(f"warehouse {self.path}", str(exc).splitlines()[0]) from None

        @contextmanager
        def transaction() -> Iterator[None]:
            run("BEGIN TRANSACTION", [])
            try:
                yield
                run("COMMIT", [])
            except BaseException:
                with suppress(ServiceError):
                    run("ROLLBACK", [])
                raise

        return SharedState(run, lambda name: f"{quote(STATE_SCHEMA)}.{quote(name)}", transaction,
                           con.close if own_session else _nothing, creating=self._creating,
                           ready=self._state_ready)

    # -- ledger ---------------------------------------------------------------------------------

    def _ledger(self, schema: str) -> str:
        ledger = f"{quote(schema)}.{LEDGER}"
        if schema in self._ready:
            return ledger
        with self._creating:  # twins at once would conflict on the catalog
            if schema in self._ready:
                return ledger
            self._x(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            self._x(
                f"CREATE TABLE IF NOT EXISTS {ledger} (pipeline VARCHAR, load_id VARCHAR, "
                "status VARCHAR, row_count BIGINT, recorded_at TIMESTAMP, note VARCHAR, "
                "fingerprint VARCHAR, PRIMARY KEY (pipeline, load_id))")
            # A ledger made before quarantines blocked their pipeline has no note column, one
            # made before compiled pipelines no fingerprint: added, its rows kept.
            self._x(f"ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS note VARCHAR")
            self._x(f"ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS fingerprint VARCHAR")
            self._ready.add(schema)
        return ledger

    def done_batches(self, ctx: RunContext) -> set[str]:
        ledger = self._ledger(ctx.spec.warehouse.db_schema)
        rows = self._x(f"SELECT load_id FROM {ledger} WHERE pipeline = ?", [ctx.spec.name])
        return {r[0] for r in rows}

    def record_quarantine(self, ctx: RunContext, load_id: str, rows: int, note: str = "") -> None:
        import duckdb

        ledger = self._ledger(ctx.spec.warehouse.db_schema)
        # One transaction: a batch quarantined on replay replaces its `loaded` row, and losing
        # both would let the next run load it again as new (an append batch twice).
        self._x("BEGIN TRANSACTION")
        try:
            self._record(ledger, ctx.spec.name, load_id, QUARANTINED, rows, note,
                         ctx.compiled.fingerprint)
            self._x("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):  # a failed COMMIT has no transaction left
                self._x("ROLLBACK")
            raise

    def quarantined(self, ctx: RunContext) -> dict[str, str]:
        ledger = self._ledger(ctx.spec.warehouse.db_schema)
        rows = self._x(f"SELECT load_id, coalesce(note, '') FROM {ledger} WHERE pipeline = ? "
                       "AND status = ? ORDER BY load_id", [ctx.spec.name, QUARANTINED])
        return {r[0]: r[1] for r in rows}

    def release(self, ctx: RunContext, load_id: str, note: str) -> bool:
        ledger = self._ledger(ctx.spec.warehouse.db_schema)
        row = self._x(f"UPDATE {ledger} SET status = ?, note = ?, recorded_at = now()::TIMESTAMP "
                      "WHERE pipeline = ? AND load_id = ? AND status = ?",
                      [RELEASED, note, ctx.spec.name, load_id, QUARANTINED])[0]
        return bool(row and row[0])

    def _record(self, ledger: str, pipeline: str, load_id: str, status: str, rows: int,
                note: str = "", fingerprint: str | None = None) -> None:
        # Delete, then insert: a ledger made by hand (or by an old version) may lack the key.
        self._x(f"DELETE FROM {ledger} WHERE pipeline = ? AND load_id = ?", [pipeline, load_id])
        self._x(f"INSERT INTO {ledger} (pipeline, load_id, status, row_count, recorded_at, note, "
                "fingerprint) VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?)",
                [pipeline, load_id, status, rows, note, fingerprint])

    def latest_batch(self, ctx: RunContext) -> str | None:
        ledger = self._ledger(ctx.spec.warehouse.db_schema)
        rows = self._x(f"SELECT max(load_id) FROM {ledger} WHERE pipeline = ?", [ctx.spec.name])
        return rows[0][0] if rows else None

    def latest_delete(self, ctx: RunContext) -> str | None:
        deleted = self._deleted_table(ctx)
        rows = self._x(f"SELECT max(_deleted_by) FROM {deleted}") if deleted else None
        return rows[0][0] if rows else None

    def fingerprints(self, ctx: RunContext) -> dict[str, str | None]:
        ledger = self._ledger(ctx.spec.warehouse.db_schema)
        rows = self._x(f"SELECT load_id, fingerprint FROM {ledger} WHERE pipeline = ? AND "
                       "status = ? ORDER BY load_id", [ctx.spec.name, LOADED])
        return {r[0]: r[1] for r in rows}

    def _loaded_rows(self, ledger: str, pipeline: str, load_id: str) -> int | None:
        row = self._x(f"SELECT row_count FROM {ledger} WHERE pipeline = ? AND load_id = ? "
                      "AND status = ?", [pipeline, load_id, LOADED])
        return int(row[0][0]) if row else None

    def _newer_batch(self, ledger: str, pipeline: str, load_id: str,
                     replacing: bool = False) -> str | None:
        """The newest batch loaded after `load_id` (`replacing`: one that replaced the table)."""
        only = " AND note = ?" if replacing else ""
        row = self._x(f"SELECT max(load_id) FROM {ledger} WHERE pipeline = ? AND status = ? "
                      f"AND load_id > ?{only}",
                      [pipeline, LOADED, load_id, *([REPLACED_TABLE] if replacing else [])])
        return str(row[0][0]) if row and row[0][0] else None

    def count(self, ctx: RunContext) -> int:
        row = self._x(f"SELECT count(*) FROM {self.table_name(ctx)}")[0]
        return int(row[0]) if row else 0

    def table_name(self, ctx: RunContext) -> str:
        return ctx.compiled.warehouse.quoted_table  # quoted as this warehouse stores names

    # -- load -----------------------------------------------------------------------------------

    def load(self, ctx: RunContext, load_id: str, processed: str | list[str], *,
             replay: bool = False, unique_keys: bool = False) -> Loaded:
        import duckdb

        spec = ctx.spec
        if ctx.lake.target.is_s3 and not self._registered:
            try:
                self.con.register_filesystem(ctx.lake.fs)
            except duckdb.InvalidInputException as exc:  # by a twin: the database holds it
                if "already been registered" not in str(exc):
                    raise
            self._registered = True
        ledger = self._ledger(spec.warehouse.db_schema)
        table = self.table_name(ctx)
        self._x("BEGIN TRANSACTION")
        try:
            # The ledger is checked inside the transaction that writes the rows: a load retried
            # after its COMMIT (the acknowledgement lost) finds its own ledger row, and stops.
            done = self._loaded_rows(ledger, spec.name, load_id)
            if done is not None and not replay:
                self._x("ROLLBACK")
                return Loaded(done, skipped="already loaded")
            files = ", ".join(map(sql_text, as_files(processed)))
            # A view, not a copy: the batch streams from its files into the merge (flat memory);
            # now() is the transaction's start, so every row gets the same _loaded_at.
            batch = (f"SELECT *, '{_safe(load_id)}' AS _load_id, now()::TIMESTAMP AS _loaded_at "
                     f"FROM read_parquet([{files}])")
            self._x(f"CREATE OR REPLACE TEMP VIEW staged AS {batch}")
            # The batch's own columns, then the two it gets here (the filter below keeps them)
            batch_columns = self._columns("staged")
            clash = framework_column_clash(list(batch_columns)[:-2])
            if clash:
                raise StageError(spec.name, "load", f"the batch's {clash}")
            staged_rows = int(self._x("SELECT count(*) FROM staged")[0][0])
            live = self._not_deleted_since(ctx, load_id)
            if live:  # keys deleted after this batch was read stay deleted
                self._x(f"CREATE OR REPLACE TEMP VIEW staged AS SELECT * FROM ({batch}) AS s "
                        f"WHERE {live}")
            disposition = effective_disposition(ctx, load_id)
            # The table is a newer snapshot already: from any batch of a replace pipeline, or
            # from a full refresh (an older append batch would double, an older merge batch
            # bring back rows deleted since).
            newer = self._newer_batch(ledger, spec.name, load_id, disposition != "replace")
            if newer:
                self._x("ROLLBACK")
                return Loaded(staged_rows, skipped=f"batch {newer} replaced the table since")
            exists = self.exists(spec.warehouse.db_schema, spec.table)
            new_columns: list[str] = []
            if exists and disposition != "replace":
                new_columns = self._apply_contract(ctx, table, batch_columns)
            columns = [c for c in batch_columns if c not in new_columns or
                       spec.warehouse.contract != "discard"]
            if disposition == "replace" or not exists:
                # A first load or a full refresh: the table is the batch (for merge pipelines
                # the latest live row per key), no merge needed.
                source = ("SELECT * FROM staged" if spec.warehouse.write_disposition != "merge"
                          else self._latest(ctx, unique_keys))
                deleted = soft_deleted(ctx, "s") if spec.warehouse.write_disposition == "merge" \
                    else None
                if deleted:
                    source = f"SELECT * FROM ({source}) AS s WHERE NOT {deleted}"
                self._x(f"CREATE OR REPLACE TABLE {table} AS {source}")
                if deleted:
                    self._remember_soft_deletes(ctx, deleted)
                forgotten = self._deleted_keys(ctx) if disposition == "replace" else None
                if forgotten:  # no batch older than this one may load after it
                    self._x(f"DELETE FROM {forgotten} WHERE _deleted_by < '{_safe(load_id)}'")
                if spec.deletes is not None and spec.deletes.reconcile == "mark":
                    # The column models read is there from the first load on, and a full
                    # refresh keeps it (before, it came with the first mark, and went again).
                    self._x(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS _deleted_at TIMESTAMP")
                inserted, updated = int(self._x(f"SELECT count(*) FROM {table}")[0][0]), 0
            elif disposition == "append":
                cols = ", ".join(map(quote, columns))
                if replay:  # the batch replaces its own earlier rows instead of doubling them
                    self._x(f"DELETE FROM {table} WHERE _load_id = '{_safe(load_id)}'")
                row = self._x(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM staged")[0]
                inserted, updated = int(row[0]) if row else 0, 0
            else:
                inserted, updated = self._merge(ctx, table, columns, unique_keys)
            self._record(ledger, spec.name, load_id, LOADED, staged_rows,
                         REPLACED_TABLE if disposition == "replace" else "",
                         ctx.compiled.fingerprint)
            checkpoint("load")
            self._x("COMMIT")
        except BaseException as exc:
            with suppress(duckdb.Error):  # a failed COMMIT has no transaction left to roll back
                self._x("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise StageError(spec.name, "load", str(exc).splitlines()[0]) from None
            raise
        finally:
            self._x("DROP VIEW IF EXISTS staged")
        return Loaded(staged_rows, inserted, updated, new_columns)

    def _merge(self, ctx: RunContext, table: str, columns: list[str],
               unique_keys: bool) -> tuple[int, int]:
        keys = ctx.spec.source.primary_key
        latest = self._latest(ctx, unique_keys)
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        # An older version never overwrites a newer one, so replaying a batch is harmless.
        newer = f" AND {newer_batch('s._load_id', 't._load_id')}"
        sets = ", ".join(f"{quote(c)} = s.{quote(c)}" for c in columns if c not in keys)
        cols = ", ".join(map(quote, columns))
        values = ", ".join(f"s.{quote(c)}" for c in columns)
        deleted = soft_deleted(ctx, "s")
        remove = f"WHEN MATCHED{newer} AND {deleted} THEN DELETE " if deleted else ""
        keep = f" AND NOT {deleted}" if deleted else ""
        if "_deleted_at" in self._columns(table):  # a key that comes back is live again
            sets += ", _deleted_at = NULL"
        if deleted:
            self._remember_soft_deletes(ctx, deleted)
        before = int(self._x(f"SELECT count(*) FROM {table}")[0][0])
        merged = self._x(
            f"MERGE INTO {table} AS t USING ({latest}) AS s ON {on} {remove}"
            f"WHEN MATCHED{newer} THEN UPDATE SET {sets} "
            f"WHEN NOT MATCHED{keep} THEN INSERT ({cols}) VALUES ({values})")[0]
        after = int(self._x(f"SELECT count(*) FROM {table}")[0][0])
        total = int(merged[0]) if merged else 0
        return after - before, total - (after - before)

    def _latest(self, ctx: RunContext, unique_keys: bool) -> str:
        """The batch with one row per key: the latest by cursor (a key seen twice in a batch)."""
        if unique_keys:  # validate counted them
            return "SELECT * FROM staged"
        keys = ", ".join(map(quote, ctx.spec.source.primary_key))
        # Most batches hold each key once: a distinct count (1.3 s at 10M rows) spares them the
        # window over the whole batch (19 s at 10M rows, spilling; benchmarks/profile.md).
        rows, distinct = self._x(f"SELECT count(*), count(DISTINCT row({keys})) FROM staged")[0]
        if rows == distinct:
            return "SELECT * FROM staged"
        cursor = ctx.spec.cursor
        order = f"ORDER BY {quote(cursor)} DESC NULLS LAST" if cursor else ""
        return f"SELECT * FROM staged QUALIFY row_number() OVER (PARTITION BY {keys} {order}) = 1"

    def _apply_contract(self, ctx: RunContext, table: str, batch: dict[str, str]) -> list[str]:
        existing = self._columns(table)
        new = [c for c in batch if c not in existing]
        retyped = {c: t for c, t in batch.items() if c in existing and not fits(t, existing[c])
                   and c not in ("_load_id", "_loaded_at")}
        contract = ctx.spec.warehouse.contract
        if retyped:
            self._retype(ctx, table, existing, retyped)
        if not new:
            return []
        if contract == "freeze":
            raise StageError(ctx.spec.name, "load", f"new column(s) {', '.join(new)} not in "
                             f"{table}; warehouse.contract is 'freeze' (set 'evolve' to add them)")
        if contract == "evolve":
            for column in new:
                self._x(f"ALTER TABLE {table} ADD COLUMN {quote(column)} {batch[column]}")
            ctx.warn(f"added column(s) {', '.join(new)} to {table}")
        return new

    def _retype(self, ctx: RunContext, table: str, existing: dict[str, str],
                retyped: dict[str, str]) -> None:
        """Columns whose type changed in the source. Under 'evolve' a column takes a type that
        holds its rows and the batch's exactly: the batch's when every row converts to it, a
        decimal with the digits of both, else its own when the batch's values fit it (text
        keeps text when the source turns it to numbers). Under 'discard' the table keeps its
        types, and a batch whose values they would round or refuse stops. Never a type that
        rounds the rows already loaded. All are checked before any is altered."""
        contract = ctx.spec.warehouse.contract
        changes = ", ".join(f"{c} ({existing[c]} -> {t})" for c, t in retyped.items())
        shown = f"{ctx.spec.warehouse.db_schema}.{ctx.spec.table}"
        if contract == "freeze":
            raise StageError(ctx.spec.name, "load", f"changed column type(s) {changes} in "
                             f"{table}; warehouse.contract is 'freeze'")
        altered: dict[str, str] = {}
        for column, kind in retyped.items():
            old = existing[column]
            wider = self._wider(table, column, old, kind) if contract == "evolve" else None
            if wider:
                altered[column] = wider
                continue
            example = self._not_converting("staged", column, kind, old)
            if example is None:
                continue  # the table's type holds the batch's values exactly
            why = ("warehouse.contract is 'discard', which keeps the table's types (set "
                   "'evolve' to widen it)" if contract == "discard" else
                   "no type holds both its rows and the batch's exactly; cast the column to one "
                   "type in source.query or the transform")
            raise StageError(ctx.spec.name, "load", f"column {column} changed type in the "
                             f"source ({old} -> {kind}); the {old} of {shown} would change "
                             f"the batch's value {example}: {why}")
        for column, kind in altered.items():
            self._x(f"ALTER TABLE {table} ALTER COLUMN {quote(column)} SET DATA TYPE {kind}")
        if altered:
            ctx.warn("changed column type(s) " + ", ".join(
                f"{c} ({existing[c]} -> {t})" for c, t in altered.items()) + f" in {table}")

    def _wider(self, table: str, column: str, old: str, new: str) -> str | None:
        """A type for `column` that holds its rows (`old`) and the batch's values (`new`)
        exactly, other than `old`: for numbers a decimal with the integer digits and the scale
        of both (at most 38 digits), else `new` when every row converts to it and back
        unchanged; None when there is none, or `old` is text (the column keeps `old` if the
        batch's values fit it)."""
        if old in INTEGERS and new in INTEGERS:  # an integer stays an integer, the wider one
            return new if INTEGERS.index(new) > INTEGERS.index(old) else None
        merged = merged_decimal(old, new)
        if merged is not None:
            return merged if merged != old else None
        if old == "VARCHAR" or (_digits(old) and _digits(new)):
            return None  # text stays text (no scan of every row, every load); numbers past 38
        if self._not_converting(table, column, old, new) is None:
            return new
        return None

    def _not_converting(self, relation: str, column: str, have: str, kind: str) -> str | None:
        """A value of `column` (of type `have`) in `relation` that `kind` does not hold exactly
        (it converts to `kind` and back to another value, or not at all), as text; None if
        there is none."""
        c = quote(column)
        row = self._x(f"SELECT CAST({c} AS VARCHAR) FROM {relation} WHERE {c} IS NOT NULL AND "
                      f"TRY_CAST(TRY_CAST({c} AS {kind}) AS {have}) IS DISTINCT FROM {c} LIMIT 1")
        return repr(row[0][0]) if row else None

    def _columns(self, relation: str) -> dict[str, str]:
        rows = self._x(f"DESCRIBE {relation}")
        return {r[0]: r[1] for r in rows}

    def exists(self, schema: str, table: str) -> bool:
        row = self._x(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
            "table_name = ?", [schema, table])[0]
        return bool(row and row[0])

    def keys(self, ctx: RunContext, columns: list[str]) -> Any:
        """The live rows' `columns` as an Arrow table, for reconcile; None if no table."""
        if not self.exists(ctx.spec.warehouse.db_schema, ctx.spec.table):
            return None
        table = self.table_name(ctx)
        live = " WHERE _deleted_at IS NULL" if "_deleted_at" in self._columns(table) else ""
        return self.con.sql(f"SELECT {', '.join(map(quote, columns))} FROM {table}{live}"
                            ).to_arrow_table()

    def apply_deletes(self, ctx: RunContext, missing: Any, action: str,
                      as_of: str | None = None) -> int:
        """Remove, or mark in `_deleted_at`, the rows whose keys are in `missing` (Arrow)."""
        import duckdb

        if missing is None or missing.num_rows == 0:
            return 0
        table = self.table_name(ctx)
        keys = ctx.spec.source.primary_key
        self.con.register("gone", missing.select(keys))
        match = " AND ".join(f"CAST(t.{quote(k)} AS VARCHAR) = CAST(g.{quote(k)} AS VARCHAR)"
                             for k in keys)
        live = " AND t._deleted_at IS NULL" if action == "mark" else ""
        try:
            if action == "mark":
                self._x(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS _deleted_at TIMESTAMP")
            self._x("BEGIN TRANSACTION")
            try:
                self._remember_deleted(ctx, "SELECT " + ", ".join(f"t.{quote(k)}" for k in keys) +
                                       f", '{_safe(as_of or now_as_load_id())}' FROM {table} AS t "
                                       f"SEMI JOIN gone AS g ON {match}{live}")
                if action == "mark":
                    row = self._x(f"UPDATE {table} AS t SET _deleted_at = now()::TIMESTAMP "
                                  f"FROM gone AS g WHERE {match}{live}")[0]
                else:
                    row = self._x(f"DELETE FROM {table} AS t USING gone AS g WHERE {match}")[0]
                self._x("COMMIT")
            except BaseException:
                with suppress(duckdb.Error):
                    self._x("ROLLBACK")
                raise
        finally:
            self.con.unregister("gone")
        return int(row[0]) if row else 0

    def _deleted_keys(self, ctx: RunContext, create: bool = False) -> str | None:
        """The table of the keys the framework deleted, its key columns as the landing table
        types them now (a key widened or turned to text since; a primary key changed since
        adds its new columns: older keys hold NULL there, and match nothing); None if there is
        none and not `create`."""
        spec = ctx.spec
        schema, name, keys = spec.warehouse.db_schema, deleted_keys_table(spec.table), \
            spec.source.primary_key
        deleted = f"{quote(schema)}.{quote(name)}"
        if not self.exists(schema, name):
            if create:
                self._x(f"CREATE TABLE {deleted} AS SELECT {', '.join(map(quote, keys))}, "
                        f"''::VARCHAR AS _deleted_by FROM {self.table_name(ctx)} WHERE false")
            return deleted if create else None
        have = self._columns(deleted)
        if not self.exists(spec.warehouse.db_schema, spec.table):  # dropped by hand
            return deleted
        types = self._columns(self.table_name(ctx))
        for key in (k for k in keys if k in types and k not in have):
            self._x(f"ALTER TABLE {deleted} ADD COLUMN {quote(key)} {types[key]}")
        # Widened only (a full refresh may read a key narrower again: the kept keys stay)
        for key in (k for k in keys if k in have and k in types and have[k] != types[k]
                    and (fits(have[k], types[k]) or types[k] == "VARCHAR")):
            self._x(f"ALTER TABLE {deleted} ALTER COLUMN {quote(key)} SET DATA TYPE {types[key]}")
        return deleted

    def _deleted_table(self, ctx: RunContext) -> str | None:
        """The table of the keys the framework deleted, quoted; None if there is none."""
        schema, name = ctx.spec.warehouse.db_schema, deleted_keys_table(ctx.spec.table)
        return f"{quote(schema)}.{quote(name)}" if self.exists(schema, name) else None

    def _remember_soft_deletes(self, ctx: RunContext, deleted: str) -> None:
        """The keys the batch marks deleted (`deleted`: SQL over its rows `s`), as of it."""
        keys = ", ".join(f"s.{quote(k)}" for k in ctx.spec.source.primary_key)
        self._remember_deleted(ctx, f"SELECT {keys}, s._load_id FROM staged AS s WHERE {deleted}")

    def _remember_deleted(self, ctx: RunContext, rows: str) -> None:
        """Keep the keys `rows` selects (the key columns, then the delete's time as a load id)."""
        deleted = self._deleted_keys(ctx, create=True)
        keys = ", ".join(map(quote, ctx.spec.source.primary_key))
        self._x(f"INSERT INTO {deleted} ({keys}, _deleted_by) {rows}")

    def _not_deleted_since(self, ctx: RunContext, load_id: str) -> str | None:
        """SQL true for a row `s` of the batch `load_id` unless the framework deleted its key
        after the batch was read; None when it deleted none since."""
        deleted = self._deleted_table(ctx)
        later = f"_deleted_by > '{_safe(load_id)}'"
        if deleted is None or not self._x(f"SELECT 1 FROM {deleted} WHERE {later} LIMIT 1"):
            return None
        self._deleted_keys(ctx)  # its keys typed as the landing table's now, to compare them
        on = " AND ".join(f"d.{quote(k)} = s.{quote(k)}" for k in ctx.spec.source.primary_key)
        return f"NOT EXISTS (SELECT 1 FROM {deleted} AS d WHERE {on} AND d.{later})"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._x(sql)


INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19}


def _digits(kind: str) -> tuple[int, int] | None:
    """An integer or decimal type's digits before and after the point; None for other types."""
    if kind in _DIGITS:
        return _DIGITS[kind], 0
    match = _DECIMAL.fullmatch(kind)
    return (int(match[1]) - int(match[2]), int(match[2])) if match else None


def merged_decimal(old: str, new: str) -> str | None:
    """The decimal that holds every value of two integer or decimal types (the integer digits of
    the wider, the scale of the finer); None for other types or past DuckDB's 38 digits."""
    a, b = _digits(old), _digits(new)
    if a is None or b is None:
        return None
    whole, scale = max(a[0], b[0]), max(a[1], b[1])
    return f"DECIMAL({whole + scale},{scale})" if whole + scale <= 38 else None


def fits(batch_type: str, column_type: str) -> bool:
    """Whether every value of `batch_type` loads exactly into a column of `column_type`: the
    same type, a narrower integer, or a decimal with no more digits on either side of the
    point. A batch narrower than its column (an older batch replayed, say) changes nothing."""
    if batch_type == column_type:
        return True
    if batch_type in INTEGERS and column_type in INTEGERS:
        return INTEGERS.index(batch_type) <= INTEGERS.index(column_type)
    batch, column = _DECIMAL.fullmatch(batch_type), _DECIMAL.fullmatch(column_type)
    if batch_type in _DIGITS and column:  # an integer into a decimal with room for its digits
        return _DIGITS[batch_type] <= int(column[1]) - int(column[2])
    if batch and column:
        (p, s), (cp, cs) = map(int, batch.groups()), map(int, column.groups())
        return s <= cs and p - s <= cp - cs
    return False


def sql_text(value: str) -> str:
    """A string literal for DuckDB (a path may hold a quote: /home/o'neil/...)."""
    return "'" + value.replace("'", "''") + "'"


def memory_limit() -> str:
    """DuckDB's memory cap for the transform and the warehouse (`FRAMEWORK_DUCKDB_MEMORY`)."""
    import os

    value = os.environ.get("FRAMEWORK_DUCKDB_MEMORY", "").strip() or "384MB"
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|%)", value, re.IGNORECASE):
        raise FrameworkError(f"environment variable FRAMEWORK_DUCKDB_MEMORY={value!r}: expected "
                             "a size such as 384MB, 2GB or 50%")
    return value


def connect(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection without the progress bar: DuckDB prints one on stdout for a query
    past two seconds, into `run --json`'s output and an orchestrator's task log. Cursors of it
    inherit the setting."""
    import duckdb

    con = duckdb.connect(database)
    con.execute("SET enable_progress_bar = false")
    return con


def scratch_connection(state_dir: Path) -> Any:
    """An in-memory DuckDB for a stage's own work: UTC, capped at `FRAMEWORK_DUCKDB_MEMORY`
    and spilling into the state folder (DuckDB's default is the working directory)."""
    limit = memory_limit()
    con = connect()
    try:
        # Naive timestamps mean UTC everywhere; casts from TIMESTAMPTZ must not shift them.
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = {sql_text(limit)}")
        con.execute(f"SET temp_directory = {sql_text(str(state_dir / 'duckdb_tmp'))}")
    except BaseException:
        con.close()
        raise
    return con


def _safe(load_id: str) -> str:
    if not re.fullmatch(r"[0-9.]+", load_id):
        raise ValueError(f"unexpected load id {load_id!r}")
    return load_id


def _nothing() -> None:
    """Closing a shared state over the warehouse's own connection leaves it open."""
