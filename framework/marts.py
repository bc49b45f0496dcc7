"""A short summary of the marts for the terminal (the demo's last word)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from framework.settings.targets import Target

SUMMARY_SQL = {
    "orders": "SELECT count(*) FROM marts.fact_orders",
    "revenue": "SELECT coalesce(sum(items_revenue), 0) FROM marts.fact_orders",
    "late": "SELECT avg(CASE WHEN is_late THEN 1.0 ELSE 0.0 END) FROM marts.fact_orders "
            "WHERE is_late IS NOT NULL",
}
TOP_CATEGORIES_SQL = """
SELECT category, revenue FROM marts.mart_top_categories ORDER BY revenue_rank LIMIT 5
"""


def marts_summary(target: Target, console: Console) -> None:
    if target.warehouse.type != "duckdb":
        return
    from framework.stages.load.duckdb import connect

    con = connect(str(target.warehouse.path))
    try:
        values = {k: con.execute(sql).fetchone()[0] for k, sql in SUMMARY_SQL.items()}  # type: ignore[index]
        top = con.execute(TOP_CATEGORIES_SQL).fetchall()
    finally:
        con.close()
    console.print(f"\n[bold]marts[/bold]: {values['orders']:,} orders, revenue "
                  f"{values['revenue']:,.2f}, {float(values['late'] or 0):.1%} delivered late")
    table = Table("top category", "revenue")
    for category, revenue in top:
        table.add_row(str(category), f"{revenue:,.2f}")
    console.print(table)
