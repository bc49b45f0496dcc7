"""Load: one processed batch into the warehouse's landing table, exactly once.

Each warehouse keeps a ledger (`<schema>._framework_batches`: pipeline, load_id, status,
row_count, recorded_at, note, fingerprint of the compiled pipeline), checked and written in the same transaction as the batch's rows,
so a batch is loaded iff its ledger row says so: a crash at any point leaves either both or
neither. The rules every warehouse keeps (tests/conformance proves them on each):

- Loading a batch the ledger holds as loaded is a no-op (a load retried after a COMMIT whose
  acknowledgement was lost, a retried orchestrator task).
- A replay (`replay=True`) applies the batch again: an append batch replaces its own rows
  (by `_load_id`); a merge batch never overwrites a row a newer batch wrote (by `_load_id`,
  `newer_batch`); a replace batch older than one loaded since changes nothing,
  nor does any batch older than one that replaced the table (a full refresh).
- A quarantined batch (status `quarantined`) blocks its pipeline until it is replayed (then
  `loaded`) or released on purpose (`released`, the note says who and why).
- A key the framework deleted (reconcile, a soft delete in a batch, a source found empty) stays
  deleted for every batch read before the delete: replaying an older batch, or loading one left
  pending, does not bring it back. The deleted keys are kept in
  `<schema>._framework_deleted_<table>` with the time of the delete written as a load id
  (`_deleted_by`); a batch read after it holds the key only if the source has it again.

Load ids are dlt's epoch-second timestamps (ten integer digits until the year 2286), so their
text order is their time order, which the SQL relies on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from framework.context import RunContext
from framework.settings.targets import Target

if TYPE_CHECKING:
    from framework.stages.load.state import SharedState

LEDGER = "_framework_batches"
LOADED, QUARANTINED, RELEASED = "loaded", "quarantined", "released"
# The ledger note of a batch that replaced the whole table (a replace pipeline, a full refresh):
# no older batch may change the table after it.
REPLACED_TABLE = "replaced the table"
DELETED_KEYS = "_framework_deleted_"  # + the landing table: the keys the framework deleted


def deleted_keys_table(table: str) -> str:
    return DELETED_KEYS + table


def now_as_load_id() -> str:
    """This moment written as dlt writes a load id, so the two compare as text."""
    return f"{time.time():.6f}"


@dataclass
class Loaded:
    rows: int
    inserted: int = 0
    updated: int = 0
    new_columns: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing was written (already loaded, a newer replace)


class Warehouse(Protocol):
    def done_batches(self, ctx: RunContext) -> set[str]:
        """Load ids already loaded or quarantined for this pipeline."""

    def load(self, ctx: RunContext, load_id: str, processed: str | list[str], *,
             replay: bool = False, unique_keys: bool = False) -> Loaded:
        """Merge (or append/replace) the batch (its file, or its files: `as_files`) and record it
        in the ledger, atomically. `unique_keys`: validate found each primary key once in the
        batch and none NULL (`Validation.unique_keys`), so the load need not look for the
        latest row per key."""

    def record_quarantine(self, ctx: RunContext, load_id: str, rows: int,
                          note: str = "") -> None: ...

    def quarantined(self, ctx: RunContext) -> dict[str, str]:
        """The pipeline's batches that block it (quarantined, neither replayed nor released):
        load id -> the reason recorded, oldest first."""

    def release(self, ctx: RunContext, load_id: str, note: str) -> bool:
        """Mark a quarantined batch released (its rows stay out on purpose); False if the
        ledger holds no quarantined batch of that id."""

    def latest_batch(self, ctx: RunContext) -> str | None:
        """The newest load id the ledger holds for the pipeline (any status), if any."""

    def latest_delete(self, ctx: RunContext) -> str | None:
        """When the framework last deleted a key of the pipeline's table (as a load id)."""

    def fingerprints(self, ctx: RunContext) -> dict[str, str | None]:
        """The pipeline's loaded batches, oldest first: load id -> the fingerprint of the
        compiled pipeline that loaded it (None for a batch loaded before fingerprints)."""

    def count(self, ctx: RunContext) -> int: ...

    def exists(self, schema: str, table: str) -> bool:
        """Whether the table is in the warehouse (a landing table no batch has reached is not)."""

    def keys(self, ctx: RunContext, columns: list[str]) -> Any:
        """The landing table's `columns` as an Arrow table, or None if there is no table."""

    def apply_deletes(self, ctx: RunContext, missing: Any, action: str,
                      as_of: str | None = None) -> int:
        """Remove (`remove`) or mark in `_deleted_at` (`mark`) the rows of the `missing` keys,
        and remember the keys as deleted `as_of` (a load id: when the source was read without
        them; now by default), so no batch read before brings them back."""

    def for_thread(self) -> Warehouse:
        """A handle for another thread of this run (its own connection or cursor); closed
        before this one."""

    def shared_state(self, own_session: bool = False) -> SharedState:
        """What every worker shares (leases, run records, owed dbt models), over this
        connection or, with `own_session`, over a session of its own (another thread)."""

    def close(self) -> None: ...


def warehouse_for(target: Target, wait: float | None = None) -> Warehouse:
    """The target's warehouse, connected; `wait` bounds the wait for a DuckDB file another
    process holds (default FRAMEWORK_WAREHOUSE_WAIT)."""
    if target.warehouse.type == "snowflake":
        from framework.extras import require

        require("snowflake.connector", "the Snowflake warehouse")
        from framework.stages.load.snowflake import SnowflakeWarehouse

        return SnowflakeWarehouse(target)
    from framework.stages.load.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(target, wait=wait)


def as_files(processed: str | list[str]) -> list[str]:
    """A processed batch as the list of its files (one for DuckDB's output, parts for Spark's)."""
    return [processed] if isinstance(processed, str) else list(processed)


def quote(name: str) -> str:
    """An identifier quoted for DuckDB and Snowflake (a quote inside it doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def soft_deleted(ctx: RunContext, alias: str, ident: Callable[[str], str] = quote) -> str | None:
    """SQL that is true for an incoming row the source marked deleted (DuckDB and Snowflake)."""
    deletes = ctx.spec.deletes
    if deletes is None or deletes.soft_delete_column is None:
        return None
    col = f"{alias}.{ident(deletes.soft_delete_column)}"
    return f"({col} IS NOT NULL AND lower(CAST({col} AS VARCHAR)) NOT IN ('false', '0'))"


def effective_disposition(ctx: RunContext, load_id: str) -> str:
    """A full refresh re-extracts every row, so its batch replaces the landing table: this
    run's (`--full-refresh`), or the whole read of one an earlier run began and did not finish
    (framework/full_refresh.py)."""
    from framework import full_refresh

    if ctx.full_refresh or full_refresh.whole_batch(ctx, load_id):
        return "replace"
    return str(ctx.spec.warehouse.write_disposition)


def newer_batch(mine: str, theirs: str) -> str:
    """SQL: the batch `mine` (a load id expression) is at least as new as `theirs`; a row
    without a load id (written by hand) counts as older.

    A merge compares the batches that wrote a key's rows, never the rows' cursors: replaying an
    older batch never overwrites a newer row, and a newer batch, read from the source later,
    holds the row as it is now, even where the source moved its cursor back (a read under
    `lag:` finds such a row; compared by the cursor, the landing row kept its later, no longer
    current, version). The cursor only orders the rows of one batch.
    """
    return f"({theirs} IS NULL OR {mine} >= {theirs})"
