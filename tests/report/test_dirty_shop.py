"""The whole flow on a dirty shop (`framework demo --dirty`'s data): orphans in every
relationship, customers arriving a run late, NULL/empty/untranslated categories, zip codes
without their leading zero, minute-precision timestamps, blank rows.

`run --all` exits 0 and builds every mart; the facts keep every source row; the dashboard
renders with its data-quality panel; each KPI equals a value computed here by SQL straight on
the dirty source (never read from the marts); orphans reach the run output, --json, `history`
and the dashboard with the same counts. Then the late customers arrive and the next run
attaches their orders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from tests.conftest import copy_project
from tests.report.helpers import parse_dashboard

SALES = "(SELECT * FROM orders WHERE order_status NOT IN ('canceled', 'unavailable'))"
KPI_SQL = {  # on the dirty source (SQLite), written from the definitions, not from the marts
    "orders": f"SELECT count(*) FROM {SALES}",
    "revenue": f"SELECT coalesce(sum(i.price), 0) FROM order_items i JOIN {SALES} s "
               "ON s.order_id = i.order_id",
    "orders_with_items": f"SELECT count(DISTINCT i.order_id) FROM order_items i JOIN {SALES} s "
                         "ON s.order_id = i.order_id",
    "customers": f"SELECT count(DISTINCT c.customer_unique_id) FROM {SALES} s "
                 "JOIN customers c ON c.customer_id = s.customer_id",
    "repeat": f"SELECT count(*) FROM (SELECT c.customer_unique_id FROM {SALES} s JOIN customers c "
              "ON c.customer_id = s.customer_id GROUP BY 1 HAVING count(*) >= 2)",
    "delivered": "SELECT count(*) FROM orders WHERE order_delivered_customer_date IS NOT NULL "
                 "AND order_estimated_delivery_date IS NOT NULL",
    "late": "SELECT count(*) FROM orders WHERE order_delivered_customer_date IS NOT NULL AND "
            "date(order_delivered_customer_date) > date(order_estimated_delivery_date)",
}
ORPHAN_SQL = {  # relationship -> orphan rows in the source
    "order_items.order_id -> orders.order_id":
        "SELECT count(*) FROM order_items WHERE order_id NOT IN (SELECT order_id FROM orders)",
    "order_items.product_id -> products.product_id":
        "SELECT count(*) FROM order_items WHERE product_id NOT IN (SELECT product_id FROM products)",
    "orders.customer_id -> customers.customer_id":
        "SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT customer_id FROM customers)",
    "payments.order_id -> orders.order_id":
        "SELECT count(*) FROM payments WHERE order_id NOT IN (SELECT order_id FROM orders)",
}
LINE = re.compile(r"^orphans: [\d,]+ (order items|orders|payments) \(\d+\.\d% of "
                  r"(item revenue|payment value)\) have no (order|product|customer) row$")


@dataclass
class Pass:
    """One `run --all` on the dirty shop and what it left."""

    exit_code: int
    records: list[dict[str, Any]]
    output: str
    html: str
    source: dict[str, Any]  # KPI_SQL values then
    orphans: dict[str, int]  # ORPHAN_SQL values then
    history: list[dict[str, Any]]


def _source(url: str, queries: dict[str, str]) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {k: conn.execute(sa.text(sql)).scalar_one() for k, sql in queries.items()}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from framework.demo.shop import arrive_late, create_shop
    from tests.e2e.helpers import cli

    tmp = tmp_path_factory.mktemp("dirty_shop")
    root, state = copy_project(tmp / "project"), tmp / "state"
    url = f"sqlite:///{state / 'shop.db'}"
    passes: list[Pass] = []
    with pytest.MonkeyPatch.context() as mp:
        for name in ("SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "FRAMEWORK_TARGET"):
            mp.delenv(name, raising=False)
        mp.setenv("FRAMEWORK_PROJECT_DIR", str(root))
        mp.setenv("FRAMEWORK_STATE_DIR", str(state))
        stats = create_shop(url, scale=0.01, seed=7, dirty=True)
        for round_ in (1, 2):
            if round_ == 2:
                assert arrive_late(url) == stats.dirt.late_customers > 0
            run = cli("run", "--all", "--json")
            text = cli("history", "--json", "--limit", "50").stdout
            history = json.loads(text[text.index("["):])
            report = cli("report", "--output", str(tmp / f"report{round_}"))
            assert report.exit_code == 0, report.output
            start = run.stdout.index("[")
            passes.append(Pass(run.exit_code, json.loads(run.stdout[start:]), run.output,
                               (tmp / f"report{round_}" / "index.html").read_text("utf-8"),
                               _source(url, KPI_SQL), _source(url, ORPHAN_SQL), history))
        table = cli("history")  # the table output: one shared dbt row per run that built
    yield {"url": url, "warehouse": state / "warehouse.duckdb", "passes": passes,
           "stats": stats, "table": table, "report": tmp / "report2" / "index.html"}


def test_run_all_on_a_dirty_shop_exits_0_and_builds_every_mart(dirty: dict[str, Any]) -> None:
    from framework.report.data import MARTS

    for run in dirty["passes"]:
        assert run.exit_code == 0, run.output
        assert {r["status"] for r in run.records} == {"success"}, run.output
        assert {r["models_status"] for r in run.records} == {"built"}
        assert len({json.dumps(r["dbt"], sort_keys=True) for r in run.records}) == 1  # one build
        assert "dbt" not in {k for r in run.records for k in r["seconds"]}
    con = duckdb.connect(str(dirty["warehouse"]))
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'marts'").fetchall()}
    finally:
        con.close()
    assert set(MARTS) | {"fact_orders", "fact_order_items", "fact_payments", "dim_customers",
                         "dim_products", "dim_dates", "mart_orphans",
                         "mart_table_freshness"} <= tables


def test_fact_order_items_revenue_equals_source_item_revenue_orphans_included(
        dirty: dict[str, Any]) -> None:
    source = _source(dirty["url"], {"rows": "SELECT count(*) FROM order_items",
                                    "revenue": "SELECT sum(price) FROM order_items"})
    con = duckdb.connect(str(dirty["warehouse"]))
    try:
        rows, revenue, orphans = con.execute(
            "SELECT count(*), sum(price), sum(CASE WHEN has_order THEN 0 ELSE 1 END) "
            "FROM marts.fact_order_items").fetchone()  # type: ignore[misc]
        facts = con.execute("SELECT (SELECT count(*) FROM marts.fact_orders), "
                            "(SELECT count(*) FROM marts.fact_payments)").fetchone()
    finally:
        con.close()
    assert rows == source["rows"] and orphans > 0
    assert revenue == Decimal(str(source["revenue"])).quantize(Decimal("0.01"))
    counts = _source(dirty["url"], {"o": "SELECT count(*) FROM orders",
                                    "p": "SELECT count(*) FROM payments"})
    assert facts == (counts["o"], counts["p"])


@pytest.mark.parametrize("round_", [0, 1], ids=["first run", "after late customers"])
def test_each_kpi_equals_sql_on_the_dirty_source(dirty: dict[str, Any], round_: int) -> None:
    run = dirty["passes"][round_]
    kpis, src = parse_dashboard(run.html).kpis, run.source
    assert int(kpis["orders"]) == src["orders"]
    assert float(kpis["revenue"]) == pytest.approx(float(src["revenue"]), abs=0.005)
    assert float(kpis["average_order_value"]) == pytest.approx(
        float(src["revenue"]) / src["orders_with_items"], rel=1e-9)
    assert int(kpis["customers"]) == src["customers"]
    assert float(kpis["repeat_rate"]) == pytest.approx(src["repeat"] / src["customers"])
    assert float(kpis["late_share"]) == pytest.approx(src["late"] / src["delivered"])


def test_orphans_reach_the_run_output_json_history_and_dashboard(dirty: dict[str, Any]) -> None:
    for run in dirty["passes"]:
        build = run.records[0]["dbt"]
        listed = {o["relationship"]: o for o in build["orphans"]}
        assert {k: v for k, v in run.orphans.items() if v} == \
            {k: o["orphan_rows"] for k, o in listed.items()}
        assert set(listed) == set(ORPHAN_SQL)  # the dirty shop has orphans in every relationship
        for orphans in listed.values():
            assert LINE.match(orphans["line"]), orphans["line"]
        shown = {r["run_id"]: r for r in run.history}[run.records[0]["run_id"]]
        assert shown["dbt"]["orphans"] == build["orphans"]
        rows = {m.group(1): int(m.group(2)) for m in re.finditer(
            r'data-orphans="([^"]+)" data-rows="(\d+)"', run.html)}
        assert {k.replace("&gt;", ">"): v for k, v in rows.items()} == run.orphans
        assert 'data-notice="orphans"' in run.html
    first = dirty["passes"][0].records[0]["dbt"]["orphans"][0]["line"]
    assert first in dirty["passes"][0].output.replace("\n", " ") or \
        first in " ".join(dirty["passes"][0].output.split())


def test_late_customers_are_attached_by_the_next_run(dirty: dict[str, Any]) -> None:
    first, second = dirty["passes"]
    late = dirty["stats"].dirt.late_customers
    key = "orders.customer_id -> customers.customer_id"
    assert second.orphans[key] < first.orphans[key]
    assert second.source["customers"] > first.source["customers"]
    con = duckdb.connect(str(dirty["warehouse"]))
    try:
        unknown, = con.execute("SELECT count(*) FROM marts.fact_orders WHERE customer_key = '-1'"
                               ).fetchone()  # type: ignore[misc]
    finally:
        con.close()
    assert unknown == second.orphans[key] and late > 0


def test_the_panel_shows_rows_per_table_and_the_run_table_shows_dbt_once(
        dirty: dict[str, Any]) -> None:
    run = dirty["passes"][1]
    rows = dict(re.findall(r'data-table="(\w+)" data-rows="(\d+)"', run.html))
    counts = _source(dirty["url"], {t: f"SELECT count(*) FROM {t}" for t in rows})
    assert {t: int(n) for t, n in rows.items()} == counts and len(rows) == 5
    assert 'data-part="quarantine"' in run.html
    table = dirty["table"]
    assert table.exit_code == 0, table.output
    assert table.output.count("(dbt)") == 2  # two runs built: one shared dbt row each


@pytest.mark.browser
def test_the_dirty_dashboard_renders_with_its_panel_in_headless_chromium(
        dirty: dict[str, Any], tmp_path: Path) -> None:
    from tests.report.helpers import chromium
    from tests.report.test_browser import headless

    dom = headless(chromium(), tmp_path / "profile", "--dump-dom", dirty["report"].as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn = parse_dashboard(dom.stdout)
    assert set(drawn.kpis) == {"orders", "revenue", "average_order_value", "customers",
                               "late_share", "repeat_rate"}
    assert 'data-chart="data_quality"' in dom.stdout and 'data-notice="orphans"' in dom.stdout
    assert len(re.findall(r'data-orphans="', dom.stdout)) == 4
    assert len(re.findall(r'data-table="', dom.stdout)) == 5
