"""README claims ("How a run stays correct") that had no test: a count mismatch between hops
fails the run; an older version of a row never overwrites a newer one across batches; a query
source is extracted incrementally."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from framework.demo.shop import create_shop, simulate_activity
from tests.e2e.helpers import (
    assert_landing_equals_source,
    cli,
    duckdb_landing_rows,
    landing_differences,
    run_json,
)


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.002, seed=7)
    return url


def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "state" / "warehouse.duckdb"


def loaded_batches(tmp_path: Path, pipeline: str) -> list[str]:
    con = duckdb.connect(str(warehouse(tmp_path)))
    try:
        return [r[0] for r in con.execute(
            "SELECT load_id FROM landing._framework_batches WHERE pipeline = ? AND "
            "status = 'loaded'", [pipeline]).fetchall()]
    except duckdb.CatalogException:
        return []
    finally:
        con.close()


@pytest.mark.parametrize("change, processed", [
    ("SELECT * FROM ({sql}) WHERE order_id <> (SELECT min(order_id) FROM batch)",
     lambda n: n - 1),  # drops a row
    ("SELECT * FROM ({sql}) UNION ALL (SELECT * FROM ({sql}) LIMIT 1)", lambda n: n + 1),
], ids=["drops-a-row", "adds-a-row"])
def test_a_transform_that_changes_the_row_count_fails_the_run_and_loads_nothing(
        change: str, processed: Callable[[int], int], shop: str, project_dir: Path,
        tmp_path: Path) -> None:
    sql = project_dir / "pipelines" / "sql" / "orders.sql"
    shipped = sql.read_text()
    sql.write_text(change.format(sql="\n".join(
        line for line in shipped.splitlines() if not line.startswith("--"))))
    engine = sa.create_engine(shop)
    with engine.connect() as conn:
        rows = len(conn.execute(sa.text("SELECT 1 FROM orders")).all())
    engine.dispose()

    record = run_json("--pipeline", "orders", "--no-dbt")["orders"]

    assert record["status"] == "failed"
    assert record["error"] == (
        f"orders: reconcile: batch {record['load_ids'][0]}: extracted {rows}, processed "
        f"{processed(rows)}; a transform must keep one row per source row (filter in "
        "source.query instead)")
    assert loaded_batches(tmp_path, "orders") == []
    assert cli("run", "--pipeline", "orders", "--no-dbt").exit_code == 1  # it stays failed
    history = json.loads(cli("history", "--pipeline", "orders", "--json").stdout)
    assert [(r["status"], r["error"]) for r in history] == [("failed", record["error"])] * 2

    sql.write_text(shipped)  # fixed: the next run finishes the batch from the lake
    again = run_json("--pipeline", "orders", "--no-dbt")["orders"]
    assert again["status"] == "success" and again["load_ids"] == record["load_ids"]
    assert_landing_equals_source(shop, warehouse(tmp_path), ["orders"])


def test_an_older_batch_replayed_after_a_newer_one_never_overwrites_it(
        shop: str, tmp_path: Path) -> None:
    first = run_json("--pipeline", "orders", "--no-dbt")["orders"]
    engine = sa.create_engine(shop)
    with engine.begin() as conn:  # a later version of five orders, in a later batch
        conn.execute(sa.text(
            "UPDATE orders SET order_status = 'canceled', order_approved_at = NULL, "
            "updated_at = '2031-01-01 00:00:00.000001' WHERE order_id IN "
            "(SELECT order_id FROM orders ORDER BY order_id LIMIT 5)"))
    engine.dispose()
    second = run_json("--pipeline", "orders", "--no-dbt")["orders"]
    assert second["rows_loaded"] == 5

    replayed = cli("replay", "--pipeline", "orders", "--load-id", first["load_id"])

    assert replayed.exit_code == 0, replayed.output
    assert_landing_equals_source(shop, warehouse(tmp_path), ["orders"])
    con = duckdb.connect(str(warehouse(tmp_path)))
    statuses = con.execute("SELECT count(*) FROM landing.orders WHERE order_status = 'canceled' "
                           "AND updated_at = '2031-01-01 00:00:00.000001'").fetchone()
    con.close()
    assert statuses == (5,)


QUERY_SPEC = """\
name: open_orders
source:
  connection: shop
  query: SELECT order_id, customer_id, order_status, updated_at FROM orders WHERE order_status <> 'canceled'
  primary_key: [order_id]
  incremental: {cursor: updated_at}
lake:
  path: open_orders
"""
QUERY = "SELECT order_id, customer_id, order_status, updated_at FROM orders " \
        "WHERE order_status <> 'canceled'"


def query_rows(url: str) -> list[dict[str, object]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(QUERY)).mappings()]
    engine.dispose()
    return rows


def test_a_query_source_extracts_only_rows_added_or_changed_between_runs(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    (project_dir / "pipelines" / "open_orders.yml").write_text(QUERY_SPEC)
    first = run_json("--pipeline", "open_orders", "--no-dbt")["open_orders"]
    assert first["rows_extracted"] == len(query_rows(shop))

    changed = simulate_activity(shop, seed=23, new_orders=4, status_changes=3, customer_moves=0,
                                at_boundary=1)
    second = run_json("--pipeline", "open_orders", "--no-dbt")["open_orders"]

    assert second["status"] == "success", second["error"]
    assert second["rows_extracted"] == changed.orders
    assert landing_differences(query_rows(shop), duckdb_landing_rows(warehouse(tmp_path),
                               "open_orders"), "open_orders", keys=["order_id"]) == []
    idle = run_json("--pipeline", "open_orders", "--no-dbt")["open_orders"]
    assert idle["rows_extracted"] == 0


def test_a_fresh_worker_resumes_from_the_cursor_state_kept_in_the_lake(
        shop: str, tmp_path: Path) -> None:
    run_json("--pipeline", "orders", "--no-dbt")
    # Another machine: the lake and the warehouse only (dlt state, locks and markers gone).
    shutil.rmtree(tmp_path / "state" / "targets")
    changed = simulate_activity(shop, seed=29, new_orders=3, status_changes=2, customer_moves=0)

    record = run_json("--pipeline", "orders", "--no-dbt")["orders"]

    assert record["status"] == "success", record["error"]
    assert record["rows_extracted"] == changed.orders
    assert_landing_equals_source(shop, warehouse(tmp_path), ["orders"])


def test_every_batch_a_crashed_run_left_in_the_lake_is_finished_oldest_first(
        shop: str, tmp_path: Path) -> None:
    """Two extracts whose loads never ran (two crashed runs): the next run loads both from the
    lake, oldest first, and reads only what is new in the source."""
    from framework.compiled import run_context
    from framework.project import Project
    from framework.stages.extract import extract

    project = Project.discover()
    ctx = run_context(project, project.target(), project.pipeline("orders"))
    first = extract(ctx)
    simulate_activity(shop, seed=31, new_orders=3, status_changes=2, customer_moves=0)
    second = extract(ctx)
    assert first.load_id and second.load_id and first.load_id < second.load_id

    record = run_json("--pipeline", "orders", "--no-dbt")["orders"]

    assert record["status"] == "success", record["error"]
    assert record["load_ids"] == [first.load_id, second.load_id]
    assert record["rows_extracted"] == first.rows + second.rows
    assert_landing_equals_source(shop, warehouse(tmp_path), ["orders"])
