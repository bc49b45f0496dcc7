"""Tests of the demo shop: the source that ingestion tests and demos rely on must be exact and
stable, on SQLite, PostgreSQL and MariaDB alike."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from framework.demo.shop import (
    TABLES,
    ShopError,
    ShopStats,
    create_shop,
    metadata,
    simulate_activity,
)
from tests.conftest import service_unavailable

CONTRACT = {  # exact names and order, as in the Olist data set (its "lenght" spelling included)
    "customers": ["customer_id", "customer_unique_id", "customer_zip_code_prefix", "customer_city",
                  "customer_state", "updated_at"],
    "products": ["product_id", "product_category_name", "product_name_lenght",
                 "product_description_lenght", "product_photos_qty", "product_weight_g",
                 "product_length_cm", "product_height_cm", "product_width_cm", "updated_at"],
    "orders": ["order_id", "customer_id", "order_status", "order_purchase_timestamp",
               "order_approved_at", "order_delivered_carrier_date", "order_delivered_customer_date",
               "order_estimated_delivery_date", "updated_at"],
    "order_items": ["order_id", "order_item_id", "product_id", "seller_id", "shipping_limit_date",
                    "price", "freight_value", "updated_at"],
    "payments": ["order_id", "payment_sequential", "payment_type", "payment_installments",
                 "payment_value", "updated_at"],
}
Data = dict[str, list[tuple[Any, ...]]]
KEYS = {"customers": ["customer_id"], "products": ["product_id"], "orders": ["order_id"],
        "order_items": ["order_id", "order_item_id"], "payments": ["order_id", "payment_sequential"]}
TIMESTAMPS = {"orders": ["order_purchase_timestamp", "order_approved_at", "order_delivered_carrier_date",
                         "order_delivered_customer_date", "order_estimated_delivery_date"],
              "order_items": ["shipping_limit_date"]}


def rows(url: str) -> Data:
    """All rows of every table in contract column order, sorted by primary key (backend-independent)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = metadata().tables
            return {name: sorted(map(tuple, conn.execute(sa.select(*(t[name].c[c] for c in cols)))))
                    for name, cols in CONTRACT.items()}
    finally:
        engine.dispose()


def as_dicts(data: Data, name: str) -> list[dict[str, Any]]:
    return [dict(zip(CONTRACT[name], r)) for r in data[name]]


def keyed(data: Data, name: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in KEYS[name]): r for r in as_dicts(data, name)}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ShopStats, Data]:
    """One scale-0.01 shop shared by the read-only tests (built once to keep the suite fast)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    stats = create_shop(url, scale=0.01, seed=42)
    return url, stats, rows(url)


def test_create_shop_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db", "c.db"))
    assert create_shop(a, scale=0.005, seed=7) == create_shop(b, scale=0.005, seed=7)
    create_shop(c, scale=0.005, seed=8)
    assert rows(a) == rows(b)
    assert rows(a)["orders"] != rows(c)["orders"]


def test_create_shop_row_counts_scale(shop: tuple[str, ShopStats, Any], tmp_path: Path) -> None:
    _, stats, data = shop
    assert stats == ShopStats(*(len(data[n]) for n in TABLES))
    small = create_shop(f"sqlite:///{tmp_path / 's.db'}", scale=0.002)
    for s, orders in ((stats, 994), (small, 199)):
        assert s.orders == orders
        assert 0.95 * orders < s.customers < orders
        assert 0.28 * orders < s.products < 0.38 * orders
        assert 1.05 * orders < s.order_items < 1.25 * orders
        assert 1.0 * orders < s.payments < 1.1 * orders


def test_metadata_matches_source_contract(shop: tuple[str, ShopStats, Any]) -> None:
    assert set(metadata().tables) == set(TABLES)
    assert_contract(shop[0])


def assert_contract(url: str) -> None:
    """Exact column names and order, primary keys and the updated_at index, as the database sees them."""
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == set(TABLES)
    for name, cols in CONTRACT.items():
        assert [c["name"] for c in inspector.get_columns(name)] == cols
        assert inspector.get_pk_constraint(name)["constrained_columns"] == KEYS[name]
        assert [i["column_names"] for i in inspector.get_indexes(name)] == [["updated_at"]]
    engine.dispose()


def test_create_shop_primary_keys_are_unique(shop: tuple[str, ShopStats, Any]) -> None:
    data = shop[2]
    for name in TABLES:
        assert len(keyed(data, name)) == len(data[name]), name


def test_create_shop_payments_sum_to_items_price_and_freight(shop: tuple[str, ShopStats, Any]) -> None:
    assert_payments_match_items(shop[2])


def assert_payments_match_items(data: Data) -> None:
    due: dict[str, Decimal] = defaultdict(Decimal)
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for i in as_dicts(data, "order_items"):
        due[i["order_id"]] += i["price"] + i["freight_value"]
    for p in as_dicts(data, "payments"):
        paid[p["order_id"]] += p["payment_value"]
    assert due == paid
    assert set(due) == {o["order_id"] for o in as_dicts(data, "orders")}


def test_create_shop_keeps_microseconds(shop: tuple[str, ShopStats, Any]) -> None:
    data = shop[2]
    for name in TABLES:
        stamps = [r["updated_at"] for r in as_dicts(data, name)]
        assert all(isinstance(s, datetime) and s.tzinfo is None for s in stamps)
        assert sum(s.microsecond != 0 for s in stamps) > 0.99 * len(stamps), name
    for name, cols in TIMESTAMPS.items():
        stamps = [r[c] for r in as_dicts(data, name) for c in cols if r[c] is not None]
        assert sum(s.microsecond != 0 for s in stamps) > 0.99 * len(stamps), name


def test_create_shop_data_looks_like_olist(shop: tuple[str, ShopStats, Any]) -> None:
    data = shop[2]
    customers, orders = as_dicts(data, "customers"), as_dicts(data, "orders")
    ids = [v for n in TABLES for r in as_dicts(data, n) for k, v in r.items()
           if k.endswith("_id") and k != "order_item_id"]
    assert all(len(v) == 32 and int(v, 16) >= 0 and v == v.lower() for v in ids)
    zips = [c["customer_zip_code_prefix"] for c in customers]
    assert all(len(z) == 5 and z.isdigit() for z in zips) and any(z.startswith("0") for z in zips)
    assert all(len(c["customer_state"]) == 2 and c["customer_state"].isupper() for c in customers)
    messy = [c for c in (c["customer_city"] for c in customers) if c != c.strip().lower()]
    assert 0.03 * len(customers) < len(messy) < 0.15 * len(customers)
    assert any(m != m.strip() for m in messy) and any(m.strip() != m.strip().lower() for m in messy)
    person = {c["customer_id"]: c["customer_unique_id"] for c in customers}
    per_person = Counter(person[o["customer_id"]] for o in orders)  # ~3% of people order more than once
    assert 0.01 < sum(n > 1 for n in per_person.values()) / len(per_person) < 0.06
    statuses = Counter(o["order_status"] for o in orders)
    assert set(statuses) <= {"delivered", "shipped", "invoiced", "processing", "approved", "created",
                             "canceled", "unavailable"}
    older = [o for o in orders if o["order_purchase_timestamp"] < datetime(2018, 7, 1)]
    assert 0.94 < sum(o["order_status"] == "delivered" for o in older) / len(older) < 0.995
    assert datetime(2016, 9, 1) <= min(o["order_purchase_timestamp"] for o in orders)
    assert max(o["order_purchase_timestamp"] for o in orders) < datetime(2018, 9, 1)
    for o in orders:
        chain = [o["order_purchase_timestamp"], o["order_approved_at"],
                 o["order_delivered_carrier_date"], o["order_delivered_customer_date"]]
        present = [t for t in chain if t is not None]
        assert present == sorted(present) and o["updated_at"] >= present[-1]
        assert 13 <= (o["order_estimated_delivery_date"] - o["order_purchase_timestamp"]).days <= 29
    delivered = [o for o in orders if o["order_status"] == "delivered"]
    late = [o for o in delivered
            if o["order_delivered_customer_date"] > o["order_estimated_delivery_date"]]
    assert 0.04 < len(late) / len(delivered) < 0.13
    payments = as_dicts(data, "payments")
    kinds = Counter(p["payment_type"] for p in payments)
    assert set(kinds) == {"credit_card", "boleto", "voucher", "debit_card"}
    assert 0.65 < kinds["credit_card"] / len(payments) < 0.82
    assert 0.13 < kinds["boleto"] / len(payments) < 0.25
    assert all(1 <= p["payment_installments"] <= 10 if p["payment_type"] == "credit_card"
               else p["payment_installments"] == 1 for p in payments)
    products = as_dicts(data, "products")
    assert 15 <= len({p["product_category_name"] for p in products}) and any(
        p["product_category_name"] is None for p in products)


def test_create_shop_refuses_existing_tables_without_replace(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'shop.db'}"  # the parent directory is created
    first = create_shop(url, scale=0.002, seed=1)
    with pytest.raises(ShopError, match="already exist") as err:
        create_shop(url, scale=0.002, seed=2)
    assert "\n" not in str(err.value)
    assert create_shop(url, scale=0.003, seed=2, replace=True) != first
    assert len(rows(url)["orders"]) == round(99_441 * 0.003)


def test_simulate_activity_refuses_a_missing_shop(tmp_path: Path) -> None:
    with pytest.raises(ShopError, match="run create_shop first"):
        simulate_activity(f"sqlite:///{tmp_path / 'empty.db'}")


def test_create_shop_reports_bad_urls_in_one_line() -> None:
    for url in ("not a url", "nosuchdb://x/y", "postgresql+psycopg://nobody@127.0.0.1:1/none"):
        with pytest.raises(ShopError) as err:
            create_shop(url, scale=0.001)
        assert "\n" not in str(err.value) and str(err.value)


def test_simulate_activity_advances_updated_at_and_ties_the_boundary(tmp_path: Path) -> None:
    url, twin = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    create_shop(url, scale=0.01, seed=3)
    create_shop(twin, scale=0.01, seed=3)
    before = rows(url)
    stats = simulate_activity(url, seed=5, at_boundary=3)
    assert simulate_activity(twin, seed=5, at_boundary=3) == stats
    after = rows(url)
    assert after == rows(twin)  # deterministic for (existing data, seed)
    assert_payments_match_items(after)
    assert stats.orders > 20 + 3 and stats.customers > 10 and stats.products == 3
    for name in TABLES:
        old, new = keyed(before, name), keyed(after, name)
        top = max(r["updated_at"] for r in old.values())
        changed = [r for k, r in new.items() if old.get(k) != r]
        assert len(changed) == getattr(stats, name), name
        tied = [r for r in changed if r["updated_at"] == top]
        assert len(tied) == 3, name
        assert all(r["updated_at"] > top for r in changed if r not in tied), name
        assert all((r["updated_at"] - top).total_seconds() < 7 * 86_400 for r in changed)
    old_orders, new_orders = keyed(before, "orders"), keyed(after, "orders")
    flow = ["created", "approved", "invoiced", "processing", "shipped", "delivered"]
    progressed = [(old_orders[k], o) for k, o in new_orders.items()
                  if k in old_orders and o["order_status"] != old_orders[k]["order_status"]]
    assert len(progressed) >= 10
    for was, now in progressed:
        assert flow.index(now["order_status"]) == flow.index(was["order_status"]) + 1
        assert now["order_approved_at"] is not None
        if now["order_status"] == "delivered":
            assert now["order_delivered_customer_date"] == now["updated_at"]
    fresh = [o for k, o in new_orders.items() if k not in old_orders]
    assert len(fresh) == round(0.02 * len(old_orders))
    old_customers = keyed(before, "customers")
    buyers = {o["customer_id"] for o in fresh}
    assert any((c,) in old_customers for c in buyers) and any((c,) not in old_customers for c in buyers)


def test_simulate_activity_honours_explicit_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    create_shop(url, scale=0.005, seed=4)
    before = keyed(rows(url), "customers")
    stats = simulate_activity(url, seed=9, new_orders=0, status_changes=0, customer_moves=4)
    assert stats == ShopStats(customers=4, products=0, orders=0, order_items=0, payments=0)
    moved = [(before[k], c) for k, c in keyed(rows(url), "customers").items() if before[k] != c]
    assert len(moved) == 4
    assert all(was["customer_city"].strip().lower() != now["customer_city"].strip().lower()
               and was["customer_unique_id"] == now["customer_unique_id"] for was, now in moved)
    with pytest.raises(ShopError, match="new_orders"):
        simulate_activity(url, new_orders=-1)


def server_db(admin_url: str, make_url: Callable[[str], str]) -> Iterator[str]:
    """A fresh, uniquely named database on a local server, dropped afterwards; skipped if the server
    is down, except in CI where the servers must be there."""
    name = f"shop_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as e:
        admin.dispose()
        service_unavailable(f"database server at {admin_url} unreachable: "
                            f"{str(e.orig).splitlines()[0]}")
    try:
        yield make_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from server_db("postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                         lambda n: f"postgresql+psycopg://postgres@127.0.0.1:5432/{n}")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    yield from server_db("mysql+pymysql://root@127.0.0.1:3306/",
                         lambda n: f"mysql+pymysql://root@127.0.0.1:3306/{n}")


def check_server_shop(url: str, tmp_path: Path) -> None:
    """The same seed gives the very same rows (microseconds and decimals included) as on SQLite."""
    lite = f"sqlite:///{tmp_path / 'lite.db'}"
    assert create_shop(url, scale=0.002, seed=11) == create_shop(lite, scale=0.002, seed=11)
    assert rows(url) == rows(lite)
    assert_contract(url)
    with pytest.raises(ShopError, match="already exist"):
        create_shop(url, scale=0.002)
    stats = simulate_activity(url, seed=2, at_boundary=2)
    assert stats == simulate_activity(lite, seed=2, at_boundary=2) and stats.orders > 2
    data = rows(url)
    assert data == rows(lite)
    assert_payments_match_items(data)
    assert create_shop(url, scale=0.002, seed=11, replace=True).orders == 199


@pytest.mark.integration
def test_create_shop_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    check_server_shop(postgres_url, tmp_path)


@pytest.mark.integration
def test_create_shop_on_mariadb(mariadb_url: str, tmp_path: Path) -> None:
    check_server_shop(mariadb_url, tmp_path)


def test_a_dirty_shop_has_orphans_everywhere_and_customers_arriving_late(tmp_path: Path) -> None:
    from framework.demo.shop import arrive_late

    url = f"sqlite:///{tmp_path / 'dirty.db'}"
    stats = create_shop(url, scale=0.005, seed=5, dirty=True)
    again = create_shop(f"sqlite:///{tmp_path / 'again.db'}", scale=0.005, seed=5, dirty=True)
    assert stats == again  # deterministic, dirt included
    dirt = stats.dirt
    assert min(dirt.orders_without_customer, dirt.items_without_order,
               dirt.payments_without_order, dirt.items_without_product,
               dirt.late_customers, dirt.blank_rows) > 0
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            def one(sql: str) -> Any:
                return conn.execute(sa.text(sql)).scalar_one()

            assert one("SELECT count(*) FROM order_items WHERE order_id NOT IN "
                       "(SELECT order_id FROM orders)") == dirt.items_without_order
            assert one("SELECT count(*) FROM order_items WHERE product_id NOT IN "
                       "(SELECT product_id FROM products)") == dirt.items_without_product
            assert one("SELECT count(*) FROM customers WHERE customer_zip_code_prefix "
                       "LIKE '0%'") == 0  # the leading zeros are gone
            assert one("SELECT count(*) FROM products WHERE trim(product_category_name) = ''") >= 2
            assert one("SELECT count(*) FROM products WHERE product_category_name = 'pc_gamer'") >= 1
            assert one("SELECT count(*) FROM products WHERE product_category_name = "
                       "'cama_mesa_banho'") > 0  # Olist's Portuguese names
            assert one("SELECT count(*) FROM orders WHERE "
                       "substr(order_purchase_timestamp, 18) = '00.000000'") > 0  # minutes
            before = one("SELECT count(*) FROM customers")
            top = one("SELECT max(updated_at) FROM customers")
        assert arrive_late(url) == dirt.late_customers
        assert arrive_late(url) == 0  # once
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one() == \
                before + dirt.late_customers
            assert conn.execute(sa.text("SELECT min(updated_at) FROM customers WHERE "
                                        "updated_at > :t"), {"t": top}).scalar_one() is not None
    finally:
        engine.dispose()
