"""The chart primitives: axes, escaping, the donut's full ring, empty and zero data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from framework.report import svg
from framework.report.page import compact, percent
from framework.report.svg import Mark
from tests.report.helpers import parse_dashboard


@pytest.mark.parametrize(("maximum", "ticks"), [
    (0, [0, 1]), (7, [0, 2, 4, 6, 8]), (10, [0, 2.5, 5, 7.5, 10]), (13_397.79, [0, 5000, 10000, 15000]),
    (0.194, [0, 0.05, 0.1, 0.15, 0.2]),
])
def test_nice_ticks_cover_the_maximum_in_round_steps(maximum: float, ticks: list[float]) -> None:
    assert svg.nice_ticks(maximum) == pytest.approx(ticks)


def test_labels_and_tips_are_escaped_and_values_exact() -> None:
    mark = Mark('<script>"x"&', Decimal("1234.50"), "<b>tip</b>")
    chart = svg.hbar_chart([mark], value_text=lambda m: "v", label="t")
    assert "<script>" not in chart and "&lt;script&gt;&quot;x&quot;&amp;" in chart
    assert "&lt;b&gt;tip&lt;/b&gt;" in chart
    html = f'<figure data-chart="c">{chart}</figure>'
    assert parse_dashboard(html).marks["c"] == [('<script>"x"&', "1234.50")]


def test_donut_of_one_kind_is_a_full_ring_and_zero_values_draw_nothing() -> None:
    ring = svg.donut_chart([Mark("credit_card", 10, "t")], legend=lambda m: m.label, label="x")
    assert ring.count(" A") == 4  # two half rings (outer and inner arcs each)
    bars = svg.bar_chart([Mark("a", 0, "t"), Mark("b", 0, "t")], axis=str, label="x")
    assert bars.count('class="mark"') == 2 and 'height="0"' in bars


def test_heatmap_leaves_impossible_cells_blank() -> None:
    cells = {(0, 0): Mark("r0+0", 1.0, "t"), (1, 0): Mark("r1+0", 1.0, "t")}
    drawn = svg.heatmap(["r0", "r1"], ["0", "1", "2"], cells, label="x", scale_max=0.0,
                        row_limits=[2, 0])
    assert drawn.count('fill="#f9fafb"') == 2  # row 0: columns 1, 2; row 1: none


def test_number_formats() -> None:
    assert [compact(v) for v in (0, 7.5, 950, 13_397.79, 1_250_000, 12_345_678)] == \
        ["0", "7.5", "950", "13.4k", "1.25M", "12.3M"]
    assert percent(0.0851) == "8.5%" and percent(None) == "–"


def test_a_shop_without_orders_renders_a_page_without_marks() -> None:
    import datetime as dt

    from framework.report.data import ReportData, _kpis
    from framework.report.page import PageInfo, render_page

    empty = {"mart_revenue_monthly": [], "mart_delivery_performance": [],
             "mart_repeat_customers": []}
    data = ReportData(kpis=_kpis(empty), monthly=[], categories=[], category_count=0, states=[],
                      payment_types=[], installments=[], delivery=[], lateness=[], cohorts=[],
                      top_products=[])
    html = render_page(data, PageInfo("local", "DuckDB x", dt.datetime(2026, 1, 1)))
    page = parse_dashboard(html)
    assert page.kpis["orders"] == "0" and page.kpis["average_order_value"] == ""
    assert all(marks == [] for marks in page.marks.values()) and page.products == []
    assert html.count("No data yet.") == 10 and "no orders yet" in html
