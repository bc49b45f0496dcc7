"""Run records reach the warehouse (`landing._framework_runs`), which every worker reads; the
local log keeps what could not get there and hands it over with the next run that can."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from framework.demo.shop import create_shop
from tests.e2e.helpers import cli


def test_records_of_a_run_whose_warehouse_was_dead_reach_it_with_the_next_run(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.002, seed=3)
    monkeypatch.setenv("FRAMEWORK_WORKER_ID", "box-1")
    folder = tmp_path / "not-a-database"
    folder.mkdir()
    monkeypatch.setenv("DUCKDB_PATH", str(folder))  # a folder: DuckDB cannot open it

    assert cli("run", "--pipeline", "customers", "--no-dbt").exit_code == 1
    shown = cli("history", "--json")
    assert f"warehouse not reached (warehouse {folder}: " in shown.stderr
    assert [(h["pipeline"], h["status"], h["worker"]) for h in json.loads(shown.stdout)] == [
        ("customers", "failed", "box-1")]

    monkeypatch.delenv("DUCKDB_PATH")  # the warehouse is back
    assert cli("run", "--pipeline", "customers", "--no-dbt").exit_code == 0

    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        stored = con.execute("SELECT pipeline, status, worker FROM landing._framework_runs "
                             "ORDER BY started_at").fetchall()
    finally:
        con.close()
    assert stored == [("customers", "failed", "box-1"), ("customers", "success", "box-1")]
    shown = cli("history", "--json")
    assert "warehouse not reached" not in shown.stderr
    assert [h["status"] for h in json.loads(shown.stdout)] == ["success", "failed"]
