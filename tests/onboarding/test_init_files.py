"""`framework init --files`: one pipeline per file pattern, columns and key from a sample."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from framework.demo.csv_files import write_csv_shop
from framework.demo.shop import create_shop
from tests.e2e.helpers import cli


@pytest.fixture
def olist(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    create_shop(url, scale=0.002)
    folder = project_dir / "data" / "olist"
    write_csv_shop(url, folder,
                   project_dir / "dbt_ecommerce" / "seeds" / "product_category_name_translation.csv")
    monkeypatch.chdir(project_dir)
    return folder


def test_init_files_writes_one_pipeline_per_pattern(olist: Path, project_dir: Path) -> None:
    # Two monthly files of one export, written by another program: `;`, Windows' cp1252 (the
    # curly quotes are control characters in latin-1), US times.
    for month, rows in (("2024-01", "1;São “Paulo”;9/19/2017 9:45;1.5\n2;Rio;10/1/2017 13:05;2\n"),
                        ("2024-02", "3;Natal;2/1/2018 0:00;3\n")):
        (olist / f"sales_{month}.csv").write_text(f"sale_id;city;sold_at;amount\n{rows}",
                                                  encoding="cp1252")
    result = cli("init", "--files", "data/olist/*.csv")
    assert result.exit_code == 0, result.output
    assert "to fix" not in result.output
    written = sorted(p.stem for p in (project_dir / "pipelines").glob("*.yml"))
    for name in ("olist_orders_dataset", "olist_order_items_dataset", "sales",
                 "product_category_name_translation"):
        assert name in written
    keys = {name: yaml.safe_load((project_dir / "pipelines" / f"{name}.yml").read_text())
            for name in ("olist_orders_dataset", "olist_order_items_dataset",
                         "olist_order_payments_dataset", "olist_customers_dataset",
                         "product_category_name_translation", "sales")}
    assert {n: d["source"]["primary_key"] for n, d in keys.items()} == {
        "olist_orders_dataset": ["order_id"],
        "olist_order_items_dataset": ["order_id", "order_item_id"],
        "olist_order_payments_dataset": ["order_id", "payment_sequential"],
        "olist_customers_dataset": ["customer_id"],
        "product_category_name_translation": ["product_category_name"],
        "sales": ["sale_id"]}
    sales = keys["sales"]
    assert sales["source"]["glob"] == "sales_*.csv"
    assert sales["source"]["csv"] == {"delimiter": ";", "encoding": "cp1252",
                                      "timestamp_formats": ["%m/%d/%Y %H:%M"]}
    assert {c["name"]: c["type"] for c in sales["columns"]} == {
        "sale_id": "bigint", "city": "string", "sold_at": "timestamp", "amount": "double"}
    customers = {c["name"]: c["type"] for c in keys["olist_customers_dataset"]["columns"]}
    assert customers["customer_zip_code_prefix"] == "string"  # leading zeros kept
    orders = {c["name"]: c["type"] for c in keys["olist_orders_dataset"]["columns"]}
    assert orders["order_purchase_timestamp"] == "timestamp"
    assert cli("validate").exit_code == 0


def test_init_files_leaves_a_todo_the_validator_names(olist: Path, project_dir: Path) -> None:
    (olist / "events.csv").write_text("kind,value\na,1\na,2\n")
    result = cli("init", "--files", "data/olist/events.csv")
    assert result.exit_code == 0, result.output
    assert re.search(r"to fix: pipelines/events.yml:\d+:\d+: source.primary_key\[0\]: "
                     "'TODO_primary_key' is not declared in columns",
                     " ".join(result.output.split())), result.output
    assert cli("validate").exit_code == 1


def test_init_files_refuses_existing_files_and_empty_globs(olist: Path) -> None:
    result = cli("init", "--files", "data/olist/nothing_*.csv")
    assert result.exit_code == 1
    assert "no CSV, JSON lines or Parquet file matches data/olist/nothing_*.csv" in result.output
    assert cli("init", "--files", "data/olist/olist_orders_dataset.csv").exit_code == 0
    again = cli("init", "--files", "data/olist/olist_orders_dataset.csv")
    assert again.exit_code == 1
    assert "pipelines/olist_orders_dataset.yml already exists" in again.output
    assert cli("init", "--files", "x", "--connection", "shop").exit_code != 0
    assert os.path.isdir(olist)
