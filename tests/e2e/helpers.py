"""Helpers for end-to-end tests: run the CLI, compare the warehouse with the source."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from click.testing import CliRunner, Result

from framework.cli import main

KEYS = {
    "customers": ["customer_id"],
    "products": ["product_id"],
    "orders": ["order_id"],
    "order_items": ["order_id", "order_item_id"],
    "payments": ["order_id", "payment_sequential"],
}


def vouchers_spec(incremental: str = "") -> str:
    """A pipeline file for a `vouchers` table the tests create; `incremental` adds cursor
    options (`, on_null: include`)."""
    return ("name: vouchers\nsource:\n  connection: shop\n  table: vouchers\n"
            "  primary_key: [voucher_id]\n"
            f"  incremental: {{cursor: updated_at{incremental}}}\nlake:\n  path: vouchers\n")


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_json(*args: str) -> dict[str, dict[str, Any]]:
    result = cli("run", "--json", *args)
    assert "[" in result.stdout, result.output
    start = result.stdout.index("[")
    records = json.loads(result.stdout[start:])
    return {r["pipeline"]: r for r in records}


def execute(url: str, *statements: str) -> None:
    """Run SQL statements on a source in one transaction (a test's change to the shop)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def source_versions(url: str, table: str) -> dict[tuple[Any, ...], str]:
    """Key -> updated_at (as ISO text with microseconds) of every source row."""
    keys = KEYS[table]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(keys)}, updated_at FROM {table}")).all()
    engine.dispose()
    return {tuple(str(v) for v in row[:-1]): _iso(row[-1]) for row in rows}


def warehouse_versions(path: Path, table: str) -> dict[tuple[Any, ...], str]:
    keys = KEYS[table]
    con = duckdb.connect(str(path))
    try:
        rows = con.execute(f"SELECT {', '.join(keys)}, updated_at FROM landing.{table}").fetchall()
    finally:
        con.close()
    assert len(rows) == len({tuple(r[:-1]) for r in rows}), f"duplicate keys in landing.{table}"
    return {tuple(str(v) for v in row[:-1]): _iso(row[-1]) for row in rows}


def _iso(value: Any) -> str:
    text = value.isoformat(sep=" ") if hasattr(value, "isoformat") else str(value)
    return text if "." in text else text + ".000000"


# -- every column, not only the key and the cursor ---------------------------------------------

# Columns the framework adds to a landing table; they have no counterpart in the source.
SYSTEM_COLUMNS = frozenset({"_load_id", "_loaded_at", "_deleted_at", "_dlt_load_id", "_dlt_id"})
Row = dict[str, Any]


def _text(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else fn(str(v))


# What the shipped transforms (pipelines/sql/*.sql) do to a source row, written again here in
# Python so that the comparison does not trust the SQL it checks: landing column -> value.
TIDY: dict[str, dict[str, Callable[[Row], Any]]] = {
    "customers": {
        # lpad(trim(x), 5, '0') (lpad also cuts a longer text to 5)
        "customer_zip_code_prefix": lambda r: _text(lambda s: s.strip(" ").rjust(5, "0")[:5])(
            r["customer_zip_code_prefix"]),
        "customer_city": lambda r: _text(lambda s: s.strip(" ").lower())(r["customer_city"]),
        "customer_state": lambda r: _text(lambda s: s.strip(" ").upper())(r["customer_state"]),
    },
    "products": {
        "product_category_name": lambda r: _text(lambda s: s.strip(" ").lower() or None)(
            r["product_category_name"]),
        "product_name_length": lambda r: r["product_name_lenght"],
        "product_description_length": lambda r: r["product_description_lenght"],
    },
    "orders": {"order_status": lambda r: _text(lambda s: s.strip(" ").lower())(r["order_status"])},
    "payments": {"payment_type": lambda r: _text(lambda s: s.strip(" ").lower())(r["payment_type"])},
}


def normalise(value: Any, like: Any) -> Any:
    """`value` in the type of `like` (a landing value of the same column), so that what the
    source database and the warehouse each return compare equal when they mean the same:
    a timestamp as text (`T` or space, any fraction, an offset) or a datetime, naive UTC; a
    float or a text as a decimal of the landing column's scale; NULL as None."""
    if value is None:
        return None
    if isinstance(like, dt.datetime):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.strip())
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(like, dt.date):
        return dt.date.fromisoformat(value[:10]) if isinstance(value, str) else value
    if isinstance(like, bool):
        return bool(value)
    if isinstance(like, Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
        exponent = like.as_tuple().exponent
        return number.quantize(Decimal(1).scaleb(exponent)) if isinstance(exponent, int) else number
    if isinstance(like, float):
        return float(f"{float(value):.6g}")  # a float32 source column read two ways differs
    if isinstance(like, int):
        return int(Decimal(str(value)))
    return str(value) if isinstance(like, str) else value


def source_rows(url: str, table: str) -> list[Row]:
    """Every source row as the driver returns it (plain SQL: no SQLAlchemy type parsing, so a
    SQLite timestamp stays the text its writer chose)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
    finally:
        engine.dispose()


def duckdb_landing_rows(path: Path, table: str, schema: str = "landing") -> list[Row]:
    con = duckdb.connect(str(path))
    try:
        result = con.execute(f"SELECT * FROM {schema}.{table}")
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]
    finally:
        con.close()


def landing_differences(source: list[Row], landing: list[Row], table: str,
                        keys: list[str] | None = None, live_only: bool = True) -> list[str]:
    """What differs between the source rows (after the pipeline's tidying) and the landing
    rows, on every column of the landing table; [] when they are equal."""
    keys = keys or KEYS[table]
    if live_only:
        landing = [r for r in landing if r.get("_deleted_at") is None]
    columns = sorted({c for r in landing for c in r} - SYSTEM_COLUMNS) or \
        sorted(c for c in (source[0] if source else {}) if c not in SYSTEM_COLUMNS)
    likes = {c: next((r[c] for r in landing if r.get(c) is not None), None) for c in columns}
    tidy = TIDY.get(table, {})

    def expected(row: Row) -> Row:
        out = {}
        for column in columns:
            if column in tidy:
                out[column] = tidy[column](row)
            elif column in row:
                out[column] = row[column]
            else:
                raise AssertionError(f"landing.{table}.{column} has no source column")
        return out

    def keyed(rows: list[Row], what: str) -> tuple[dict[tuple[Any, ...], Row], list[str]]:
        out: dict[tuple[Any, ...], Row] = {}
        problems = []
        for row in rows:
            norm = {c: normalise(row[c], likes[c]) if likes[c] is not None else row[c]
                    for c in columns}
            key = tuple(str(norm[k]) for k in keys)
            if key in out:
                problems.append(f"{what}: key {key} twice")
            out[key] = norm
        return out, problems

    want, problems = keyed([expected(r) for r in source], "source")
    have, dupes = keyed(landing, f"landing.{table}")
    problems += dupes
    problems += [f"key {k} in the source, not in landing.{table}" for k in sorted(want.keys() - have.keys())]
    problems += [f"key {k} in landing.{table}, not in the source" for k in sorted(have.keys() - want.keys())]
    for key in sorted(want.keys() & have.keys()):
        for column in columns:
            if want[key][column] != have[key][column]:
                problems.append(f"key {key}: {column}: source {want[key][column]!r} != "
                                f"landing {have[key][column]!r}")
    return problems


def assert_landing_equals_source(url: str, warehouse: Path, tables: Iterable[str] = KEYS,
                                 keys: list[str] | None = None) -> None:
    """Every landing table holds exactly the source's rows, every column compared."""
    report = []
    for table in tables:
        problems = landing_differences(source_rows(url, table),
                                       duckdb_landing_rows(warehouse, table), table, keys)
        report += [f"{table}: {p}" for p in problems[:10]]
        if len(problems) > 10:
            report.append(f"{table}: ... {len(problems) - 10} more")
    assert not report, "landing differs from the source:\n" + "\n".join(report)


# -- the marts --------------------------------------------------------------------------------

def source_mart_totals(url: str) -> tuple[int, Decimal, Decimal]:
    """Orders, their items' revenue and their payments, from the source: what fact_orders must
    sum to (items and payments of an order the source does not have are not in it)."""
    orders = {str(r["order_id"]) for r in source_rows(url, "orders")}
    revenue = sum((normalise(r["price"], Decimal("0.00")) for r in source_rows(url, "order_items")
                   if str(r["order_id"]) in orders), Decimal(0))
    paid = sum((normalise(r["payment_value"], Decimal("0.00"))
                for r in source_rows(url, "payments") if str(r["order_id"]) in orders), Decimal(0))
    return len(orders), revenue, paid


def mart_totals(warehouse: Path) -> tuple[int, Decimal, Decimal]:
    con = duckdb.connect(str(warehouse))
    try:
        count, revenue, paid = con.execute(
            "SELECT count(*), coalesce(sum(items_revenue), 0), coalesce(sum(payment_total), 0) "
            "FROM marts.fact_orders").fetchone() or (0, 0, 0)
    except duckdb.CatalogException:
        raise AssertionError(f"{warehouse} has no marts.fact_orders: dbt never built it") from None
    finally:
        con.close()
    return int(count), Decimal(revenue), Decimal(paid)


def assert_marts_match_source(url: str, warehouse: Path) -> None:
    assert mart_totals(warehouse) == source_mart_totals(url), \
        "marts.fact_orders (orders, items revenue, payments) differs from the source"
