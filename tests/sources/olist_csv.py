"""The SQL pipeline set and the Olist CSV pipeline set over one demo shop, in two projects,
for comparing their landing tables row by row."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import duckdb

from framework.demo.csv_files import write_csv_shop
from framework.demo.shop import TABLES
from tests.conftest import copy_project
from tests.e2e.helpers import SYSTEM_COLUMNS, run_json

LANDING = (*TABLES, "product_category_name_translation")


def csv_project(root: Path) -> Path:
    """A project whose pipelines/ is the Olist CSV set (the SQL files it reuses stay)."""
    copy_project(root)
    for path in (root / "pipelines").glob("*.yml"):
        path.unlink()
    for path in (root / "pipelines" / "examples" / "olist_csv").glob("*.yml"):
        text = path.read_text().replace("../../../pipeline.schema.json", "../pipeline.schema.json")
        (root / "pipelines" / path.name).write_text(text)
    return root


def write_csvs(url: str, folder: Path, project: Path) -> dict[str, int]:
    return write_csv_shop(url, folder, project / "dbt_ecommerce" / "seeds" /
                          "product_category_name_translation.csv")


def run_all(project: Path, state: Path, monkeypatch: Any, **env: str) -> dict[str, Any]:
    with monkeypatch.context() as patch:
        patch.setenv("FRAMEWORK_PROJECT_DIR", str(project))
        patch.setenv("FRAMEWORK_STATE_DIR", str(state))
        for name, value in env.items():
            patch.setenv(name, value)
        records = run_json("--all", "--no-dbt")
    failed = {n: r["error"] for n, r in records.items() if r["status"] != "success"}
    assert not failed, failed
    return records


def landing(warehouse: Path, table: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """A landing table's columns (name, type) and its rows, sorted, without the columns the
    framework adds."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        described = con.execute(f"DESCRIBE landing.{table}").fetchall()
        columns = [(str(d[0]), str(d[1])) for d in described if d[0] not in SYSTEM_COLUMNS]
        names = ", ".join(f'"{c}"' for c, _ in columns)
        rows = con.execute(f"SELECT {names} FROM landing.{table}").fetchall()
    finally:
        con.close()
    return columns, sorted(rows, key=lambda r: tuple(_sortable(v) for v in r))


def _sortable(value: Any) -> tuple[int, str]:
    return (0, "") if value is None else (1, value.isoformat() if isinstance(
        value, dt.datetime) else str(value))


def assert_same_landing(sql_warehouse: Path, csv_warehouse: Path) -> dict[str, int]:
    """Every SQL landing table equals the CSV one: same columns and types, same rows."""
    counts = {}
    for table in TABLES:
        sql_columns, sql_rows = landing(sql_warehouse, table)
        csv_columns, csv_rows = landing(csv_warehouse, table)
        assert csv_columns == sql_columns, table
        assert len(csv_rows) == len(sql_rows), table
        for sql_row, csv_row in zip(sql_rows, csv_rows):
            assert csv_row == sql_row, f"{table}: {csv_row} != {sql_row}"
        counts[table] = len(sql_rows)
    return counts


def copy_tree(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, dirs_exist_ok=True)
