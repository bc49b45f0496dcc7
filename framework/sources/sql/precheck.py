"""A cheap look at the source's cursor before a dlt run: is there anything new at all?

A pipeline scheduled every 15 minutes mostly finds nothing. dlt finds that out by running its
whole extract, normalize and load of an empty package; one query near the boundary tells the
same. It reads the source's rows at or above the stored boundary with the extract's own
superset filter (exact on every spelling of a timestamp, framework/sources/sql/cursor.py) and
compares them in Python, on parsed values:

- a row above the boundary: new rows, run dlt;
- rows at the boundary: new unless each equals the latest version of its key in the lake's raw
  batches at that value (the extract's own rule): by the digests the extract keeps when few
  rows share the boundary, else in DuckDB over the lake's files;
- none: nothing new.

On PostgreSQL one aggregate answers first, however many rows share the boundary: no row above
it and the rows at it are the very row versions that were there just before the last read
(framework/sources/sql/versions.py). Any difference goes on to the comparison above. With a
look-back window (`lag`, which init writes) the same aggregate covers the window's rows, which
every run reads again, and so with `on_null: include` the rows with no cursor (init writes it
for an `updated_at` that is NULL until a row's first update); elsewhere (and when it differs)
those rows are compared with the digests the last read kept of them, up to `WINDOW_ROWS` rows.

Only a definite "nothing new" skips dlt; anything unusual (more rows read again every run than
the digests cover off PostgreSQL, or a changed one, a query source, a text cursor
whose order is the database's collation, no state yet, more than `MAX_ROWS` rows near the
boundary whose versions changed or cannot be seen, rows that do not convert to the lake's
types, a float cursor, a MySQL FLOAT column, a row reader) runs dlt as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from framework.context import RunContext
from framework.settings.connections import Connection
from framework.sources.sql import versions
from framework.sources.sql.as_text import read_as_null
from framework.sources.sql.cursor import (
    WINDOW_KEY,
    WINDOW_READ,
    WINDOW_ROWS,
    BoundaryLoads,
    boundary_loads,
    boundary_state,
    boundary_tables,
    compared_columns,
    exact_bound,
    key_digest,
    lag_in_cursor_units,
    read_trusted,
    resource_name,
    row_digest,
    superset_where,
    unlanded_sql,
)
from framework.sources.sql.spec import SqlSource
from framework.sources.sql.versions import VERSIONS_KEY
from framework.spec.columns import dlt_column_name
from framework.spec.model import PipelineSpec

# Cursor types whose order and equality are the same in Python and in the database. Floats are
# not: a float32 `real` read as 0.10000000149011612 by one driver is 0.1 through another.
ORDERED = (datetime, date, int, Decimal)
# Rows near the boundary the pre-check compares itself; past that the extract (which reads
# them anyway) decides, unless PostgreSQL's row versions settled it first.
MAX_ROWS = 10_000


def nothing_new(ctx: RunContext, pipeline: Any, table: Any, connection: Connection,
                engine: Any = None) -> bool:
    """True only when dlt's extract would find no row past its cursor in `table` (read through
    `engine`, else an engine of its own)."""
    spec, source = ctx.spec, ctx.spec.source
    if not isinstance(source, SqlSource):  # a table of a SQL source, or no pre-check
        return False
    incremental = source.incremental
    if incremental is None or ctx.full_refresh or source.query is not None:
        return False
    cursor = stored_cursor(pipeline.state, spec)
    boundary = boundary_state(pipeline.state, resource_name(spec))
    if cursor is None or boundary is None or _compare(boundary["value"],
                                                      cursor["last_value"]) != 0:
        return False
    loads = boundary_loads(ctx, boundary.get("loads"))
    if loads.outdated:
        return False  # reconcile deleted rows since: the boundary's rows are read again
    last = boundary["value"]
    import sqlalchemy as sa

    column = table.c[incremental.cursor]
    near = sa.select(table).where(superset_where(connection.dialect, column, last))
    own = engine is None
    engine = connection.engine() if own else engine
    try:
        with engine.connect() as conn:
            # `on_null: fail`: a row with no cursor stops the run, so the read must meet it
            # (a NOT NULL cursor, the usual updated_at, needs no look).
            if incremental.on_null == "fail" and column.nullable is not False and conn.execute(
                    sa.select(sa.literal(1)).select_from(table).where(read_as_null(column)).limit(1)
            ).first() is not None:
                return False
            if _versions_unchanged(conn, ctx, table, connection.dialect, boundary):
                return True
            if incremental.lag_seconds or versions.nulls_read(spec):
                # the rows every read meets again, by their digests
                met = _met_again_unchanged(conn, ctx, table, connection.dialect, boundary)
                if met is None:
                    return False
                if incremental.lag_seconds:  # the window holds the boundary's rows too
                    _nothing_new_in(table, f"the {met} row(s) it reads again every run")
                    return True
            rows = [row._asdict() for row in conn.execute(near.limit(MAX_ROWS + 1))]
    finally:
        if own:
            engine.dispose()
    if len(rows) > MAX_ROWS:
        return False
    at = []
    for row in rows:
        order = _compare(row[incremental.cursor], last)
        if order is None or order > 0:
            return False
        if order == 0:
            at.append(row)
    if not at:
        return True
    if not _read_alike(connection.dialect, table):
        return False
    digests = boundary.get("digests")
    if digests is not None and not loads.stale:  # a few rows at the boundary: their digests,
        # no look at the lake (a stale load's digest may be of a row reconcile deleted since)
        keys = spec.source.primary_key
        return all(digests.get(key_digest(row, keys)) == row_digest(row) for row in at)
    return _all_landed(ctx, at, last, loads)


def _versions_unchanged(conn: Any, ctx: RunContext, table: Any, dialect: str,
                        boundary: dict[str, Any]) -> bool:
    """PostgreSQL: no row above the boundary, and the rows at it are the very row versions
    there just before the last read (framework/sources/sql/versions.py). False sends the
    pre-check on to compare rows."""
    stored = boundary.get(VERSIONS_KEY)
    last = boundary["value"]
    if not stored or not versions.applies(dialect, ctx.spec) \
            or _compare(stored.get("value"), last) != 0:
        return False
    cursor = ctx.spec.cursor or ""
    nulls = versions.nulls_read(ctx.spec)
    try:
        lag = lag_in_cursor_units(ctx, table.c[cursor].type)
        now = versions.at_value(conn, table, cursor, exact_bound(table.c[cursor], last), lag,
                                nulls)
    except Exception:  # noqa: BLE001 - an old server, no rights on pg_catalog: compare rows
        conn.rollback()
        return False
    if now is None or now[0] or not versions.same(stored, now[1]):
        return False
    where = "in the look-back window" if lag else "at the boundary"
    _nothing_new_in(table, f"its {now[1]['rows']} row(s) {where}"
                    f"{' or with no cursor' if nulls else ''} are the row versions there "
                    "before the last read")
    return True


def _nothing_new_in(table: Any, because: str) -> None:
    from framework import logs

    logs.logger.info(f"nothing new in `{table.name}`: {because}")


def _met_again_unchanged(conn: Any, ctx: RunContext, table: Any, dialect: str,
                         boundary: dict[str, Any]) -> int | None:
    """The rows every read meets again: a look-back window's (the extract's own `>= boundary
    - lag`) and, with `on_null: include`, those with no cursor. Their number when none is above
    the boundary and each has the digest it had when the last read met it (cursor.py keeps
    them, up to WINDOW_ROWS); else None: a late row, one changed in place under an old cursor
    value or with none, differs."""
    import sqlalchemy as sa

    window = boundary.get(WINDOW_KEY) if read_trusted(ctx, boundary.get(WINDOW_READ)) else None
    last = boundary["value"]
    column = table.c[ctx.spec.cursor or ""]
    lag = lag_in_cursor_units(ctx, column.type)
    start = _minus(last, lag)
    nulls = versions.nulls_read(ctx.spec)
    if window is None or (lag is not None and start is None) or not _read_alike(dialect, table):
        return None
    met = ([superset_where(dialect, column, start)] if start is not None else []) + \
        ([read_as_null(column)] if nulls else [])
    rows = [row._asdict() for row in conn.execute(
        sa.select(table).where(sa.or_(*met)).limit(WINDOW_ROWS + 1))]
    if len(rows) > WINDOW_ROWS:
        return None
    keys = ctx.spec.source.primary_key
    for row in rows:
        value = row[column.name]
        if value is not None:
            if _compare(value, start) == -1:  # below the window (SQLite's slack)
                continue
            order = _compare(value, last)
            if order is None or order > 0:
                return None
        seen = window.get(key_digest(row, keys))  # [digest, first batch]
        if not isinstance(seen, list) or seen[0] != row_digest(row):
            return None
    return len(rows)


def _read_alike(dialect: str, table: Any) -> bool:
    """Whether this read of a row gives the values the extract's read gave, so that an equal
    digest or lake copy means an unchanged row. MySQL's and MariaDB's text protocol prints a
    FLOAT with six significant digits (100000.5 reads as 100000.0) where the extract's binary
    read has the exact value: a changed float could match the old one. (A DOUBLE prints all
    its digits.)"""
    import sqlalchemy as sa

    return dialect not in ("mysql", "mariadb") or \
        not any(isinstance(c.type, sa.FLOAT) for c in table.c)


def _minus(value: Any, lag: float | None) -> Any:
    """`value` less the look-back `lag` in the cursor's units, as dlt applies it; None when
    that has no meaning here."""
    from datetime import timedelta

    if lag is None:
        return None
    if isinstance(value, datetime):
        return value - timedelta(seconds=lag)
    if isinstance(value, date):
        return value - timedelta(days=lag)
    if isinstance(value, int) and not isinstance(value, bool):
        return value - math.ceil(lag)  # never narrower than dlt's `int(M - lag)`
    return None


def _all_landed(ctx: RunContext, rows: list[dict[str, Any]], last: Any,
                loads: BoundaryLoads) -> bool:
    """Whether every row equals the latest version of its key in the lake at `last` (the
    extract's rule: boundary_tables)."""
    import pyarrow as pa

    from framework.stages.load.duckdb import scratch_connection

    keys = ctx.spec.source.primary_key
    con = scratch_connection(ctx.state_dir)
    try:
        columns = {dlt_column_name(c): c for c in rows[0]}
        compared, loaded = boundary_tables(ctx, con, last, loads, columns)
        if compared is None:
            return False
        # `landed` has the source's column names and the lake's types; a value that does not
        # convert exactly raises (and dlt runs) rather than compare rounded.
        empty = con.sql("SELECT * FROM landed LIMIT 0").to_arrow_table()
        assert empty is not None
        compare = compared_columns(ctx, list(rows[0]), compared)
        at = pa.Table.from_pylist(rows, schema=pa.schema(empty.schema.field(c) for c in compare))
        con.register("_at", at)
        left = con.execute(f"SELECT count(*) FROM ({unlanded_sql(con, compare, keys, loaded)})"
                           ).fetchone()
        return left is not None and left[0] == 0
    finally:
        con.close()


def stored_cursor(state: Mapping[str, Any], spec: PipelineSpec) -> dict[str, Any] | None:
    """dlt's stored incremental entry (`last_value`, ...) for the spec's cursor in a pipeline's
    state; None before dlt has stored a value."""
    for source in (state.get("sources") or {}).values():
        resource = (source.get("resources") or {}).get(resource_name(spec)) or {}
        cursor = (resource.get("incremental") or {}).get(spec.cursor) or {}
        if cursor.get("last_value") is not None:
            return dict(cursor)
    return None


def _compare(value: Any, last: Any) -> int | None:
    """-1, 0 or 1 as the source's `value` is below, at or above dlt's `last`; None if the two
    cannot be ordered here (naive timestamps are UTC throughout the framework)."""
    if not isinstance(value, ORDERED) or not isinstance(last, ORDERED):
        return None
    if isinstance(value, datetime) != isinstance(last, datetime):
        return None
    if isinstance(value, datetime) and isinstance(last, datetime):
        value, last = _utc(value), _utc(last)
    try:
        return int(value > last) - int(value < last)
    except TypeError:
        return None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
