"""The reporting marts (dbt_ecommerce/models/marts/mart_*.sql): exact values on a small hand-made
warehouse, the same on DuckDB (`local`) and on Snowflake as fakesnow emulates it (`prod`); their
tags; and a full build after `framework run --all` on the demo shop.

The hand-made data is the dbt test's (tests/dbt) plus two April orders: a repeat order of u2 two
months after its first (a cohort offset), and a new customer's order delivered 20 days late.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.dbt import test_dbt_project as dbt_project
from tests.e2e.helpers import cli
from tests.report.conftest import Demo
from tests.report.helpers import parse_dashboard

REPORT_MARTS = {
    "mart_revenue_monthly", "mart_revenue_by_category", "mart_revenue_by_state",
    "mart_top_categories", "mart_top_products", "mart_payment_mix", "mart_delivery_performance",
    "mart_delivery_lateness", "mart_customer_cohorts", "mart_repeat_customers",
}

EXTRA_DATA = f"""
insert into landing.orders values
    ('o5', 'c2', 'delivered', timestamp '2024-04-02 10:00:00', timestamp '2024-04-02 10:30:00',
        timestamp '2024-04-03 09:00:00', timestamp '2024-04-06 12:00:00', timestamp '2024-04-20 00:00:00',
        timestamp '2024-04-06 12:00:00', {dbt_project.LOAD}),
    ('o6', 'c4', 'delivered', timestamp '2024-04-15 08:00:00', timestamp '2024-04-15 08:05:00',
        timestamp '2024-04-16 09:00:00', timestamp '2024-05-20 12:00:00', timestamp '2024-04-30 00:00:00',
        timestamp '2024-05-20 12:00:00', {dbt_project.LOAD});

insert into landing.order_items values
    ('o5', 1, 'p4', 's2', timestamp '2024-04-05 00:00:00', 59.90, 10.10, timestamp '2024-04-02 10:00:00', {dbt_project.LOAD}),
    ('o6', 1, 'p1', 's1', timestamp '2024-04-18 00:00:00', 89.90, 12.50, timestamp '2024-04-15 08:00:00', {dbt_project.LOAD}),
    ('o6', 2, 'p4', 's2', timestamp '2024-04-18 00:00:00', 59.90, 10.10, timestamp '2024-04-15 08:00:00', {dbt_project.LOAD});

insert into landing.payments values
    ('o5', 1, 'credit_card', 2,  70.00, timestamp '2024-04-02 10:30:00', {dbt_project.LOAD}),
    ('o6', 1, 'credit_card', 3, 172.40, timestamp '2024-04-15 08:05:00', {dbt_project.LOAD});
"""

FEB, MAR, APR = date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)
D = Decimal

# mart -> (query, expected rows). o4 (March) is canceled: no sale, only canceled_orders.
EXPECTED: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
    "mart_revenue_monthly": (
        ("select month_start_date, orders, canceled_orders, customers, items, revenue, freight, "
         "revenue_with_freight, average_order_value from marts.mart_revenue_monthly order by 1"),
        [(FEB, 3, 0, 2, 5, D("897.79"), D("110.10"), D("1007.89"), D("299.26")),
         (MAR, 0, 1, 0, 0, D("0.00"), D("0.00"), D("0.00"), None),
         (APR, 2, 0, 2, 3, D("209.70"), D("32.70"), D("242.40"), D("104.85"))]),
    "mart_revenue_by_category": (
        ("select month_start_date, category, orders, items, revenue, freight "
         "from marts.mart_revenue_by_category order by 1, 2"),
        # English names from the translation seed; p3 has no category
        [(FEB, "(no category)", 1, 1, D("19.99"), D("0.00")),  # its one line lacks freight
         (FEB, "furniture_decor", 2, 2, D("698.00"), D("85.10")),
         (FEB, "perfumery", 2, 2, D("179.80"), D("25.00")),
         (APR, "perfumery", 1, 1, D("89.90"), D("12.50")),
         (APR, "toys", 2, 2, D("119.80"), D("20.20"))]),
    "mart_revenue_by_state": (
        ("select month_start_date, customer_state, orders, customers, revenue, freight, "
         "average_order_value from marts.mart_revenue_by_state order by 1, 2"),
        [(FEB, "RJ", 1, 1, D("349.00"), D("40.00"), D("349.00")),
         (FEB, "SP", 2, 1, D("548.79"), D("70.10"), D("274.40")),  # c1 and c3 are one person
         (APR, "MG", 1, 1, D("149.80"), D("22.60"), D("149.80")),
         (APR, "RJ", 1, 1, D("59.90"), D("10.10"), D("59.90"))]),
    "mart_top_categories": (
        ("select revenue_rank, category, orders, items, revenue, average_item_price, revenue_share "
         "from marts.mart_top_categories order by 1"),
        [(1, "furniture_decor", 2, 2, D("698.00"), D("349.00"), 698.00 / 1107.49),
         (2, "perfumery", 3, 3, D("269.70"), D("89.90"), 269.70 / 1107.49),
         (3, "toys", 2, 2, D("119.80"), D("59.90"), 119.80 / 1107.49),
         (4, "(no category)", 1, 1, D("19.99"), D("19.99"), 19.99 / 1107.49)]),
    "mart_top_products": (
        ("select revenue_rank, product_id, category, orders, units, revenue, first_sale_date, "
         "last_sale_date from marts.mart_top_products order by 1"),
        [(1, "p2", "furniture_decor", 2, 2, D("698.00"), date(2024, 2, 1), date(2024, 2, 3)),
         (2, "p1", "perfumery", 3, 3, D("269.70"), date(2024, 2, 1), date(2024, 4, 15)),
         (3, "p4", "toys", 2, 2, D("119.80"), date(2024, 4, 2), date(2024, 4, 15)),
         (4, "p3", "(no category)", 1, 1, D("19.99"), date(2024, 2, 25), date(2024, 2, 25))]),
    "mart_payment_mix": (
        ("select payment_type, installments, payments, orders, payment_value, "
         "average_payment_value, share_of_payment_value from marts.mart_payment_mix order by 1, 2"),
        [("boleto", 1, 1, 1, D("389.00"), D("389.00"), 389.00 / 1257.30),
         ("credit_card", 2, 1, 1, D("70.00"), D("70.00"), 70.00 / 1257.30),
         ("credit_card", 3, 2, 2, D("572.40"), D("286.20"), 572.40 / 1257.30),
         ("debit_card", 1, 1, 1, D("129.40"), D("129.40"), 129.40 / 1257.30),
         ("voucher", 1, 1, 1, D("96.50"), D("96.50"), 96.50 / 1257.30)]),
    "mart_delivery_performance": (
        ("select month_start_date, delivered_orders, on_time_orders, late_orders, late_share, "
         "avg_days_to_deliver, avg_days_vs_estimate, avg_days_late_when_late "
         "from marts.mart_delivery_performance order by 1"),
        [(FEB, 2, 1, 1, 0.5, 10.5, 0.0, 5.0),  # o1: 4 days, 5 early; o2: 17 days, 5 late
         (APR, 2, 1, 1, 0.5, 19.5, 3.0, 20.0)]),  # o5: 4 days, 14 early; o6: 35 days, 20 late
    "mart_delivery_lateness": (
        ("select bucket_order, bucket, min_days_late, max_days_late, is_late, delivered_orders, "
         "share_of_delivered from marts.mart_delivery_lateness order by 1"),
        [(1, "15+ days early", None, -15, False, 0, 0.0),
         (2, "8-14 days early", -14, -8, False, 1, 0.25),
         (3, "1-7 days early", -7, -1, False, 1, 0.25),
         (4, "on the day", 0, 0, False, 0, 0.0),
         (5, "1-3 days late", 1, 3, True, 0, 0.0),
         (6, "4-7 days late", 4, 7, True, 1, 0.25),
         (7, "8-14 days late", 8, 14, True, 0, 0.0),
         (8, "15+ days late", 15, None, True, 1, 0.25)]),
    "mart_customer_cohorts": (
        ("select cohort_month, months_since_first_order, cohort_size, active_customers, "
         "retention_rate from marts.mart_customer_cohorts order by 1, 2"),
        [(FEB, 0, 2, 2, 1.0), (FEB, 2, 2, 1, 0.5), (APR, 0, 1, 1, 1.0)]),
    "mart_repeat_customers": (
        ("select cohort_month, new_customers, repeat_customers, repeat_rate, orders, "
         "orders_per_customer from marts.mart_repeat_customers order by 1"),
        [(FEB, 2, 2, 1.0, 4, 2.0), (APR, 1, 0, 0.0, 1, 1.0)]),
}


def assert_rows(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Exact, except floats (ratios) to 1e-9."""
    assert len(actual) == len(expected), actual
    for got, want in zip(actual, expected):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            if isinstance(w, float):
                assert g == pytest.approx(w, rel=1e-9), (got, want)
            else:
                assert g == w and type(g) is type(w), (got, want)


def _build_args(tmp_path: Path, target: str) -> list[str]:
    args = dbt_project._dbt_args("build", tmp_path)
    args[args.index("local")] = target
    return args


@pytest.fixture(scope="module")
def hand_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report_marts")
    db = tmp / "warehouse.duckdb"
    con = duckdb.connect(str(db))
    con.execute(dbt_project.LANDING_DDL + dbt_project.LANDING_DATA + EXTRA_DATA)
    con.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKDB_PATH", str(db))
        dbt_project._run_dbt(_build_args(tmp, "local"))
    return db


fakesnow_server = dbt_project.fakesnow_server  # the dbt test's server fixture, landing loaded


@pytest.mark.parametrize("mart", sorted(EXPECTED))
def test_report_mart_values_on_duckdb(hand_duckdb: Path, mart: str) -> None:
    sql, expected = EXPECTED[mart]
    assert_rows(dbt_project._query(hand_duckdb, sql), expected)


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:The 'insecure_mode' connection property:DeprecationWarning")
def test_report_marts_build_and_match_on_fakesnow(fakesnow_server: dict[str, Any]) -> None:
    def connect() -> Any:
        return fakesnow_server["connect"](
            host="127.0.0.1", port=fakesnow_server["port"], protocol="http",
            account="fakesnow", user="dbt", password="dbt", database="analytics")

    con = connect()
    cur = con.cursor()
    for statement in EXTRA_DATA.split(";"):
        if statement.strip():
            cur.execute(statement)
    con.close()
    env = {"SNOWFLAKE_ACCOUNT": "fakesnow", "SNOWFLAKE_USER": "dbt", "SNOWFLAKE_PASSWORD": "dbt",
           "SNOWFLAKE_ROLE": "", "SNOWFLAKE_WAREHOUSE": "wh", "SNOWFLAKE_DATABASE": "analytics",
           "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(fakesnow_server["port"]),
           "SNOWFLAKE_PROTOCOL": "http", "FRAMEWORK_REPORTER_ROLE": ""}  # fakesnow: no GRANT
    output = fakesnow_server["tmp"] / "report"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        dbt_project._run_dbt(_build_args(fakesnow_server["tmp"], "prod"))
        # the dashboard of the same marts, read through the Snowflake connector
        mp.setenv("LAKE_URL", "s3://unused")
        mp.setenv("FRAMEWORK_PROJECT_DIR", str(dbt_project.REPO_ROOT))
        rendered = cli("report", "--target", "prod", "--output", str(output))

    con = connect()
    try:
        cur = con.cursor()
        for (sql, expected) in EXPECTED.values():
            cur.execute(sql)
            assert_rows(cur.fetchall(), expected)
    finally:
        con.close()
    assert rendered.exit_code == 0, rendered.output
    page = parse_dashboard((output / "index.html").read_text())
    assert page.kpis["orders"] == "5" and page.kpis["revenue"] == "1107.49"
    assert page.kpis["customers"] == "3" and float(page.kpis["late_share"]) == 0.5
    assert float(page.kpis["repeat_rate"]) == pytest.approx(2 / 3)
    assert [v for _, v in page.marks["revenue_by_month"]] == ["897.79", "0.00", "209.70"]
    assert [label for label, _ in page.marks["cohorts"]] == ["2024-02+0", "2024-02+2", "2024-04+0"]


def _models(selection: str) -> set[str]:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke([
        "ls", "--project-dir", str(dbt_project.PROJECT_DIR),
        "--profiles-dir", str(dbt_project.PROJECT_DIR), "--target", "local",
        "--resource-type", "model", "--select", selection, "--output", "name", "--quiet"])
    assert result.success, result.exception
    return {name for name in result.result if name.startswith("mart_")}


def test_tags_select_the_report_marts_of_each_pipeline(hand_duckdb: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(hand_duckdb))
    # dbt's target and logs in this test's folder, not in the repository's project
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    assert _models("tag:report") == REPORT_MARTS
    assert _models("tag:orders") == REPORT_MARTS  # every mart counts orders
    assert _models("tag:payments") == {"mart_payment_mix"}
    assert _models("tag:products") == {"mart_revenue_by_category", "mart_top_categories",
                                       "mart_top_products"}
    assert _models("tag:customers") == {"mart_revenue_monthly", "mart_revenue_by_state",
                                        "mart_customer_cohorts", "mart_repeat_customers"}
    assert _models("tag:order_items") == {
        "mart_revenue_monthly", "mart_revenue_by_category", "mart_revenue_by_state",
        "mart_top_categories", "mart_top_products"}
    # the pipelines select `stg_<table>+`: each reaches the marts built on its table, and the
    # data-quality marts, which read every staging view
    assert _models("tag:data_quality") == {"mart_orphans", "mart_table_freshness"}
    assert _models("stg_payments+") == {"mart_payment_mix", "mart_orphans",
                                        "mart_table_freshness"} | {
        "mart_revenue_monthly", "mart_revenue_by_category", "mart_revenue_by_state",
        "mart_top_categories", "mart_top_products", "mart_delivery_performance",
        "mart_delivery_lateness", "mart_customer_cohorts", "mart_repeat_customers"}


def test_demo_run_all_builds_the_report_marts_and_a_full_build_passes(
        demo: Demo, query: Callable[[str], list[tuple[Any, ...]]]) -> None:
    assert {r["status"] for r in demo.records.values()} == {"success"}, demo.records
    tables = {name for (name,) in query(
        "select table_name from information_schema.tables where table_schema = 'marts'")}
    assert REPORT_MARTS <= tables
    assert "customer_sales" not in tables  # ephemeral
    failures = [f"{r.node.name}: {r.status}: {r.message}" for r in demo.full_build.result.results
                if str(r.status) not in ("success", "pass")]
    assert demo.full_build.success and not failures, failures
    built = {r.node.name for r in demo.full_build.result.results}
    assert REPORT_MARTS <= built
    tested = {n for r in demo.full_build.result.results
              if str(getattr(r.node.resource_type, "value", "")) == "test"
              for n in r.node.depends_on.nodes if n.split(".")[-1] in REPORT_MARTS}
    assert {n.split(".")[-1] for n in tested} == REPORT_MARTS  # every mart has tests
    # totals agree with the facts
    ((orders, revenue),) = query("select sum(orders), sum(revenue) from marts.mart_revenue_monthly")
    ((fact_orders, fact_revenue),) = query(
        "select count(*), sum(items_revenue) from marts.fact_orders "
        "where order_status not in ('canceled', 'unavailable')")
    assert (orders, revenue) == (fact_orders, fact_revenue) and orders > 500


def test_environment_is_not_leaked_by_the_fixtures(demo: Demo) -> None:
    assert os.environ.get("FRAMEWORK_STATE_DIR") != str(demo.state)


def test_top_products_count_an_order_once_however_many_of_its_lines_hold_the_product(
        demo: Demo, query: Callable[[str], list[tuple[Any, ...]]]) -> None:
    """mart_top_products counts orders per product and order first, then per product (cheaper
    than a count(distinct) per product); an order with two lines of one product is still one
    order of it and two units. The demo shop has such orders, as Olist does."""
    expected = query(
        "select items.product_id, count(distinct items.order_id), count(*) "
        "from marts.fact_order_items as items inner join marts.fact_orders as orders "
        "on items.order_id = orders.order_id "
        "where orders.order_status not in ('canceled', 'unavailable') group by 1 order by 1")
    assert query("select product_id, orders, units from marts.mart_top_products order by 1") \
        == expected
    assert any(orders < units for _, orders, units in expected)
