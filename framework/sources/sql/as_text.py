"""Columns read as their text by every reader: exact numerics wider than the warehouses' 38
digits (or declared `string` in `columns:` for a numeric without precision), and types no
reader converts or holds (PostgreSQL's interval, inet, cidr, money and arrays of them; MySQL's
TIME and SET)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


class AsText(sa.types.TypeDecorator[str]):
    """Selected as `CAST(c AS text)` by every reader, so no driver rounds a wide decimal
    (connectorx keeps 10 decimal places, Arrow's decimal256 reaches DuckDB as DOUBLE) or hands
    over a value the lake has no type for (an interval's timedelta: dlt refuses Arrow's
    duration); it lands as a string the warehouse holds exactly. A decorator, not a subclass
    of Text: a dialect adapts Text to its own class (psycopg's), which would drop the CAST.
    dlt and the readers see its text type (`as_read_by`)."""

    impl = sa.Text
    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return sa.cast(column, sa.Text())


class JsonText(AsText):
    """An array of a type read as text (interval[], inet[], money[]) or of floats: selected as
    `CAST(to_json(c) AS text)`, the JSON list of the elements' own text (`["10.0.0.1","1 day"]`),
    as every other array lands (dlt writes a list as its JSON). The drivers hand such an array
    over as objects neither Arrow nor JSON holds (timedelta, IPv4Address): the run failed."""

    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return sa.cast(sa.func.to_json(column), sa.Text())


class BitNumberText(AsText):
    """MySQL's BIT, selected as `CAST(c + 0 AS CHAR)`: the decimal text of its number, as it
    always landed. The driver hands the number over as a Python int, which Arrow's int64
    refused past 2**63 (a BIT(64) with its high bit set failed the run); `CAST(c AS CHAR)`
    would give its raw bytes."""

    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return sa.cast(sa.type_coerce(column, sa.Integer()) + 0, sa.Text())


def holds_zero_dates(dialect: str, sql_type: Any) -> bool:
    """MySQL's (and MariaDB's) dates and timestamps, which may hold zero dates, even NOT NULL
    (`DEFAULT '0000-00-00 00:00:00'` in old schemas)."""
    return dialect in ("mysql", "mariadb") and isinstance(sql_type, (sa.Date, sa.DateTime))


def zero_dates_as_null(sql_type: Any) -> Any:
    """MySQL's DATE, DATETIME or TIMESTAMP, selected as NULL where it holds a zero date
    (`0000-00-00`, or a zero month or day: what MySQL keeps for "no date" under a lenient
    sql_mode, as in WordPress's `post_date_gmt` of every draft), which no lake date can hold.
    The drivers failed the whole read on one ('Couldn't convert the value
    Date("'0000-00-00'")'), and the fix was a `source.query`, which gives up the pre-check.
    NULL is what such a value means, as other loaders read it. A copy of the type of a
    subclass of its own class, so that every check of the column's type still sees it; only
    the SELECT differs, in every reader and query that selects the column."""
    import copy

    kind = type(sql_type)
    subclass = _ZEROED.get(kind)
    if subclass is None:
        def column_expression(self: Any, column: Any) -> Any:
            plain = sa.type_coerce(column, kind())
            return sa.case((_zero_date(plain), sa.null()), else_=plain)

        subclass = _ZEROED[kind] = type(kind.__name__, (kind,),
                                        {"column_expression": column_expression})
    copied = copy.copy(sql_type)
    copied.__class__ = subclass
    return copied


_ZEROED: dict[type, type] = {}  # a date type's class -> its zero-dates-as-NULL subclass


def _zero_date(column: Any) -> Any:
    return sa.or_(sa.func.year(column) == 0, sa.func.month(column) == 0,
                  sa.func.dayofmonth(column) == 0)


def zeroed(sql_type: Any) -> bool:
    """A type whose zero dates read as NULL (`zero_dates_as_null`): NULL even when declared
    NOT NULL (`DEFAULT '0000-00-00 00:00:00'`)."""
    return type(sql_type) in _ZEROED.values()


def read_as_null(column: Any) -> Any:
    """A condition true for the rows whose `column` reads as NULL, its zero dates too, that
    the column's index serves (the cursor's filter and the pre-check's probe: functions of
    the column made every incremental read scan the whole table). `'2024-00-15'`, a zero
    month past year 999, is not caught here, only by the SELECT's CASE."""
    if zeroed(column.type):
        return sa.or_(column.is_(None), column < sa.literal_column("'1000-01-01'"))
    return column.is_(None)


def selected_otherwise(sql_type: Any) -> bool:
    """Whether a column of this type is selected as an expression (its text, its zero dates as
    NULL), not as the driver hands it over."""
    return isinstance(sql_type, AsText) or zeroed(sql_type)


def reader_of(sql_type: Any) -> AsText:
    """The text a `text_only` type is read as: an array's JSON, a MySQL BIT's number, else its
    own text."""
    from sqlalchemy.dialects import mysql

    if isinstance(sql_type, sa.ARRAY):
        return JsonText()
    return BitNumberText() if isinstance(sql_type, mysql.BIT) else AsText()


def as_read_by(sql_type: Any) -> Any:
    """The type a reader (and dlt's type hints) should see: a decorated type's own."""
    return sql_type.impl_instance if isinstance(sql_type, sa.types.TypeDecorator) else sql_type


def exact_numeric(sql_type: Any) -> bool:
    """numeric/decimal, not a binary float (SQLAlchemy's Float is a Numeric too)."""
    return isinstance(sql_type, sa.Numeric) and not isinstance(sql_type, sa.Float)


def hinted_by(sql_type: Any) -> Any:
    """dlt's `type_adapter_callback`: the type a reader sees (`as_read_by`), and none for an
    untyped column (a query's), which the reader infers; dlt would warn of it on every run."""
    return None if isinstance(sql_type, sa.types.NullType) else as_read_by(sql_type)


def text_only(sql_type: Any) -> bool:
    """Types whose values the readers cannot convert or hold: PostgreSQL's inet, cidr and
    interval (the driver's IPv4Address, timedelta), MySQL's TIME (-838 to 838 hours: Arrow's
    time of day wrapped '838:59:59' around to 22:59:59). Read as their exact text instead; so
    is PostgreSQL's money, which connectorx lacks: as text its table stays on the Arrow readers
    instead of going row by row (the same text: psycopg hands money over as a string). So is
    MySQL's SET: the driver hands over a Python set, which landed as a JSON list in an order
    that changed from run to run ('["c","a"]'); its text is MySQL's own, in definition order.
    So is PostgreSQL's time with time zone: read as a time of day, it lost its offset
    ('01:30:00+05:30' landed as 01:30:00). So is MySQL's BIT, as its number (`BitNumberText`).
    So is an array of any of these (`reader_of`), and an array of floats: JSON has no NaN or
    infinity, and dlt wrote them into the list's JSON as null; the server's JSON spells them
    as strings ("NaN", "Infinity")."""
    from sqlalchemy.dialects import mysql, postgresql

    if isinstance(sql_type, sa.ARRAY):
        return text_only(sql_type.item_type) or isinstance(sql_type.item_type, sa.Float)
    if isinstance(sql_type, postgresql.TIME) and sql_type.timezone:
        return True
    return isinstance(sql_type, (postgresql.INET, postgresql.CIDR, postgresql.INTERVAL,
                                 sa.Interval, mysql.TIME, postgresql.MONEY, mysql.SET, mysql.BIT))
