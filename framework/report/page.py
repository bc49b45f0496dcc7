"""The dashboard page: KPI tiles, charts and the top products, as one self-contained HTML file.

No network: no CDN, no web font, no image; inline CSS, inline SVG (framework.report.svg) and a
few lines of script for tooltips. Every number is also in a data attribute: a KPI tile is
`<div class="kpi" data-kpi="revenue" data-value="123.45">`, a chart `<figure data-chart="...">`
whose marks carry `data-value`, a product row `<tr data-rank="1" data-value="...">`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import Any

from framework.report import svg
from framework.report.data import ReportData, Row
from framework.report.quality import DataQuality, age, orphan_line
from framework.report.svg import Mark

PAYMENT_NAMES = {"credit_card": "Credit card", "boleto": "Boleto", "voucher": "Voucher",
                 "debit_card": "Debit card"}
PAYMENT_COLORS = {"credit_card": svg.BLUE, "boleto": svg.AMBER, "voucher": svg.PURPLE,
                  "debit_card": svg.TEAL}


@dataclass(frozen=True)
class PageInfo:
    """Where the numbers come from, for the page's header."""

    target: str
    warehouse: str
    generated_at: dt.datetime


# -- number formats -----------------------------------------------------------------------------

def compact(value: float) -> str:
    """12,345,678 -> 12.3M; axis ticks and short labels."""
    v = float(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            text = f"{v / size:.2f}" if abs(v) < 10 * size else f"{v / size:.1f}"
            return text.rstrip("0").rstrip(".") + suffix
    return f"{v:.0f}" if v == int(v) or abs(v) >= 10 else f"{v:.1f}"


def money(value: Any) -> str:
    return f"{float(value):,.2f}"


def count(value: Any) -> str:
    return f"{int(value):,}"


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def month(value: dt.date) -> str:
    return value.strftime("%b %Y")


def short_month(value: dt.date) -> str:
    return value.strftime("%b %y")


# -- page ---------------------------------------------------------------------------------------

def render_page(data: ReportData, info: PageInfo) -> str:
    k = data.kpis
    period = (f"{month(k['first_month'])} – {month(k['last_month'])}" if k["first_month"]
              else "no orders yet")
    tiles = [
        _tile("orders", "Orders", k["orders"], count(k["orders"]),
              f"{count(k['canceled_orders'])} canceled or unavailable, not counted"),
        _tile("revenue", "Revenue", k["revenue"], money(k["revenue"]),
              "item prices of the orders, freight excluded"
              + (" (items without an order row: see data quality)"
                 if data.quality.orphan_lines else "")),
        _tile("average_order_value", "Average order value", k["average_order_value"],
              "–" if k["average_order_value"] is None else money(k["average_order_value"]),
              "revenue / orders that have items"),
        _tile("customers", "Customers", k["customers"], count(k["customers"]),
              "people with at least one order"),
        _tile("late_share", "Delivered late", k["late_share"], percent(k["late_share"]),
              f"after the estimated day, of {count(k['delivered_orders'])} delivered"),
        _tile("repeat_rate", "Repeat customers", k["repeat_rate"], percent(k["repeat_rate"]),
              "customers with two or more orders"),
    ]
    cards = [
        _card("revenue_by_month", "Revenue by month", "Item prices of the month's orders "
              "(mart_revenue_monthly).", _revenue_by_month(data.monthly)),
        _card("orders_by_month", "Orders by month", "Orders placed; tooltips add the average "
              "order value (mart_revenue_monthly).", _orders_by_month(data.monthly)),
        _card("revenue_by_category", "Top categories by revenue",
              f"{len(data.categories)} of {data.category_count} "
              "categories, share of all revenue (mart_top_categories).",
              _categories(data.categories)),
        _card("revenue_by_state", "Revenue by customer state",
              "Top states, all months (mart_revenue_by_state).", _states(data.states)),
        _card("payment_mix", "Payment mix", "Share of the amount paid by payment type "
              "(mart_payment_mix).", _payment_mix(data.payment_types)),
        _card("installments", "Credit card instalments", "Card payments by number of "
              "instalments (mart_payment_mix).", _installments(data.installments)),
        _card("late_share_by_month", "Late deliveries by month", "Share of delivered orders "
              "that arrived after the estimated day, by purchase month "
              "(mart_delivery_performance).", _late_share(data.delivery, k["late_share"])),
        _card("delivery_lateness", "Delivery against the estimate", "Delivered orders by days "
              "after the estimated delivery date (negative = early); red = late "
              "(mart_delivery_lateness).", _lateness(data.lateness)),
        _card("cohorts", "Monthly cohorts", "Customers by month of their first order (rows) "
              "and the share of them ordering again N months later (columns); column 0 is "
              "the cohort size (mart_customer_cohorts).", _cohorts(data.cohorts, k["last_month"]),
              wide=True),
    ]
    products = _top_products(data.top_products)
    left_out = data.quality.orphan_lines
    notice = ("" if not left_out else
              '<p class="notice" data-notice="orphans"><b>Left out of the numbers:</b> '
              + escape("; ".join(left_out)) + " (data quality, below).</p>")
    return TEMPLATE.format(
        notice=notice, quality=_quality(data.quality, info.generated_at),
        css=CSS, script=SCRIPT, period=escape(period), target=escape(info.target),
        warehouse=escape(info.warehouse),
        generated=escape(info.generated_at.strftime("%Y-%m-%d %H:%M UTC")),
        tiles="".join(tiles), cards="".join(cards), products=products)


def _quality(q: DataQuality, now: dt.datetime) -> str:
    """Rows loaded and freshness per table, orphans per relationship with their share of
    money, quarantined batches: what a reader needs to trust (or not) the numbers above."""
    tables = "".join(
        f'<tr data-table="{escape(str(t["table_name"]), quote=True)}" '
        f'data-rows="{int(t["total_rows"])}">'
        f'<td>landing.{escape(str(t["table_name"]))}</td><td class="num">{count(t["total_rows"])}</td>'
        f'<td>{escape(str(t["newest_cursor"] or "–"))[:19]}</td>'
        f'<td>{escape(str(t["last_loaded_at"] or "–"))[:19]}</td>'
        f'<td>{escape(age(q.last_success[str(t["table_name"])], now)) if str(t["table_name"]) in q.last_success else "never"}</td></tr>'
        for t in q.tables)
    orphans = "".join(
        f'<tr data-orphans="{escape(str(o["relationship"]), quote=True)}" '
        f'data-rows="{int(o["orphan_rows"])}" data-share="{"" if o["orphan_share"] is None else float(o["orphan_share"])}">'
        f'<td class="id">{escape(str(o["relationship"]))}</td>'
        f'<td class="num">{count(o["orphan_rows"])} of {count(o["total_rows"])}</td>'
        f'<td class="num">{percent(None if o["orphan_share"] is None else float(o["orphan_share"]))}</td>'
        f'<td>{escape(orphan_line(o)) if o["orphan_rows"] else "none"}</td></tr>'
        for o in q.orphans)
    quarantined = "".join(
        f'<tr data-quarantined="{escape(str(b["pipeline"]), quote=True)}" data-batches="{b["batches"]}">'
        f'<td>{escape(str(b["pipeline"]))}</td><td class="num">{count(b["batches"])}</td>'
        f'<td class="num">{count(b["rows"])}</td></tr>' for b in q.quarantined)
    missing = ("" if not q.missing else f'<p class="empty">Not built yet: '
               f'{escape(", ".join(q.missing))}.</p>')
    return (
        '<figure class="card wide" data-chart="data_quality"><figcaption><h2>Data quality</h2>'
        "<p>What the numbers above rest on and leave out: rows per landing table and their "
        "freshness, rows whose parent row is missing (kept in the facts, on the unknown member) "
        "with their share of money, and batches held back by the quality checks "
        "(mart_table_freshness, mart_orphans, the load ledger, the run log).</p></figcaption>"
        f"{missing}"
        '<table class="dq" data-part="tables"><thead><tr><th>table</th><th class="num">rows loaded</th>'
        "<th>newest cursor</th><th>last loaded</th><th>last successful run</th></tr></thead>"
        f"<tbody>{tables}</tbody></table>"
        '<table class="dq" data-part="orphans"><thead><tr><th>relationship</th>'
        '<th class="num">orphan rows</th><th class="num">share of money</th><th>meaning</th>'
        f"</tr></thead><tbody>{orphans}</tbody></table>"
        '<table class="dq" data-part="quarantine"><thead><tr><th>quarantined: pipeline</th>'
        '<th class="num">batches</th><th class="num">rows</th></tr></thead>'
        f"<tbody>{quarantined or '<tr><td colspan=3>none</td></tr>'}</tbody></table></figure>")


def _tile(key: str, title: str, value: Any, shown: str, note: str) -> str:
    raw = "" if value is None else str(value)
    size = "" if len(shown) <= 9 else " long" if len(shown) <= 13 else " longer"
    return (f'<div class="kpi" data-kpi="{key}" data-value="{escape(raw, quote=True)}">'
            f'<div class="kpi-title">{escape(title)}</div>'
            f'<div class="kpi-value{size}">{escape(shown)}</div>'
            f'<div class="kpi-note">{escape(note)}</div></div>')


def _card(key: str, title: str, note: str, chart: str, wide: bool = False) -> str:
    body = chart or '<p class="empty">No data yet.</p>'
    return (f'<figure class="card{" wide" if wide else ""}" data-chart="{key}">'
            f"<figcaption><h2>{escape(title)}</h2><p>{escape(note)}</p></figcaption>"
            f"{body}</figure>")


def _or_empty(rows: list[Row], draw: Callable[[], str]) -> str:
    return draw() if rows else ""


def _revenue_by_month(rows: list[Row]) -> str:
    marks = [Mark(short_month(r["month_start_date"]), r["revenue"],
                  f"{month(r['month_start_date'])}: revenue {money(r['revenue'])}, "
                  f"{count(r['orders'])} orders") for r in rows]
    return _or_empty(rows, lambda: svg.bar_chart(marks, axis=compact, label="Revenue by month"))


def _orders_by_month(rows: list[Row]) -> str:
    def tip(r: Row) -> str:
        aov = r["average_order_value"]
        return (f"{month(r['month_start_date'])}: {count(r['orders'])} orders, average "
                f"{'–' if aov is None else money(aov)}, {count(r['customers'])} customers")

    marks = [Mark(short_month(r["month_start_date"]), r["orders"], tip(r)) for r in rows]
    return _or_empty(rows, lambda: svg.line_chart(marks, axis=compact, color=svg.TEAL,
                                                  label="Orders by month"))


def _categories(rows: list[Row]) -> str:
    marks = [Mark(r["category"].replace("_", " "), r["revenue"],
                  f"#{r['revenue_rank']} {r['category']}: revenue {money(r['revenue'])} "
                  f"({percent(r['revenue_share'])}), {count(r['orders'])} orders, "
                  f"{count(r['items'])} items") for r in rows]
    shares = {m.label: r["revenue_share"] for m, r in zip(marks, rows)}
    return _or_empty(rows, lambda: svg.hbar_chart(
        marks, label="Top categories by revenue",
        value_text=lambda m: f"{compact(float(m.value))} · {percent(shares[m.label])}"))


def _states(rows: list[Row]) -> str:
    marks = [Mark(r["customer_state"], r["revenue"],
                  f"{r['customer_state']}: revenue {money(r['revenue'])}, "
                  f"{count(r['orders'])} orders") for r in rows]
    return _or_empty(rows, lambda: svg.hbar_chart(
        marks, label="Revenue by customer state", color=svg.TEAL, label_width=70,
        value_text=lambda m: compact(float(m.value))))


def _payment_mix(rows: list[Row]) -> str:
    total = sum((r["payment_value"] for r in rows), Decimal(0))
    shares = {r["payment_type"]: float(r["payment_value"]) / float(total) if total else 0.0
              for r in rows}
    marks = [Mark(r["payment_type"], r["payment_value"],
                  f"{_payment_name(r['payment_type'])}: {money(r['payment_value'])} "
                  f"({percent(shares[r['payment_type']])}), {count(r['payments'])} payments",
                  PAYMENT_COLORS.get(r["payment_type"])) for r in rows]
    return _or_empty(rows, lambda: svg.donut_chart(
        marks, label="Payment mix",
        legend=lambda m: f"{_payment_name(m.label)}  {percent(shares[m.label])}"))


def _payment_name(kind: str) -> str:
    return PAYMENT_NAMES.get(kind, kind.replace("_", " ").capitalize())


def _installments(rows: list[Row]) -> str:
    total = sum(r["payments"] for r in rows)
    marks = [Mark(str(r["installments"]), r["payments"],
                  f"{r['installments']} instalment{'s' if r['installments'] != 1 else ''}: "
                  f"{count(r['payments'])} payments ({percent(r['payments'] / total)}), "
                  f"{money(r['payment_value'])}") for r in rows]
    return _or_empty(rows, lambda: svg.bar_chart(marks, axis=compact, color=svg.BLUE,
                                                 label="Credit card instalments",
                                                 label_width=14))


def _late_share(rows: list[Row], overall: float | None) -> str:
    marks = [Mark(short_month(r["month_start_date"]), r["late_share"],
                  f"{month(r['month_start_date'])}: {percent(r['late_share'])} late "
                  f"({count(r['late_orders'])} of {count(r['delivered_orders'])}), "
                  f"{r['avg_days_to_deliver']:.1f} days to deliver on average") for r in rows]
    reference = None if overall is None else (overall, f"all months {percent(overall)}")
    return _or_empty(rows, lambda: svg.line_chart(
        marks, axis=lambda v: percent(v, 0), color=svg.RED, reference=reference,
        label="Late deliveries by month"))


def _lateness(rows: list[Row]) -> str:
    marks = [Mark(_days_range(r["min_days_late"], r["max_days_late"]), r["delivered_orders"],
                  f"{r['bucket']}: {count(r['delivered_orders'])} orders "
                  f"({percent(r['share_of_delivered'])})",
                  svg.RED if r["is_late"] else svg.TEAL) for r in rows]
    return _or_empty([r for r in rows if r["delivered_orders"]], lambda: svg.bar_chart(
        marks, axis=compact, label="Delivery against the estimate", label_width=50))


def _days_range(low: int | None, high: int | None) -> str:
    """Axis label of a lateness bucket, in days after the estimate (negative = early)."""
    if low is None:
        return f"≤ {high}"
    if high is None:
        return f"≥ {low}"
    return str(low) if low == high else f"{low} to {high}"


def _cohorts(rows: list[Row], last_month: dt.date | None) -> str:
    cohorts = sorted({r["cohort_month"] for r in rows})
    offsets = max((r["months_since_first_order"] for r in rows), default=0) + 1
    index = {c: i for i, c in enumerate(cohorts)}
    cells = {}
    for r in rows:
        n = r["months_since_first_order"]
        tip = (f"{month(r['cohort_month'])} cohort ({count(r['cohort_size'])} customers): "
               + (f"{count(r['active_customers'])} ordered {n} month{'s' if n != 1 else ''} "
                  f"later ({percent(r['retention_rate'], 2)})" if n else "first orders"))
        cells[index[r["cohort_month"]], n] = Mark(f"{r['cohort_month']:%Y-%m}+{n}",
                                                  r["retention_rate"], tip)
    # colour scale: the 95th percentile of later months, so that one tiny cohort (1 of 3
    # customers back = 33%) does not wash out all the others
    later = sorted(float(r["retention_rate"]) for r in rows if r["months_since_first_order"])
    scale = later[min(len(later) - 1, int(len(later) * 0.95))] if later else 0.0
    # column 0 shows the cohort's size, later columns the share still ordering
    shown = {f"{r['cohort_month']:%Y-%m}+{r['months_since_first_order']}":
             percent(r["retention_rate"]) if r["months_since_first_order"]
             else compact(r["cohort_size"]) for r in rows}
    return _or_empty(rows, lambda: svg.heatmap(
        [short_month(c) for c in cohorts], [str(n) for n in range(offsets)], cells,
        label="Monthly cohorts", scale_max=scale,
        show_values=lambda m: shown[m.label],
        row_limits=[_months_between(c, last_month or c) for c in cohorts]))


def _months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def _top_products(rows: list[Row]) -> str:
    if not rows:
        return '<p class="empty">No data yet.</p>'
    body = "".join(
        f'<tr data-rank="{r["revenue_rank"]}" data-value="{escape(str(r["revenue"]), quote=True)}">'
        f'<td class="num">{r["revenue_rank"]}</td>'
        f'<td class="id" title="{escape(r["product_id"], quote=True)}">'
        f'{escape(svg.shorten(r["product_id"], 14))}</td>'
        f'<td>{escape(r["category"].replace("_", " "))}</td>'
        f'<td class="num">{count(r["units"])}</td><td class="num">{count(r["orders"])}</td>'
        f'<td class="num">{money(r["revenue"])}</td>'
        f'<td class="num">{percent(r["revenue_share"], 2)}</td></tr>' for r in rows)
    return ('<table><thead><tr><th class="num">#</th><th>product</th><th>category</th>'
            '<th class="num">units</th><th class="num">orders</th><th class="num">revenue</th>'
            f'<th class="num">share</th></tr></thead><tbody>{body}</tbody></table>')


CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#1f2937;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif}
header{background:#111827;color:#f9fafb;padding:18px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#9ca3af;font-size:13px}
main{max-width:1320px;margin:0 auto;padding:20px 24px 32px}
.kpis{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:12px;margin-bottom:16px}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px #0000000f}
.kpi-title{font-size:12px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
.kpi-value{font-size:26px;font-weight:650;margin:4px 0 2px;font-variant-numeric:tabular-nums;
 line-height:34px;overflow-wrap:anywhere}
.kpi-value.long{font-size:20px}.kpi-value.longer{font-size:16px}
.kpi-note{font-size:12px;color:#6b7280}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px}
.card{margin:0;background:#fff;border-radius:10px;padding:14px 16px 10px;
 box-shadow:0 1px 2px #0000000f;min-width:0}
.card.wide{grid-column:1/-1}
figcaption h2{margin:0;font-size:15px;font-weight:600}
figcaption p{margin:2px 0 8px;color:#6b7280;font-size:12px}
svg{display:block;width:100%;height:auto;overflow:visible}
.mark{transition:opacity .1s}.mark:hover{opacity:.75}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:6px 8px;border-bottom:1px solid #e5e7eb;text-align:left}
th{font-size:12px;color:#6b7280;font-weight:600}
.num{text-align:right}.id{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
.empty{color:#9ca3af;padding:24px 0;text-align:center}
footer{color:#6b7280;font-size:12px;margin-top:18px}
.notice{background:#fffbeb;border:1px solid #fcd34d;border-radius:8px;padding:8px 12px;
 margin:0 0 16px;font-size:13px}
table.dq{margin-bottom:12px}
#tip{position:absolute;pointer-events:none;background:#111827;color:#f9fafb;font-size:12px;
 padding:6px 8px;border-radius:6px;max-width:320px;box-shadow:0 2px 8px #0003;z-index:9}
@media (max-width:1000px){.kpis{grid-template-columns:repeat(3,1fr)}.grid{grid-template-columns:1fr}}
"""

SCRIPT = """
(function () {
  var tip = document.getElementById("tip");
  document.querySelectorAll(".mark").forEach(function (m) {
    var t = m.querySelector("title");
    if (t) { m.setAttribute("data-tip", t.textContent); t.remove(); }
  });
  document.addEventListener("mousemove", function (e) {
    var m = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (!m) { tip.hidden = true; return; }
    tip.textContent = m.getAttribute("data-tip");
    tip.hidden = false;
    tip.style.left = (e.pageX + 14) + "px";
    tip.style.top = (e.pageY + 14) + "px";
  });
})();
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop dashboard</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>Shop dashboard</h1>
<p>Orders purchased {period} · target <b>{target}</b> ({warehouse}) · generated {generated}</p>
</header>
<main>
<section class="kpis">{tiles}</section>
{notice}
<section class="grid">{cards}
<figure class="card wide" data-chart="top_products"><figcaption><h2>Top products by revenue</h2>
<p>Units and orders of the ten best-selling products (mart_top_products).</p></figcaption>
{products}</figure>
{quality}
</section>
<footer>Orders counted: every status but canceled and unavailable. Revenue: item prices, freight
excluded; items whose order row is missing are in fact_order_items but in no order measure.
Average order value: over the orders that have items. A customer is a person (customer_unique_id). Review scores are not shown: the shop's
data has no reviews. Built by <code>framework report</code> from the marts of the dbt project
(dbt_ecommerce/models/marts/report_marts.yml documents every column).</footer>
</main>
<div id="tip" hidden></div>
<script>{script}</script>
</body>
</html>
"""
