"""The `sql` source kind: a table or a query behind a named SQLAlchemy connection.

`open` reflects the table (or describes the query) and names a misspelt key or cursor; the
dlt resource is built on first use, so `plan` can ask what is new without importing dlt's
SQL source. Cursor comparisons and the rows at the boundary are framework/sources/sql/cursor.py's;
the cheap "anything new?" is framework/sources/sql/precheck.py's, for `run` and `plan` alike.
"""

from __future__ import annotations

import copy
import errno
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from framework.errors import FrameworkError, ServiceError, StageError, chain
from framework.extras import missing_extra
from framework.sources.base import Rejected
from framework.sources.sql.domains import base_types
from framework.sources.sql.spec import SqlSource

if TYPE_CHECKING:
    from framework.context import RunContext
    from framework.settings.connections import Connection
    from framework.sources.sql.cursor import BoundaryFilter

# The spec's `on_null` in dlt's words.
NULL_POLICY: dict[str, Literal["raise", "include", "exclude"]] = {
    "fail": "raise", "include": "include", "exclude": "exclude"}
CHUNK_ROWS = 100_000
# dlt backends that yield Python rows or pandas frames, not Arrow tables.
ROW_BACKENDS = ("sqlalchemy", "pandas")


class SqlAdapter:
    """A `source:` block of kind `sql`, bound to the project's named connections."""

    kind: ClassVar[str] = "sql"

    def __init__(self, source: SqlSource, *, connections: Callable[[str], Connection],
                 target: Any, env: Mapping[str, str], root: Path) -> None:
        self.source = source
        self._connections = connections
        self.target = target
        self.name = source.connection

    @cached_property
    def connection(self) -> Connection:
        return self._connections(self.source.connection)

    def open(self, ctx: RunContext) -> SqlExtraction:
        # One engine for the reflection and the pre-check (a new engine connects and asks the
        # server about itself first); its connections close once the pre-check has answered.
        engine = self.connection.engine()
        try:
            reflected = self._reflect(ctx, engine)
            _check_columns(ctx, reflected)
        except StageError:
            engine.dispose()
            raise
        except Exception as exc:  # noqa: BLE001 - a dead server, a wrong password, a missing table
            engine.dispose()
            raise explain(ctx, self.connection, exc) from None
        return SqlExtraction(ctx, self, reflected, engine)

    def _reflect(self, ctx: RunContext, engine: Any) -> Any:
        """The table, or the query described as one, so dlt can treat the query like a table."""
        import sqlalchemy as sa

        from framework.sources.sql.as_text import zeroed

        metadata = sa.MetaData(schema=self.source.db_schema)
        name = self.resource_name(ctx)
        declared = {c.name: c.type for c in ctx.spec.columns}
        if self.source.query is not None:
            with engine.connect() as conn:
                result = conn.execute(sa.text(
                    f"SELECT * FROM ({self.source.query}) AS q WHERE 1 = 0"))
                names = list(result.keys())
                numerics = query_numerics(engine.dialect.name, result.cursor.description)
            # Untyped, but for numerics: left to the reader, one read by connectorx is refused
            # when its values differ in scale, and the row-by-row fallback takes it as DOUBLE.
            sa.Table(name, metadata, *(
                sa.Column(c, _as_read(numerics[c], declared.get(c))) if c in numerics
                # the source states no type: drift compares nothing for it
                else sa.Column(c, None, info={SOURCE_TYPE: sa.types.NullType()})
                for c in names))
        else:
            # Only what the read uses (dlt: names, types, nullability, the primary key): a
            # full autoload also reflects indexes, constraints and comments, several catalog
            # queries more per pipeline and run.
            inspector = sa.inspect(engine)
            schema = self.source.db_schema
            reflected = inspector.get_columns(name, schema)
            types = base_types(engine, reflected)
            read = {c["name"]: _as_read(types[c["name"]], declared.get(c["name"]),
                                        engine.dialect.name) for c in reflected}
            columns = [sa.Column(c["name"], read[c["name"]],
                                 nullable=c["nullable"] or zeroed(read[c["name"]]),
                                 info={SOURCE_TYPE: c["type"]})
                       for c in reflected]
            primary = inspector.get_pk_constraint(name, schema)
            constraint = [sa.PrimaryKeyConstraint(*primary["constrained_columns"],
                                                  name=primary.get("name"))
                          ] if primary["constrained_columns"] else []
            sa.Table(name, metadata, *columns, *constraint)
        key = f"{metadata.schema}.{name}" if metadata.schema else name
        return metadata.tables[key]

    def resource_name(self, ctx: RunContext) -> str:
        """dlt names `sql_table`'s resource after the table (the pipeline's name for a query):
        its cursor state lives under that name."""
        return self.source.table or ctx.spec.name

    def current_keys(self, ctx: RunContext, columns: list[str]) -> Any:
        """The source's key and cursor columns as Arrow, read in chunks."""
        import pyarrow as pa
        import sqlalchemy as sa

        from framework.sources.sql.as_text import selected_otherwise

        source, connection = self.source, self.connection
        missing = connection.not_set_up()
        if missing:  # connecting would create an empty database file
            raise ServiceError(f"source '{connection.name}'", f"not set up: {missing}")
        engine = connection.engine()
        preparer = engine.dialect.identifier_preparer

        def source_quote(name: str) -> str:  # the dialect's own rules
            return text_identifier(preparer, name)

        relation = (f"({source.query}) AS q" if source.query else ".".join(
            source_quote(p) for p in filter(None, [source.db_schema, source.table])))
        deletes = ctx.spec.deletes
        batches: list[pa.RecordBatch] = []
        try:
            # A key the extract reads as its text (TIME, interval, ...), or with its zero dates
            # as NULL, is read so here too, to compare with what landed; the rest as the
            # driver hands them over.
            read = self._reflect(ctx, engine).c if source.query is None else {}
            as_text = {c for c in columns if c in read and selected_otherwise(read[c].type)}
            query = sa.select(*(sa.column(c, read[c].type if c in as_text else None)
                                for c in columns)).select_from(sa.text(relation))
            if deletes is not None and deletes.soft_delete_column:  # deleted rows left already
                flag = source_quote(deletes.soft_delete_column)
                query = query.where(sa.text(
                    f"{flag} IS NULL OR LOWER(CAST({flag} AS CHAR(10))) IN ('false', '0')"))
            with engine.connect() as conn:
                result = conn.execution_options(yield_per=100_000).execute(query)
                for chunk in result.partitions():
                    batches.append(pa.RecordBatch.from_arrays(
                        [_key_array([r[i] for r in chunk]) for i in range(len(columns))],
                        names=columns))
        except sa.exc.NoSuchTableError as exc:  # its text is the bare table name
            raise ServiceError(f"source '{connection.name}' ({connection.safe_url})",
                               f"table '{exc}' does not exist") from None
        except sa.exc.SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise ServiceError(f"source '{connection.name}' ({connection.safe_url})",
                               first) from None
        finally:
            engine.dispose()
        if not batches:  # an empty source: every warehouse row is extra
            return pa.table({c: pa.array([], pa.string()) for c in columns})
        return pa.Table.from_batches(batches)

    def not_set_up(self) -> str | None:
        try:
            return self.connection.not_set_up()
        except FrameworkError:  # a missing variable, say: the run itself says so
            return None

    def describe(self) -> str:
        return f"{self.source.connection}.{self.source.table or '(query)'}"

    def check(self) -> str:
        """`doctor`: connect and run `SELECT 1`."""
        import sqlalchemy as sa

        connection = self.connection
        engine = connection.engine()
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise FrameworkError(f"{connection.safe_url}: {cause}") from None
        finally:
            engine.dispose()
        return connection.safe_url


class SqlExtraction:
    """One run's read of a table or query: reflected now, its dlt resource built on use."""

    def __init__(self, ctx: RunContext, adapter: SqlAdapter, table: Any, engine: Any) -> None:
        self.ctx = ctx
        self.adapter = adapter
        self.table = table  # the reflected SQLAlchemy table (a query's stand-in)
        self.engine = engine  # the reflection's: the pre-check and `plan` reuse it
        self.columns = source_columns(table)
        self._boundary: BoundaryFilter | None = None

    @property
    def connection(self) -> Connection:
        return self.adapter.connection

    @cached_property
    def types(self) -> dict[str, str]:
        """The columns in the framework's portable types (a query's columns are text)."""
        from framework.spec.columns import from_sqlalchemy

        if self.adapter.source.query is not None:
            return {c.name: "string" for c in self.table.c}
        # The source's own types, not the read's (_as_read): drift is a change of the source.
        return {c.name: from_sqlalchemy(c.info.get(SOURCE_TYPE, c.type), self.connection.dialect)
                for c in self.table.c}

    @cached_property
    def resource(self) -> Any:
        import dlt
        from dlt.sources.sql_database import sql_table

        from framework.sources.sql.as_text import hinted_by
        from framework.sources.sql.cursor import (
            BoundaryFilter,
            lag_in_cursor_units,
            query_adapter,
        )
        from framework.sources.sql.versions import BeforeRead, applies, nulls_read

        ctx, source, table = self.ctx, self.adapter.source, self.table
        wrap = _wrap_query(source.query) if source.query is not None else None
        incremental = None
        adapter = wrap
        backend = _backend(self.connection)
        if source.incremental:
            inc = source.incremental
            lag = lag_in_cursor_units(ctx, table.c[inc.cursor].type)
            arrow = backend not in ROW_BACKENDS
            incremental = dlt.sources.incremental(
                inc.cursor,
                initial_value=_initial(inc.initial_value, table.c[inc.cursor].type),
                lag=lag,
                on_cursor_value_missing=NULL_POLICY[inc.on_null],
                # `>=` the last maximum with dlt's hashing of every boundary row off: its cost
                # and state grew with the rows sharing that value. BoundaryFilter drops the
                # re-read rows the lake already holds instead. Backends that yield Python rows
                # or pandas frames keep dlt's hashing of the whole row.
                primary_key=() if arrow else tuple(c.name for c in table.c),
                range_start="closed",
            )
            # PostgreSQL: the row versions at the top (with lag, in the window), taken just
            # before the read, let the next pre-check see that none changed (versions.py).
            nulls = nulls_read(ctx.spec)
            versions = BeforeRead(inc.cursor, lag, nulls) \
                if arrow and applies(self.connection.dialect, ctx.spec) else None
            adapter = query_adapter(ctx, self.connection.dialect, wrap, versions)
            # A look-back window re-reads rows below the boundary too, and `on_null: include`
            # the rows with no cursor: merge absorbs them (append is refused by validation),
            # so only the boundary entry is kept, and the digests of the rows met again for
            # the next pre-check.
            if arrow:
                self._boundary = BoundaryFilter(ctx, table.name, dedup=not lag,
                                                versions=versions, window=bool(lag),
                                                nulls=nulls)
        resource = sql_table(
            credentials=self.engine,  # its sessions in UTC; disposed by close()
            backend_kwargs=self._partitions(backend) or {},
            table=table.name,
            metadata=table.metadata,
            incremental=incremental,
            chunk_size=CHUNK_ROWS,
            backend=backend,  # type: ignore[arg-type]  # ours are registered names
            reflection_level="full",  # from our stand-in table: a query's typed numerics too
            type_adapter_callback=hinted_by,  # hints from the type a reader sees (as_text.py)
            query_adapter_callback=adapter,
            write_disposition="append",
        )
        resource.apply_hints(table_name=ctx.spec.lake.path)
        if self._boundary is not None:
            resource.add_map(self._boundary)
        return resource

    def _partitions(self, backend: str) -> dict[str, Any] | None:
        """The reader's instruction to split a full read, when the source declares one."""
        from framework.sources.sql.readers import ARROW_STREAM, PARTITIONS

        source = self.adapter.source
        if source.partitions is None:
            return None
        if backend != ARROW_STREAM or self.connection.dialect != "postgresql":
            from framework import logs

            # The parts must share one snapshot, or a row updated mid-read could be in two
            # of them or in none: PostgreSQL exports snapshots, the others do not.
            logs.logger.info(f"source.partitions: {self.connection.dialect} connections are "
                             "read in one pass (parts need PostgreSQL's shared snapshots)")
            return None
        return {PARTITIONS: (source.partition_column, source.partitions.count)}

    def nothing_new(self, pipeline: Any) -> bool:
        """The cursor pre-check; a failure of its own only means dlt runs and reports the
        fault in its words."""
        from framework.sources.sql.precheck import nothing_new

        if self.connection.backend in ROW_BACKENDS:  # (`auto` is an Arrow reader)
            return False  # no BoundaryFilter keeps the boundary entry it reads (dlt's hashing)
        try:
            return nothing_new(self.ctx, pipeline, self.table, self.connection, self.engine)
        except Exception:  # noqa: BLE001
            return False
        finally:
            self.engine.dispose()  # no idle connection to the source while dlt reads

    def count_waiting(self, last_value: Any) -> tuple[int, str]:
        """`plan`: the rows at or after the cursor (all rows without one) and what they are.
        An upper bound: the run drops the boundary rows the lake already holds."""
        import sqlalchemy as sa

        spec, source = self.ctx.spec, self.adapter.source
        relation: Any = self.table
        if source.query is not None:
            relation = sa.text(source.query).columns(
                *(sa.column(c.name) for c in self.table.c)).subquery("q")
        query = sa.select(sa.func.count()).select_from(relation)
        start = last_value
        if start is None and source.incremental and spec.cursor:  # as the run reads it
            start = _initial(source.incremental.initial_value, self.table.c[spec.cursor].type)
        if spec.cursor and start is not None:
            column = relation.c[spec.cursor]
            text = isinstance(self.table.c[spec.cursor].type, sa.String)  # '2020-01-01' stays
            label = "at or after the cursor" if last_value is not None \
                else "at or after source.incremental.initial_value"
            if last_value is not None and not text:
                start, label = _looked_back(self.ctx, self.table.c[spec.cursor].type, start,
                                            label)
            query = query.where(column >= (start if text else _bindable(start, column.type)))
        else:
            label = "all rows (full refresh)" if not spec.cursor else \
                "all rows (no cursor position yet)"
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar_one()), label
        finally:
            self.engine.dispose()

    def explain(self, exc: Exception) -> Exception:
        if any(type(e).__name__ == "NameNormalizationCollision" for e in chain(exc)):
            return StageError(self.ctx.spec.name, "extract", _collision(self.table))
        explained = explain(self.ctx, self.connection, exc)
        culprit = self._culprit(exc)
        if culprit is None:
            return explained
        return StageError(self.ctx.spec.name, "extract", culprit)

    def _culprit(self, exc: Exception) -> str | None:
        """The column behind a value the drivers could not convert (they name none): SQLite's
        TIMESTAMP column holding a number (epoch seconds, say), which SQLAlchemy parses as
        text; any SQLite column holding a value of another type than its own (SQLite keeps
        'three' in an INTEGER column); PostgreSQL's infinity or a year past 9999; MySQL's
        zero date."""
        import sqlalchemy as sa

        firsts = " ".join((str(e).strip().splitlines() or [""])[0] for e in chain(exc))
        dialect = self.connection.dialect
        temporal = [c.name for c in self.table.c if isinstance(c.type, (sa.DateTime, sa.Date))]
        checks: list[tuple[str, str, str, str]] = []  # column, condition, what, fix
        if dialect == "sqlite" and "fromisoformat" in firsts:
            checks = [(c, "typeof({c}) NOT IN ('text', 'null')",
                       "a number where SQLite keeps a timestamp as text",
                       ("map it in source.query: datetime({c}, 'unixepoch') AS {c} for epoch "
                       "seconds, or CAST({c} AS TEXT) AS {c}")) for c in temporal]
        elif dialect == "sqlite" and re.search(r"Expected bytes|tried to convert|Could not "
                                               r"convert|cannot be converted", firsts):
            for column in self.table.c:
                kinds = _SQLITE_KINDS.get(_kind(column.type) or "")
                if kinds:
                    checks.append((column.name, f"typeof({{c}}) NOT IN ({kinds}, 'null')",
                                   (f"beside the {column.type} values of its own type (SQLite "
                                   "keeps any value in any column; no lake column holds both)"),
                                   ("map it in source.query: CAST({c} AS TEXT) AS {c}, or a CASE "
                                   "that keeps the values of its type")))
        elif dialect == "postgresql" and re.search(
                r"(date|timestamp) too (large|small)|can't parse (date|timestamp)", firsts):
            # (infinity is read as year 9999's last instant: as_text.infinity_clamped; not in
            # an array, where psycopg fails on it as on year 10K, or can't parse 'infinity}')
            checks = [(c, "isfinite({c}) AND ({c} >= '10000-01-01' OR {c} < '0001-01-01')",
                       "a year past 9999 or before year 1, which no lake date holds",
                       ("map it in source.query: CASE WHEN {c} BETWEEN '0001-01-01' AND "
                        "'9999-12-31' THEN {c} END AS {c}")) for c in temporal]
            checks += [(c.name, "'infinity' = ANY({c}) OR '-infinity' = ANY({c})",
                        "infinity in an array, which no lake date holds",
                        "map it in source.query: CAST({c} AS text[]) AS {c}")
                       for c in self.table.c if isinstance(c.type, sa.ARRAY)
                       and isinstance(c.type.item_type, (sa.DateTime, sa.Date))]
        elif dialect == "postgresql" and re.search(r"field `[^`]+` with dlt hint `data_type="
                                                   r"decimal`|Conversion to arrow failed", firsts):
            # dlt's row-by-row conversion of a numeric's NaN: "'str' object cannot be
            # interpreted as an integer", which names nothing a user can act on
            numeric = [c.name for c in self.table.c if isinstance(c.type, sa.Numeric)
                       and not isinstance(c.type, sa.Float)]
            checks = [(c, "CAST({c} AS text) IN ('NaN', 'Infinity', '-Infinity')",
                       "NaN or an infinity, which no decimal in the lake can hold",
                       ("map it in source.query: CASE WHEN CAST({c} AS text) IN ('NaN', "
                        "'Infinity', '-Infinity') THEN NULL ELSE {c} END AS {c}"))
                      for c in numeric]
        elif dialect == "mysql" and re.search(
                r"convert the value `(Date|DateTime|Timestamp)\(|Expected bytes|cannot be "
                r"converted|Could not convert|tried to convert", firsts):
            # connectorx's panic names no column, nor does Arrow's conversion of the rows read
            # one by one (PyMySQL hands a zero date over as its text)
            text = "CAST({c} AS CHAR)"
            checks = [(c, (f"LEFT({text}, 4) = '0000' OR SUBSTRING({text}, 6, 2) = '00' "
                          f"OR SUBSTRING({text}, 9, 2) = '00'"),
                       "MySQL's zero date (or a zero month or day), which no lake date holds",
                       ("map it in source.query: NULLIF({c}, '0000-00-00') AS {c}, or a date of "
                       "your choice")) for c in temporal]
        if not checks:
            return None
        source, preparer = self.adapter.source, self.engine.dialect.identifier_preparer
        relation = f"({source.query}) AS q" if source.query else ".".join(
            text_identifier(preparer, part) for part in (source.db_schema, source.table) if part)
        try:
            with self.engine.connect() as conn:
                for name, test, what, fix in checks:
                    quoted = text_identifier(preparer, name)
                    # PostgreSQL's as text: psycopg cannot fetch the very value that failed
                    # the read (year 10K), and a NaN reads as itself
                    shown = f"CAST({quoted} AS text)" if dialect == "postgresql" else quoted
                    found = conn.execute(sa.text(
                        f"SELECT {shown} FROM {relation} WHERE "
                        f"{test.format(c=quoted)} LIMIT 1")).first()
                    if found is not None:
                        return (f"column '{name}' holds {found[0]!r}: {what}; "
                                f"{fix.format(c=name)}")
        except Exception:  # noqa: BLE001 - the probe is a courtesy: the error stands without it
            return None
        finally:
            self.engine.dispose()
        return None

    def rejected(self) -> list[Rejected]:
        return []  # a database hands over typed rows: nothing to refuse

    def close(self) -> None:
        self.engine.dispose()
        if self._boundary is not None:
            self._boundary.close()


# SQLite's storage classes a column of each kind holds (typeof), as SQL list items.
_SQLITE_KINDS = {"integer": "'integer'", "number": "'integer', 'real'", "text": "'text'"}


def _kind(sql_type: Any) -> str | None:
    import sqlalchemy as sa

    if isinstance(sql_type, sa.Integer):
        return "integer"
    if isinstance(sql_type, (sa.Numeric, sa.Float)):
        return "number"
    if isinstance(sql_type, sa.String) and not isinstance(sql_type, sa.Enum):
        return "text"
    return None


def _looked_back(ctx: RunContext, sql_type: Any, start: Any, label: str) -> tuple[Any, str]:
    """The run's first cursor value under `lag`: the window below the cursor is read again."""
    from datetime import date, datetime, timedelta
    from decimal import Decimal

    from framework.sources.sql.cursor import lag_in_cursor_units

    lag = lag_in_cursor_units(ctx, sql_type)
    if not lag:
        return start, label
    if isinstance(start, datetime):
        start = start - timedelta(seconds=lag)
    elif isinstance(start, date):
        start = start - timedelta(days=lag)
    elif isinstance(start, Decimal):
        start = start - Decimal(str(lag))
    elif isinstance(start, (int, float)):
        start = start - lag
    else:
        return start, label
    return start, f"{label}, less the lag window (read again, merged on the key)"


def text_identifier(preparer: Any, name: str) -> str:
    """`name` quoted by the dialect's rules, for SQL written as `sa.text`: text doubles each
    `%` itself for a pyformat driver (psycopg, PyMySQL), as the preparer's quoting does too, so
    a table `Sales 100%` was looked up as `Sales 100%%`."""
    quoted = str(preparer.quote(name))
    return quoted.replace("%%", "%") if getattr(preparer, "_double_percents", False) else quoted


def _collision(table: Any) -> str:
    """Which source columns dlt's snake_case naming makes one: dlt's own message lists them on
    lines the one-line error dropped."""
    from framework.spec.columns import lake_name_collisions

    return lake_name_collisions(c.name for c in table.c) or \
        "columns of the source have one name in the lake (dlt's snake_case names); see dlt.log"


def source_columns(table: Any) -> dict[str, str]:
    """The source's columns and their declared types, as the database states them."""
    out = {}
    for column in table.c:
        try:
            out[column.name] = str(column.info.get(SOURCE_TYPE, column.type))
        except Exception:  # noqa: BLE001 - a type SQLAlchemy cannot render (a query column)
            out[column.name] = type(column.type).__name__
    return out


def _check_columns(ctx: RunContext, table: Any) -> None:
    """Name a misspelt cursor or key before dlt does, with the pipeline file and a suggestion."""
    from framework.sources.sql.as_text import AsText
    from framework.spec.columns import framework_column_clash
    from framework.spec.loader import did_you_mean

    columns = [c.name for c in table.c]
    transform = ctx.spec.transform
    clash = None if transform.sql or transform.sql_file else framework_column_clash(columns)
    if clash:  # before a row is read (a transform may rename it: the loaders check its output)
        raise StageError(ctx.spec.name, "extract", f"pipelines/{ctx.spec.name}.yml: source: "
                         f"{clash}")
    wanted = [("source.primary_key", c) for c in ctx.spec.source.primary_key]
    if ctx.spec.cursor:
        wanted.append(("source.incremental.cursor", ctx.spec.cursor))
    split = getattr(ctx.spec.source, "partition_column", None)
    if split:
        wanted.append(("source.partitions.column", split))
    for key, column in wanted:
        if column not in columns:
            raise StageError(ctx.spec.name, "extract", f"pipelines/{ctx.spec.name}.yml: {key}: "
                             f"'{column}' is not a column of the source"
                             f"{did_you_mean(column, columns)}")
    if ctx.spec.cursor and isinstance(table.c[ctx.spec.cursor].type, AsText):
        raise StageError(ctx.spec.name, "extract", f"pipelines/{ctx.spec.name}.yml: "
                         f"source.incremental.cursor: '{ctx.spec.cursor}' is read as its text "
                         f"({table.c[ctx.spec.cursor].info.get(SOURCE_TYPE)}), whose order is not "
                         "the column's; name another cursor, or cast it in source.query")
    if split and not _splittable(table.c[split].type):
        raise StageError(ctx.spec.name, "extract", f"pipelines/{ctx.spec.name}.yml: "
                         f"source.partitions.column: '{split}' ({table.c[split].type}) has no "
                         "range to split; name a number, date or timestamp column")


SOURCE_TYPE = "framework_source_type"  # Column.info: the type reflected, before _as_read


def query_numerics(dialect: str, description: Any) -> dict[str, Any]:
    """A query's numeric columns, from its result's description: PostgreSQL's driver gives
    their precision and scale; MySQL's gives a display width, so its decimals count as
    unbounded (read as declared in `columns:`, else as decimal(38,9), refused on a loss).
    Binary floats are typed too, so that a declared decimal turned float is named (drift)."""
    import sqlalchemy as sa

    codes = {"postgresql": (1700,), "mysql": (0, 246)}.get(dialect, ())  # numeric; DECIMAL
    floats = {"postgresql": (700, 701), "mysql": (4, 5)}.get(dialect, ())  # real, double
    found: dict[str, Any] = {}
    for column in description or ():
        name, code, precision, scale = column[0], column[1], column[4], column[5]
        if code in floats:
            found[name] = sa.Float()
        elif code in codes:
            exact = dialect == "postgresql" and precision is not None and precision > 0
            found[name] = sa.Numeric(precision, scale) if exact else sa.Numeric()
    return found


def _as_read(sql_type: Any, declared: str | None = None, dialect: str = "") -> Any:
    """A reflected type as the read should take it. A binary float stays a float: MySQL's
    DOUBLE reflects as a float returned as a Decimal rounded to 10 places (SQLAlchemy's
    `asdecimal`), which would land 1.5e-12 as 0 on the row-by-row path. An unsigned BIGINT is
    a decimal(20,0), as `init` declares it; an exact numeric wider than 38 digits is read as
    its text, as are interval, inet, cidr, MySQL's TIME and arrays of them (as_text.py).
    A numeric without precision is read as the `columns:` entry of the same name declares it
    (`decimal(p,s)`, or `string` for its text), else as decimal(38,9). A PostgreSQL domain
    arrives as its base type (`domains.base_types`). A MySQL date or timestamp is read
    with its zero dates as NULL, a PostgreSQL one with its infinities as the first and last
    instants the lake holds (`as_text.dates_as_read`)."""
    import sqlalchemy as sa

    from framework.sources.sql.as_text import AsText, dates_as_read, reader_of, text_only
    from framework.spec.columns import MAX_PRECISION, UNSIGNED_BIGINT, base_type, decimal_parts

    if isinstance(sql_type, (sa.Date, sa.DateTime)):
        return dates_as_read(dialect, sql_type)

    if isinstance(sql_type, sa.Float):
        if sql_type.asdecimal:
            sql_type = copy.copy(sql_type)
            sql_type.asdecimal = False
        return sql_type
    if isinstance(sql_type, sa.Uuid) and sql_type.as_uuid:
        # Text from the first statement on: dlt's table adapter sets it only when its read
        # starts, and SQLAlchemy memoizes a type's result processor per dialect, so the
        # pre-check's query before it kept uuid.UUID objects coming to the row-by-row reader,
        # whose Arrow conversion then failed ("Invalid UTF8 payload") on every later run.
        sql_type = copy.copy(sql_type)
        sql_type.as_uuid = False
        return sql_type
    if text_only(sql_type):
        return reader_of(sql_type)
    if isinstance(sql_type, sa.BigInteger) and getattr(sql_type, "unsigned", False):
        return sa.Numeric(*decimal_parts(UNSIGNED_BIGINT))
    if not isinstance(sql_type, sa.Numeric):
        return sql_type
    unbounded = sql_type.precision is None
    if unbounded and declared and base_type(declared) == "decimal":
        return sa.Numeric(*decimal_parts(declared))
    # Arrow's decimal256 would reach the transform as DOUBLE (DuckDB holds 38 digits)
    if (sql_type.precision or 0) > MAX_PRECISION or (unbounded and declared == "string"):
        return AsText()
    return sql_type


def _key_array(values: list[Any]) -> Any:
    """Key or cursor values as Arrow; integers past int64 (MySQL's unsigned BIGINT) as
    decimal(20,0), the type they land as."""
    import pyarrow as pa

    from framework.spec.columns import UNSIGNED_BIGINT, decimal_parts

    try:
        return pa.array(values)
    except (OverflowError, pa.ArrowInvalid):
        if not all(v is None or isinstance(v, int) for v in values):
            raise
        return pa.array(values, pa.decimal128(*decimal_parts(UNSIGNED_BIGINT)))


def _splittable(sql_type: Any) -> bool:
    """A column whose range cuts into parts (a query's untyped column is tried at read)."""
    import sqlalchemy as sa

    return isinstance(sql_type, (sa.Integer, sa.Numeric, sa.Float, sa.Date, sa.DateTime,
                                 sa.types.NullType))


def _backend(connection: Connection) -> str:
    """`auto`: the fastest Arrow reader for the dialect (framework/sources/sql/readers.py)."""
    if connection.backend != "auto":
        return str(connection.backend)
    from framework.sources.sql.readers import reader_for

    return reader_for(connection.dialect)


def _initial(value: str | int | None, column_type: Any) -> Any:
    """The initial value as dlt compares it with the cursor column's values: a number for a
    numeric column (quoted, '100.5': as seconds since 1970 it failed on the server), the text
    itself for a text column, otherwise an ISO text becomes a UTC datetime."""
    import decimal

    import sqlalchemy as sa

    if not isinstance(value, str):
        return value
    if isinstance(column_type, sa.String):
        return value
    if isinstance(column_type, (sa.Integer, sa.Numeric, sa.Float)):  # 2.1: Float not Numeric
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return value  # dlt names the value it cannot compare
        if isinstance(column_type, sa.Integer) and number == number.to_integral_value():
            return int(number)
        return float(number) if isinstance(column_type, sa.Float) else number
    from dlt.common.time import ensure_pendulum_datetime

    try:
        return ensure_pendulum_datetime(value)
    except Exception:  # noqa: BLE001 - not a timestamp: a cursor of another type starts from it
        return value


def _bindable(value: Any, column_type: Any) -> Any:
    """A cursor value as the column compares it: naive UTC for a naive timestamp column."""
    import datetime as dt

    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        value = dt.datetime.fromtimestamp(value.timestamp(), dt.UTC) \
            if value.tzinfo else value
        if not getattr(column_type, "timezone", False):
            value = value.replace(tzinfo=None)
        return dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                           value.second, value.microsecond, value.tzinfo)
    return value


def _wrap_query(query: str) -> Any:
    def adapt(select: Any, table: Any, *_: Any) -> Any:
        """dlt's SELECT over the stand-in table, re-pointed at the query as a subquery."""
        import sqlalchemy as sa
        from sqlalchemy.sql.visitors import replacement_traverse

        # Typed as the stand-in: a column read as its text keeps its CAST (as_text.py).
        subquery = sa.text(query).columns(*(sa.column(c.name, c.type) for c in table.c)) \
            .subquery("q")

        def swap(element: Any, **_: Any) -> Any:
            if element is table:
                return subquery
            if isinstance(element, sa.Column) and element.table is table:
                return subquery.c[element.name]
            return None

        return replacement_traverse(select, {}, swap)

    return adapt


# A full disk, a read-only one, no permission, a quota or file size limit: the same fix, a
# path to name.
_DISK_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM, errno.EFBIG)

# What a database says of a query it cannot run as written (PostgreSQL, MySQL/MariaDB, SQLite).
_QUERY_ERROR = re.compile(r"syntax error|SyntaxError|UndefinedColumn|UndefinedTable|"
                          r"UndefinedFunction|no such (column|table|function)|"
                          r"(relation|column|function|table) \S+ does not exist|"
                          r"Unknown column|doesn't exist|You have an error in your SQL",
                          re.IGNORECASE)


def explain(ctx: RunContext, connection: Connection, exc: Exception) -> Exception:
    """Turn dlt's nested exception into one line naming the service or the spec key."""
    missing = missing_extra(exc, f"source '{connection.name}' ({connection.dialect})")
    if missing is not None:  # the database's driver is an extra (postgres, mysql)
        return missing
    causes = list(chain(exc))
    # SQLAlchemy raises NoSuchTableError while handling its own KeyError: the missing table is
    # the news, wherever it sits in the chain; otherwise the deepest cause says most.
    missing_table = next((e for e in causes if type(e).__name__ == "NoSuchTableError"), None)
    cause = missing_table or causes[-1]
    if isinstance(cause, FrameworkError):  # explained where it was raised (readers.py)
        return cause if isinstance(cause, StageError | ServiceError) else \
            StageError(ctx.spec.name, "extract", str(cause))
    firsts = [(str(e).strip().splitlines() or [""])[0] for e in causes]  # each one's first line
    name = type(cause).__name__
    text = firsts[causes.index(cause)] or name
    number = re.match(r"\[Errno (\d+)\] (.*)", text)  # PyArrow's carries it in its text only
    code = cause.errno if isinstance(cause, OSError) and cause.errno else \
        int(number[1]) if number else None
    if isinstance(cause, OSError) and code in _DISK_ERRNOS:
        # dlt's writes to the lake or its own folder: the error names no path of its own
        where = cause.filename or (f"the lake ({ctx.lake.url}) or dlt's folder "
                                   f"({ctx.state_dir / 'dlt'})")
        what = cause.strerror or (number[2] if number else text)
        return StageError(ctx.spec.name, "extract", f"{what} writing {where}: free space there "
                          "or make it writable, then run again")
    if getattr(ctx.spec.source, "query", None) is not None and \
            _QUERY_ERROR.search(f"{name}: {text}"):
        # the user's SQL, not the service (SQLite calls a syntax error an OperationalError)
        return StageError(ctx.spec.name, "extract", f"pipelines/{ctx.spec.name}.yml: "
                          f"source.query: {text}")
    if "OperationalError" in name or "connect" in text.lower() and "refused" in text.lower():
        return ServiceError(f"source '{connection.name}' ({connection.safe_url})",
                            f"cannot connect: {text}")
    if missing_table is not None:
        table = text.strip("`\"")  # MySQL quotes it in backticks
        return StageError(ctx.spec.name, "extract",
                          f"table '{table}' does not exist in source '{connection.name}'")
    if re.search(r"convert the value `(Date|DateTime|Timestamp)\(", text):  # connectorx's panic
        return StageError(ctx.spec.name, "extract", "a DATE or DATETIME column holds MySQL's zero "
                          "date ('0000-00-00', or a zero month or day), which no date in the "
                          "lake can hold; map it in source.query (NULLIF(column, '0000-00-00') "
                          f"AS column, or a date of your choice) ({name}: {text})")
    # psycopg's own error (its cause reads "year 0 is out of range"): year 10K, or BC (a
    # source.query's infinity too: only a table's columns are read with it clamped)
    beyond = next((t for t in firsts if re.match(r"(date|timestamp) too (large|small)", t)), None)
    if beyond is not None:
        return StageError(ctx.spec.name, "extract", f"{beyond}: a date or timestamp beyond what "
                          "the lake can hold (past year 9999, before year 1, or infinity in a "
                          "source.query's column); map it in source.query (CASE WHEN column "
                          "BETWEEN '0001-01-01' AND '9999-12-31' THEN column END AS column)")
    # Anywhere in the chain: the Arrow reader's own failure (a connectorx panic on decimals
    # whose scales differ) sits below the row-by-row fallback's.
    rescaled = next((t for t in firsts if "Rescaling Decimal value would cause data loss" in t
                     or "Decimal value does not fit in precision" in t), None)
    if rescaled is not None:
        field = re.search(r"for field `([^`]+)`.*\((.*)\)$", rescaled)  # dlt's row-by-row
        if field:                                                       # conversion
            rescaled = f"column '{field[1]}': {field[2]}"
        return StageError(ctx.spec.name, "extract", f"{rescaled}: a numeric holds more digits "
                          "than the type it is read as (a numeric without precision reads as "
                          "decimal(38,9)); declare it in columns: (decimal(p,s), or string for "
                          "its exact text)")
    if "Could not convert" in text or "cannot be converted" in text or \
            name == "UnsupportedArrowTypeException" or text.startswith("not implemented:"):
        # a type no reader converts (a query's column, an array of intervals, ...)
        return StageError(ctx.spec.name, "extract", f"{name}: {text}; cast that column to a plain "
                          "type in source.query (CAST(column AS text), say)")
    if "CursorPathMissing" in name or "Cursor column" in text:
        return StageError(ctx.spec.name, "extract", f"source.incremental.cursor: "
                          f"'{ctx.spec.cursor}' is not a column of the source")
    if "ValueNone" in name or "None" in text and "cursor" in text.lower():
        return StageError(ctx.spec.name, "extract", f"rows with a NULL '{ctx.spec.cursor}'; set "
                          "source.incremental.on_null to include or exclude them")
    return StageError(ctx.spec.name, "extract", f"{name}: {text}")
