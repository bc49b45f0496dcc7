"""End to end on the embedded default: SQLite shop -> local lake -> DuckDB warehouse -> dbt."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from framework.demo.shop import TABLES, create_shop, simulate_activity
from tests.e2e.helpers import (
    assert_landing_equals_source,
    cli,
    run_json,
    source_versions,
)


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.01, seed=7)
    return url


def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "state" / "warehouse.duckdb"


def assert_warehouse_equals_source(url: str, tmp_path: Path) -> None:
    assert_landing_equals_source(url, warehouse(tmp_path), TABLES)


def test_run_all_lands_every_table_and_builds_the_marts(shop: str, tmp_path: Path) -> None:
    records = run_json("--all")

    assert {r["status"] for r in records.values()} == {"success"}
    assert_warehouse_equals_source(shop, tmp_path)
    engine = sa.create_engine(shop)
    with engine.connect() as conn:
        orders = conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()
        revenue = conn.execute(sa.text("SELECT sum(price) FROM order_items")).scalar_one()
    con = duckdb.connect(str(warehouse(tmp_path)))
    marts = con.execute("SELECT count(*), sum(items_revenue) FROM marts.fact_orders").fetchone()
    products = con.execute("SELECT count(*) FROM landing.products "
                           "WHERE product_name_length IS NOT NULL").fetchone()
    cities = con.execute("SELECT count(*) FROM landing.customers "
                         "WHERE customer_city <> lower(trim(customer_city))").fetchone()
    # the README's SCD2 history: one current version of every customer and product
    history = [con.execute(f"SELECT count(*) FROM snapshots.snap_{t} WHERE dbt_valid_to IS NULL "
                           f"AND {t[:-1]}_id IN (SELECT {t[:-1]}_id FROM landing.{t})").fetchone()
               == con.execute(f"SELECT count(*) FROM landing.{t}").fetchone()
               for t in ("customers", "products")]
    con.close()
    assert history == [True, True]
    assert marts[0] == orders
    assert float(marts[1]) == pytest.approx(float(revenue), abs=0.01)
    assert products[0] > 0 and cities == (0,)
    for name, record in records.items():
        assert record["rows_extracted"] == record["rows_loaded"] > 0
        assert set(record["seconds"]) >= {"extract", "transform", "validate", "load"}
        # dbt's time is the run's, reported once (the same entry on every record), not a stage
        assert "dbt" not in record["seconds"] and record["dbt"]["status"] == "success"
        assert record["stages_status"] == "loaded" and record["models_status"] == "built"
        assert (tmp_path / "state" / "lake" / "raw" / name).is_dir()
        assert (tmp_path / "state" / "lake" / "processed" / name / f"{record['load_id']}.parquet").is_file()


def test_second_run_takes_exactly_the_changed_rows(shop: str, tmp_path: Path) -> None:
    run_json("--all", "--no-dbt")
    changed = simulate_activity(shop, seed=3, at_boundary=2)

    records = run_json("--all", "--no-dbt")

    for table in TABLES:
        assert records[table]["rows_extracted"] == getattr(changed, table), table
    assert_warehouse_equals_source(shop, tmp_path)
    again = run_json("--all", "--no-dbt")
    assert {r["rows_extracted"] for r in again.values()} == {0}
    assert {r["load_id"] for r in again.values()} == {None}


def test_timestamps_keep_microseconds_from_source_to_warehouse(shop: str, tmp_path: Path) -> None:
    run_json("--pipeline", "orders", "--no-dbt")
    con = duckdb.connect(str(warehouse(tmp_path)))
    micros = con.execute("SELECT count(*) FROM landing.orders "
                         "WHERE microsecond(updated_at) % 1000000 <> 0").fetchone()
    con.close()
    assert micros[0] > 0
    assert_landing_equals_source(shop, warehouse(tmp_path), ["orders"])


def test_a_batch_left_in_the_lake_is_finished_without_the_source(shop: str, project_dir: Path,
                                                                 tmp_path: Path) -> None:
    from framework.compiled import run_context
    from framework.project import Project
    from framework.stages.extract import extract

    project = Project.discover()
    ctx = run_context(project, project.target(), project.pipeline("customers"))
    extracted = extract(ctx)  # a run that crashed right after the lake write
    assert extracted.load_id and extracted.rows > 0

    records = run_json("--pipeline", "customers", "--no-dbt")

    assert records["customers"]["load_ids"] == [extracted.load_id]
    assert records["customers"]["rows_loaded"] == extracted.rows
    assert_warehouse_equals_source_for(shop, tmp_path, "customers")


def assert_warehouse_equals_source_for(url: str, tmp_path: Path, table: str) -> None:
    assert_landing_equals_source(url, warehouse(tmp_path), [table])


def test_a_sixth_table_needs_only_a_yaml_file(shop: str, project_dir: Path, tmp_path: Path) -> None:
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE sellers (seller_id VARCHAR(32) PRIMARY KEY, "
                             "seller_city VARCHAR(64), updated_at DATETIME)"))
        conn.execute(sa.text("INSERT INTO sellers VALUES ('s1', ' Curitiba', '2018-01-01 10:00:00.123456'), "
                             "('s2', 'sao paulo', '2018-01-02 11:00:00.654321')"))
    (project_dir / "pipelines" / "sellers.yml").write_text(
        "name: sellers\n"
        "source:\n  connection: shop\n  table: sellers\n  primary_key: [seller_id]\n"
        "  incremental: {cursor: updated_at}\n"
        "lake:\n  path: sellers\n"
        "transform:\n  sql: SELECT seller_id, lower(trim(seller_city)) AS seller_city, updated_at FROM batch\n"
        "quality:\n  expectations:\n    - expect_column_values_to_be_unique: {column: seller_id}\n")

    records = run_json("--pipeline", "sellers")

    assert records["sellers"]["status"] == "success"
    con = duckdb.connect(str(warehouse(tmp_path)))
    rows = con.execute("SELECT seller_id, seller_city FROM landing.sellers ORDER BY 1").fetchall()
    con.close()
    assert rows == [("s1", "curitiba"), ("s2", "sao paulo")]


def test_a_query_source_is_extracted_incrementally(shop: str, project_dir: Path, tmp_path: Path) -> None:
    (project_dir / "pipelines" / "delivered_orders.yml").write_text(
        "name: delivered_orders\n"
        "source:\n  connection: shop\n"
        "  query: SELECT order_id, order_status, updated_at FROM orders WHERE order_status = 'delivered'\n"
        "  primary_key: [order_id]\n  incremental: {cursor: updated_at}\n"
        "lake:\n  path: delivered_orders\n")

    first = run_json("--pipeline", "delivered_orders", "--no-dbt")
    second = run_json("--pipeline", "delivered_orders", "--no-dbt")

    engine = sa.create_engine(shop)
    with engine.connect() as conn:
        delivered = conn.execute(sa.text(
            "SELECT count(*) FROM orders WHERE order_status = 'delivered'")).scalar_one()
    assert first["delivered_orders"]["rows_loaded"] == delivered
    assert second["delivered_orders"]["rows_extracted"] == 0


def test_a_failed_error_expectation_quarantines_the_batch(shop: str, project_dir: Path,
                                                          tmp_path: Path) -> None:
    spec = project_dir / "pipelines" / "payments.yml"
    spec.write_text(spec.read_text().replace(
        "  suite: payments\n",
        "  suite: payments\n  expectations:\n"
        "    - expect_column_values_to_be_between: {column: payment_installments, max_value: 0}\n"))

    result = cli("run", "--pipeline", "payments", "--no-dbt")

    assert result.exit_code == 1
    assert "quarantined" in result.output and "expect_column_values_to_be_between" in result.output
    quarantined = list((tmp_path / "state" / "lake" / "quarantine" / "payments").glob("*.parquet"))
    assert len(quarantined) == 1 and pq.read_metadata(quarantined[0]).num_rows > 0
    con = duckdb.connect(str(warehouse(tmp_path)))
    tables = con.execute("SELECT table_name FROM information_schema.tables "
                         "WHERE table_name = 'payments'").fetchall()
    con.close()
    assert tables == []


def test_a_warn_expectation_records_and_goes_on(shop: str, project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "payments.yml"
    spec.write_text(spec.read_text().replace(
        "  suite: payments\n",
        "  suite: payments\n  expectations:\n"
        "    - expect_column_values_to_be_between: {column: payment_installments, max_value: 0}\n"
        "      severity: warn\n"))

    records = run_json("--pipeline", "payments", "--no-dbt")

    assert records["payments"]["status"] == "success"
    assert any("expect_column_values_to_be_between" in w for w in records["payments"]["warnings"])


def test_a_misspelt_cursor_is_one_line_naming_the_file_and_column(shop: str, project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "orders.yml"
    spec.write_text(spec.read_text().replace("cursor: updated_at", "cursor: udpated_at"))

    result = cli("run", "--pipeline", "orders", "--no-dbt")

    assert result.exit_code == 1
    assert ("pipelines/orders.yml: source.incremental.cursor: 'udpated_at' is not a column of "
            "the source (did you mean 'updated_at'?)") in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_one_line_naming_the_source(project_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB_URL", "postgresql+psycopg://shop:Sup3rSecret@127.0.0.1:9/shop")

    result = cli("run", "--pipeline", "customers", "--no-dbt")

    assert result.exit_code == 1
    assert "source 'shop' (postgresql+psycopg://shop:***@127.0.0.1:9/shop): cannot connect" in result.output
    assert "Sup3rSecret" not in result.output and "Traceback" not in result.output


def test_freeze_contract_stops_a_new_column_and_evolve_adds_it(shop: str, project_dir: Path,
                                                                tmp_path: Path) -> None:
    run_json("--pipeline", "customers", "--no-dbt")
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE customers ADD COLUMN loyalty_tier VARCHAR(8)"))
        conn.execute(sa.text("UPDATE customers SET loyalty_tier = 'gold', "
                             "updated_at = '2030-01-01 00:00:00.000001' WHERE rowid <= 3"))
    sql = project_dir / "pipelines" / "sql" / "customers.sql"
    sql.write_text(sql.read_text().replace("    CAST(updated_at", "    loyalty_tier,\n    CAST(updated_at"))
    spec = project_dir / "pipelines" / "customers.yml"
    spec.write_text(spec.read_text().replace("contract: evolve", "contract: freeze"))

    frozen = cli("run", "--pipeline", "customers", "--no-dbt")

    assert frozen.exit_code == 1
    assert "new column(s) loyalty_tier" in frozen.output
    spec.write_text(spec.read_text().replace("contract: freeze", "contract: evolve"))
    evolved = run_json("--pipeline", "customers", "--no-dbt")  # finishes the pending batch
    assert evolved["customers"]["status"] == "success"
    assert any("loyalty_tier" in w for w in evolved["customers"]["warnings"])
    con = duckdb.connect(str(warehouse(tmp_path)))
    gold = con.execute("SELECT count(*) FROM landing.customers WHERE loyalty_tier = 'gold'").fetchone()
    con.close()
    assert gold == (3,)


def test_demo_runs_end_to_end_and_summarises_the_marts(project_dir: Path) -> None:
    result = cli("demo")

    assert result.exit_code == 0, result.output
    assert "creating the demo shop" in result.output
    assert "orders, revenue" in result.output and "top category" in result.output


def test_dbt_runs_only_after_new_rows_or_an_unfinished_build(shop: str, tmp_path: Path) -> None:
    run_json("--all")
    idle = run_json("--pipeline", "products")  # nothing new, nothing pending
    assert idle["products"]["dbt"] is None
    marker = tmp_path / "state" / "targets" / "local" / "dbt_pending.json"
    marker.write_text('["stg_products+"]')  # a build killed before it finished

    resumed = run_json("--pipeline", "products")

    assert resumed["products"]["status"] == "success", resumed["products"]["error"]
    assert resumed["products"]["dbt"]["status"] == "success" and not marker.exists()
    con = duckdb.connect(str(warehouse(tmp_path)))
    products = con.execute("SELECT count(*) FROM marts.dim_products "
                           "WHERE NOT is_unknown_member").fetchone()
    con.close()
    assert products[0] == len(source_versions(shop, "products"))


def test_rows_loaded_without_dbt_are_modelled_by_the_next_run(shop: str, tmp_path: Path) -> None:
    run_json("--all")
    simulate_activity(shop, seed=11)
    run_json("--all", "--no-dbt")  # as a run killed between its loads and dbt leaves it

    idle = run_json("--all")  # nothing new in the source, models still owed

    assert {r["rows_loaded"] for r in idle.values()} == {0}
    assert all(r["dbt"]["status"] == "success" and r["status"] == "success" for r in idle.values())
    con = duckdb.connect(str(warehouse(tmp_path)))
    customers = con.execute("SELECT count(*) FROM marts.dim_customers "
                            "WHERE NOT is_unknown_member").fetchone()
    con.close()
    assert customers[0] == len(source_versions(shop, "customers"))


def test_replay_reloads_a_batch_from_the_lake_without_the_source(shop: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_json("--pipeline", "orders", "--no-dbt")
    load_id = first["orders"]["load_id"]
    con = duckdb.connect(str(warehouse(tmp_path)))
    con.execute("DELETE FROM landing.orders WHERE order_id IN "
                "(SELECT order_id FROM landing.orders LIMIT 10)")
    con.close()
    monkeypatch.setenv("SHOP_DB_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")  # unused

    result = cli("replay", "--pipeline", "orders", "--load-id", load_id, "--json")

    assert result.exit_code == 0, result.output
    assert_landing_equals_source(shop, warehouse(tmp_path), ["orders"])
    missing = cli("replay", "--pipeline", "orders", "--load-id", "123.456")
    assert missing.exit_code == 1 and "batch 123.456 is not in the lake" in missing.output
    # A mistyped batch did nothing: the pipeline's last run is still the replay that loaded.
    line = next(row for row in cli("list").output.splitlines() if row.startswith("orders "))
    assert "failed" not in line and "success" in line, line


def test_stage_api_runs_one_stage_of_one_batch_at_a_time(shop: str, tmp_path: Path) -> None:
    from framework import api

    load_ids = api.extract("payments")
    assert len(load_ids) == 1
    assert api.transform("payments", load_ids) == load_ids
    assert api.validate("payments", load_ids) == load_ids
    rows = api.load("payments", load_ids)
    assert rows == len(source_versions(shop, "payments"))
    assert api.load("payments", load_ids) == 0  # a retried load task is a no-op
    assert api.extract("payments") == []
    assert_landing_equals_source(shop, warehouse(tmp_path), ["payments"])
    marker = tmp_path / "state" / "targets" / "local" / "dbt_pending.json"
    assert "stg_payments+" in json.loads(marker.read_text())  # owed by the load task
    api.build_models(["payments"])
    assert not marker.exists()  # the build task clears what it built


def test_one_pipeline_on_an_empty_warehouse_builds_what_it_can_and_waits_for_the_rest(
        shop: str, tmp_path: Path) -> None:
    first = run_json("--pipeline", "customers")

    assert first["customers"]["status"] == "success", first["customers"]["error"]
    waiting = [w for w in first["customers"]["warnings"] if w.startswith("dbt: models reading")]
    assert len(waiting) == 1 and "landing.orders" in waiting[0] \
        and "landing.customers" not in waiting[0]
    con = duckdb.connect(str(warehouse(tmp_path)))
    built = {r[0] for r in con.execute("SELECT table_schema || '.' || table_name "
                                       "FROM information_schema.tables").fetchall()}
    con.close()
    assert "staging.stg_customers" in built
    assert "marts.dim_customers" not in built  # it counts orders: waits for landing.orders

    everything = run_json("--all")

    assert {r["status"] for r in everything.values()} == {"success"}
    assert not any(w.startswith("dbt:") for r in everything.values() for w in r["warnings"])
    con = duckdb.connect(str(warehouse(tmp_path)))
    customers = con.execute("SELECT count(*) FROM marts.dim_customers "
                            "WHERE NOT is_unknown_member").fetchone()
    con.close()
    assert customers[0] == len(source_versions(shop, "customers"))


def test_a_mart_built_by_an_older_version_is_named_and_rebuilt_by_full_refresh(
        shop: str, tmp_path: Path) -> None:
    """A fact table an older version built (without a column its SQL now has) failed every
    later build, and nothing said what to run; `--full-refresh` did not reach dbt."""
    run_json("--all")
    con = duckdb.connect(str(warehouse(tmp_path)))
    con.execute("ALTER TABLE marts.fact_payments DROP COLUMN built_at")
    con.close()
    simulate_activity(shop, seed=5)

    failed = run_json("--all")["payments"]

    assert failed["models_status"] != "built"
    assert "fact_payments" in failed["error"] and "--full-refresh" in failed["error"], failed
    rebuilt = run_json("--all", "--full-refresh")
    assert {r["models_status"] for r in rebuilt.values()} == {"built"}, rebuilt["payments"]
    con = duckdb.connect(str(warehouse(tmp_path)), read_only=True)
    columns = {r[0] for r in con.execute("DESCRIBE marts.fact_payments").fetchall()}
    con.close()
    assert "built_at" in columns
