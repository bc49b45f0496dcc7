"""Field text to typed value, per portable column type: what a CSV (or a JSON string) holds
becomes exactly the value the SQL source would have delivered, or a reason it cannot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from framework.spec.columns import base_type, decimal_parts

Convert = Callable[[str], Any]
# What the warehouses hold: `integer` is a 32-bit INTEGER, `bigint` a 64-bit BIGINT.
_INTEGER_RANGES = {"integer": (-2**31, 2**31 - 1), "bigint": (-2**63, 2**63 - 1)}
_BOOLEANS = {"true": True, "t": True, "1": True, "yes": True, "y": True,
             "false": False, "f": False, "0": False, "no": False, "n": False}


class BadValue(ValueError):
    """A field that is not a value of its column's type; the message is the reason."""


def arrow_type(portable: str) -> pa.DataType:
    base = base_type(portable)
    if base == "decimal":
        return pa.decimal128(*decimal_parts(portable))
    return {"string": pa.string(), "integer": pa.int64(), "bigint": pa.int64(),
            "double": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
            "timestamp": pa.timestamp("us"), "timestamptz": pa.timestamp("us", tz="UTC"),
            "binary": pa.binary()}[base]


def portable_of(arrow: pa.DataType) -> str:
    """The portable type holding a Parquet column's Arrow type (`plan` dry-runs the transform
    over it); text for anything without one."""
    t = pa.types
    if t.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if t.is_uint64(arrow):
        return "decimal(20,0)"  # past int64, as MySQL's BIGINT UNSIGNED
    if t.is_int8(arrow) or t.is_int16(arrow) or t.is_int32(arrow) or t.is_uint8(arrow) \
            or t.is_uint16(arrow):
        return "integer"
    if t.is_integer(arrow):
        return "bigint"
    if t.is_floating(arrow):
        return "double"
    if t.is_timestamp(arrow):
        return "timestamptz" if arrow.tz else "timestamp"
    for portable, test in (("boolean", t.is_boolean), ("date", t.is_date),
                           ("binary", lambda a: t.is_binary(a) or t.is_large_binary(a))):
        if test(arrow):
            return portable
    return "string"


def converter(portable: str, timestamp_formats: list[str], date_formats: list[str]) -> Convert:
    """The function turning one field's text into a value of `portable`, raising BadValue."""
    base = base_type(portable)
    if base == "string":
        return str
    if base in ("integer", "bigint"):
        low, high = _INTEGER_RANGES[base]
        return lambda text: _integer(text, low, high, base)
    if base == "double":
        return _double
    if base == "boolean":
        return _boolean
    if base == "binary":
        return str.encode
    if base == "decimal":
        precision, scale = decimal_parts(portable)
        return lambda text: _decimal(text, precision, scale)
    if base == "date":
        return lambda text: _date(text, date_formats)
    aware = base == "timestamptz"
    return lambda text: _timestamp(text, timestamp_formats, aware)


def localized(convert: Convert, decimal: str, thousands: str | None) -> Convert:
    """`convert` (a number's) for text written with another decimal mark or with a thousands
    separator (`1.234,56`): read as plain digits first. A mark out of place (`1.5` where the
    decimal mark is `,`, `12,34` grouped by `,`, `1.2e5` grouped by `.`) is refused, never
    read as another number; a refusal quotes the field as written."""
    other = "." if decimal == "," else ","

    def read(text: str) -> Any:
        stripped = text.strip()
        sign = stripped[:1] if stripped[:1] in "+-" else ""
        whole, mark, fraction = stripped.removeprefix(sign).partition(decimal)
        if thousands and thousands in whole:
            groups = whole.split(thousands)
            if not (all(g.isascii() and g.isdigit() for g in groups)
                    and 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
                raise BadValue(f"{text!r} is not a number ({thousands!r} does not group its "
                               "digits by three)")
            whole = "".join(groups)
        if other in whole + fraction or mark and not fraction:
            raise BadValue(f"{text!r} is not a number (the decimal mark is {decimal!r})")
        plain = sign + whole + ("." if mark else "") + fraction
        try:
            return convert(plain)
        except BadValue as exc:
            raise BadValue(str(exc).replace(repr(plain), repr(text), 1)) from None
    return read


def _plain(text: str) -> bool:
    """Digits as a file writes them: Python's own parsers also take '1_000' and other scripts'
    digits ('١٢'), which no export means as numbers."""
    return text.isascii() and "_" not in text


def _integer(text: str, low: int, high: int, base: str) -> int:
    try:
        if not _plain(text):
            raise ValueError
        value = int(text)
    except ValueError:
        raise BadValue(f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise BadValue(f"{text!r} is outside the range of {base} ({low} to {high}); declare "
                       "the column bigint or decimal(p,0)")
    return value


def _double(text: str) -> float:
    try:
        if not _plain(text):
            raise ValueError
        return float(text)
    except ValueError:
        raise BadValue(f"{text!r} is not a number") from None


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise BadValue(f"{text!r} is not a boolean (true/false)") from None


def _decimal(text: str, precision: int, scale: int) -> Decimal:
    try:
        if not _plain(text):
            raise InvalidOperation
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadValue(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise BadValue(f"{text!r} is not a finite number")
    exact = value.quantize(Decimal(1).scaleb(-scale))
    if exact != value:
        raise BadValue(f"{text!r} has more than {scale} decimal place(s)")
    if len(exact.as_tuple().digits) > precision:
        raise BadValue(f"{text!r} has more than {precision} digit(s)")
    return exact


def _date(text: str, formats: list[str]) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        pass
    for fmt in formats:
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise BadValue(f"{text!r} is not a date{_expected(formats)}")


def _timestamp(text: str, formats: list[str], aware: bool) -> dt.datetime:
    value: dt.datetime | None = None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        for fmt in formats:
            try:
                value = dt.datetime.strptime(text.strip(), fmt)
                break
            except ValueError:
                continue
    if value is None:
        raise BadValue(f"{text!r} is not a timestamp{_expected(formats)}")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC) if aware else value
    utc = value.astimezone(dt.UTC)
    return utc if aware else utc.replace(tzinfo=None)


def _expected(formats: list[str]) -> str:
    return f" (ISO or {', '.join(repr(f) for f in formats)})" if formats else \
        " (ISO 8601; other spellings need csv.timestamp_formats / csv.date_formats)"
