"""The Snowflake warehouse, on snowflake-connector-python: stage, COPY INTO, upsert, ledger.

A batch is copied into a transient staging table `<schema>._stage_<table>`: from the external
stage over the lake when `stage_url` is set (production: `COPY INTO ... FROM @stage/path`),
otherwise PUT to the internal stage `<schema>._framework_stage` first. The landing table's rows
and the ledger row are then written in one transaction (BEGIN ... COMMIT).

Snowflake commits implicitly before and after every DDL statement, so DDL never runs inside that
transaction: the landing table, new columns (`contract: evolve`), the ledger and the staging
table are created first. They are harmless if the load then fails: a retry finds them and
loads the batch again, and the batch counts as loaded only once its ledger row is committed.

The upsert is `UPDATE ... FROM` plus `INSERT ... WHERE NOT EXISTS` rather than `MERGE`: the
same rows and counts, but it also runs inside a transaction on fakesnow (the emulator used in
tests), whose MERGE fails inside BEGIN ... COMMIT.

A batch column wider than its landing column follows under `contract: evolve` only where
Snowflake's `ALTER COLUMN ... SET DATA TYPE` can widen it in place (a longer VARCHAR or BINARY, a
NUMBER with more precision at the same scale); anything else (a NUMBER with another scale,
another type) stops the load, since the only other ways are a rewrite of the table or lost data.
A narrower batch column loads into the wider landing column as it is.

Every identifier the loader writes is quoted upper-case (`ident`): `"ORDERS"` is the table
Snowflake stores for an unquoted `orders`, so dbt sources that name `landing.orders` unquoted
resolve, and a name Snowflake reserves (`order`, `end`, ...) or cannot read bare (a space, a
quote) needs no list of exceptions that could fall behind Snowflake's own.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from framework.context import RunContext
from framework.errors import ServiceError, StageError
from framework.faults import checkpoint
from framework.settings.envvars import redact
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
    soft_deleted,
)
from framework.stages.load.state import STATE_SCHEMA, SharedState, qmark_to_format

INTERNAL_STAGE = "_framework_stage"
INLINE_OPT_IN = "FRAMEWORK_SNOWFLAKE_INLINE_CREDENTIALS"
INLINE_REFUSED = (
    "the external stage over stage_url (SNOWFLAKE_STAGE_URL) needs a storage integration "
    "(SNOWFLAKE_STORAGE_INTEGRATION); the lake's AWS keys are not written into CREATE STAGE, "
    "since Snowflake would store the secret key in the stage and its query history (set "
    f"{INLINE_OPT_IN}=yes to accept that)")
INLINE_WARNING = (
    f"{INLINE_OPT_IN}=yes: the lake's AWS secret key is written into CREATE STAGE, and Snowflake "
    "stores it in the stage and its query history; prefer a storage integration "
    "(SNOWFLAKE_STORAGE_INTEGRATION)")
# Parquet logical types (timestamps, decimals, dates) load as such; binary stays binary.
PARQUET_FORMAT = "FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE BINARY_AS_TEXT = FALSE)"
META_COLUMNS = {"_load_id": "VARCHAR", "_loaded_at": "TIMESTAMP_NTZ(6)"}


class SnowflakeWarehouse:
    def __init__(self, target: Target, *, connect_options: Mapping[str, Any] | None = None) -> None:
        """Connect now, so a wrong account or password fails before any batch is touched.

        `connect_options` go to `snowflake.connector.connect` as they are (timeouts, tests).
        """
        import snowflake.connector

        settings = target.warehouse
        self.target = target
        self._connect_options = dict(connect_options or {})
        self._secrets = [s.get_secret_value() for s in (settings.password,
                                                        settings.private_key_passphrase) if s]
        where = f"account {settings.account or '?'}"
        if settings.host:
            where += f", {settings.protocol or 'https'}://{settings.host}:{settings.port or 443}"
        self.service = f"warehouse snowflake ({where})"
        problem = missing_settings(settings)
        if problem:
            raise ServiceError(self.service, problem)
        params: dict[str, Any] = {
            "account": settings.account, "user": settings.user, "database": settings.database,
            # Naive timestamps are UTC wall-clock times everywhere in the framework.
            "session_parameters": {"TIMEZONE": "UTC"},
            "login_timeout": 60,
        }
        if settings.private_key_path:  # key-pair auth wins, as in dbt's profile
            params["private_key_file"] = settings.private_key_path
            if settings.private_key_passphrase:
                params["private_key_file_pwd"] = settings.private_key_passphrase.get_secret_value()
        else:
            assert settings.password is not None
            params["password"] = settings.password.get_secret_value()
        for name in ("role", "warehouse", "host", "port", "protocol"):
            if getattr(settings, name):
                params[name] = getattr(settings, name)
        params.update(connect_options or {})
        self._params = params  # a heartbeat's own session connects again with them
        try:
            self.con = snowflake.connector.connect(**params)
        except (snowflake.connector.errors.Error, OSError, ValueError, TypeError) as exc:
            raise ServiceError(self.service, self._describe(exc)) from None
        self._ready: set[str] = set()
        self._stages: set[str] = set()
        # The table of deleted keys of (table, key columns): whether it exists, as looked up.
        self._deleted_known: dict[tuple[str, tuple[str, ...]], bool] = {}

    def for_thread(self) -> SnowflakeWarehouse:
        """Another thread's own connection (`run --threads N`): a session's transaction and
        staging table must not be shared between threads."""
        return SnowflakeWarehouse(self.target, connect_options=self._connect_options)

    def close(self) -> None:
        with suppress(Exception):  # closing a dead connection is not an error
            self.con.close()

    def shared_state(self, own_session: bool = False) -> SharedState:
        """Leases, run records and owed models (framework/stages/load/state.py); with
        `own_session`, over a connection of its own: a Snowflake session has one transaction,
        and a heartbeat from another thread must not join a load's BEGIN ... COMMIT."""
        import snowflake.connector

        con = self.con
        if own_session:
            try:
                con = snowflake.connector.connect(**self._params)
            except (snowflake.connector.errors.Error, OSError) as exc:
                raise ServiceError(self.service, self._describe(exc)) from None

        def run(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
            try:
                cursor = con.cursor()
                cursor.execute(qmark_to_format(sql), tuple(params))
                return list(cursor.fetchall()) if cursor.description else []
            except (snowflake.connector.errors.Error, OSError) as exc:
                raise ServiceError(self.service, self._describe(exc)) from None

        @contextmanager
        def transaction() -> Iterator[None]:
            run("BEGIN", [])
            try:
                yield
                run("COMMIT", [])
            except BaseException:
                with suppress(Exception):
                    run("ROLLBACK", [])
                raise

        return SharedState(run, lambda name: f"{ident(STATE_SCHEMA)}.{ident(name)}", transaction,
                           con.close if own_session else _nothing)

    # -- ledger ---------------------------------------------------------------------------------

    def _ledger(self, schema: str) -> str:
        ledger = f"{ident(schema)}.{ident(LEDGER)}"
        if schema not in self._ready:
            self._sql(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            self._sql(f"CREATE TABLE IF NOT EXISTS {ledger} (pipeline VARCHAR, load_id VARCHAR, "
                      "status VARCHAR, row_count NUMBER(38,0), recorded_at TIMESTAMP_NTZ(6), "
                      "note VARCHAR, fingerprint VARCHAR)")
            # A ledger made before quarantines blocked their pipeline has no note column, one
            # made before compiled pipelines no fingerprint: added, its rows kept.
            self._sql(f"ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS note VARCHAR")
            self._sql(f"ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS fingerprint VARCHAR")
            self._ready.add(schema)
        return ledger

    def done_batches(self, ctx: RunContext) -> set[str]:
        with self._errors(ctx):
            ledger = self._ledger(ctx.spec.warehouse.db_schema)
            rows = self._sql(f"SELECT load_id FROM {ledger} WHERE pipeline = %s",
                             (ctx.spec.name,)).fetchall()
        return {r[0] for r in rows}

    def record_quarantine(self, ctx: RunContext, load_id: str, rows: int, note: str = "") -> None:
        with self._errors(ctx):
            ledger = self._ledger(ctx.spec.warehouse.db_schema)
            with self._transaction():
                self._record(ledger, ctx.spec.name, load_id, QUARANTINED, rows, _now(), note,
                             ctx.compiled.fingerprint)

    def quarantined(self, ctx: RunContext) -> dict[str, str]:
        with self._errors(ctx):
            ledger = self._ledger(ctx.spec.warehouse.db_schema)
            rows = self._sql(f"SELECT load_id, coalesce(note, '') FROM {ledger} WHERE pipeline = "
                             "%s AND status = %s ORDER BY load_id",
                             (ctx.spec.name, QUARANTINED)).fetchall()
        return {r[0]: r[1] for r in rows}

    def release(self, ctx: RunContext, load_id: str, note: str) -> bool:
        with self._errors(ctx):
            ledger = self._ledger(ctx.spec.warehouse.db_schema)
            with self._transaction():
                row = self._sql(f"UPDATE {ledger} SET status = %s, note = %s, recorded_at = "
                                f"{_now()} WHERE pipeline = %s AND load_id = %s AND status = %s",
                                (RELEASED, note, ctx.spec.name, load_id, QUARANTINED)).fetchone()
        return bool(row and row[0])

    def _record(self, ledger: str, pipeline: str, load_id: str, status: str, rows: int,
                now: str, note: str = "", fingerprint: str | None = None) -> None:
        """Insert or replace the batch's ledger row (inside the caller's transaction)."""
        self._sql(f"DELETE FROM {ledger} WHERE pipeline = %s AND load_id = %s", (pipeline, load_id))
        self._sql(f"INSERT INTO {ledger} (pipeline, load_id, status, row_count, recorded_at, note, "
                  f"fingerprint) VALUES (%s, %s, %s, %s, {now}, %s, %s)",
                  (pipeline, load_id, status, rows, note, fingerprint))

    def latest_batch(self, ctx: RunContext) -> str | None:
        with self._errors(ctx):
            ledger = self._ledger(ctx.spec.warehouse.db_schema)
            row = self._sql(f"SELECT max(load_id) FROM {ledger} WHERE pipeline = %s",
                            (ctx.spec.name,)).fetchone()
        return row[0] if row else None

    def latest_delete(self, ctx: RunContext) -> str | None:
        with self._errors(ctx):
            deleted = self._deleted_table(ctx)
            row = self._sql(f"SELECT max({ident('_deleted_by')}) FROM {deleted}").fetchone() \
                if deleted else None
        return str(row[0]) if row and row[0] else None

    def fingerprints(self, ctx: RunContext) -> dict[str, str | None]:
        with self._errors(ctx):
            ledger = self._ledger(ctx.spec.warehouse.db_schema)
            rows = self._sql(f"SELECT load_id, fingerprint FROM {ledger} WHERE pipeline = %s "
                             "AND status = %s ORDER BY load_id", (ctx.spec.name, LOADED)).fetchall()
        return {r[0]: r[1] for r in rows}

    def _loaded_rows(self, ledger: str, pipeline: str, load_id: str) -> int | None:
        row = self._sql(f"SELECT row_count FROM {ledger} WHERE pipeline = %s AND load_id = %s "
                        "AND status = %s", (pipeline, load_id, LOADED)).fetchone()
        return int(row[0]) if row else None

    def _newer_batch(self, ledger: str, pipeline: str, load_id: str,
                     replacing: bool = False) -> str | None:
        """The newest batch loaded after `load_id` (`replacing`: one that replaced the table)."""
        only = " AND note = %s" if replacing else ""
        row = self._sql(f"SELECT max(load_id) FROM {ledger} WHERE pipeline = %s AND status = %s "
                        f"AND load_id > %s{only}",
                        (pipeline, LOADED, load_id, *([REPLACED_TABLE] if replacing else []))
                        ).fetchone()
        return str(row[0]) if row and row[0] else None

    def count(self, ctx: RunContext) -> int:
        spec = ctx.spec
        with self._errors(ctx):
            if not self.exists(spec.warehouse.db_schema, spec.table):
                return 0
            row = self._sql(f"SELECT count(*) FROM {self.table_name(ctx)}").fetchone()
        return int(row[0]) if row else 0

    def _column_names(self, ctx: RunContext) -> set[str]:
        rows = self._sql("SELECT column_name FROM information_schema.columns WHERE "
                         "table_schema = %s AND table_name = %s",
                         (stored(ctx.spec.warehouse.db_schema), stored(ctx.spec.table))).fetchall()
        return {str(r[0]).upper() for r in rows}

    def keys(self, ctx: RunContext, columns: list[str]) -> Any:
        """The landing table's `columns` as an Arrow table (lower-case names), for reconcile."""
        import pyarrow as pa

        with self._errors(ctx):
            if not self.exists(ctx.spec.warehouse.db_schema, ctx.spec.table):
                return None
            live = f" WHERE {ident('_deleted_at')} IS NULL" if "_DELETED_AT" in self._column_names(ctx) else ""
            cursor = self._sql(f"SELECT {', '.join(map(ident, columns))} FROM "
                               f"{self.table_name(ctx)}{live}")
            table = cursor.fetch_arrow_all()
        if table is None:
            return None
        return pa.Table.from_arrays(table.columns, names=columns)

    def apply_deletes(self, ctx: RunContext, missing: Any, action: str,
                      as_of: str | None = None) -> int:
        """Remove, or mark in `_deleted_at`, the rows whose keys are in `missing` (Arrow)."""
        keys = ctx.spec.source.primary_key
        if missing is None or missing.num_rows == 0:
            return 0
        table = self.table_name(ctx)
        gone = f"{ident(ctx.spec.warehouse.db_schema)}.{ident('_gone_' + ctx.spec.table)}"
        with self._errors(ctx):
            if action == "mark" and "_DELETED_AT" not in self._column_names(ctx):
                self._sql(f"ALTER TABLE {table} ADD COLUMN {ident('_deleted_at')} TIMESTAMP_NTZ(6)")
            deleted = self._deleted_keys(ctx)
            # The keys in their own column types, compared as values: compared as text, a
            # timestamp key never matched (Snowflake prints '... 00:00:00.000', Python '...
            # 00:00:00'), so its deleted rows stayed.
            self._sql(f"CREATE OR REPLACE TRANSIENT TABLE {gone} AS SELECT "
                      f"{', '.join(ident(k) for k in keys)} FROM {table} WHERE 1 = 0")
            try:
                rows = [tuple(row.values()) for row in missing.select(keys).to_pylist()]
                placeholders = ", ".join(["%s"] * len(keys))
                self._sql_many(f"INSERT INTO {gone} VALUES ({placeholders})", rows)
                match = " AND ".join(f"{table}.{ident(k)} = g.{ident(k)}" for k in keys)
                with self._transaction():
                    names = ", ".join(ident(k) for k in keys)
                    self._sql(f"INSERT INTO {deleted} ({names}, {ident('_deleted_by')}) SELECT "
                              f"{names}, '{_safe(as_of or now_as_load_id())}' FROM {gone}")
                    if action == "remove":
                        row = self._sql(f"DELETE FROM {table} USING {gone} AS g WHERE {match}").fetchone()
                    else:
                        deleted_at = ident("_deleted_at")
                        row = self._sql(f"UPDATE {table} SET {deleted_at} = {_now()} FROM {gone} AS g "
                                        f"WHERE {match} AND {table}.{deleted_at} IS NULL").fetchone()
            finally:
                self._drop_quietly(gone)
        return int(row[0]) if row else 0

    def _deleted_keys(self, ctx: RunContext, create: bool = True) -> str | None:
        """The table of the keys the framework deleted, its key columns as the landing table
        types them now (a key widened or turned to text since, or a primary key changed: the
        table is made again with today's key columns, older keys' rows holding NULL in new
        ones); None if there is none and not `create`. Looked up once per handle. DDL: call
        it outside a transaction, which it would commit."""
        spec = ctx.spec
        schema, name, keys = spec.warehouse.db_schema, deleted_keys_table(spec.table), \
            spec.source.primary_key
        deleted = f"{ident(schema)}.{ident(name)}"
        known = self._deleted_known.get((deleted, tuple(keys)))
        if known is not None and (known or not create):
            return deleted if known else None
        have = self.exists(schema, name)
        if have:
            types = {str(r[0]).upper(): str(r[1])
                     for r in self._sql(f"DESCRIBE TABLE {deleted}")}
            landing = {str(r[0]).upper(): str(r[1])
                       for r in self._sql(f"DESCRIBE TABLE {self.table_name(ctx)}")} \
                if self.exists(schema, spec.table) else {}
            # Widened only (a full refresh may read a key narrower again: the kept keys stay)
            if any(stored(k) in landing and (stored(k) not in types or type_changed(
                    types[stored(k)], landing[stored(k)]) and normalised(
                    types[stored(k)])[0] in (normalised(landing[stored(k)])[0], "NUMBER"))
                   for k in keys):
                columns = ", ".join(
                    f"CAST({ident(k) if stored(k) in types else 'NULL'} AS "
                    f"{landing.get(stored(k), 'VARCHAR')}) AS {ident(k)}" for k in keys)
                self._sql(f"CREATE OR REPLACE TABLE {deleted} AS SELECT {columns}, "
                          f"{ident('_deleted_by')} FROM {deleted}")
        elif create:
            self._sql(f"CREATE TABLE IF NOT EXISTS {deleted} AS SELECT "
                      f"{', '.join(ident(k) for k in keys)}, CAST('' AS VARCHAR) AS "
                      f"{ident('_deleted_by')} FROM {self.table_name(ctx)} WHERE 1 = 0")
        self._deleted_known[(deleted, tuple(keys))] = have or create
        return deleted if have or create else None

    def _deleted_table(self, ctx: RunContext) -> str | None:
        """The table of the keys the framework deleted, quoted; None if there is none."""
        schema, name = ctx.spec.warehouse.db_schema, deleted_keys_table(ctx.spec.table)
        return f"{ident(schema)}.{ident(name)}" if self.exists(schema, name) else None

    def _drop_deleted_since(self, ctx: RunContext, staging: str, load_id: str) -> str | None:
        """Keys the framework deleted after the batch was read stay deleted: their rows leave
        the staged batch. The table of deleted keys, if there is one. Two round trips when
        nothing was deleted since (the usual case), the keys' types aligned only otherwise."""
        deleted = self._deleted_table(ctx)
        later = f"d.{ident('_deleted_by')} > '{_safe(load_id)}'"
        if deleted is not None and self._sql(
                f"SELECT 1 FROM {deleted} AS d WHERE {later} LIMIT 1").fetchone():
            self._deleted_keys(ctx, create=False)  # typed as the landing keys, to compare them
            match = " AND ".join(f"{staging}.{ident(k)} = d.{ident(k)}"
                                 for k in ctx.spec.source.primary_key)
            self._sql(f"DELETE FROM {staging} USING {deleted} AS d WHERE {match} AND {later}")
        return deleted

    def table_name(self, ctx: RunContext) -> str:
        return ctx.compiled.warehouse.quoted_table  # quoted as this warehouse stores names

    # -- load -----------------------------------------------------------------------------------

    def load(self, ctx: RunContext, load_id: str, processed: str | list[str], *,
             replay: bool = False, unique_keys: bool = False) -> Loaded:
        spec = ctx.spec
        files = as_files(processed)  # Spark's parts share one schema
        settings = spec.warehouse
        schema = settings.db_schema
        disposition = effective_disposition(ctx, load_id)
        load_literal = f"'{_safe(load_id)}'"
        table = self.table_name(ctx)
        staging = f"{ident(schema)}.{ident('_stage_' + spec.table)}"
        with self._errors(ctx):
            ledger = self._ledger(schema)
            # A cheap look first (no PUT, no COPY for a batch already in); the transaction
            # below checks again, and that check is the one that counts.
            done = self._loaded_rows(ledger, spec.name, load_id)
            if done is not None and not replay:
                return Loaded(done, skipped="already loaded")
            batch = self._batch_columns(ctx, files[0])
            self._check_keys(ctx, batch, disposition)
            # DDL first: Snowflake would commit an open transaction on each of these.
            exists = self.exists(schema, spec.table)
            new_columns: list[str] = []
            if not exists:
                marks = {"_deleted_at": "TIMESTAMP_NTZ(6)"} if spec.deletes is not None and \
                    spec.deletes.reconcile == "mark" else {}  # read by models from the start
                definitions = [f"{ident(c)} {t}"
                               for c, t in {**batch, **META_COLUMNS, **marks}.items()]
                self._sql(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(definitions)})")
            elif disposition == "replace":  # the table takes the batch's columns, as in DuckDB
                self._add_columns(table, batch, self._missing(schema, spec.table, batch))
            else:
                new_columns = self._apply_contract(ctx, table, batch)
            kept = self._kept_types(table, batch) if exists and \
                disposition != "replace" and settings.contract == "discard" else {}
            columns = [c for c in batch if c not in new_columns or settings.contract != "discard"]
            self._sql(f"CREATE OR REPLACE TRANSIENT TABLE {staging} ("
                      f"{', '.join(f'{ident(c)} {t}' for c, t in batch.items())})")
            try:
                for index, file in enumerate(files):
                    self._copy_into(ctx, staging, load_id, file, index if len(files) > 1 else None)
                row = self._sql(f"SELECT count(*) FROM {staging}").fetchone()
                staged_rows = int(row[0]) if row else 0
                # Looked up again: this load (an earlier one of the run) may have retyped a key
                self._deleted_known.pop((f"{ident(schema)}.{ident(deleted_keys_table(spec.table))}",
                                         tuple(spec.source.primary_key)), None)
                deleted_keys = self._drop_deleted_since(ctx, staging, load_id)
                if settings.write_disposition == "merge" and soft_deleted(ctx, "s", ident):
                    deleted_keys = self._deleted_keys(ctx)  # DDL: before the transaction
                self._check_kept(ctx, staging, kept)
                now = _now()
                names = ", ".join(ident(c) for c in [*columns, *META_COLUMNS])
                values = ", ".join([*(f"s.{ident(c)}" for c in columns), load_literal, now])
                with self._transaction():
                    # An UPDATE takes the ledger's lock until COMMIT, so a second loader of
                    # this batch waits here, then sees the first one's ledger row below.
                    self._sql(f"UPDATE {ledger} SET status = status WHERE pipeline = %s AND "
                              "load_id = %s", (spec.name, load_id))
                    done = self._loaded_rows(ledger, spec.name, load_id)
                    # The table is a newer snapshot (see the DuckDB warehouse).
                    newer = self._newer_batch(ledger, spec.name, load_id,
                                              disposition != "replace")
                    if done is not None and not replay:
                        return Loaded(done, skipped="already loaded")
                    if newer:
                        return Loaded(staged_rows, skipped=f"batch {newer} replaced the table "
                                      "since")
                    if disposition == "merge":
                        inserted, updated = self._upsert(ctx, table, staging, columns,
                                                         load_literal, now, unique_keys,
                                                         deleted_keys)
                    else:
                        if disposition == "replace":
                            self._sql(f"DELETE FROM {table}")
                            if deleted_keys:  # no older batch may load after this one
                                self._sql(f"DELETE FROM {deleted_keys} WHERE "
                                          f"{ident('_deleted_by')} < {load_literal}")
                        elif replay:  # an append batch replaces its own earlier rows
                            self._sql(f"DELETE FROM {table} WHERE _load_id = {load_literal}")
                        source, live = staging, ""
                        if settings.write_disposition == "merge":
                            # A full refresh of a merge table: its latest live row per key,
                            # as a merge would leave it (and as DuckDB's full refresh does)
                            source = self._latest(ctx, staging, unique_keys)
                            deleted = soft_deleted(ctx, "s", ident)
                            if deleted and deleted_keys:
                                self._remember_soft_deletes(ctx, staging, deleted,
                                                            load_literal, deleted_keys)
                                live = f" WHERE NOT {deleted}"
                        row = self._sql(f"INSERT INTO {table} ({names}) SELECT {values} "
                                        f"FROM {source} AS s{live}").fetchone()
                        inserted, updated = int(row[0]) if row else 0, 0
                    self._record(ledger, spec.name, load_id, LOADED, staged_rows, now,
                                 REPLACED_TABLE if disposition == "replace" else "",
                                 ctx.compiled.fingerprint)
                    checkpoint("load")  # fault tests: killed here, the transaction never commits
            finally:
                self._drop_quietly(staging)
        return Loaded(staged_rows, inserted, updated, new_columns)

    def _upsert(self, ctx: RunContext, table: str, staging: str, columns: list[str],
                load_literal: str, now: str, unique_keys: bool,
                deleted_keys: str | None) -> tuple[int, int]:
        """MERGE's effect: the latest row per key updates an older one or is inserted; keys the
        batch marks deleted are removed, and kept in `deleted_keys`."""
        keys = ctx.spec.source.primary_key
        # The window runs once per statement below (two or three): skipped when validate
        # found every key once.
        latest = self._latest(ctx, staging, unique_keys)
        on = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in keys)
        # An older version never overwrites a newer one, so replaying a batch is harmless.
        newer = f" AND {newer_batch(load_literal, 't._load_id')}"
        sets = ", ".join([*(f"{ident(c)} = s.{ident(c)}" for c in columns if c not in keys),
                          f"{ident('_load_id')} = {load_literal}",
                          f"{ident('_loaded_at')} = {now}"])
        if "_DELETED_AT" in self._column_names(ctx):  # a key that comes back is live again
            sets += f", {ident('_deleted_at')} = NULL"
        deleted = soft_deleted(ctx, "s", ident)
        keep = f" AND NOT {deleted}" if deleted else ""
        if deleted and deleted_keys:
            self._remember_soft_deletes(ctx, staging, deleted, load_literal, deleted_keys)
            self._sql(f"DELETE FROM {table} USING {latest} AS s WHERE "
                      f"{on.replace('t.', table + '.')}{newer.replace('t.', table + '.')} "
                      f"AND {deleted}")
        row = self._sql(f"UPDATE {table} AS t SET {sets} FROM {latest} AS s "
                        f"WHERE {on}{newer}{keep}").fetchone()
        updated = int(row[0]) if row else 0
        names = ", ".join(ident(c) for c in [*columns, *META_COLUMNS])
        values = ", ".join([*(f"s.{ident(c)}" for c in columns), load_literal, now])
        row = self._sql(f"INSERT INTO {table} ({names}) SELECT {values} FROM {latest} AS s "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {on}){keep}").fetchone()
        inserted = int(row[0]) if row else 0
        return inserted, updated

    @staticmethod
    def _latest(ctx: RunContext, staging: str, unique_keys: bool) -> str:
        """The staged batch with one row per key: the latest by cursor (a key seen twice)."""
        keys = ctx.spec.source.primary_key
        cursor = ctx.spec.cursor
        order = (f"{ident(cursor)} DESC NULLS LAST" if cursor else ", ".join(map(ident, keys)))
        return staging if unique_keys else (
            f"(SELECT * FROM {staging} QUALIFY row_number() OVER (PARTITION BY "
            f"{', '.join(map(ident, keys))} ORDER BY {order}) = 1)")

    def _remember_soft_deletes(self, ctx: RunContext, staging: str, deleted: str,
                               load_literal: str, deleted_keys: str) -> None:
        """The keys the batch marks deleted (`deleted`: SQL over its rows `s`), as of it."""
        names = ", ".join(ident(k) for k in ctx.spec.source.primary_key)
        of_s = ", ".join(f"s.{ident(k)}" for k in ctx.spec.source.primary_key)
        self._sql(f"INSERT INTO {deleted_keys} ({names}, {ident('_deleted_by')}) "
                  f"SELECT {of_s}, {load_literal} FROM {staging} AS s WHERE {deleted}")

    def _apply_contract(self, ctx: RunContext, table: str, batch: dict[str, str]) -> list[str]:
        spec = ctx.spec
        existing = {str(r[0]).upper(): str(r[1]) for r in self._sql(f"DESCRIBE TABLE {table}")}
        new = [c for c in batch if stored(c) not in existing]
        retyped = {c: (existing[stored(c)], t) for c, t in batch.items()
                   if stored(c) in existing and type_changed(existing[stored(c)], t)}
        if retyped:
            self._retype(ctx, table, retyped)
        if not new:
            return []
        contract = spec.warehouse.contract
        if contract == "freeze":
            raise StageError(spec.name, "load", f"new column(s) {', '.join(new)} not in "
                             f"{shown(ctx)}; warehouse.contract is 'freeze' (set 'evolve' to add them)")
        if contract == "evolve":
            self._add_columns(table, batch, new)
            ctx.warn(f"added column(s) {', '.join(new)} to {shown(ctx)}")
        return new

    def _retype(self, ctx: RunContext, table: str, retyped: dict[str, tuple[str, str]]) -> None:
        """Columns whose type changed follow the batch, as in DuckDB, but only by widening:
        all are checked before any is altered, so a refused change leaves the table as it was."""
        contract = ctx.spec.warehouse.contract
        if contract == "discard":
            return
        changes = ", ".join(f"{c} ({spelled(old)} -> {spelled(new)})"
                            for c, (old, new) in retyped.items())
        if contract == "freeze":
            raise StageError(ctx.spec.name, "load", f"changed column type(s) {changes} in "
                             f"{shown(ctx)}; warehouse.contract is 'freeze'")
        refused = [f"{c} ({spelled(old)} -> {spelled(new)}: {why})"
                   for c, (old, new) in retyped.items() if (why := not_widenable(old, new))]
        if refused:
            raise StageError(ctx.spec.name, "load", f"cannot change column type(s) "
                             f"{', '.join(refused)} in {shown(ctx)}; alter the table by hand")
        for column, (_, kind) in retyped.items():
            self._sql(f"ALTER TABLE {table} ALTER COLUMN {ident(column)} SET DATA TYPE {kind}")
        ctx.warn(f"changed column type(s) {changes} in {shown(ctx)}")

    def _kept_types(self, table: str, batch: dict[str, str]) -> dict[str, tuple[str, str]]:
        """Under 'discard', the retyped NUMBER columns the table keeps: column -> (its type,
        the batch's). Numbers are what an insert rounds silently; text takes any value, and
        TRY_CAST reads strings into few other types."""
        existing = {str(r[0]).upper(): str(r[1]) for r in self._sql(f"DESCRIBE TABLE {table}")}
        return {c: (existing[stored(c)], t) for c, t in batch.items()
                if stored(c) in existing and type_changed(existing[stored(c)], t)
                and normalised(existing[stored(c)])[0] == "NUMBER"}

    def _check_kept(self, ctx: RunContext, staging: str, kept: dict[str, tuple[str, str]]) -> None:
        """Stop when the table's kept NUMBER would round or refuse a staged value (a decimal
        widened in the source: 12345678.1234 into NUMBER(10,2) landed as 12345678.12)."""
        for column, (old, new) in kept.items():
            c = ident(column)
            value = f"TRY_CAST(TO_VARCHAR(s.{c}) AS {old})"
            row = self._sql(f"SELECT TO_VARCHAR(s.{c}) FROM {staging} AS s WHERE s.{c} IS NOT "
                            f"NULL AND ({value} IS NULL OR {value} <> s.{c}) LIMIT 1").fetchone()
            if row:
                why = not_widenable(old, new)
                way = ("set 'evolve' to widen it" if why is None else
                       f"{why}: alter the table by hand")
                raise StageError(ctx.spec.name, "load", f"column {column} changed type in the "
                                 f"source ({spelled(old)} -> {spelled(new)}); the "
                                 f"{spelled(old)} of {shown(ctx)} would change the batch's "
                                 f"value {row[0]!r}: warehouse.contract is 'discard', which "
                                 f"keeps the table's types ({way})")

    def _add_columns(self, table: str, batch: dict[str, str], columns: list[str]) -> None:
        for column in columns:
            self._sql(f"ALTER TABLE {table} ADD COLUMN {ident(column)} {batch[column]}")

    def _missing(self, schema: str, table: str, batch: dict[str, str]) -> list[str]:
        rows = self._sql("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                         "AND table_name = %s", (stored(schema), stored(table))).fetchall()
        existing = {r[0] for r in rows}
        return [c for c in batch if stored(c) not in existing]

    def exists(self, schema: str, table: str) -> bool:
        row = self._sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                        "AND table_name = %s", (stored(schema), stored(table))).fetchone()
        return bool(row and row[0])

    def _check_keys(self, ctx: RunContext, batch: dict[str, str], disposition: str) -> None:
        spec = ctx.spec
        if disposition != "merge":
            return
        needed = [*spec.source.primary_key, *([spec.cursor] if spec.cursor else [])]
        absent = [c for c in needed if c not in batch]
        if absent:
            raise StageError(spec.name, "load", f"the batch has no column(s) {', '.join(absent)} "
                             "(primary key / cursor), so it cannot be merged")

    # -- staging --------------------------------------------------------------------------------

    def _batch_columns(self, ctx: RunContext, processed: str) -> dict[str, str]:
        """The batch's columns and their Snowflake types, from the Parquet file's Arrow schema."""
        import pyarrow.parquet as pq

        if processed.startswith("s3://"):
            with ctx.lake.fs.open(processed.removeprefix("s3://"), "rb") as handle:
                schema = pq.read_schema(handle)
        else:
            schema = pq.read_schema(processed)
        clash = framework_column_clash(schema.names)
        if clash:
            raise StageError(ctx.spec.name, "load", f"the batch's {clash}")
        columns: dict[str, str] = {}
        for field in schema:
            try:
                columns[field.name] = snowflake_type(field.type)
            except ValueError as exc:
                raise StageError(ctx.spec.name, "load", f"column {field.name}: {exc}") from None
        return columns

    def _copy_into(self, ctx: RunContext, staging: str, load_id: str, processed: str,
                   part: int | None = None) -> None:
        """COPY one file of the batch (`part`: its index among several) into the staging table."""
        schema = ctx.spec.warehouse.db_schema
        options = f"{PARQUET_FORMAT} MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE FORCE = TRUE"
        if self.target.warehouse.stage_url:
            stage = self._external_stage(ctx, schema)
            folder, name = posixpath.split(self._stage_path(ctx, processed))
            location = f"@{stage}/{folder}/" if folder else f"@{stage}/"
            result = self._sql(f"COPY INTO {staging} FROM {location} FILES = ({literal(name)}) "
                               f"{options}").fetchall()
        else:
            stage = f"{ident(schema)}.{INTERNAL_STAGE}"
            if stage not in self._stages:
                self._sql(f"CREATE STAGE IF NOT EXISTS {stage}")
                self._stages.add(stage)
            name = f"{_safe(load_id)}{'' if part is None else f'.{part:05d}'}.parquet"
            folder = ctx.spec.table
            with self._local_file(ctx, processed, name) as path:
                put = self._sql(f"PUT {literal('file://' + path)} @{stage}/{folder}/ "
                                "AUTO_COMPRESS = FALSE OVERWRITE = TRUE").fetchall()
            if not put or put[0][6] != "UPLOADED":
                raise StageError(ctx.spec.name, "load", f"PUT of {processed} to @{stage}/{folder}/ "
                                 f"did not upload it: {put[0][6:] if put else 'no result'}")
            result = self._sql(f"COPY INTO {staging} FROM @{stage}/{folder}/{name} {options} "
                               "PURGE = TRUE").fetchall()
        if not any(len(r) > 1 and r[1] == "LOADED" for r in result):
            status = result[0][1] if result and len(result[0]) > 1 else (result[0][0] if result else "")
            raise StageError(ctx.spec.name, "load", f"COPY INTO the staging table of {shown(ctx)} did not load {processed}: "
                             f"{status or 'no file found on the stage'}")

    def _external_stage(self, ctx: RunContext, schema: str) -> str:
        """A stage over `stage_url`; its name follows the URL, so a new URL gets a new stage."""
        settings = self.target.warehouse
        url = (settings.stage_url or "").rstrip("/") + "/"
        digest = hashlib.sha1(f"{url}|{settings.storage_integration or ''}".encode()).hexdigest()[:10]
        stage = f"{ident(schema)}._framework_lake_{digest}"
        if stage not in self._stages:
            auth = ""
            lake = self.target.lake
            if settings.storage_integration:
                auth = f" STORAGE_INTEGRATION = {ident(settings.storage_integration)}"
            elif lake.access_key_id and lake.secret_access_key:
                # Snowflake keeps the statement (key included) in its query history and the
                # key in the stage: only on purpose, and said once.
                if os.environ.get(INLINE_OPT_IN, "").lower() not in ("1", "true", "yes"):
                    raise StageError(ctx.spec.name, "load", INLINE_REFUSED)
                ctx.warn(INLINE_WARNING)
                auth = (f" CREDENTIALS = (AWS_KEY_ID = {literal(lake.access_key_id)} AWS_SECRET_KEY = "
                        f"{literal(lake.secret_access_key.get_secret_value())})")
            self._sql(f"CREATE STAGE IF NOT EXISTS {stage} URL = {literal(url)}{auth}")
            self._stages.add(stage)
        return stage

    def _stage_path(self, ctx: RunContext, processed: str) -> str:
        """The batch file's path under `stage_url`."""
        stage_url = self.target.warehouse.stage_url or ""
        base = stage_url.rstrip("/") + "/"
        location = processed
        if base.startswith("file://") and "://" not in processed:
            location = "file://" + os.path.abspath(processed)
        if not location.startswith(base):
            raise StageError(ctx.spec.name, "load", f"the batch {processed} is not under the "
                             f"warehouse stage_url {stage_url} (SNOWFLAKE_STAGE_URL): point it at "
                             "the lake root")
        return location[len(base):]

    @contextmanager
    def _local_file(self, ctx: RunContext, processed: str, name: str) -> Iterator[str]:
        """The batch as a local file named `name` (downloaded from S3 if need be) for PUT."""
        if "://" not in processed and os.path.basename(processed) == name and "'" not in processed:
            yield os.path.abspath(processed)
            return
        folder = tempfile.mkdtemp(prefix="framework_put_")
        try:
            path = os.path.join(folder, name)
            if processed.startswith("s3://"):
                ctx.lake.fs.get(processed.removeprefix("s3://"), path)
            else:
                shutil.copyfile(processed, path)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- plumbing -------------------------------------------------------------------------------

    def _sql_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = self.con.cursor()
        cursor.executemany(sql, rows)

    def _sql(self, sql: str, params: tuple[Any, ...] | None = None) -> Any:
        cursor = self.con.cursor()
        cursor.execute(sql, params)
        return cursor

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._sql("BEGIN")
        try:
            yield
            self._sql("COMMIT")
        except BaseException:
            with suppress(Exception):  # the original error is the one to report
                self._sql("ROLLBACK")
            raise

    def _drop_quietly(self, table: str) -> None:
        with suppress(Exception):  # a transient leftover is replaced by the next load
            self._sql(f"DROP TABLE IF EXISTS {table}")

    @contextmanager
    def _errors(self, ctx: RunContext) -> Iterator[None]:
        """Connector, file and Arrow errors become one-line StageErrors without secrets."""
        import pyarrow as pa
        import snowflake.connector

        try:
            yield
        except (snowflake.connector.errors.Error, OSError, pa.ArrowException) as exc:
            raise StageError(ctx.spec.name, "load", self._describe(exc)) from None

    def _describe(self, exc: BaseException) -> str:
        message = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        text = " ".join(str(message).split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = redact(text)
        return text if len(text) <= 400 else text[:397] + "..."

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self._sql(sql).fetchall())


def missing_settings(settings: Any) -> str | None:
    """What a Snowflake target lacks to connect, naming each setting and its variable."""
    missing = [name for name in ("account", "user", "database") if not getattr(settings, name)]
    if missing:
        return "the Snowflake target needs " + ", ".join(
            f"'{m}' (SNOWFLAKE_{m.upper()})" for m in missing)
    if not settings.password and not settings.private_key_path:
        return ("the Snowflake target needs a 'password' (SNOWFLAKE_PASSWORD) or a "
                "'private_key_path' (key-pair auth)")
    return None


def snowflake_type(arrow_type: Any) -> str:
    """The Snowflake column type for an Arrow type (naive timestamps stay TIMESTAMP_NTZ)."""
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        return snowflake_type(arrow_type.value_type)
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_null(arrow_type) or (
            hasattr(t, "is_string_view") and t.is_string_view(arrow_type)):
        return "VARCHAR"
    if t.is_boolean(arrow_type):
        return "BOOLEAN"
    if t.is_integer(arrow_type):
        return "NUMBER(38,0)"
    if t.is_decimal(arrow_type):
        if arrow_type.precision > 38:
            raise ValueError(f"{arrow_type} has more than Snowflake's 38 digits")
        return f"NUMBER({arrow_type.precision},{arrow_type.scale})"
    if t.is_floating(arrow_type):
        return "FLOAT"
    if t.is_timestamp(arrow_type):
        precision = 9 if arrow_type.unit == "ns" else 6
        return f"TIMESTAMP_TZ({precision})" if arrow_type.tz else f"TIMESTAMP_NTZ({precision})"
    if t.is_date(arrow_type):
        return "DATE"
    if t.is_time(arrow_type):
        return f"TIME({9 if arrow_type.unit == 'ns' else 6})"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return "BINARY"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_struct(arrow_type) or t.is_map(arrow_type):
        return "VARIANT"
    raise ValueError(f"Arrow type {arrow_type} has no Snowflake column type here")


# Synonyms Snowflake resolves to one type, with the size it gets when none is written.
_SYNONYMS = {
    **dict.fromkeys(("NUMBER", "DECIMAL", "NUMERIC", "DEC"), ("NUMBER", (38, 0))),
    **dict.fromkeys(("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"),
                    ("NUMBER", (38, 0))),
    **dict.fromkeys(("VARCHAR", "STRING", "TEXT", "NVARCHAR", "NVARCHAR2", "CHAR VARYING",
                     "NCHAR VARYING"), ("VARCHAR", (16777216,))),
    **dict.fromkeys(("CHAR", "CHARACTER", "NCHAR"), ("VARCHAR", (1,))),
    **dict.fromkeys(("BINARY", "VARBINARY"), ("BINARY", (8388608,))),
    **dict.fromkeys(("FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "DOUBLE PRECISION", "REAL"),
                    ("FLOAT", ())),
    **dict.fromkeys(("TIMESTAMP_NTZ", "TIMESTAMPNTZ", "TIMESTAMP", "DATETIME",
                     "TIMESTAMP WITHOUT TIME ZONE"), ("TIMESTAMP_NTZ", (9,))),
    **dict.fromkeys(("TIMESTAMP_TZ", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"),
                    ("TIMESTAMP_TZ", (9,))),
    **dict.fromkeys(("TIMESTAMP_LTZ", "TIMESTAMPLTZ", "TIMESTAMP WITH LOCAL TIME ZONE"),
                    ("TIMESTAMP_LTZ", (9,))),
    "TIME": ("TIME", (9,)),
}
_TYPE = re.compile(r"\s*([A-Z_0-9 ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*")


def normalised(type_name: str) -> tuple[str, tuple[int, ...]]:
    """A column type as Snowflake resolves it: `INTEGER` is `NUMBER(38,0)`, `VARCHAR` is
    `VARCHAR(16777216)`, so that spellings of one type never count as a change."""
    text = type_name.upper()
    match = _TYPE.fullmatch(text)
    if not match:
        return text.strip(), ()
    name = " ".join(match[1].split())
    if name not in _SYNONYMS:
        return name, ()
    kind, default = _SYNONYMS[name]
    written = tuple(int(n) for n in match.groups()[1:] if n is not None)
    if kind == "NUMBER" and name not in ("NUMBER", "DECIMAL", "NUMERIC", "DEC"):
        written = ()  # INTEGER and its kin take no size
    if kind == "NUMBER" and len(written) == 1:
        written = (written[0], 0)  # NUMBER(p) is NUMBER(p,0)
    return kind, written or default


def spelled(type_name: str) -> str:
    """The type as Snowflake's DESCRIBE TABLE shows it, for messages."""
    kind, size = normalised(type_name)
    return f"{kind}({','.join(map(str, size))})" if size else kind


def type_changed(old: str, new: str) -> bool:
    """Whether the batch's `new` type does not fit the landing column's `old` one.

    A narrower batch (a shorter VARCHAR, a NUMBER with no more digits on either side of the
    point, a timestamp of lower precision) loads exactly into the wider column: no change.
    fakesnow, the emulator used in tests, describes every timestamp as precision 9.
    """
    (old_kind, old_size), (new_kind, new_size) = normalised(old), normalised(new)
    if old_kind != new_kind:
        return True
    if old_kind == "NUMBER":
        (old_p, old_s), (new_p, new_s) = old_size, new_size
        return new_s > old_s or new_p - new_s > old_p - old_s
    return new_size > old_size  # a length or a precision; () for types without a size


def not_widenable(old: str, new: str) -> str | None:
    """Why ALTER COLUMN ... SET DATA TYPE cannot take column type `old` to a `new` that does
    not fit it; None if it can. Snowflake changes a type in place only to a longer VARCHAR or
    BINARY or to a NUMBER of more precision at the same scale.
    """
    (old_kind, old_size), (new_kind, new_size) = normalised(old), normalised(new)
    if old_kind != new_kind:
        return "Snowflake cannot change a column to another type in place"
    if old_kind == "NUMBER":
        return None if new_size[1] == old_size[1] else \
            "Snowflake cannot change a NUMBER's scale in place"
    if old_kind in ("VARCHAR", "BINARY"):
        return None
    return f"Snowflake cannot change a {old_kind}'s precision in place"  # timestamps, times


def ident(name: str) -> str:
    """An identifier quoted as Snowflake stores it unquoted: upper-case, so `ident("orders")`
    is the table an unquoted `orders` names, and no reserved word is ever read as a keyword."""
    return '"' + name.upper().replace('"', '""') + '"'


def shown(ctx: RunContext) -> str:
    """The landing table in messages, as the pipeline file names it."""
    return f"{ctx.spec.warehouse.db_schema}.{ctx.spec.table}"


def stored(name: str) -> str:
    """The name Snowflake's information_schema shows for `ident(name)`."""
    return name.upper()


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _now() -> str:
    """Now in UTC as a TIMESTAMP_NTZ literal (the same value for every row of a load)."""
    return f"'{datetime.now(UTC).replace(tzinfo=None).isoformat(sep=' ')}'::TIMESTAMP_NTZ(6)"


def _safe(load_id: str) -> str:
    if not re.fullmatch(r"[0-9.]+", load_id):
        raise ValueError(f"unexpected load id {load_id!r}")
    return load_id


def _nothing() -> None:
    """Closing a shared state over the warehouse's own connection leaves it open."""
