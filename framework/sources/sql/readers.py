"""Arrow readers for dlt's `sql_table`: how each database hands its rows to the lake fastest.

dlt's `pyarrow` backend fetches rows as Python tuples through SQLAlchemy and converts them to
Arrow: every value becomes a Python object on the way (about 80k rows/s from PostgreSQL on two
cores). The `arrow-stream` reader registered here reads Arrow record batches straight from the
wire and streams them one batch at a time, so memory stays flat whatever the table's size:

- PostgreSQL: the ADBC driver (COPY binary decoded into Arrow in C, 1.7x less CPU than
  connectorx), read ahead in a thread so the next batch comes off the wire while dlt writes this
  one. Numeric, real, uuid, json and enum columns travel as text, cast back in Arrow: the driver
  decodes binary numeric slowly and hands uuid over as bytes (benchmarks/profile.md).
- MySQL: connectorx's `arrow_stream` (its binary protocol), decimals as text.

Batches leave the reader with exactly the types the `pyarrow` backend gives, from dlt's column
hints (connectorx widens `numeric(12,2)` to `decimal(38,10)`, ADBC reads `integer` as int32):
dlt's incremental filter, its boundary de-duplication and the lake's files are the same whichever
reader ran. The query is dlt's own (cursor filter included), compiled with literal values.
"""

from __future__ import annotations

import datetime as dt
import itertools
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from functools import cached_property
from typing import Any, TypeVar

from dlt.common import logger
from dlt.sources.sql_database.helpers import (
    BaseTableLoader,
    ConnectorXTableLoader,
    TableLoader,
    get_table_loader_class,
    register_table_loader_backend,
)

from framework import logs
from framework.errors import FrameworkError
from framework.faults import checkpoint
from framework.settings.connections import SESSION_SETTINGS

ARROW_STREAM = "arrow-stream"
# backend_kwargs entry: (column, count) to split a full read into ranges read at once.
PARTITIONS = "framework_partitions"
# Rows per record batch (and Parquet row group) at least: per batch, dlt infers the schema and runs
# its incremental step (~30 ms); Arrow holds 250k rows of order_items in ~45 MB. The pyarrow
# backend keeps extract's CHUNK_ROWS: its rows are Python objects first.
ARROW_BATCH_ROWS = 250_000
# ADBC's batches, by size: about 400k rows of order_items. Fewer, larger batches spare dlt's
# per-batch work (10M rows: 1 CPU s less than at 32 MB) for ~100 MB more in flight.
ADBC_BATCH_BYTES = 64 * 2**20
ADBC_MIN_BATCH_BYTES = 4 * 2**20  # a part of a partitioned read: no smaller than this
# Batches of a partitioned read waiting for dlt, whatever the number of parts: with each
# part's batch a share of ADBC_BATCH_BYTES, memory in flight stays about an unsplit read's.
MAX_QUEUED_PARTS = 4
# Dialects whose rows stream as Arrow; the rest keep dlt's `pyarrow` backend.
STREAMED_DIALECTS = ("postgresql", "mysql")

T = TypeVar("T")
# How MySQL spells a zone that is UTC (a named one needs the server's zone tables), lower-case.
UTC_NAMES = frozenset(("+00:00", "-00:00", "utc", "gmt", "etc/utc", "universal", "zulu",
                       "coordinated universal time"))


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
    """ADBC (PostgreSQL) or connectorx's `arrow_stream` (MySQL), cast to the types dlt's
    `pyarrow` backend would give; falls back to that backend when the reader cannot read the
    table at all (a column type it does not know), before any row is yielded."""

    snapshot: str | None = None  # a PostgreSQL snapshot to read in (a partition's)
    batch_bytes: int = ADBC_BATCH_BYTES

    def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
        plain = dict(backend_kwargs or {})
        split = plain.pop(PARTITIONS, None)
        # A type connectorx lacks sends the table to the pyarrow backend (inet and interval
        # are read as their text by every reader: framework/sources/sql/as_text.py).
        unknown = [f"{c.name} ({c.type})" for c in self.table.c if not _streamable(c.type)]
        if unknown:
            logger.info(f"connectorx does not read {', '.join(unknown)} of table "
                        f"`{self.table.name}`: reading it with the pyarrow backend")
            yield from self._fallback(plain)
            return
        if not self._through_adbc and not self._server_in_utc():
            logger.info(f"the server of table `{self.table.name}` is not in UTC, and connectorx "
                        "reads its TIMESTAMPs in the server's zone: reading it with the pyarrow "
                        "backend, whose sessions are in UTC")
            yield from self._fallback(plain)
            return
        kwargs = {"return_type": "arrow_stream",
                  "batch_size": max(self.chunk_size, ARROW_BATCH_ROWS), **plain}
        tz = kwargs.pop("tz", "UTC")
        caps = _capabilities()  # here: dlt's context belongs to this thread
        if split and self._full_read():
            if self._through_adbc:
                yield from self._partitioned(split, kwargs, tz, caps)
                return
            logs.logger.info(f"source.partitions: `{self.table.name}` is read in one pass "
                             "(its columns are untyped, so it is not read through ADBC)")
        batches = self._batches(kwargs, tz, caps)
        if self._through_adbc:  # decoded and cast in a thread of its own
            batches = read_ahead(batches)
        try:
            first = next(batches, None)
        except (KeyboardInterrupt, SystemExit, FrameworkError):  # ours: explained already
            raise
        except BaseException as exc:  # noqa: BLE001 (connectorx panics on a type it lacks)
            logger.warning(f"the Arrow reader cannot read table `{self.table.name}` ({exc}); "
                           "reading it with the pyarrow backend instead")
            yield from self._fallback(plain)
            return
        if first is not None:
            yield first
            yield from batches

    def _batches(self, kwargs: dict[str, Any], tz: str, caps: Any) -> Iterator[Any]:
        """This loader's query read as Arrow batches with the `pyarrow` backend's types."""
        if self._through_adbc:
            return self._conformed(self._adbc(), tz, caps)
        return self._conformed(_ConnectorXLoader(
            self.engine, "connectorx", self.table, self.columns, chunk_size=self.chunk_size,
            incremental=self.incremental, query_adapter_callback=self.query_adapter_callback,
            limit=self.limit).load_rows(dict(kwargs)), tz, caps)

    def _server_in_utc(self) -> bool:
        """Whether connectorx reads this table's times as they are: it cannot set its session's
        zone, and MySQL converts TIMESTAMP values (not DATETIME) to it; PostgreSQL hands zoned
        values over in UTC. A server it cannot ask counts as not in UTC."""
        import sqlalchemy as sa

        from framework.sources.sql.adapter import SOURCE_TYPE

        if self.engine.dialect.name not in ("mysql", "mariadb") or not any(
                isinstance(c.info.get(SOURCE_TYPE, c.type), (sa.TIMESTAMP, sa.types.NullType))
                for c in self.table.c):
            return True
        try:
            with self.engine.connect() as conn:
                zone, system = conn.execute(
                    sa.text("SELECT @@global.time_zone, @@system_time_zone")).one()
        except sa.exc.SQLAlchemyError:
            return False
        return str(zone).lower() in UTC_NAMES or (
            str(zone).upper() == "SYSTEM" and str(system).lower() in UTC_NAMES)

    def _full_read(self) -> bool:
        """No cursor position yet (or none at all): the read takes every row from the start.
        Partitions never change which rows are read, only how, so this only picks the cheaper
        way."""
        if self.incremental is None:
            return True
        return bool(self.last_value is None
                    or self.last_value == self.incremental.initial_value)

    def _partitioned(self, split: tuple[str, int], kwargs: dict[str, Any], tz: str,
                     caps: Any) -> Iterator[Any]:
        """The full read as `count` ranges of `column`, each on its own connection, all in one
        snapshot: a row updated mid-read is seen once, as it was when the read began, never
        in two ranges or in none (PostgreSQL's exported snapshots, as `pg_dump -j` uses)."""
        import sqlalchemy as sa

        column, count = split
        # dlt's query first: building it runs our query adapter's before-read step (the row
        # versions' fingerprint, framework/sources/sql/versions.py), which must see the table
        # no later than the snapshot the parts read in.
        query = self.make_query().subquery("q")  # type: ignore[call-arg]
        with self.engine.connect() as coordinator:
            coordinator = coordinator.execution_options(isolation_level="REPEATABLE READ")
            with coordinator.begin():  # held open: the snapshot lives as long as it does
                snapshot = coordinator.execute(sa.text("SELECT pg_export_snapshot()")).scalar()
                low, high = coordinator.execute(sa.select(
                    sa.func.min(query.c[column]), sa.func.max(query.c[column]))).one()
                parts = self._parts(column, split_points((low, high), count), str(snapshot))
                if len(parts) > 1:
                    logs.logger.info(f"reading `{self.table.name}` in {len(parts)} partitions "
                                     f"of `{column}` at once",
                                     extra={"data": {"partitions": len(parts)}})
                batches = read_ahead_all([part._batches(kwargs, tz, caps) for part in parts],
                                         depth=min(len(parts), MAX_QUEUED_PARTS))
                with closing(batches):  # an early stop joins the readers before the rollback
                    for number, batch in enumerate(batches):
                        yield batch
                        if number == 0 and len(parts) > 1:
                            checkpoint("extract_partition")  # the crash tests' kill point

    def _parts(self, column: str, bounds: list[Any], snapshot: str) -> list[ArrowStreamLoader]:
        """Loaders for the ranges `bounds` cut `column` into; together they cover this loader's
        query. Each reads in `snapshot`, with a share of the batch size."""
        edges = [None, *bounds, None]
        parts = []
        for low, high in itertools.pairwise(edges):
            part = ArrowStreamLoader(
                self.engine, self.backend, self.table, self.columns, chunk_size=self.chunk_size,
                incremental=self.incremental,
                query_adapter_callback=within(self.query_adapter_callback, column, low, high),
                limit=self.limit)
            part.snapshot = snapshot
            # Batches in flight grow with the parts: each part's are smaller.
            part.batch_bytes = max(ADBC_BATCH_BYTES // (len(bounds) + 1), ADBC_MIN_BATCH_BYTES)
            parts.append(part)
        return parts

    def _conformed(self, batches: Iterator[Any], tz: str, caps: Any) -> Iterator[Any]:
        schema = None
        try:
            for table in batches:
                if table.num_rows:  # connectorx may end with an empty batch: dlt would write one
                    schema = schema or self._schema(table.schema, tz, caps)
                    table = conform(table, schema)
                    refuse_out_of_range(table)
                    yield table
        finally:  # a refused batch ends the read, and frees its connection, at once
            getattr(batches, "close", lambda: None)()

    @cached_property
    def _through_adbc(self) -> bool:
        """PostgreSQL tables whose every column type is known (a query's columns are untyped:
        ADBC would hand its numeric over as an opaque type that dlt has no hint to cast)."""
        import sqlalchemy as sa

        return self.engine.dialect.name == "postgresql" and not any(
            isinstance(c.type, sa.types.NullType) for c in self.table.c)

    def _adbc(self) -> Iterator[Any]:
        # The driver manager's own API: its DB-API module imports pandas and pyarrow.dataset
        # (0.35 s, paid by every run, even one with nothing to read).
        import adbc_driver_manager as adbc
        import adbc_driver_postgresql
        import pyarrow as pa
        import sqlalchemy as sa

        query = self.make_query().subquery("q")  # type: ignore[call-arg]
        select = sa.select(*(sa.cast(c, sa.Text).label(c.name) if _as_text(c.type) else c
                             for c in query.c))
        with adbc_driver_postgresql.connect(self.get_connection_url()) as database, \
                adbc.AdbcConnection(database) as connection, \
                adbc.AdbcStatement(connection) as statement:
            # The session's settings (settings/connections.py: utc_sessions), before any query.
            for sql in SESSION_SETTINGS["postgresql"]:
                with adbc.AdbcStatement(connection) as setting:
                    setting.set_sql_query(sql)
                    setting.execute_update()
            if self.snapshot is not None:  # before any query: the transaction's snapshot
                connection.set_options(**{"adbc.connection.autocommit": "false"})
                for sql in ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                            f"SET TRANSACTION SNAPSHOT '{self.snapshot}'"):
                    with adbc.AdbcStatement(connection) as setting:
                        setting.set_sql_query(sql)
                        setting.execute_update()
            statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(self.batch_bytes)})
            statement.set_sql_query(self.compile_query(select))
            stream, _ = statement.execute_query()
            with pa.RecordBatchReader.from_stream(stream) as reader:
                for batch in reader:
                    yield pa.Table.from_batches([batch])

    def _schema(self, got: Any, tz: str, caps: Any) -> Any:
        """The batch's schema with each hinted column's type and nullability as dlt's `pyarrow`
        backend makes them (`row_tuples_to_arrow`)."""
        import pyarrow as pa
        from dlt.common.libs.pyarrow import get_py_arrow_datatype

        fields = []
        for field in got:
            hint = self.columns.get(field.name) or {}
            if hint.get("data_type"):
                field = pa.field(field.name, get_py_arrow_datatype(hint, caps, tz),
                                 nullable=hint.get("nullable", True))
            elif field.name in self.table.c:  # dlt has no type for it (real, double precision)
                field = field.with_type(_as_python(self.table.c[field.name].type, field.type))
            fields.append(field)
        return pa.schema(fields)

    def _fallback(self, backend_kwargs: dict[str, Any] | None) -> Iterator[Any]:
        loader = _RowsLoader(self.engine, "pyarrow", self.table, self.columns,
                             chunk_size=self.chunk_size, incremental=self.incremental,
                             query_adapter_callback=self.query_adapter_callback, limit=self.limit)
        yield from loader.load_rows(backend_kwargs or {})


class _ConnectorXLoader(ConnectorXTableLoader):
    """connectorx (MySQL, and a PostgreSQL query's untyped columns), with exact decimals read
    as their text (cast back by `conform`, which names a column whose values its type would
    round): it keeps 10 decimal places (MySQL's DECIMAL(30,20) landed rounded, and reconcile,
    reading the same way, said equal)."""

    def make_query(self) -> Any:
        import sqlalchemy as sa

        from framework.sources.sql.as_text import exact_numeric

        query = super().make_query()
        if not any(exact_numeric(c.type) for c in self.table.c):
            return query
        inner = query.subquery("q")  # type: ignore[call-arg]
        return sa.select(*(sa.cast(c, sa.Text).label(c.name) if exact_numeric(c.type) else c
                           for c in inner.c))


class _RowsLoader(TableLoader):
    """dlt's `pyarrow` backend (rows through SQLAlchemy), with JSON, hstore and range columns
    read as their text, as the Arrow readers read JSON: the driver hands them over as dicts,
    which dlt's conversion made one struct of, every row gaining the others' keys as nulls."""

    def make_query(self) -> Any:
        import sqlalchemy as sa

        query = super().make_query()
        if not any(_dict_valued(c.type) or _single_float(c.type) for c in self.table.c):
            return query
        inner = query.subquery("q")  # type: ignore[call-arg]
        return sa.select(*(_as_row_reads(c) for c in inner.c))

    def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
        try:
            yield from super().load_rows(backend_kwargs or {})
        except Exception as exc:
            if "can't parse time" not in str(exc):
                raise
            raise FrameworkError(self._end_of_day(exc)) from None

    def _end_of_day(self, exc: Exception) -> str:
        """psycopg refuses PostgreSQL's `24:00:00` (a valid end of day): no Python time holds
        it. The Arrow readers land it as DuckDB does (24:00:00); rows read one by one cannot."""
        import sqlalchemy as sa

        times = [c.name for c in self.table.c if isinstance(c.type, sa.Time)] or ["the column"]
        first = times[0]
        return (f"table `{self.table.name}`: a time column ({', '.join(times)}) holds "
                f"'24:00:00', PostgreSQL's end of day, which rows read one by one (a column "
                "of this table needs that reader) cannot hold; select it in source.query as "
                f"text ({first}::text AS {first}) or capped "
                f"(LEAST({first}, '23:59:59.999999') AS {first}) ({str(exc).splitlines()[0]})")


def _single_float(sql_type: Any) -> bool:
    """MySQL's FLOAT: its text (the row-by-row reader's) keeps 6 significant digits (12345.67
    reads 12345.7), and connectorx reads the float32 itself (12345.669921875 as a double)."""
    from sqlalchemy.dialects import mysql

    return isinstance(sql_type, mysql.FLOAT)


def _as_row_reads(column: Any) -> Any:
    """A column as the row-by-row reader should select it: JSON, hstore and ranges as their
    text; MySQL's FLOAT as the double it is (`+ 0e0`: CAST AS DOUBLE needs MySQL 8.0.17), which
    the server writes in full, so both readers land the same value."""
    import sqlalchemy as sa

    if _dict_valued(column.type):
        return sa.cast(column, sa.Text).label(column.name)
    if _single_float(column.type):
        return sa.type_coerce(column + sa.literal_column("0e0"), sa.Float()).label(column.name)
    return column


def _dict_valued(sql_type: Any) -> bool:
    """Types psycopg hands over as a dict or a Range object: JSON, hstore, ranges."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    return isinstance(sql_type, (sa.JSON, postgresql.HSTORE, postgresql.ranges.AbstractRange))


def _capabilities() -> Any:
    from dlt.common.configuration.container import Container
    from dlt.common.destination import DestinationCapabilitiesContext

    return (Container().get(DestinationCapabilitiesContext)
            or DestinationCapabilitiesContext.generic_capabilities())


def _streamable(sql_type: Any) -> bool:
    """Whether connectorx reads a reflected column type; untyped columns (a query's) are tried.

    connectorx panics on types it lacks (interval, money, point, tsvector, xml, ...), so only
    the plain types go to it when the types are known."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    from framework.sources.sql.as_text import as_read_by

    sql_type = as_read_by(sql_type)
    return isinstance(sql_type, (sa.types.NullType, sa.Integer, sa.Numeric, sa.Float, sa.Boolean,
                                 sa.String, sa.Date, sa.DateTime, sa.Time, sa.LargeBinary,
                                 sa.JSON, sa.Uuid, mysql.YEAR))


def _as_text(sql_type: Any) -> bool:
    """Columns ADBC should receive as text: exact decimals (its binary numeric decoding costs
    more than the rest of the row), uuid (else bytes), json and enums (else opaque types), and
    `real`: its float32 would widen to 0.10000000149011612 where the pyarrow backend (through
    the server's text) has 0.1."""
    import sqlalchemy as sa

    from framework.sources.sql.as_text import exact_numeric

    return exact_numeric(sql_type) or isinstance(sql_type, (sa.Uuid, sa.JSON, sa.Enum, sa.REAL))


def _as_python(sql_type: Any, arrow_type: Any) -> Any:
    """The Arrow type the pyarrow backend infers from Python values for a column dlt gives no
    type: a float is float64, an integer int64; anything else stays as read."""
    import pyarrow as pa
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    if isinstance(sql_type, sa.Float):
        return pa.float64()
    if isinstance(sql_type, (sa.Integer, mysql.YEAR)):  # connectorx reads YEAR as int16
        return pa.int64()
    return arrow_type


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """`items` produced by a thread of their own, at most `depth` ahead of the consumer.

    The reader decodes the next batch (outside the GIL) while dlt writes the current one to
    Parquet; a consumer that stops early stops the thread before the connection closes.
    """
    return read_ahead_all([items], depth)


def read_ahead_all(sources: list[Iterable[T]], depth: int) -> Generator[T, None, None]:
    """The items of every source, each produced by a thread of its own, in the order they
    come, at most `depth` ahead of the consumer. The first error stops every thread and is
    raised here: a partitioned read yields all its parts or fails."""
    ready: queue.Queue[tuple[T | None, BaseException | None, bool]] = queue.Queue(depth)
    stop = threading.Event()

    def put(entry: tuple[T | None, BaseException | None, bool]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(items: Iterable[T]) -> None:
        try:
            for item in items:
                if not put((item, None, False)):
                    return
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer, raised there)
            put((None, exc, True))
            return
        finally:  # a generator's `with` blocks (the connection) close in this thread
            getattr(items, "close", lambda: None)()
        put((None, None, True))

    threads = [threading.Thread(target=produce, args=(items,), name=f"arrow-reader-{i}",
                                daemon=True) for i, items in enumerate(sources)]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            item, error, done = ready.get()
            if error is not None:
                raise error
            if done:
                running -= 1
                continue
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def split_points(bounds: tuple[Any, Any], count: int) -> list[Any]:
    """Up to `count - 1` increasing values cutting [low, high] into equal ranges; none when the
    range is empty or its type cannot be cut (a text column: one read)."""
    import datetime as dt
    from decimal import Decimal

    low, high = (_utc(v) for v in bounds)  # cut in absolute time: a DST change has no gap
    if low is None or high is None or count < 2 or not (_finite(low) and _finite(high)) \
            or not high > low:
        return []
    if isinstance(low, int) and isinstance(high, int):
        cuts = [low + (high - low) * i // count for i in range(1, count)]
    elif isinstance(low, (float, Decimal, dt.datetime, dt.date)) and type(low) is type(high):
        cuts = [low + (high - low) * i / count for i in range(1, count)]
    else:
        return []
    return sorted({c for c in cuts if low < c <= high})


def _utc(value: Any) -> Any:
    """An aware timestamp in UTC (psycopg hands `timestamptz` over in the session's zone, whose
    wall-clock arithmetic skips or repeats an hour); anything else as it is."""
    import datetime as dt

    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def _finite(value: Any) -> bool:
    """Not NaN or an infinity (numeric and float columns may hold them: no range to cut)."""
    import math
    from decimal import Decimal

    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def within(callback: Any, column: str, low: Any, high: Any) -> Any:
    """A `query_adapter_callback`: `callback`'s query narrowed to `low <= column < high` (no
    bound where None; the top range also takes NULLs), so adjacent ranges never overlap and
    together miss nothing."""
    import sqlalchemy as sa

    def adapt(select: Any, table: Any, incremental: Any = None, engine: Any = None) -> Any:
        query = callback(select, table, incremental, engine) if callback else select
        part = query.subquery("part")
        value = part.c[column]
        clause: Any = sa.true()
        if low is not None:
            clause = value >= low
        if high is not None:
            clause = sa.and_(clause, value < high)
        else:
            clause = sa.or_(clause, value.is_(None))
        return sa.select(*part.c).where(clause)

    return adapt


# Dates and timestamps outside years 1 to 9999 (Python's, Snowflake's and psycopg's range):
# what the Arrow readers make of PostgreSQL's `infinity` and `-infinity`. ADBC wraps them around
# to some 290,000 years BC, connectorx to chrono's limits (year 262143), and either would land
# as if it were a value. (The row-by-row reader refuses them: psycopg's "after year 10K".)
_EPOCH = dt.date(1970, 1, 1)
_DAYS = (dt.date(1, 1, 1) - _EPOCH).days, (dt.date(9999, 12, 31) - _EPOCH).days
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000}


def refuse_out_of_range(table: Any) -> None:
    """Raise, naming the column, on a date or timestamp outside years 1 to 9999."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_date32(field.type):
            low, high, as_int = _DAYS[0], _DAYS[1], pa.int32()
        elif pa.types.is_timestamp(field.type) and field.type.unit in _PER_DAY:
            per_day = _PER_DAY[field.type.unit]  # (nanoseconds cannot leave the range)
            low, high, as_int = _DAYS[0] * per_day, (_DAYS[1] + 1) * per_day - 1, pa.int64()
        else:
            continue
        bounds = pc.min_max(column.cast(as_int))
        least, most = bounds["min"].as_py(), bounds["max"].as_py()
        if least is not None and (least < low or most > high):
            name = field.name
            raise FrameworkError(
                f"column '{name}' holds a date or timestamp outside years 1 to 9999 "
                f"(PostgreSQL's infinity or -infinity, as its driver reads them, or a year 0), "
                f"which the lake cannot hold; map it in source.query (CASE WHEN {name} BETWEEN "
                f"'0001-01-01' AND '9999-12-31 23:59:59.999999' THEN {name} END AS {name}, or a "
                "date of your choice)")


def conform(table: Any, schema: Any) -> Any:
    """`table` cast to `schema` (safe casts: a value that does not fit raises, never rounds)."""
    if table.schema.equals(schema):
        return table
    try:
        return table.cast(schema)
    except ValueError:  # pyarrow's ArrowInvalid: find the column, and say what to do
        for have, want, column in zip(table.schema, schema, table.columns, strict=True):
            if have.type != want.type:
                try:
                    column.cast(want.type)
                except ValueError as exc:
                    raise FrameworkError(_uncastable(have.name, want.type, exc)) from None
        raise


def _uncastable(name: str, to: Any, exc: Exception) -> str:
    import pyarrow as pa

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if pa.types.is_decimal(to) and any(w in text for w in ("NaN", "Infinity", "inf")):
        return (f"column '{name}' holds NaN or an infinity, which no decimal in the lake can "
                f"hold; map it in source.query (CASE WHEN {name} IN ('NaN', 'Infinity', "
                f"'-Infinity') THEN NULL ELSE {name} END AS {name}) ({text})")
    if pa.types.is_decimal(to) and "Rescaling" in text:  # an unbounded numeric, say
        return (f"column '{name}' holds a value with more decimals than {to} keeps, which the "
                f"lake would round; declare the decimal it holds in columns: ({name}: "
                f"decimal(38, <scale>)) or cast it so in source.query ({text})")
    return f"column '{name}' holds a value that is not a {to}: {text}"
