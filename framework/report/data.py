"""What the dashboard shows, read from the reporting marts (`marts.mart_*`) of a target.

Plain `SELECT column, ... FROM marts.<mart> ORDER BY ...`: the same SQL on DuckDB and on
Snowflake. Totals over months are summed here from additive columns (orders, revenue, late
and delivered orders, new and repeat customers), never from ratios.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, cast

from framework.errors import FrameworkError
from framework.report.quality import DataQuality, load_quality
from framework.settings.targets import Target

Row = dict[str, Any]

TOP = 10  # categories, states and products shown
# mart -> (columns read, ORDER BY [and LIMIT])
MARTS: dict[str, tuple[tuple[str, ...], str]] = {
    "mart_revenue_monthly": (("month_start_date", "orders", "canceled_orders", "customers",
                              "items", "revenue", "freight", "average_order_value",
                              "orders_with_items"),
                             "month_start_date"),
    "mart_top_categories": (("revenue_rank", "category", "orders", "items", "revenue",
                             "revenue_share"), "revenue_rank"),
    "mart_revenue_by_state": (("month_start_date", "customer_state", "orders", "revenue"),
                              "month_start_date, customer_state"),
    "mart_payment_mix": (("payment_type", "installments", "payments", "orders", "payment_value"),
                         "payment_type, installments"),
    "mart_delivery_performance": (("month_start_date", "delivered_orders", "late_orders",
                                   "late_share", "avg_days_to_deliver"), "month_start_date"),
    "mart_delivery_lateness": (("bucket_order", "bucket", "min_days_late", "max_days_late",
                                "is_late", "delivered_orders", "share_of_delivered"),
                               "bucket_order"),
    "mart_customer_cohorts": (("cohort_month", "months_since_first_order", "cohort_size",
                               "active_customers", "retention_rate"),
                              "cohort_month, months_since_first_order"),
    "mart_repeat_customers": (("cohort_month", "new_customers", "repeat_customers",
                               "repeat_rate"), "cohort_month"),
    "mart_top_products": (("revenue_rank", "product_id", "category", "orders", "units",
                           "revenue", "revenue_share"), f"revenue_rank LIMIT {TOP}"),
}


class _Reader(Protocol):
    def query(self, sql: str) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ReportData:
    """The marts' rows the dashboard draws, and the KPI totals derived from them."""

    kpis: dict[str, Any]
    monthly: list[Row]
    categories: list[Row]
    category_count: int
    states: list[Row]
    payment_types: list[Row]
    installments: list[Row]
    delivery: list[Row]
    lateness: list[Row]
    cohorts: list[Row]
    top_products: list[Row]
    quality: DataQuality = field(default_factory=DataQuality)


@contextmanager
def marts_reader(target: Target) -> Iterator[_Reader]:
    """A connection to the target's warehouse (the load stage's, which has `query`)."""
    from framework.stages.load import warehouse_for

    path = target.warehouse.path
    if target.warehouse.type == "duckdb" and not (path and Path(path).is_file()):
        raise FrameworkError(f"no warehouse at {path}: run `framework run --all` "
                             "(or `framework demo`) first")
    reader = cast(_Reader, warehouse_for(target))
    try:
        yield reader
    finally:
        reader.close()


def load_report_data(reader: _Reader, runs: Path | None = None, target: str = "local",
                     why_missing: str | None = None) -> ReportData:
    """The marts' rows; `runs` (the run log) gives the data-quality panel the age of each
    pipeline's last success, and `why_missing` the reason a mart is missing (the last dbt
    build's own words) when one is."""
    present = {str(name).lower() for (name,) in reader.query(
        "SELECT table_name FROM information_schema.tables WHERE lower(table_schema) = 'marts'")}
    missing = sorted(set(MARTS) - present)
    if missing:
        reason = why_missing or "no run has built them yet: run `framework run --all`"
        raise FrameworkError(f"the warehouse has no {', '.join('marts.' + m for m in missing)}: "
                             f"{reason}")
    rows = {mart: [dict(zip(columns, row)) for row in reader.query(
        f"SELECT {', '.join(columns)} FROM marts.{mart} ORDER BY {order}")]
        for mart, (columns, order) in MARTS.items()}
    payments = rows["mart_payment_mix"]
    return ReportData(
        kpis=_kpis(rows),
        monthly=rows["mart_revenue_monthly"],
        categories=rows["mart_top_categories"][:TOP],
        category_count=len(rows["mart_top_categories"]),
        states=_states(rows["mart_revenue_by_state"])[:TOP],
        payment_types=_payment_types(payments),
        installments=[r for r in payments if r["payment_type"] == "credit_card"],
        delivery=rows["mart_delivery_performance"],
        lateness=rows["mart_delivery_lateness"],
        cohorts=rows["mart_customer_cohorts"],
        top_products=rows["mart_top_products"],
        quality=load_quality(reader, present, runs, target),
    )


def _ratio(numerator: Any, denominator: Any) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _kpis(rows: dict[str, list[Row]]) -> dict[str, Any]:
    monthly, delivery = rows["mart_revenue_monthly"], rows["mart_delivery_performance"]
    people = rows["mart_repeat_customers"]
    orders = sum(r["orders"] for r in monthly)
    with_items = sum(r["orders_with_items"] for r in monthly)
    revenue = sum((Decimal(r["revenue"]) for r in monthly), Decimal("0.00"))
    customers = sum(r["new_customers"] for r in people)
    delivered = sum(r["delivered_orders"] for r in delivery)
    return {
        "orders": orders,
        "revenue": revenue,
        # over the orders that have items: one whose lines are missing has no value yet
        "average_order_value": _ratio(revenue, with_items),
        "customers": customers,
        "late_share": _ratio(sum(r["late_orders"] for r in delivery), delivered),
        "repeat_rate": _ratio(sum(r["repeat_customers"] for r in people), customers),
        "canceled_orders": sum(r["canceled_orders"] for r in monthly),
        "delivered_orders": delivered,
        "first_month": monthly[0]["month_start_date"] if monthly else None,
        "last_month": monthly[-1]["month_start_date"] if monthly else None,
    }


def _states(rows: list[Row]) -> list[Row]:
    """All-time orders and revenue per state, highest revenue first."""
    totals: dict[str, Row] = defaultdict(lambda: {"orders": 0, "revenue": Decimal("0.00")})
    for r in rows:
        total = totals[r["customer_state"]]
        total["orders"] += r["orders"]
        total["revenue"] += Decimal(r["revenue"])
    return sorted(({"customer_state": state, **t} for state, t in totals.items()),
                  key=lambda r: (-r["revenue"], r["customer_state"]))


def _payment_types(rows: list[Row]) -> list[Row]:
    """Amount paid and payments per payment type, largest amount first."""
    totals: dict[str, Row] = defaultdict(lambda: {"payments": 0, "payment_value": Decimal("0.00")})
    for r in rows:
        total = totals[r["payment_type"]]
        total["payments"] += r["payments"]
        total["payment_value"] += Decimal(r["payment_value"])
    return sorted(({"payment_type": kind, **t} for kind, t in totals.items()),
                  key=lambda r: (-r["payment_value"], r["payment_type"]))
