"""A second source writer for tests, independent of the project's generator and of SQLAlchemy.

The shop's five tables, written by each database's own client the way programs in the wild
write them: Python's `sqlite3` with its default adapters (a datetime becomes text, without a
fraction when it has none), `psql` with COPY for PostgreSQL, `pymysql` into `DATETIME(0)` for
MariaDB. The data holds what the generator never writes: many rows at one cursor value,
whole-second and `T`-separated timestamps, NULLs in every nullable column, money as a float on
SQLite, and orphans (items and payments of an order the shop does not have).

`write_shop(url)` creates the tables; `change_shop(url, round)` adds new rows and changes old
ones, with ties at the current greatest `updated_at`, using the same client. Both are
deterministic (fixed seeds), so a failure reproduces.
"""

from __future__ import annotations

import datetime as dt
import random
import subprocess
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

Row = dict[str, Any]
SEED = 20261201
T0 = dt.datetime(2024, 3, 1, 12, 0, 0)  # the initial greatest updated_at, shared by many rows

COLUMNS: dict[str, list[tuple[str, str]]] = {  # name, portable SQL type
    "customers": [("customer_id", "VARCHAR(32)"), ("customer_unique_id", "VARCHAR(32)"),
                  ("customer_zip_code_prefix", "VARCHAR(5)"), ("customer_city", "VARCHAR(64)"),
                  ("customer_state", "VARCHAR(2)"), ("updated_at", "TIMESTAMP")],
    "products": [("product_id", "VARCHAR(32)"), ("product_category_name", "VARCHAR(64)"),
                 *((n, "INTEGER") for n in (
                     "product_name_lenght", "product_description_lenght", "product_photos_qty",
                     "product_weight_g", "product_length_cm", "product_height_cm",
                     "product_width_cm")),
                 ("updated_at", "TIMESTAMP")],
    "orders": [("order_id", "VARCHAR(32)"), ("customer_id", "VARCHAR(32)"),
               ("order_status", "VARCHAR(16)"), ("order_purchase_timestamp", "TIMESTAMP"),
               ("order_approved_at", "TIMESTAMP"), ("order_delivered_carrier_date", "TIMESTAMP"),
               ("order_delivered_customer_date", "TIMESTAMP"),
               ("order_estimated_delivery_date", "TIMESTAMP"), ("updated_at", "TIMESTAMP")],
    "order_items": [("order_id", "VARCHAR(32)"), ("order_item_id", "INTEGER"),
                    ("product_id", "VARCHAR(32)"), ("seller_id", "VARCHAR(32)"),
                    ("shipping_limit_date", "TIMESTAMP"), ("price", "NUMERIC(12,2)"),
                    ("freight_value", "NUMERIC(12,2)"), ("updated_at", "TIMESTAMP")],
    "payments": [("order_id", "VARCHAR(32)"), ("payment_sequential", "INTEGER"),
                 ("payment_type", "VARCHAR(16)"), ("payment_installments", "INTEGER"),
                 ("payment_value", "NUMERIC(12,2)"), ("updated_at", "TIMESTAMP")],
}
KEYS = {"customers": ["customer_id"], "products": ["product_id"], "orders": ["order_id"],
        "order_items": ["order_id", "order_item_id"],
        "payments": ["order_id", "payment_sequential"]}
TIMESTAMPS = {t: {c for c, kind in cols if kind == "TIMESTAMP"} for t, cols in COLUMNS.items()}
CITIES = ["sao paulo", " Rio de Janeiro ", "CURITIBA", "belo horizonte", "recife"]
STATUSES = ["delivered", "shipped", "invoiced", "processing", "approved", "created"]


def _stamp(rng: random.Random, base: dt.datetime, whole: bool) -> dt.datetime:
    at = base - dt.timedelta(days=rng.randint(1, 60), seconds=rng.randint(0, 86_399))
    return at if whole else at.replace(microsecond=rng.randint(1, 999_999))


def shop_rows(seed: int = SEED, orphans: bool = True) -> dict[str, list[Row]]:
    """The initial shop: ~30 orders; a third of all rows at T0 exactly (one cursor value)."""
    rng = random.Random(seed)
    rows: dict[str, list[Row]] = {t: [] for t in COLUMNS}

    def updated(i: int) -> dt.datetime:
        return T0 if i % 3 == 0 else _stamp(rng, T0, whole=i % 2 == 0)

    for i in range(20):
        rows["customers"].append({
            "customer_id": f"c{i:03d}", "customer_unique_id": f"u{i % 15:03d}",
            "customer_zip_code_prefix": None if i % 7 == 3 else f"{rng.randint(1000, 99999)}",
            "customer_city": None if i % 9 == 4 else rng.choice(CITIES),
            "customer_state": None if i % 11 == 5 else rng.choice(["SP", "rj", "Mg"]),
            "updated_at": updated(i)})
    for i in range(8):
        rows["products"].append({
            "product_id": f"p{i:03d}", "product_category_name":
                None if i % 4 == 1 else rng.choice(["Toys", "auto ", "bed_bath_table", ""]),
            "product_name_lenght": None if i == 2 else rng.randint(5, 60),
            "product_description_lenght": rng.randint(50, 900), "product_photos_qty": None,
            "product_weight_g": rng.randint(100, 9000), "product_length_cm": rng.randint(5, 80),
            "product_height_cm": rng.randint(2, 60), "product_width_cm": rng.randint(5, 60),
            "updated_at": updated(i)})
    for i in range(30):
        rows["orders"].append(_order(rng, f"o{i:03d}", f"c{i % 20:03d}", updated(i)))
        _lines(rng, rows, f"o{i:03d}", updated(i + 1))
    # Orphans: lines and a payment of an order the shop does not have (deleted, or not yet
    # replicated): they reach landing and must not stop the marts.
    if orphans:
        _lines(rng, rows, "o-missing", T0 - dt.timedelta(hours=1))
    return rows


def _order(rng: random.Random, order_id: str, customer: str, at: dt.datetime) -> Row:
    bought = _stamp(rng, at, whole=rng.random() < 0.5)
    status = rng.choice(STATUSES)
    delivered = status == "delivered"
    return {"order_id": order_id, "customer_id": customer, "order_status":
            status.upper() if rng.random() < 0.2 else status,
            "order_purchase_timestamp": bought,
            "order_approved_at": None if status == "created" else bought + dt.timedelta(hours=2),
            "order_delivered_carrier_date": bought + dt.timedelta(days=2)
            if status in ("shipped", "delivered") else None,
            "order_delivered_customer_date": bought + dt.timedelta(days=9, seconds=1)
            if delivered else None,
            "order_estimated_delivery_date": None if rng.random() < 0.1
            else (bought + dt.timedelta(days=12)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0),
            "updated_at": at}


def _lines(rng: random.Random, rows: dict[str, list[Row]], order_id: str,
           at: dt.datetime) -> None:
    total = Decimal(0)
    for n in range(1, rng.choice([1, 1, 2, 3]) + 1):
        price = Decimal(rng.randint(500, 50_000)) / 100
        freight = None if rng.random() < 0.15 else Decimal(rng.randint(0, 3000)) / 100
        total += price + (freight or 0)
        rows["order_items"].append({
            "order_id": order_id, "order_item_id": n, "product_id": f"p{rng.randint(0, 7):03d}",
            "seller_id": None if rng.random() < 0.1 else f"s{rng.randint(0, 5):02d}",
            "shipping_limit_date": None if rng.random() < 0.1 else at - dt.timedelta(hours=5),
            "price": price, "freight_value": freight, "updated_at": at})
    kinds = ["credit_card", " Boleto", "voucher", None]
    for n in range(1, rng.choice([1, 1, 2]) + 1):
        rows["payments"].append({
            "order_id": order_id, "payment_sequential": n, "payment_type": rng.choice(kinds),
            "payment_installments": None if rng.random() < 0.1 else rng.randint(1, 10),
            "payment_value": total / n if n == 1 else Decimal("10.00"), "updated_at": at})
    for row in rows["payments"]:
        row["payment_value"] = Decimal(row["payment_value"]).quantize(Decimal("0.01"))


def change_rows(round_: int, seed: int = SEED) -> tuple[dict[str, list[Row]], list[str]]:
    """Round `round_` (1, 2, ...) of changes: new orders and a changed order at exactly the
    greatest updated_at so far (ties at the boundary), more just after it, a customer whose
    city goes NULL. Returns new rows per table and UPDATE statements (portable SQL)."""
    rng = random.Random(seed + round_)
    boundary = T0 + dt.timedelta(seconds=round_ - 1)  # the previous round's greatest value
    after = T0 + dt.timedelta(seconds=round_)  # a whole second later
    rows: dict[str, list[Row]] = {t: [] for t in COLUMNS}
    for n in range(3):
        at = boundary if n < 2 else after
        order_id = f"o{round_}n{n}"
        rows["orders"].append(_order(rng, order_id, f"c{n:03d}", at))
        _lines(rng, rows, order_id, at)
    updates = [
        # Same key, same timestamp as the boundary, different content: a new version.
        (f"UPDATE orders SET order_status = 'canceled', updated_at = '{_text(boundary)}' "
        f"WHERE order_id = 'o{3 * round_:03d}'"),
        (f"UPDATE customers SET customer_city = NULL, updated_at = '{_text(after, 'T')}' "
        f"WHERE customer_id = 'c{round_:03d}'"),
    ]
    return rows, updates


def _text(value: dt.datetime, sep: str = " ") -> str:
    return value.isoformat(sep=sep)


# -- writers ------------------------------------------------------------------------------------

def write_shop(url: str, seed: int = SEED, orphans: bool = True) -> None:
    """Create the five tables at `url` (sqlite, postgresql or mysql) with the database's own
    client, and fill them (`orphans=False`: without the orphan lines and payment)."""
    _client(url).create(shop_rows(seed, orphans))


def change_shop(url: str, round_: int, seed: int = SEED) -> dict[str, int]:
    """Apply change round `round_`; rows inserted or updated per table."""
    rows, updates = change_rows(round_, seed)
    client = _client(url)
    client.insert(rows)
    client.execute(updates)
    counts = {t: len(r) for t, r in rows.items()}
    counts["orders"] += 1
    counts["customers"] += 1
    return counts


class _SQLite:
    """Python's sqlite3 with its default adapters: a datetime is stored as
    `str(datetime)` (no fraction when it has none); every fifth timestamp is written as the
    program's own ISO text with `T`; money is a float."""

    def __init__(self, path: str) -> None:
        self.path = path

    def create(self, rows: dict[str, list[Row]]) -> None:
        import sqlite3

        with sqlite3.connect(self.path) as con:
            for table, cols in COLUMNS.items():
                kinds = {"TIMESTAMP": "DATETIME"}
                pk = ", ".join(KEYS[table])
                con.execute(f"CREATE TABLE {table} ("
                            + ", ".join(f"{c} {kinds.get(k, k)}" for c, k in cols)
                            + f", PRIMARY KEY ({pk}))")
        self.insert(rows)

    def insert(self, rows: dict[str, list[Row]]) -> None:
        import sqlite3

        with sqlite3.connect(self.path) as con:
            for table, table_rows in rows.items():
                if not table_rows:
                    continue
                names = [c for c, _ in COLUMNS[table]]
                con.executemany(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                    f"({', '.join('?' * len(names))})",
                    [[self._value(r[c], i) for c in names] for i, r in enumerate(table_rows)])

    @staticmethod
    def _value(value: Any, index: int) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, dt.datetime) and index % 5 == 4:
            return value.isoformat(sep="T")
        return value  # a datetime: sqlite3's default adapter

    def execute(self, statements: Sequence[str]) -> None:
        import sqlite3

        with sqlite3.connect(self.path) as con:
            for statement in statements:
                con.execute(statement)


class _Postgres:
    """psql: CREATE TABLE, then COPY ... FROM STDIN (CSV) per table."""

    def __init__(self, url: sa.URL) -> None:
        self.args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host or "127.0.0.1",
                     "-p", str(url.port or 5432), "-U", url.username or "postgres",
                     "-d", str(url.database)]

    def _psql(self, *args: str, stdin: str = "") -> None:
        subprocess.run([*self.args, *args], input=stdin, text=True, check=True,
                       capture_output=True)

    def create(self, rows: dict[str, list[Row]]) -> None:
        ddl = ";".join(f"CREATE TABLE {t} (" + ", ".join(f"{c} {k}" for c, k in cols)
                       + f", PRIMARY KEY ({', '.join(KEYS[t])}))" for t, cols in COLUMNS.items())
        self._psql("-c", ddl)
        self.insert(rows)

    def insert(self, rows: dict[str, list[Row]]) -> None:
        for table, table_rows in rows.items():
            if table_rows:
                names = [c for c, _ in COLUMNS[table]]
                self._psql("-c", f"\\copy {table} ({', '.join(names)}) FROM STDIN WITH "
                           "(FORMAT csv)", stdin="".join(_csv(r, names) for r in table_rows))

    def execute(self, statements: Sequence[str]) -> None:
        self._psql("-c", ";".join(statements))


def _csv(row: Row, names: list[str]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return ""  # unquoted empty: NULL
        text = value.isoformat(sep="T") if isinstance(value, dt.datetime) else str(value)
        return '"' + text.replace('"', '""') + '"'

    return ",".join(cell(row[n]) for n in names) + "\n"


class _MariaDB:
    """pymysql, timestamps in DATETIME(0): whole seconds, whatever the program sent."""

    def __init__(self, url: sa.URL) -> None:
        self.kwargs = {"host": url.host or "127.0.0.1", "port": url.port or 3306,
                       "user": url.username or "root", "password": url.password or "",
                       "database": url.database, "autocommit": True}

    def _connect(self) -> Any:
        import pymysql

        return pymysql.connect(**self.kwargs)

    def create(self, rows: dict[str, list[Row]]) -> None:
        con = self._connect()
        try:
            with con.cursor() as cur:
                for table, cols in COLUMNS.items():
                    kinds = {"TIMESTAMP": "DATETIME(0) NULL"}
                    cur.execute(f"CREATE TABLE {table} ("
                                + ", ".join(f"{c} {kinds.get(k, k)}" for c, k in cols)
                                + f", PRIMARY KEY ({', '.join(KEYS[table])}))")
        finally:
            con.close()
        self.insert(rows)

    def insert(self, rows: dict[str, list[Row]]) -> None:
        con = self._connect()
        try:
            with con.cursor() as cur:
                for table, table_rows in rows.items():
                    if table_rows:
                        names = [c for c, _ in COLUMNS[table]]
                        cur.executemany(
                            f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                            f"({', '.join(['%s'] * len(names))})",
                            [[r[c] for c in names] for r in table_rows])
        finally:
            con.close()

    def execute(self, statements: Sequence[str]) -> None:
        con = self._connect()
        try:
            with con.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            con.close()


def _client(url: str) -> _SQLite | _Postgres | _MariaDB:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _SQLite(str(parsed.database))
    if backend == "postgresql":
        return _Postgres(parsed)
    if backend in ("mysql", "mariadb"):
        return _MariaDB(parsed)
    raise ValueError(f"no independent writer for {backend}")


def all_rows(rows: dict[str, list[Row]]) -> Iterator[tuple[str, Row]]:
    for table, table_rows in rows.items():
        for row in table_rows:
            yield table, row
