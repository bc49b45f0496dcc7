"""Pipelines run at the same time in separate processes, as Airflow runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from framework.demo.shop import create_shop
from tests.e2e.helpers import run_json, source_versions, warehouse_versions

PARALLEL = ("customers", "products", "orders")
ID = {"customers": "customer_id", "products": "product_id", "orders": "order_id"}
# The mart each pipeline's models end in, and its rows that stand for a landing row (the
# dimensions also hold one unknown member).
MART = {"customers": "dim_customers WHERE NOT is_unknown_member",
        "products": "dim_products WHERE NOT is_unknown_member", "orders": "fact_orders"}


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.003, seed=5)
    return url


def add_rows(url: str, table: str, how_many: int) -> None:
    """New source rows, copies of existing ones under new keys."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for i in range(how_many):
            conn.execute(sa.text(f"CREATE TEMP TABLE copy AS SELECT * FROM {table} LIMIT 1"))
            conn.execute(sa.text(f"UPDATE copy SET {ID[table]} = 'parallel-{i}', "
                                 "updated_at = '2031-01-01 00:00:00'"))
            conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM copy"))
            conn.execute(sa.text("DROP TABLE copy"))
    engine.dispose()


def test_pipelines_run_at_once_in_separate_processes_all_land_and_all_their_models_build(
        shop: str, tmp_path: Path) -> None:
    assert {r["status"] for r in run_json("--all", "--no-dbt").values()} == {"success"}
    for table in PARALLEL:
        add_rows(shop, table, 3)

    runs = [subprocess.Popen([sys.executable, "-m", "framework.cli", "run", "--pipeline", name,
                              "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=os.environ.copy()) for name in PARALLEL]
    outputs = [run.communicate(timeout=600) for run in runs]

    for name, run, (stdout, stderr) in zip(PARALLEL, runs, outputs, strict=True):
        assert run.returncode == 0, f"{name}: {stderr[-2000:]}"
        record = json.loads(stdout[stdout.index("["):])[0]
        assert (record["status"], record["rows_loaded"]) == ("success", 3), record
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        for table in PARALLEL:  # every selection was built after its rows landed
            landed, modelled = con.execute(
                f"SELECT (SELECT count(*) FROM landing.{table}), "
                f"(SELECT count(*) FROM marts.{MART[table]})").fetchone() or (0, 0)
            assert modelled == landed, table
    finally:
        con.close()
    for table in PARALLEL:
        assert warehouse_versions(warehouse, table) == source_versions(shop, table), table
    assert not (tmp_path / "state" / "targets" / "local" / "dbt_pending.json").exists()
