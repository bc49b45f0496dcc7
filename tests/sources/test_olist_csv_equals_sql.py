"""The issue's must-hold: the Olist CSV pipelines and the SQL pipelines over the same demo
shop produce equal landing tables, compared row by row (local lake; S3 in
tests/integration/test_files_s3.py). Then the CSV set stays incremental by file."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.demo.shop import create_shop
from tests.sources.olist_csv import assert_same_landing, csv_project, landing, run_all, write_csvs


def test_csv_pipelines_land_what_the_sql_pipelines_land(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    create_shop(url, scale=0.003, seed=11)
    run_all(project_dir, tmp_path / "sql_state", monkeypatch, SHOP_DB_URL=url)

    csv_root = csv_project(tmp_path / "csv_project")
    folder = tmp_path / "olist"
    written = write_csvs(url, folder, csv_root)
    assert set(written) == {"olist_customers_dataset.csv", "olist_products_dataset.csv",
                            "olist_orders_dataset.csv", "olist_order_items_dataset.csv",
                            "olist_order_payments_dataset.csv",
                            "product_category_name_translation.csv"}
    first = run_all(csv_root, tmp_path / "csv_state", monkeypatch,
                    OLIST_CSV_LOCATION=str(folder))
    assert first["olist_orders"]["rows_extracted"] == written["olist_orders_dataset.csv"]
    counts = assert_same_landing(tmp_path / "sql_state" / "warehouse.duckdb",
                                 tmp_path / "csv_state" / "warehouse.duckdb")
    assert counts["orders"] == written["olist_orders_dataset.csv"] > 0

    # No file changed: nothing is read again.
    again = run_all(csv_root, tmp_path / "csv_state", monkeypatch,
                    OLIST_CSV_LOCATION=str(folder))
    assert {n: r["rows_extracted"] for n, r in again.items()} == dict.fromkeys(again, 0)
    translation = landing(tmp_path / "csv_state" / "warehouse.duckdb",
                          "product_category_name_translation")[1]
    assert len(translation) == written["product_category_name_translation.csv"]
