"""A cheap look at the source's cursor before a dlt run: is there anything new at all?

A pipeline scheduled every 15 minutes mostly finds nothing. dlt finds that out by running its
whole extract, normalize and load of an empty package; one aggregate query tells the same:

- the source's greatest cursor value is below dlt's stored `last_value`: nothing is new;
- it is above: new rows, run dlt;
- it equals it: the rows at that value are new unless each hashes (dlt's own digest, over the
  whole row as the extract configures it) into dlt's stored boundary hashes.

Only a definite "nothing new" skips dlt; anything unusual (a lag window, NULL cursors included
every run, a query source, a text cursor whose order is the database's collation, no state yet,
values that do not hash alike, a float cursor) runs dlt as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from framework.context import RunContext
from framework.settings.connections import Connection
from framework.spec.model import PipelineSpec

# Cursor types whose order and equality are the same in Python and in the database. Floats are
# not: a float32 `real` read as 0.10000000149011612 by one driver is 0.1 through another.
ORDERED = (datetime, date, int, Decimal)


def nothing_new(ctx: RunContext, pipeline: Any, table: Any, connection: Connection) -> bool:
    """True only when dlt's extract would find no row past its cursor in `table`."""
    spec = ctx.spec
    incremental = spec.source.incremental
    if (incremental is None or ctx.full_refresh or incremental.lag_seconds
            or incremental.on_null == "include" or spec.source.query is not None):
        return False
    cursor = stored_cursor(pipeline.state, spec)
    if cursor is None:
        return False
    last, seen = cursor["last_value"], set(cursor.get("unique_hashes") or ())
    import sqlalchemy as sa

    column = table.c[incremental.cursor]
    greatest = sa.select(sa.func.max(column)).scalar_subquery()
    engine = sa.create_engine(connection.url)
    try:
        with engine.connect() as conn:
            top = conn.execute(sa.select(greatest)).scalar()
            if top is None:
                return True
            order = _compare(top, last)
            if order is None or order > 0:
                return False
            if order < 0:
                return True
            rows = conn.execute(sa.select(table).where(column == greatest)
                                .limit(len(seen) + 1)).all()
    finally:
        engine.dispose()
    return len(rows) <= len(seen) and all(_digest(list(row), seen) in seen for row in rows)


def stored_cursor(state: Mapping[str, Any], spec: PipelineSpec) -> dict[str, Any] | None:
    """dlt's stored incremental entry (`last_value`, `unique_hashes`) for the spec's cursor in
    a pipeline's state; None before dlt has stored a value."""
    resource_name = spec.source.table or spec.name  # dlt names `sql_table`'s resource so
    for source in (state.get("sources") or {}).values():
        resource = (source.get("resources") or {}).get(resource_name) or {}
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


def _digest(values: list[Any], seen: set[str]) -> str:
    from dlt.extract.utils import digest_dedup_value, has_legacy_dedup_hashes

    return digest_dedup_value(values, has_legacy_dedup_hashes(seen))
