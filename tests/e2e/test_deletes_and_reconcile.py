"""Deletes reach the warehouse (soft-delete column, key reconciliation), and `framework
reconcile` reports exactly what differs between the source and the warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from framework.demo.shop import create_shop
from tests.e2e.helpers import (
    assert_landing_equals_source,
    cli,
    execute,
    run_json,
    source_versions,
    warehouse_versions,
)


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.003, seed=13)
    return url


def warehouse_rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_reconcile_reports_missing_extra_and_stale_rows(shop: str, tmp_path: Path) -> None:
    run_json("--pipeline", "products", "--no-dbt")
    assert cli("reconcile", "--pipeline", "products").exit_code == 0
    engine = sa.create_engine(shop)
    with engine.connect() as conn:
        first, last = conn.execute(sa.text("SELECT min(product_id), max(product_id) "
                                           "FROM products")).one()
    engine.dispose()
    execute(shop,
            "DELETE FROM products WHERE product_id = (SELECT min(product_id) FROM products)",
            "UPDATE products SET updated_at = '2031-01-01 00:00:00.000002' "
            "WHERE product_id = (SELECT max(product_id) FROM products)",
            "INSERT INTO products (product_id, updated_at) VALUES ('new1', '2031-01-01 00:00:00')")

    result = cli("reconcile", "--pipeline", "products", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout[result.stdout.index("["):])[0]
    assert (report["missing"], report["extra"], report["stale"]) == (1, 1, 1)
    assert report["source_checksum"] != report["warehouse_checksum"] and not report["equal"]
    assert report["examples"] == {"missing": [{"product_id": "new1"}],
                                  "extra": [{"product_id": first}],
                                  "stale": [{"product_id": last}]}
    text = " ".join(cli("reconcile", "--pipeline", "products").output.split())
    assert f"products: gone from the source: product_id={first}" in text, text
    assert "products: missing from the warehouse: product_id=new1" in text


def test_reconcile_compares_an_append_tables_latest_version_of_each_key(
        shop: str, project_dir: Path) -> None:
    """An append table keeps every version a key had: it was compared as if merged, so after
    any update reconcile reported stale rows and failed, for good."""
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text().replace("warehouse:\n  schema: landing\n",
                                             "warehouse:\n  schema: landing\n"
                                             "  write_disposition: append\n"))
    assert "write_disposition: append" in spec.read_text()
    run_json("--pipeline", "products", "--no-dbt")
    execute(shop, "UPDATE products SET updated_at = '2031-01-01 00:00:00.000002' "
                  "WHERE product_id = (SELECT max(product_id) FROM products)")
    assert run_json("--pipeline", "products", "--no-dbt")["products"]["rows_loaded"] == 1

    equal = cli("reconcile", "--pipeline", "products", "--json")
    execute(shop, "DELETE FROM products WHERE product_id = (SELECT min(product_id) FROM products)")
    differs = cli("reconcile", "--pipeline", "products", "--json")

    assert equal.exit_code == 0, equal.output
    report = json.loads(differs.stdout[differs.stdout.index("["):])[0]
    assert (report["missing"], report["extra"], report["stale"]) == (0, 1, 0)


@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_reconcile_counts_rows_the_warehouse_holds_twice(
        disposition: str, shop: str, project_dir: Path, tmp_path: Path) -> None:
    """An append table is compared by each key's latest version: a version appended twice (a
    load repeated by another program, a restore) was hidden, and reconcile said equal."""
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text().replace(
        "warehouse:\n  schema: landing\n",
        f"warehouse:\n  schema: landing\n  write_disposition: {disposition}\n"))
    run_json("--pipeline", "products", "--no-dbt")
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        con.execute("INSERT INTO landing.products SELECT * FROM landing.products "
                    "ORDER BY product_id LIMIT 3")
        # a NULL key is no duplicate (it is missing and extra): counted alike for one column
        con.execute("INSERT INTO landing.products SELECT * REPLACE (NULL AS product_id) "
                    "FROM landing.products LIMIT 1")
    finally:
        con.close()

    result = cli("reconcile", "--pipeline", "products", "--json")

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout[result.stdout.index("["):])[0]
    assert (report["missing"], report["extra"], report["stale"], report["duplicates"],
            report["equal"]) == (0, 1, 0, 3, False)


def test_a_soft_deleted_source_row_leaves_the_warehouse(shop: str, project_dir: Path,
                                                        tmp_path: Path) -> None:
    execute(shop, "ALTER TABLE customers ADD COLUMN deleted_at DATETIME")
    sql = project_dir / "pipelines" / "sql" / "customers.sql"
    sql.write_text(sql.read_text().replace("    CAST(updated_at", "    deleted_at,\n    CAST(updated_at"))
    spec = project_dir / "pipelines" / "customers.yml"
    spec.write_text(spec.read_text() + "deletes:\n  soft_delete_column: deleted_at\n")
    run_json("--pipeline", "customers", "--no-dbt")
    execute(shop, "UPDATE customers SET deleted_at = '2031-01-01 00:00:00', "
                  "updated_at = '2031-01-01 00:00:00.000001' WHERE rowid <= 3")

    second = run_json("--pipeline", "customers", "--no-dbt")["customers"]

    assert second["status"] == "success" and second["rows_extracted"] == 3
    live = source_versions(shop, "customers")
    engine = sa.create_engine(shop)
    with engine.connect() as conn:
        deleted = {(r[0],) for r in conn.execute(sa.text(
            "SELECT customer_id FROM customers WHERE deleted_at IS NOT NULL"))}
    engine.dispose()
    expected = {k: v for k, v in live.items() if k not in deleted}
    assert warehouse_versions(tmp_path / "state" / "warehouse.duckdb", "customers") == expected
    assert cli("reconcile", "--pipeline", "customers").exit_code == 0  # soft-deleted rows too


@pytest.mark.parametrize("action", ["remove", "mark"])
def test_key_reconciliation_removes_or_marks_rows_gone_from_the_source(
        action: str, shop: str, project_dir: Path, tmp_path: Path) -> None:
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text() + f"deletes:\n  reconcile: {action}\n")
    run_json("--pipeline", "products", "--no-dbt")
    execute(shop, "DELETE FROM products WHERE rowid <= 2")

    second = run_json("--pipeline", "products", "--no-dbt")["products"]

    assert second["status"] == "success"
    assert any("2 row(s) whose key is gone" in w for w in second["warnings"])
    remaining = source_versions(shop, "products")
    if action == "remove":
        assert warehouse_versions(tmp_path / "state" / "warehouse.duckdb", "products") == remaining
        assert_landing_equals_source(shop, tmp_path / "state" / "warehouse.duckdb", ["products"])
    else:
        marked = warehouse_rows(tmp_path, "SELECT count(*) FROM landing.products "
                                          "WHERE _deleted_at IS NOT NULL")
        total = warehouse_rows(tmp_path, "SELECT count(*) FROM landing.products")
        assert marked == [(2,)] and total == [(len(remaining) + 2,)]
    third = run_json("--pipeline", "products", "--no-dbt")["products"]
    assert not any("gone" in w for w in third["warnings"])  # each delete is applied once
    assert cli("reconcile", "--pipeline", "products").exit_code == 0  # marked rows are not live


@pytest.mark.parametrize("action", ["remove", "mark"])
def test_replaying_the_first_batch_after_reconcile_deletes_keeps_the_keys_deleted(
        action: str, shop: str, project_dir: Path, tmp_path: Path) -> None:
    """`replay` of a batch read before the delete brought the rows back (`remove`) or made
    them live again (`mark`), and the next runs, finding nothing new, left them there."""
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text() + f"deletes:\n  reconcile: {action}\n")
    first = run_json("--pipeline", "products", "--no-dbt")["products"]
    execute(shop, "DELETE FROM products WHERE rowid <= 2")
    run_json("--pipeline", "products", "--no-dbt")

    replayed = cli("replay", "--pipeline", "products", "--load-id", first["load_id"])

    assert replayed.exit_code == 0, replayed.output
    live = " WHERE _deleted_at IS NULL" if action == "mark" else ""
    assert warehouse_rows(tmp_path, f"SELECT count(*) FROM landing.products{live}") == \
        [(len(source_versions(shop, "products")),)]
    assert cli("reconcile", "--pipeline", "products").exit_code == 0


def test_a_marking_pipelines_table_has_its_deleted_at_column_from_the_first_load_on(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """Models read `_deleted_at`: it came with the first mark, and a full refresh dropped it."""
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text() + "deletes:\n  reconcile: mark\n")
    columns = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'products' " \
              "AND column_name = '_deleted_at'"
    run_json("--pipeline", "products", "--no-dbt")
    first = warehouse_rows(tmp_path, columns)
    execute(shop, "DELETE FROM products WHERE rowid <= 2")
    run_json("--pipeline", "products", "--no-dbt")
    run_json("--pipeline", "products", "--no-dbt", "--full-refresh")

    assert first == warehouse_rows(tmp_path, columns) == [(1,)]
    assert cli("reconcile", "--pipeline", "products").exit_code == 0


def test_full_refresh_rebuilds_the_landing_table_equal_to_the_source(shop: str,
                                                                     tmp_path: Path) -> None:
    run_json("--pipeline", "products", "--no-dbt")
    execute(shop, "DELETE FROM products WHERE rowid <= 5")

    record = run_json("--pipeline", "products", "--no-dbt", "--full-refresh")["products"]

    assert record["rows_extracted"] == len(source_versions(shop, "products"))
    assert_landing_equals_source(shop, tmp_path / "state" / "warehouse.duckdb", ["products"])


def test_replaying_an_appended_batch_does_not_double_it(shop: str, project_dir: Path,
                                                        tmp_path: Path) -> None:
    spec = project_dir / "pipelines" / "payments.yml"
    spec.write_text(spec.read_text().replace("  schema: landing\n",
                                             "  schema: landing\n  write_disposition: append\n"))
    first = run_json("--pipeline", "payments", "--no-dbt")["payments"]

    replayed = cli("replay", "--pipeline", "payments", "--load-id", first["load_id"])

    assert replayed.exit_code == 0, replayed.output
    assert warehouse_rows(tmp_path, "SELECT count(*) FROM landing.payments") == \
        [(first["rows_loaded"],)]


def test_reconcile_deletes_past_max_fraction_stop_the_run_unless_allowed(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text() + "deletes:\n  reconcile: remove\n")
    run_json("--pipeline", "products", "--no-dbt")
    landed = warehouse_versions(tmp_path / "state" / "warehouse.duckdb", "products")
    total = len(landed)
    execute(shop, f"DELETE FROM products WHERE rowid <= {total // 2}")  # a half-read source

    stopped = run_json("--pipeline", "products", "--no-dbt")["products"]

    gone = total // 2
    assert stopped["status"] == "failed"
    assert stopped["error"] == (
        f"products: deletes: reconcile would remove {gone} of {total} row(s) of landing.products "
        f"({gone / total:.0%}), more than deletes.max_fraction 0.1 (10%); nothing was deleted. "
        "Check that the source read is complete, or run with --allow-mass-delete to apply it")
    assert warehouse_versions(tmp_path / "state" / "warehouse.duckdb", "products") == landed

    allowed = run_json("--pipeline", "products", "--no-dbt", "--allow-mass-delete")["products"]

    assert allowed["status"] == "success", allowed["error"]
    assert warehouse_versions(tmp_path / "state" / "warehouse.duckdb", "products") == \
        source_versions(shop, "products")


def test_a_higher_max_fraction_lets_a_large_delete_through(shop: str, project_dir: Path,
                                                           tmp_path: Path) -> None:
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text() + "deletes:\n  reconcile: mark\n  max_fraction: 0.6\n")
    run_json("--pipeline", "products", "--no-dbt")
    total = len(source_versions(shop, "products"))
    execute(shop, f"DELETE FROM products WHERE rowid <= {total // 2}")

    record = run_json("--pipeline", "products", "--no-dbt")["products"]

    assert record["status"] == "success", record["error"]
    assert warehouse_rows(tmp_path, "SELECT count(*) FROM landing.products WHERE _deleted_at "
                                    "IS NOT NULL") == [(total // 2,)]


def test_reconcile_all_reports_a_missing_source_table_and_compares_the_others(
        shop: str, tmp_path: Path) -> None:
    """One pipeline's source table gone: `reconcile --all` stopped there, with only the table's
    name for a reason, and compared none of the others."""
    run_json("--pipeline", "products", "--pipeline", "payments", "--no-dbt")
    execute(shop, "DROP TABLE payments")

    result = cli("reconcile", "--pipeline", "products", "--pipeline", "payments", "--json")

    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: payments: source 'shop'"), errors
    assert errors[0].endswith("table 'payments' does not exist"), errors
    reports = json.loads(result.stdout[result.stdout.index("["):])
    assert [(r["pipeline"], r.get("equal"), r.get("error") is not None) for r in reports] == [
        ("products", True, False), ("payments", None, True)]


def test_a_run_that_only_deletes_rebuilds_the_models_reading_the_table(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """Reconciliation removed the rows from landing, but only a load marked the models owed:
    with nothing loaded, no build ran, and dim_products kept the deleted products."""
    spec = project_dir / "pipelines" / "products.yml"
    spec.write_text(spec.read_text() + "deletes:\n  reconcile: remove\n")
    assert run_json("--pipeline", "products")["products"]["status"] == "success"
    execute(shop, "DELETE FROM products WHERE rowid <= 2")

    second = run_json("--pipeline", "products")["products"]

    assert second["status"] == "success" and second["rows_loaded"] == 0, second
    assert any("2 row(s) whose key is gone" in w for w in second["warnings"])
    live = {k for (k,) in source_versions(shop, "products")}
    assert {k for (k,) in warehouse_rows(
        tmp_path, "SELECT product_id FROM marts.dim_products WHERE product_id <> '-1'")} == live


def test_an_edited_category_seed_reaches_the_marts_without_a_load(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """No pipeline loads a seed: an edit reached dim_products only when a products load
    happened to select it (and no build ran at all while nothing was new)."""
    assert run_json("--pipeline", "products")["products"]["status"] == "success"
    [(name, products)] = warehouse_rows(
        tmp_path, "SELECT category_name, count(*) FROM marts.dim_products WHERE category_name "
                  "IS NOT NULL AND NOT is_unknown_member GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")
    seed = project_dir / "dbt_ecommerce" / "seeds" / "product_category_name_translation.csv"
    seed.write_text(seed.read_text() + f"{name},renamed_{name}\n")  # the source's names it

    second = run_json("--pipeline", "products")["products"]

    assert (second["status"], second["rows_loaded"]) == ("success", 0), second
    assert warehouse_rows(tmp_path, f"SELECT count(*) FROM marts.dim_products "
                                    f"WHERE category = 'renamed_{name}'") == [(products,)]
    third = run_json("--pipeline", "products")["products"]  # built once: nothing owed now
    assert third["dbt"] is None or not third["dbt"].get("selections"), third


@pytest.mark.parametrize("how", ["replace", "full-refresh"])
def test_a_source_emptied_empties_the_table_a_whole_read_replaces_only_when_allowed(
        how: str, shop: str, project_dir: Path, tmp_path: Path) -> None:
    """A whole read with no row left the old rows in place and said success. It stops now,
    and empties the table with --allow-mass-delete, as the guard on reconciled deletes."""
    spec = project_dir / "pipelines" / "vouchers.yml"
    text = "name: vouchers\nsource:\n  connection: shop\n  table: vouchers\n" \
           "  primary_key: [voucher_id]\nlake:\n  path: vouchers\n"
    spec.write_text(text + ("warehouse:\n  write_disposition: replace\n" if how == "replace"
                            else ""))
    execute(shop, "CREATE TABLE vouchers (voucher_id INTEGER PRIMARY KEY, code VARCHAR(16))",
            "INSERT INTO vouchers VALUES (1, 'A'), (2, 'B')")
    run_json("--pipeline", "vouchers", "--no-dbt")
    execute(shop, "DELETE FROM vouchers")
    flags = ["--full-refresh"] if how == "full-refresh" else []

    kept = cli("run", "--pipeline", "vouchers", "--no-dbt", *flags)
    rows_kept = warehouse_rows(tmp_path, "SELECT count(*) FROM landing.vouchers")
    emptied = run_json("--pipeline", "vouchers", "--no-dbt", "--allow-mass-delete",
                       *flags)["vouchers"]

    assert kept.exit_code == 1
    unfinished = (" (the full refresh is not finished: the next run reads the source whole "
                  "again)") if how == "full-refresh" else ""
    assert ("error: vouchers: load: the source returned no rows, so landing.vouchers keeps its "
            "2 row(s); check that the source read is complete, or run with --allow-mass-delete "
            f"to empty it{unfinished}") in kept.output.splitlines(), kept.output
    assert rows_kept == [(2,)]
    assert emptied["status"] == "success", emptied["error"]
    assert emptied["warnings"] == [
        "vouchers: the source returned no rows: removed the 2 row(s) of landing.vouchers"]
    assert warehouse_rows(tmp_path, "SELECT count(*) FROM landing.vouchers") == [(0,)]


def test_a_first_whole_read_of_an_empty_source_succeeds_with_nothing_to_load(
        shop: str, project_dir: Path) -> None:
    (project_dir / "pipelines" / "vouchers.yml").write_text(
        "name: vouchers\nsource:\n  connection: shop\n  table: vouchers\n"
        "  primary_key: [voucher_id]\nlake:\n  path: vouchers\n"
        "warehouse:\n  write_disposition: replace\n")
    execute(shop, "CREATE TABLE vouchers (voucher_id INTEGER PRIMARY KEY, code VARCHAR(16))")

    record = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    assert record["status"] == "success", record["error"]
    assert record["rows_loaded"] == 0
