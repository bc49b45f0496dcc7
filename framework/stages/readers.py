"""Arrow readers for dlt's `sql_table`: how each database hands its rows to the lake fastest.

dlt's `pyarrow` backend fetches rows as Python tuples through SQLAlchemy and converts them to
Arrow: every value becomes a Python object on the way (about 80k rows/s from PostgreSQL on two
cores). The `arrow-stream` reader registered here asks connectorx for Arrow record batches
straight from the wire (PostgreSQL's binary COPY, MySQL's binary protocol) and streams them one
batch at a time, so memory stays flat whatever the table's size.

Batches leave the reader with exactly the types the `pyarrow` backend gives, from dlt's column
hints (connectorx widens `numeric(12,2)` to `decimal(38,10)` and `integer` differently): dlt's
incremental filter, its boundary de-duplication and the lake's files are the same whichever
reader ran. The query is dlt's own (cursor filter included), compiled with literal values.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from dlt.common import logger
from dlt.sources.sql_database.helpers import (
    BaseTableLoader,
    ConnectorXTableLoader,
    TableLoader,
    get_table_loader_class,
    register_table_loader_backend,
)

ARROW_STREAM = "arrow-stream"
# Rows per record batch (and Parquet row group) at least: per batch, dlt infers the schema and runs
# its incremental step (~30 ms); Arrow holds 250k rows of order_items in ~45 MB. The pyarrow
# backend keeps extract's CHUNK_ROWS: its rows are Python objects first.
ARROW_BATCH_ROWS = 250_000
# Dialects whose rows connectorx streams as Arrow; the rest keep dlt's `pyarrow` backend.
STREAMED_DIALECTS = ("postgresql", "mysql")


def reader_for(dialect: str) -> str:
    """The dlt backend name for a connection left on `backend: auto`."""
    if dialect in STREAMED_DIALECTS:
        register()
        return ARROW_STREAM
    return "pyarrow"


def register() -> None:
    try:
        if get_table_loader_class(ARROW_STREAM) is ArrowStreamLoader:
            return
    except ValueError:
        pass
    register_table_loader_backend(ARROW_STREAM, ArrowStreamLoader)


class ArrowStreamLoader(BaseTableLoader):
    """connectorx's `arrow_stream`, ARROW_BATCH_ROWS rows per record batch, cast to the types
    dlt's `pyarrow` backend would give; falls back to that backend when connectorx cannot read
    the table at all (a column type it does not know), before any row is yielded."""

    def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
        unknown = [f"{c.name} ({c.type})" for c in self.table.c if not _streamable(c.type)]
        if unknown:
            logger.info(f"connectorx does not read {', '.join(unknown)} of table "
                        f"`{self.table.name}`: reading it with the pyarrow backend")
            yield from self._fallback(backend_kwargs)
            return
        kwargs = {"return_type": "arrow_stream",
                  "batch_size": max(self.chunk_size, ARROW_BATCH_ROWS), **(backend_kwargs or {})}
        tz = kwargs.pop("tz", "UTC")
        batches = ConnectorXTableLoader(
            self.engine, "connectorx", self.table, self.columns, chunk_size=self.chunk_size,
            incremental=self.incremental, query_adapter_callback=self.query_adapter_callback,
            limit=self.limit).load_rows(kwargs)
        try:
            first = next(batches, None)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # connectorx panics (a BaseException) on a type it lacks
            logger.warning(f"connectorx cannot read table `{self.table.name}` ({exc}); reading "
                           "it with the pyarrow backend instead")
            yield from self._fallback(backend_kwargs)
            return
        if first is None:
            return
        schema = self._schema(first.schema, tz)
        for table in itertools.chain([first], batches):
            if table.num_rows:  # connectorx may end with an empty batch: dlt would write a file
                yield conform(table, schema)

    def _schema(self, got: Any, tz: str) -> Any:
        """The batch's schema with each hinted column's type and nullability as dlt's `pyarrow`
        backend makes them (`row_tuples_to_arrow`)."""
        import pyarrow as pa
        from dlt.common.configuration.container import Container
        from dlt.common.destination import DestinationCapabilitiesContext
        from dlt.common.libs.pyarrow import get_py_arrow_datatype

        caps = (Container().get(DestinationCapabilitiesContext)
                or DestinationCapabilitiesContext.generic_capabilities())
        fields = []
        for field in got:
            hint = self.columns.get(field.name) or {}
            if hint.get("data_type"):
                field = pa.field(field.name, get_py_arrow_datatype(hint, caps, tz),
                                 nullable=hint.get("nullable", True))
            fields.append(field)
        return pa.schema(fields)

    def _fallback(self, backend_kwargs: dict[str, Any] | None) -> Iterator[Any]:
        loader = TableLoader(self.engine, "pyarrow", self.table, self.columns,
                             chunk_size=self.chunk_size, incremental=self.incremental,
                             query_adapter_callback=self.query_adapter_callback, limit=self.limit)
        yield from loader.load_rows(backend_kwargs or {})


def _streamable(sql_type: Any) -> bool:
    """Whether connectorx reads a reflected column type; untyped columns (a query's) are tried.

    connectorx panics on types it lacks (interval, money, point, tsvector, xml, ...), so only
    the plain types go to it when the types are known."""
    import sqlalchemy as sa

    return isinstance(sql_type, (sa.types.NullType, sa.Integer, sa.Numeric, sa.Float, sa.Boolean,
                                 sa.String, sa.Date, sa.DateTime, sa.Time, sa.LargeBinary,
                                 sa.JSON, sa.Uuid))


def conform(table: Any, schema: Any) -> Any:
    """`table` cast to `schema` (safe casts: a value that does not fit raises, never rounds)."""
    return table if table.schema.equals(schema) else table.cast(schema)
