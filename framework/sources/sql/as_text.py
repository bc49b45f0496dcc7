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
    NULL is what such a value means, as other loaders read it."""
    return _selected_as(sql_type, _ZEROED, lambda plain: sa.case(
        (sa.or_(sa.func.year(plain) == 0, sa.func.month(plain) == 0,
                sa.func.dayofmonth(plain) == 0), sa.null()), else_=plain))


def holds_infinity(dialect: str, sql_type: Any) -> bool:
    """PostgreSQL's dates and timestamps, which may hold `infinity` and `-infinity` (an open
    end of a validity range, `valid_to = 'infinity'`)."""
    return dialect == "postgresql" and isinstance(sql_type, (sa.Date, sa.DateTime))


def infinity_clamped(sql_type: Any) -> Any:
    """PostgreSQL's DATE or TIMESTAMP, selected with `infinity` as the last instant the lake
    holds (9999-12-31 23:59:59.999999, Python's `datetime.max`, as psycopg's documentation
    maps it) and `-infinity` as the first (0001-01-01): still later (earlier) than every
    other value, so `valid_to > now()` keeps its answer, and NOT NULL stays true. The whole
    read failed on one ('timestamp too large'), and the fix was a `source.query`, which
    gives up the pre-check."""
    def clamped(plain: Any) -> Any:
        def bound(text: str) -> Any:  # no precision: timestamp(0) would round up past 9999
            return sa.cast(sa.literal_column(f"'{text}'"), sa.DateTime(timezone=zoned)
                           if isinstance(plain.type, sa.DateTime) else sa.Date())

        zoned = bool(getattr(plain.type, "timezone", False))

        return sa.case((plain == sa.literal_column("'infinity'"), bound(_LAST)),
                       (plain == sa.literal_column("'-infinity'"), bound(_FIRST)),
                       else_=plain)

    return _selected_as(sql_type, _CLAMPED, clamped)


# A time zone's offset is part of the text: a timestamptz gets the instant in UTC.
_LAST, _FIRST = "9999-12-31 23:59:59.999999+00", "0001-01-01 00:00:00+00"


def dates_as_read(dialect: str, sql_type: Any) -> Any:
    """A date or timestamp type as every reader selects it, so that the lake can hold what it
    reads (MySQL's zero dates, PostgreSQL's infinities); any other type as it is."""
    if holds_zero_dates(dialect, sql_type):
        return zero_dates_as_null(sql_type)
    if holds_infinity(dialect, sql_type):
        return infinity_clamped(sql_type)
    return sql_type


def _selected_as(sql_type: Any, subclasses: dict[type, type], expression: Any) -> Any:
    """A copy of `sql_type` of a subclass of its own class, selected as `expression(column)`:
    every check of the column's type still sees its class; only the SELECT differs, in every
    reader and query that selects the column. `expression` gets the column typed as before
    (a timestamptz keeps its zone). A dialect that adapts the type to its own class (psycopg's
    `_PGTimeStamp`) gets a subclass of that class, selected alike: else the SELECT was plain."""
    import copy

    kind = type(sql_type)
    subclass = subclasses.get(kind)
    if subclass is None:
        def column_expression(self: Any, column: Any) -> Any:
            plain_type = copy.copy(self)
            plain_type.__class__ = kind
            return expression(sa.type_coerce(column, plain_type))

        def adapt(self: Any, cls: type, **kw: Any) -> Any:
            return _selected_as(kind.adapt(self, cls, **kw), subclasses, expression)

        # setdefault: two pipeline threads making one at once keep the same (a second class
        # would not be among `subclasses`, and `zeroed` would not know its columns)
        subclass = subclasses.setdefault(kind, type(kind.__name__, (kind,), {
            "column_expression": column_expression, "adapt": adapt}))
    copied = copy.copy(sql_type)
    copied.__class__ = subclass
    return copied


_ZEROED: dict[type, type] = {}  # a date type's class -> its zero-dates-as-NULL subclass
_CLAMPED: dict[type, type] = {}  # a date type's class -> its infinities-clamped subclass


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
    NULL, its infinities clamped), not as the driver hands it over."""
    return isinstance(sql_type, AsText) or zeroed(sql_type) or \
        type(sql_type) in _CLAMPED.values()


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
