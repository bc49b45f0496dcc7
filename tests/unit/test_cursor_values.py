"""The cursor's building blocks: the SQLite superset filter and Arrow scalars of stored values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pendulum
import pyarrow as pa
import pytest
import sqlalchemy as sa

from framework.sources.sql.cursor import arrow_scalar, row_digest, superset_where

INSTANT = dt.datetime(2017, 1, 14, 21, 19, 0)
SPELLINGS = ["2017-01-14 21:19:00", "2017-01-14 21:19:00.000000", "2017-01-14T21:19:00",
             "2017-01-14T21:19:00Z", "2017-01-14 21:19:00+00:00", "2017-01-14 23:19:00+02:00",
             "2017-01-14 16:19:00-05:00", "2017-01-14T21:19:00.000"]
BELOW = ["2017-01-14 21:18:58", "2017-01-14 23:18:58+02:00", "2017-01-13"]


@pytest.mark.parametrize("start", [INSTANT, pendulum.datetime(2017, 1, 14, 21, 19),
                                   dt.datetime(2017, 1, 14, 23, 19,
                                               tzinfo=dt.timezone(dt.timedelta(hours=2)))])
def test_the_sqlite_filter_keeps_every_spelling_at_or_past_the_cursor(start: dt.datetime) -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("at", sa.DateTime))
    table.create(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t (at) VALUES " +
                             ", ".join(f"('{v}')" for v in SPELLINGS + BELOW))
        kept = conn.execute(sa.select(sa.func.count()).select_from(table)
                            .where(superset_where("sqlite", table.c.at, start))).scalar()
    engine.dispose()
    # every spelling of the instant, none two seconds or more below it (what the filter lets
    # through within its second of slack, dlt's exact filter drops)
    assert kept == len(SPELLINGS)


@pytest.mark.parametrize(("value", "arrow_type"), [
    (dt.datetime(2017, 1, 14, 21, 19, 0, 5), pa.timestamp("us")),
    (dt.datetime(2017, 1, 14, 21, 19, 0, 5), pa.timestamp("us", "UTC")),
    (pendulum.datetime(2017, 1, 14, 21, 19, 0, 5), pa.timestamp("us", "UTC")),
    (dt.datetime(2017, 1, 14, 23, 19, tzinfo=dt.timezone(dt.timedelta(hours=2))),
     pa.timestamp("ns", "UTC")),
    (dt.datetime(2017, 1, 14, 21, 19), pa.timestamp("s")),
    (dt.datetime(2017, 1, 14, 21, 19, 0, 5), pa.timestamp("s")),  # pa.scalar's own way
    (dt.datetime(2017, 1, 14, 21, 19, 0, 5000), pa.timestamp("ms")),
    (dt.date(2017, 1, 14), pa.date32()),
    (-7, pa.int32()),
    (Decimal("1.5"), pa.decimal128(8, 2)),
    ("b", pa.string()),
])
def test_a_stored_value_becomes_the_exact_arrow_scalar(value: object,
                                                       arrow_type: pa.DataType) -> None:
    """The scalar dlt's incremental compares with (dlt_settings hands it this function)."""
    from dlt.common.libs import pyarrow as dlt_arrow

    from framework.dlt_settings import arrow_scalars_without_pandas

    arrow_scalars_without_pandas()
    assert dlt_arrow.to_arrow_scalar is arrow_scalar
    assert arrow_scalar(value, arrow_type) == pa.scalar(value, type=arrow_type)



def test_row_digests_agree_across_readers_and_differ_on_any_change() -> None:
    arrow_read = {"id": 1, "at": dt.datetime(2017, 1, 14, 21, 19, tzinfo=dt.UTC),
                  "amount": Decimal("1.50"), "note": None}
    python_read = {"note": None, "amount": Decimal("1.5"), "at": dt.datetime(2017, 1, 14, 21, 19),
                   "id": 1}
    assert row_digest(arrow_read) == row_digest(python_read)
    assert row_digest({**python_read, "amount": Decimal("1.51")}) != row_digest(python_read)
    assert row_digest({**python_read, "note": ""}) != row_digest(python_read)
    assert row_digest({**python_read, "id": "1"}) != row_digest(python_read)
