"""Load: one processed batch into the warehouse's landing table, exactly once.

Each warehouse keeps a ledger (`<schema>._framework_batches`) written in the same transaction
as the batch's rows, so a batch is loaded iff its ledger row exists: a crash at any point
leaves either both or neither, and a batch is never applied twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from framework.context import RunContext
from framework.settings.targets import Target

LEDGER = "_framework_batches"
LOADED, QUARANTINED = "loaded", "quarantined"


@dataclass
class Loaded:
    rows: int
    inserted: int = 0
    updated: int = 0
    new_columns: list[str] = field(default_factory=list)


class Warehouse(Protocol):
    def done_batches(self, ctx: RunContext) -> set[str]:
        """Load ids already loaded or quarantined for this pipeline."""

    def load(self, ctx: RunContext, load_id: str, processed: str | list[str]) -> Loaded:
        """Merge (or append/replace) the batch (its file, or its files: `as_files`) and record it
        in the ledger, atomically."""

    def record_quarantine(self, ctx: RunContext, load_id: str, rows: int) -> None: ...

    def count(self, ctx: RunContext) -> int: ...

    def exists(self, schema: str, table: str) -> bool:
        """Whether the table is in the warehouse (a landing table no batch has reached is not)."""

    def keys(self, ctx: RunContext, columns: list[str]) -> Any:
        """The landing table's `columns` as an Arrow table, or None if there is no table."""

    def apply_deletes(self, ctx: RunContext, missing: Any, action: str) -> int:
        """Remove (`remove`) or mark in `_deleted_at` (`mark`) the rows of the `missing` keys."""

    def close(self) -> None: ...


def warehouse_for(target: Target) -> Warehouse:
    if target.warehouse.type == "snowflake":
        from framework.stages.load.snowflake import SnowflakeWarehouse

        return SnowflakeWarehouse(target)
    from framework.stages.load.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(target)


def as_files(processed: str | list[str]) -> list[str]:
    """A processed batch as the list of its files (one for DuckDB's output, parts for Spark's)."""
    return [processed] if isinstance(processed, str) else list(processed)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def soft_deleted(ctx: RunContext, alias: str, ident: Callable[[str], str] = quote) -> str | None:
    """SQL that is true for an incoming row the source marked deleted (DuckDB and Snowflake)."""
    deletes = ctx.spec.deletes
    if deletes is None or deletes.soft_delete_column is None:
        return None
    col = f"{alias}.{ident(deletes.soft_delete_column)}"
    return f"({col} IS NOT NULL AND lower(CAST({col} AS VARCHAR)) NOT IN ('false', '0'))"


def effective_disposition(ctx: RunContext) -> str:
    """`--full-refresh` re-extracts every row, so the batch replaces the landing table."""
    return "replace" if ctx.full_refresh else str(ctx.spec.warehouse.write_disposition)
