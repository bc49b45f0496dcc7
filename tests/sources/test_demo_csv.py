"""`framework demo --source csv`: the shop written as Olist's CSV files, read by the example
set, and the same marts as the SQL demo."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import assert_marts_match_source, cli


def test_demo_from_csv_files_builds_the_marts(project_dir: Path, tmp_path: Path) -> None:
    result = cli("demo", "--source", "csv", "--scale", "0.002")
    assert result.exit_code == 0, result.output
    state = tmp_path / "state"
    assert "wrote 6 CSV files" in result.output
    assert sorted(p.name for p in (state / "olist_csv").iterdir()) == [
        "olist_customers_dataset.csv", "olist_order_items_dataset.csv",
        "olist_order_payments_dataset.csv", "olist_orders_dataset.csv",
        "olist_products_dataset.csv", "product_category_name_translation.csv"]
    assert_marts_match_source(f"sqlite:///{state / 'shop.db'}", state / "warehouse.duckdb")
