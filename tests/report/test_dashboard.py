"""The numbers on the dashboard are the marts' numbers: every KPI tile, chart mark and product row
of the page rendered from the demo shop equals SQL run here directly on the warehouse."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.report.conftest import Rendered
from tests.report.helpers import CHARTS, Dashboard, parse_dashboard

Query = Callable[[str], list[tuple[Any, ...]]]
SALE = "order_status not in ('canceled', 'unavailable')"


@pytest.fixture(scope="module")
def page(dashboard: Rendered) -> Dashboard:
    return parse_dashboard(dashboard.html)


def one(query: Query, sql: str) -> Any:
    ((value,),) = query(sql)
    return value


def test_report_prints_the_path_of_index_html(dashboard: Rendered) -> None:
    assert dashboard.output.strip().splitlines()[-1] == str(dashboard.path)
    assert dashboard.path.name == "index.html"


def test_kpis_equal_sql_on_the_marts_and_on_the_facts(page: Dashboard, query: Query) -> None:
    kpi = page.kpis
    orders = one(query, "select sum(orders) from marts.mart_revenue_monthly")
    revenue = one(query, "select sum(revenue) from marts.mart_revenue_monthly")
    assert int(kpi["orders"]) == orders
    assert Decimal(kpi["revenue"]) == revenue
    assert float(kpi["average_order_value"]) == pytest.approx(float(revenue) / orders, rel=1e-12)
    assert int(kpi["customers"]) == one(query, "select sum(new_customers) "
                                               "from marts.mart_repeat_customers")
    assert float(kpi["late_share"]) == pytest.approx(one(
        query, "select sum(late_orders) * 1.0 / sum(delivered_orders) "
               "from marts.mart_delivery_performance"), rel=1e-12)
    assert float(kpi["repeat_rate"]) == pytest.approx(one(
        query, "select sum(repeat_customers) * 1.0 / sum(new_customers) "
               "from marts.mart_repeat_customers"), rel=1e-12)

    # and the marts agree with the star schema they are built from
    assert orders == one(query, f"select count(*) from marts.fact_orders where {SALE}")
    assert revenue == one(query, f"select sum(items_revenue) from marts.fact_orders where {SALE}")
    assert int(kpi["customers"]) == one(
        query, "select count(distinct c.customer_unique_id) from marts.fact_orders o "
               f"join marts.dim_customers c using (customer_id) where {SALE}")
    assert float(kpi["late_share"]) == pytest.approx(one(
        query, "select avg(case when is_late then 1.0 else 0.0 end) from marts.fact_orders "
               "where is_late is not null"), rel=1e-12)
    assert float(kpi["repeat_rate"]) == pytest.approx(one(
        query, "select avg(case when n >= 2 then 1.0 else 0.0 end) from (select "
               "c.customer_unique_id, count(*) as n from marts.fact_orders o join "
               f"marts.dim_customers c using (customer_id) where {SALE} group by 1)"), rel=1e-12)


def values(page: Dashboard, chart: str) -> list[float]:
    return [float(value) for _, value in page.marks[chart]]


def floats(rows: list[tuple[Any, ...]], column: int = -1) -> list[float]:
    return [float(row[column]) for row in rows]


CHART_SQL = {
    "revenue_by_month": "select month_start_date, revenue from marts.mart_revenue_monthly "
                        "order by 1",
    "orders_by_month": "select month_start_date, orders from marts.mart_revenue_monthly "
                       "order by 1",
    "revenue_by_category": "select category, revenue from marts.mart_top_categories "
                           "where revenue_rank <= 10 order by revenue_rank",
    "revenue_by_state": "select customer_state, sum(revenue) from marts.mart_revenue_by_state "
                        "group by 1 order by 2 desc, 1 limit 10",
    "payment_mix": "select payment_type, sum(payment_value) from marts.mart_payment_mix "
                   "group by 1 order by 2 desc, 1",
    "installments": "select installments, payments from marts.mart_payment_mix "
                    "where payment_type = 'credit_card' order by 1",
    "late_share_by_month": "select month_start_date, late_share "
                           "from marts.mart_delivery_performance order by 1",
    "delivery_lateness": "select bucket_order, delivered_orders "
                         "from marts.mart_delivery_lateness order by 1",
}


@pytest.mark.parametrize("chart", sorted(CHART_SQL))
def test_chart_marks_equal_sql_on_the_marts(page: Dashboard, query: Query, chart: str) -> None:
    rows = query(CHART_SQL[chart])
    assert rows, f"the demo has no data for {chart}"
    assert values(page, chart) == pytest.approx(floats(rows), rel=1e-12)


def test_chart_labels_name_the_mart_rows(page: Dashboard, query: Query) -> None:
    categories = [c.replace("_", " ") for (c, _) in query(CHART_SQL["revenue_by_category"])]
    assert [label for label, _ in page.marks["revenue_by_category"]] == categories
    states = [s for (s, _) in query(CHART_SQL["revenue_by_state"])]
    assert [label for label, _ in page.marks["revenue_by_state"]] == states
    kinds = [k for (k, _) in query(CHART_SQL["payment_mix"])]
    assert [label for label, _ in page.marks["payment_mix"]] == kinds
    months = [f"{m:%b %y}" for (m, _) in query(CHART_SQL["revenue_by_month"])]
    assert [label for label, _ in page.marks["revenue_by_month"]] == months


def test_cohort_cells_equal_the_cohort_mart(page: Dashboard, query: Query) -> None:
    rows = query("select cohort_month, months_since_first_order, retention_rate "
                 "from marts.mart_customer_cohorts")
    cells = {label: float(value) for label, value in page.marks["cohorts"]}
    assert cells == pytest.approx({f"{c:%Y-%m}+{n}": rate for c, n, rate in rows}, rel=1e-12)
    assert any(n > 0 for _, n, _ in rows)  # the demo has repeat customers


def test_top_products_table_equals_the_mart(page: Dashboard, query: Query) -> None:
    rows = query("select revenue_rank, revenue from marts.mart_top_products "
                 "where revenue_rank <= 10 order by 1")
    assert [(int(rank), Decimal(value)) for rank, value in page.products] == rows


def test_every_chart_is_drawn_and_the_page_needs_no_network(page: Dashboard,
                                                             dashboard: Rendered) -> None:
    for chart in CHARTS:
        assert any(float(v) > 0 for v in values(page, chart)), chart
    assert page.references == []  # no src= or href=: no script, style, font or image to fetch
    assert "url(" not in dashboard.html and "@import" not in dashboard.html
    assert "<script src" not in dashboard.html


def test_missing_warehouse_and_missing_marts_are_one_line_errors(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    from tests.e2e.helpers import cli

    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "none.duckdb"))
    result = cli("report", "--output", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "no warehouse at" in result.output and "framework run --all" in result.output
    assert not (tmp_path / "none.duckdb").exists()  # not created by the attempt

    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "empty.duckdb"))
    result = cli("report", "--output", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "has no marts.mart_customer_cohorts" in result.output
    assert not (tmp_path / "out" / "index.html").exists()


def test_open_shows_the_dashboard_in_the_default_browser(
        demo_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    from tests.e2e.helpers import cli

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    result = cli("report", "--open", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert opened == [(tmp_path / "index.html").as_uri()]
