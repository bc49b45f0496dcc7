"""End-to-end test of the dbt project `dbt_ecommerce/` on DuckDB.

Builds a temporary DuckDB warehouse with the five landing tables (a small,
consistent hand-written data set), runs `dbt build` in process with the
`local` target, checks the marts and schemas, then changes a customer in
landing and checks that a second build records the change in the snapshot.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import service_unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO_ROOT / "dbt_ecommerce"

LANDING_DDL = """
create schema landing;

create table landing.customers (
    customer_id varchar primary key,
    customer_unique_id varchar,
    customer_zip_code_prefix varchar,
    customer_city varchar,
    customer_state varchar,
    updated_at timestamp,
    _load_id varchar,
    _loaded_at timestamp
);

create table landing.products (
    product_id varchar primary key,
    product_category_name varchar,
    product_name_length integer,
    product_description_length integer,
    product_photos_qty integer,
    product_weight_g integer,
    product_length_cm integer,
    product_height_cm integer,
    product_width_cm integer,
    updated_at timestamp,
    _load_id varchar,
    _loaded_at timestamp
);

create table landing.orders (
    order_id varchar primary key,
    customer_id varchar,
    order_status varchar,
    order_purchase_timestamp timestamp,
    order_approved_at timestamp,
    order_delivered_carrier_date timestamp,
    order_delivered_customer_date timestamp,
    order_estimated_delivery_date timestamp,
    updated_at timestamp,
    _load_id varchar,
    _loaded_at timestamp
);

create table landing.order_items (
    order_id varchar,
    order_item_id integer,
    product_id varchar,
    seller_id varchar,
    shipping_limit_date timestamp,
    price decimal(12, 2),
    freight_value decimal(12, 2),
    updated_at timestamp,
    _load_id varchar,
    _loaded_at timestamp,
    primary key (order_id, order_item_id)
);

create table landing.payments (
    order_id varchar,
    payment_sequential integer,
    payment_type varchar,
    payment_installments integer,
    payment_value decimal(12, 2),
    updated_at timestamp,
    _load_id varchar,
    _loaded_at timestamp,
    primary key (order_id, payment_sequential)
);
"""

LOAD = "'load_1', timestamp '2024-03-10 00:00:00'"

# Orders: o1 delivered on time, o2 delivered late, o3 shipped (not yet
# delivered), o4 canceled without items. Customers c1 and c3 are the same person
# (u1); c4 has no order; p3 has no category nor dimensions; p4 is never ordered
# (and is deleted from landing in the snapshot test). o3's line of p3 has no freight: its
# category's only sale, whose marts must count it as none, not null (a blocking test).
LANDING_DATA = f"""
insert into landing.customers values
    ('c1', 'u1', '01310', 'sao paulo',      'SP', timestamp '2024-01-01 10:00:00', {LOAD}),
    ('c2', 'u2', '20040', 'rio de janeiro', 'RJ', timestamp '2024-01-02 10:00:00', {LOAD}),
    ('c3', 'u1', '01310', 'sao paulo',      'SP', timestamp '2024-01-03 10:00:00', {LOAD}),
    ('c4', 'u4', '30130', 'belo horizonte', 'MG', timestamp '2024-01-04 10:00:00', {LOAD});

insert into landing.products values
    ('p1', 'perfumaria',     40, 300, 2,  500, 20, 10, 15, timestamp '2024-01-01 00:00:00', {LOAD}),
    ('p2', 'moveis_decoracao', 50, 800, 4, 8000, 60, 40, 50, timestamp '2024-01-01 00:00:00', {LOAD}),
    ('p3', null,             null, null, null, null, null, null, null, timestamp '2024-01-01 00:00:00', {LOAD}),
    ('p4', 'brinquedos',     30, 150, 1,  250, 10, 10, 10, timestamp '2024-01-05 00:00:00', {LOAD});

insert into landing.orders values
    ('o1', 'c1', 'delivered', timestamp '2024-02-01 09:15:00', timestamp '2024-02-01 10:00:00',
        timestamp '2024-02-02 12:00:00', timestamp '2024-02-05 16:30:00', timestamp '2024-02-10 00:00:00',
        timestamp '2024-02-05 16:30:00', {LOAD}),
    ('o2', 'c2', 'delivered', timestamp '2024-02-03 20:00:00', timestamp '2024-02-03 20:30:00',
        timestamp '2024-02-05 08:00:00', timestamp '2024-02-20 11:00:00', timestamp '2024-02-15 00:00:00',
        timestamp '2024-02-20 11:00:00', {LOAD}),
    ('o3', 'c3', 'shipped',   timestamp '2024-02-25 14:00:00', timestamp '2024-02-25 14:10:00',
        timestamp '2024-02-27 09:00:00', null, timestamp '2024-03-12 00:00:00',
        timestamp '2024-02-27 09:00:00', {LOAD}),
    ('o4', 'c1', 'canceled',  timestamp '2024-03-01 08:00:00', null,
        null, null, timestamp '2024-03-15 00:00:00',
        timestamp '2024-03-01 09:00:00', {LOAD});

insert into landing.order_items values
    ('o1', 1, 'p1', 's1', timestamp '2024-02-03 00:00:00',  89.90, 12.50, timestamp '2024-02-01 09:15:00', {LOAD}),
    ('o1', 2, 'p2', 's2', timestamp '2024-02-03 00:00:00', 349.00, 45.10, timestamp '2024-02-01 09:15:00', {LOAD}),
    ('o2', 1, 'p2', 's2', timestamp '2024-02-05 00:00:00', 349.00, 40.00, timestamp '2024-02-03 20:00:00', {LOAD}),
    ('o3', 1, 'p3', 's1', timestamp '2024-02-27 00:00:00',  19.99,  null, timestamp '2024-02-25 14:00:00', {LOAD}),
    ('o3', 2, 'p1', 's1', timestamp '2024-02-27 00:00:00',  89.90, 12.50, timestamp '2024-02-25 14:00:00', {LOAD});

insert into landing.payments values
    ('o1', 1, 'credit_card', 3, 400.00, timestamp '2024-02-01 10:00:00', {LOAD}),
    ('o1', 2, 'voucher',     1,  96.50, timestamp '2024-02-01 10:00:00', {LOAD}),
    ('o2', 1, 'boleto',      1, 389.00, timestamp '2024-02-03 20:30:00', {LOAD}),
    ('o3', 1, 'debit_card',  1, 129.40, timestamp '2024-02-25 14:10:00', {LOAD});
"""


def _dbt_args(command: str, tmp_path: Path) -> list[str]:
    return [
        command,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target", "local",
        "--target-path", str(tmp_path / "dbt-target"),
        "--log-path", str(tmp_path / "dbt-logs"),
    ]


def _run_dbt(args: list[str]):
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(args)
    failures = []
    if result.result is not None:
        for r in getattr(result.result, "results", []) or []:
            status = str(getattr(r.status, "value", r.status))
            if status not in ("success", "pass"):
                failures.append(f"{r.node.unique_id}: {status}: {r.message}")
    assert result.success, f"dbt {args[0]} failed: {result.exception!r}; {failures}"
    assert not failures, failures
    return result


def _query(db_path: Path, sql: str, params=None):
    # dbt-duckdb keeps the file open in this process: use a fresh read-write
    # connection (read_only=True would raise) and close it before dbt runs again.
    con = duckdb.connect(str(db_path))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("dbt_ecommerce")
    db_path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(db_path))
    con.execute(LANDING_DDL)
    con.execute(LANDING_DATA)
    con.close()

    env = {
        "DUCKDB_PATH": str(db_path),
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        first = _run_dbt(_dbt_args("build", tmp_path))
        yield {"db": db_path, "tmp": tmp_path, "first": first}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


REPORT_MARTS = (
    "mart_customer_cohorts",
    "mart_delivery_lateness",
    "mart_delivery_performance",
    "mart_payment_mix",
    "mart_repeat_customers",
    "mart_revenue_by_category",
    "mart_revenue_by_state",
    "mart_revenue_monthly",
    "mart_top_categories",
    "mart_top_products",
)
DATA_QUALITY_MARTS = ("mart_orphans", "mart_table_freshness")


def test_build_succeeds_and_runs_every_node(warehouse):
    results = warehouse["first"].result.results
    kinds = {r.node.resource_type for r in results}
    assert {"model", "snapshot", "test"} <= {str(getattr(k, "value", k)) for k in kinds}
    models = {r.node.name for r in results if str(getattr(r.node.resource_type, "value", "")) == "model"}
    assert models == {
        "stg_customers", "stg_products", "stg_orders", "stg_order_items", "stg_payments",
        "dim_customers", "dim_products", "dim_dates",
        "fact_orders", "fact_order_items", "fact_payments",
        *REPORT_MARTS, *DATA_QUALITY_MARTS,
    }


def test_schemas_are_exactly_landing_staging_marts_snapshots(warehouse):
    rows = _query(
        warehouse["db"],
        "select distinct table_schema from information_schema.tables "
        "where table_catalog = current_database()",
    )
    assert {r[0] for r in rows} == {"landing", "staging", "marts", "snapshots"}
    rows = _query(
        warehouse["db"],
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_schema in ('staging', 'marts', 'snapshots') order by 1, 2",
    )
    assert rows == [
        ("marts", "dim_customers", "BASE TABLE"),
        ("marts", "dim_dates", "BASE TABLE"),
        ("marts", "dim_products", "BASE TABLE"),
        ("marts", "fact_order_items", "BASE TABLE"),
        ("marts", "fact_orders", "BASE TABLE"),
        ("marts", "fact_payments", "BASE TABLE"),
        *(("marts", name, "BASE TABLE") for name in sorted(REPORT_MARTS + DATA_QUALITY_MARTS)),
        ("snapshots", "snap_customers", "BASE TABLE"),
        ("snapshots", "snap_products", "BASE TABLE"),
        ("staging", "product_category_name_translation", "BASE TABLE"),
        ("staging", "stg_customers", "VIEW"),
        ("staging", "stg_order_items", "VIEW"),
        ("staging", "stg_orders", "VIEW"),
        ("staging", "stg_payments", "VIEW"),
        ("staging", "stg_products", "VIEW"),
    ]


def test_fact_orders_one_row_per_order_and_totals(warehouse):
    db = warehouse["db"]
    (n_fact, n_distinct), = _query(db, "select count(*), count(distinct order_id) from marts.fact_orders")
    (n_landing,), = _query(db, "select count(*) from landing.orders")
    assert n_fact == n_distinct == n_landing == 4

    (mart_revenue, mart_freight), = _query(
        db, "select sum(items_revenue), sum(freight_total) from marts.fact_orders"
    )
    (landing_revenue, landing_freight), = _query(
        db, "select sum(price), sum(freight_value) from landing.order_items"
    )
    assert mart_revenue == landing_revenue == Decimal("897.79")
    assert mart_freight == landing_freight

    rows = _query(
        db,
        "select order_id, item_count, items_revenue, freight_total, payment_total, purchase_date_key "
        "from marts.fact_orders order by order_id",
    )
    assert rows == [
        ("o1", 2, Decimal("438.90"), Decimal("57.60"), Decimal("496.50"), 20240201),
        ("o2", 1, Decimal("349.00"), Decimal("40.00"), Decimal("389.00"), 20240203),
        ("o3", 2, Decimal("109.89"), Decimal("12.50"), Decimal("129.40"), 20240225),  # a line without freight
        ("o4", 0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), 20240301),
    ]
    (fact_items_revenue,), = _query(db, "select sum(price) from marts.fact_order_items")
    assert fact_items_revenue == landing_revenue
    # the category whose only sale has no freight: none, not null (a blocking not_null test)
    assert _query(db, "select freight from marts.mart_revenue_by_category where category = "
                      "'(no category)'") == [(Decimal("0.00"),)]
    assert _query(db, "select freight from marts.mart_top_products where product_id = 'p3'") == \
        [(Decimal("0.00"),)]


def test_delivery_metrics(warehouse):
    rows = _query(
        warehouse["db"],
        "select order_id, is_delivered, days_to_deliver, days_late, is_late "
        "from marts.fact_orders order by order_id",
    )
    assert rows == [
        ("o1", True, 4, -5, False),  # delivered 2024-02-05, estimated 2024-02-10
        ("o2", True, 17, 5, True),  # delivered 2024-02-20, estimated 2024-02-15: late
        ("o3", False, None, None, None),  # shipped, not yet delivered
        ("o4", False, None, None, None),  # canceled
    ]


def test_dim_dates_covers_order_dates(warehouse):
    db = warehouse["db"]
    (n, n_distinct, first, last, keys_ok), = _query(
        db,
        "select count(*), count(distinct date_day), min(date_day), max(date_day), "
        "bool_and(date_key = year(date_day) * 10000 + month(date_day) * 100 + day(date_day)) "
        "from marts.dim_dates",
    )
    # from the first purchase (2024-02-01) to the last estimated delivery (2024-03-15)
    assert (first, last) == (date(2024, 2, 1), date(2024, 3, 15))
    assert n == n_distinct == (last - first).days + 1
    assert keys_ok
    (missing,), = _query(
        db,
        "select count(*) from landing.orders o "
        "left join marts.dim_dates d on cast(o.order_purchase_timestamp as date) = d.date_day "
        "where d.date_day is null",
    )
    assert missing == 0
    (dow_ok,), = _query(db, "select bool_and(day_of_week_iso = isodow(date_day)) from marts.dim_dates")
    assert dow_ok


def test_dimensions(warehouse):
    db = warehouse["db"]
    rows = _query(
        db,
        "select customer_id, customer_unique_id, city, state, first_order_date, order_count "
        "from marts.dim_customers order by customer_id",
    )
    assert rows == [
        ("-1", "-1", "(missing customer)", "(missing customer)", None, 0),  # the unknown member
        ("c1", "u1", "sao paulo", "SP", date(2024, 2, 1), 2),
        ("c2", "u2", "rio de janeiro", "RJ", date(2024, 2, 3), 1),
        ("c3", "u1", "sao paulo", "SP", date(2024, 2, 25), 1),
        ("c4", "u4", "belo horizonte", "MG", None, 0),
    ]
    rows = _query(
        db, "select product_id, category, volume_cm3 from marts.dim_products order by product_id"
    )
    # English names from the seed product_category_name_translation; none: '(no category)'
    assert rows == [
        ("-1", "(missing product)", None),  # the unknown member
        ("p1", "perfumery", 3000),
        ("p2", "furniture_decor", 120000),
        ("p3", "(no category)", None),
        ("p4", "toys", 1000),
    ]
    rows = _query(
        db,
        "select order_id, order_item_id, product_category from marts.fact_order_items "
        "order by order_id, order_item_id",
    )
    assert rows == [
        ("o1", 1, "perfumery"),
        ("o1", 2, "furniture_decor"),
        ("o2", 1, "furniture_decor"),
        ("o3", 1, "(no category)"),
        ("o3", 2, "perfumery"),
    ]
    (n_pay, n_grain), = _query(
        db,
        "select count(*), count(distinct (order_id, payment_sequential)) from marts.fact_payments",
    )
    assert n_pay == n_grain == 4


def test_snapshot_records_customer_change(warehouse):
    db = warehouse["db"]
    rows = _query(db, "select count(*) from snapshots.snap_customers where customer_id = 'c2'")
    assert rows == [(1,)]

    con = duckdb.connect(str(db))
    con.execute(
        "update landing.customers set customer_city = 'niteroi', "
        "updated_at = timestamp '2024-03-20 12:00:00', _load_id = 'load_2', "
        "_loaded_at = timestamp '2024-03-20 13:00:00' where customer_id = 'c2'"
    )
    # the source deleted product p4: the framework's landing table drops it too
    con.execute("delete from landing.products where product_id = 'p4'")
    con.close()

    _run_dbt(_dbt_args("build", warehouse["tmp"]))

    rows = _query(
        db,
        "select customer_city, dbt_valid_from, dbt_valid_to from snapshots.snap_customers "
        "where customer_id = 'c2' order by dbt_valid_from",
    )
    assert len(rows) == 2
    (old_city, old_from, old_to), (new_city, new_from, new_to) = rows
    assert old_city == "rio de janeiro" and new_city == "niteroi"
    assert str(old_from) == "2024-01-02 10:00:00"
    assert old_to == new_from and str(new_from) == "2024-03-20 12:00:00"
    assert new_to is None
    # unchanged customers keep a single version; the mart shows the new city
    (n_versions,), = _query(db, "select count(*) from snapshots.snap_customers")
    assert n_versions == 5
    assert _query(db, "select city from marts.dim_customers where customer_id = 'c2'") == [("niteroi",)]

    # hard_deletes: invalidate closes the deleted product's current version
    rows = _query(
        db, "select count(*), count(dbt_valid_to) from snapshots.snap_products where product_id = 'p4'"
    )
    assert rows == [(1, 1)]
    assert _query(db, "select count(*) from snapshots.snap_products where dbt_valid_to is null") == [(3,)]
    assert _query(db, "select count(*) from marts.dim_products where product_id = 'p4'") == [(0,)]


# --------------------------------------------------------------------------
# Same project, `prod` target (dbt-snowflake), against a fakesnow server: checks
# that the SQL compiles and runs in the Snowflake dialect as fakesnow emulates
# it. Only one build: fakesnow cannot run dbt-snowflake's snapshot/incremental
# merge path (temporary table names), so the second snapshot run is not tested.
# --------------------------------------------------------------------------

FAKESNOW = Path(sys.executable).with_name("fakesnow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fakesnow_server(tmp_path_factory):
    if not FAKESNOW.exists():
        service_unavailable("fakesnow is not installed; install fakesnow[server]")
    import snowflake.connector as snowflake_connector  # a dependency: a missing one is an error
    tmp_path = tmp_path_factory.mktemp("fakesnow")
    port = _free_port()
    proc = subprocess.Popen(
        [str(FAKESNOW), "-s", "--host", "127.0.0.1", "-p", str(port), "-d", str(tmp_path / "dbs")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120  # fakesnow starts in seconds, minutes on a busy box
        while True:
            try:
                con = snowflake_connector.connect(
                    host="127.0.0.1", port=port, protocol="http",
                    account="fakesnow", user="dbt", password="dbt",
                )
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        cur = con.cursor()
        cur.execute("create database analytics")
        cur.execute("use database analytics")
        for stmt in (LANDING_DDL + LANDING_DATA).split(";"):
            if stmt.strip():
                cur.execute(stmt)
        con.close()
        yield {"port": port, "tmp": tmp_path, "connect": snowflake_connector.connect}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:The 'insecure_mode' connection property:DeprecationWarning")
def test_prod_target_builds_on_fakesnow(fakesnow_server):
    env = {
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_USER": "dbt",
        "SNOWFLAKE_PASSWORD": "dbt",
        "SNOWFLAKE_ROLE": "",
        "SNOWFLAKE_WAREHOUSE": "wh",
        "SNOWFLAKE_DATABASE": "analytics",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(fakesnow_server["port"]),
        "SNOWFLAKE_PROTOCOL": "http",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "FRAMEWORK_REPORTER_ROLE": "",  # fakesnow cannot run GRANT
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        args = _dbt_args("build", fakesnow_server["tmp"])
        args[args.index("local")] = "prod"
        _run_dbt(args)
        # A second build takes the incremental path of the facts (their new rows wait in a
        # transient table: fakesnow cannot create dbt's temporary relations, which the snapshots'
        # second run needs too, so they sit this one out): o4 gets a line, o3's payment goes.
        con = fakesnow_server["connect"](
            host="127.0.0.1", port=fakesnow_server["port"], protocol="http",
            account="fakesnow", user="dbt", password="dbt", database="analytics",
        )
        try:
            cur = con.cursor()
            cur.execute("insert into landing.order_items values ('o4', 1, 'p1', 's1', "
                        "timestamp '2024-03-05 00:00:00', 10.00, 1.00, "
                        "timestamp '2024-03-11 00:00:00', 'load_2', timestamp '2024-03-12 00:00:00')")
            cur.execute("delete from landing.payments where order_id = 'o3'")
        finally:
            con.close()
        _run_dbt([*args, "--exclude", "resource_type:snapshot"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    con = fakesnow_server["connect"](
        host="127.0.0.1", port=fakesnow_server["port"], protocol="http",
        account="fakesnow", user="dbt", password="dbt", database="analytics",
    )
    try:
        cur = con.cursor()
        cur.execute(
            "select order_id, item_count, items_revenue, payment_total, purchase_date_key, "
            "days_to_deliver, is_late from marts.fact_orders order by order_id"
        )
        assert cur.fetchall() == [
            ("o1", 2, Decimal("438.90"), Decimal("496.50"), 20240201, 4, False),
            ("o2", 1, Decimal("349.00"), Decimal("389.00"), 20240203, 17, True),
            ("o3", 2, Decimal("109.89"), Decimal("0.00"), 20240225, None, None),
            ("o4", 1, Decimal("10.00"), Decimal("0.00"), 20240301, None, None),
        ]
        cur.execute("select count(*), min(date_day), max(date_day) from marts.dim_dates")
        assert cur.fetchall() == [(44, date(2024, 2, 1), date(2024, 3, 15))]
        cur.execute("select count(*) from snapshots.snap_customers")
        assert cur.fetchall() == [(4,)]
        cur.execute("select count(*) from snapshots.snap_products")
        assert cur.fetchall() == [(4,)]
    finally:
        con.close()
