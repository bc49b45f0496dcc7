"""A small trading company's database (8 related tables) written with each server's own SQL.

orders and order_lines (keyed on order_id + product_id) refer to customers, employees,
shippers and products; products to suppliers and categories; employees to themselves. Only
customers, employees and orders have an `updated_at`; customers mark deleted rows in
`deleted_at`. Everything else is read in full on every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from tests.conftest import service_unavailable

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306",
}
TABLES = ("categories", "suppliers", "shippers", "employees", "customers", "products", "orders",
          "order_lines")
KEYS = {"categories": ["category_id"], "suppliers": ["supplier_id"],
        "shippers": ["shipper_id"], "employees": ["employee_id"], "customers": ["customer_id"],
        "products": ["product_id"], "orders": ["order_id"],
        "order_lines": ["order_id", "product_id"]}

# Per server: a double, an instant (time zone kept where the server has one), a timestamp.
_TYPES = {
    "postgresql": {"double": "double precision", "instant": "timestamptz",
                   "stamp": "timestamp(6)", "bool": "boolean"},
    "mariadb": {"double": "double", "instant": "datetime(6)", "stamp": "datetime(6)",
                "bool": "boolean"},
}


def ddl(server: str) -> list[str]:
    t = _TYPES[server]
    return [
        ("CREATE TABLE categories (category_id integer PRIMARY KEY, category_name varchar(40) "
        "NOT NULL, description text)"),
        ("CREATE TABLE suppliers (supplier_id integer PRIMARY KEY, company_name varchar(60) NOT "
        "NULL, country varchar(30))"),
        ("CREATE TABLE shippers (shipper_id integer PRIMARY KEY, company_name varchar(60) NOT "
        "NULL, phone varchar(24))"),
        ("CREATE TABLE employees (employee_id integer PRIMARY KEY, first_name varchar(20) NOT "
        "NULL, last_name varchar(30) NOT NULL, reports_to integer, hire_date date, salary "
        f"numeric(10,2), updated_at {t['stamp']} NOT NULL, "
        "FOREIGN KEY (reports_to) REFERENCES employees (employee_id))"),
        ("CREATE TABLE customers (customer_id varchar(5) PRIMARY KEY, company_name varchar(60) "
        f"NOT NULL, city varchar(30), credit_limit numeric(12,2), updated_at {t['stamp']} NOT "
        f"NULL, deleted_at {t['stamp']})"),
        ("CREATE TABLE products (product_id integer PRIMARY KEY, product_name varchar(60) NOT "
        "NULL, supplier_id integer, category_id integer, unit_price numeric(10,2), "
        f"units_in_stock smallint, weight_kg {t['double']}, discontinued {t['bool']} NOT NULL, "
        "FOREIGN KEY (supplier_id) REFERENCES suppliers (supplier_id), "
        "FOREIGN KEY (category_id) REFERENCES categories (category_id))"),
        ("CREATE TABLE orders (order_id integer PRIMARY KEY, customer_id varchar(5), employee_id "
        f"integer, ship_via integer, order_date date NOT NULL, shipped_at {t['instant']}, "
        f"freight numeric(10,2), updated_at {t['stamp']} NOT NULL, "
        "FOREIGN KEY (customer_id) REFERENCES customers (customer_id), "
        "FOREIGN KEY (employee_id) REFERENCES employees (employee_id), "
        "FOREIGN KEY (ship_via) REFERENCES shippers (shipper_id))"),
        ("CREATE TABLE order_lines (order_id integer NOT NULL, product_id integer NOT NULL, "
        f"unit_price numeric(10,2) NOT NULL, quantity smallint NOT NULL, discount {t['double']} "
        "NOT NULL, PRIMARY KEY (order_id, product_id), "
        "FOREIGN KEY (order_id) REFERENCES orders (order_id), "
        "FOREIGN KEY (product_id) REFERENCES products (product_id))"),
    ]


def _values(rows: list[tuple[object, ...]]) -> str:
    def literal(value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, (int, float)):
            return repr(value)
        return "'" + str(value).replace("'", "''") + "'"

    return ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


def _customer(n: int) -> str:
    return f"C{n:04d}"


def order_rows(server: str, first: int, count: int, stamp: str) -> list[str]:
    """INSERTs for `count` orders from `first` and their lines (2 to 4 products each)."""
    orders, lines = [], []
    for order in range(first, first + count):
        offset = "+02" if server == "postgresql" else ""  # an instant where the server has them
        shipped = None if order % 7 == 0 else \
            f"2024-03-{1 + order % 27:02d} 1{order % 10}:15:00.125{offset}"
        customer = None if order == 5 else _customer(1 + order % 20)  # None: unknown member
        orders.append((order, customer, 1 + order % 6, 1 + order % 3,
                       f"2024-02-{1 + order % 28:02d}", shipped, round(order * 1.37, 2), stamp))
        for k in range(2 + order % 3):
            product = 1 + (order * 3 + k * 4) % 15
            lines.append((order, product, round(2.5 + product * 1.1, 2), 1 + (order + k) % 9,
                          (0.0, 0.05, 0.1, 0.15)[(order + k) % 4]))
    return [f"INSERT INTO orders VALUES {_values(orders)}",
            f"INSERT INTO order_lines VALUES {_values(lines)}"]


def data(server: str) -> list[str]:
    stamp = "2024-04-01 08:00:00.250000"
    employees = [(1, "Ada", "Lovelace", None, "2019-01-07", 9100.0, stamp)] + [
        (n, f"First{n}", f"Last{n}", 1 if n < 4 else 2, f"2020-0{n}-15", 5000.0 + n * 125.5,
         stamp) for n in range(2, 7)]
    customers = [(_customer(n), f"Customer {n}", ("Lyon", "Porto", "Graz", None)[n % 4],
                  round(1000 + n * 250.75, 2), stamp, None) for n in range(1, 21)]
    products = [(n, f"Product {n}", 1 + n % 5, 1 + n % 4, round(2.5 + n * 1.1, 2), n * 3,
                 round(0.125 * n, 3) if n != 9 else 33.88, n % 6 == 0) for n in range(1, 16)]
    if server == "mariadb":  # MariaDB's BOOLEAN is TINYINT(1): its values are 0 and 1
        products = [(*p[:-1], int(p[-1])) for p in products]
    return [
        "INSERT INTO categories VALUES " + _values([
            (1, "Beverages", "Soft drinks, coffees, teas"), (2, "Condiments", None),
            (3, "Confections", "Desserts and candies"), (4, "Seafood", "Seaweed and fish")]),
        "INSERT INTO suppliers VALUES " + _values([
            (n, f"Supplier {n}", ("France", "Japan", "Brazil", "Norway", None)[n - 1])
            for n in range(1, 6)]),
        "INSERT INTO shippers VALUES " + _values([
            (1, "Speedy Express", "(503) 555-9831"), (2, "United Package", None),
            (3, "Federal Shipping", "(503) 555-9931")]),
        # The manager first: the table refers to itself.
        "INSERT INTO employees VALUES " + _values(employees[:1]),
        "INSERT INTO employees VALUES " + _values(employees[1:]),
        "INSERT INTO customers VALUES " + _values(customers),
        "INSERT INTO products VALUES " + _values(products),
        *order_rows(server, 1, 40, stamp),
    ]


def changes(server: str) -> list[str]:
    """Inserts, updates and deletes between two runs, in every kind of table."""
    later = "2024-05-02 09:30:00.500000"
    return [
        *order_rows(server, 41, 6, later),
        (f"UPDATE orders SET freight = freight + 10, updated_at = '{later}' WHERE order_id IN "
        "(2, 3)"),
        ("UPDATE products SET unit_price = unit_price * 2, weight_kg = 1.0 / 3 WHERE product_id "
        "IN (4, 5)"),  # no updated_at: a full read finds it
        "INSERT INTO categories VALUES (5, 'Produce', 'Dried fruit and bean curd')",
        "UPDATE suppliers SET country = 'Chile' WHERE supplier_id = 2",
        (f"UPDATE customers SET city = 'Bern', updated_at = '{later}' WHERE customer_id = "
        f"'{_customer(3)}'"),
        (f"UPDATE customers SET deleted_at = '{later}', updated_at = '{later}' WHERE "
        f"customer_id = '{_customer(4)}'"),  # a soft delete
        "DELETE FROM order_lines WHERE order_id IN (7, 8)",  # hard deletes, full read
        (f"INSERT INTO employees VALUES (7, 'Grace', 'Hopper', 1, '2024-05-01', 7000.00, "
        f"'{later}')"),
    ]


@contextmanager
def northwind(server: str) -> Iterator[str]:
    """A fresh database with the 8 tables and their rows; dropped afterwards."""
    base = SERVERS[server]
    admin_url = f"{base}/postgres" if server == "postgresql" else f"{base}/"
    name = f"northwind_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unavailable(f"{server} at {base}: {str(exc).splitlines()[0]}")
    url = f"{base}/{name}"
    try:
        execute(url, ddl(server) + data(server))
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"
                                 + (" WITH (FORCE)" if server == "postgresql" else "")))
        admin.dispose()


def execute(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement.replace(":", r"\:")))
    finally:
        engine.dispose()
