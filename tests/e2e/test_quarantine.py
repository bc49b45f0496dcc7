"""A quarantined batch blocks its pipeline until it is replayed after a fix, or released."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from framework.demo.shop import create_shop
from framework.errors import StageError
from tests.e2e.helpers import (
    cli,
    duckdb_landing_rows,
    execute,
    run_json,
    source_versions,
    vouchers_spec,
    warehouse_versions,
)


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.003, seed=13)
    return url


NON_NEGATIVE = ("  suite: payments\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: payment_value, min_value: 0}\n")


@pytest.mark.parametrize("way_out", ["replay", "release"])
def test_a_quarantined_batch_blocks_its_pipeline_until_replayed_or_released(
        way_out: str, shop: str, project_dir: Path, tmp_path: Path) -> None:
    spec = project_dir / "pipelines" / "payments.yml"
    original = spec.read_text()
    spec.write_text(original.replace("  suite: payments\n", NON_NEGATIVE))
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert run_json("--pipeline", "payments", "--no-dbt")["payments"]["status"] == "success"
    execute(shop, "UPDATE payments SET payment_value = -5, updated_at = '2031-01-01 00:00:00' "
                  "WHERE rowid = 1")
    quarantined = run_json("--pipeline", "payments", "--no-dbt")["payments"]
    load_id = quarantined["load_id"]
    assert quarantined["status"] == "quarantined", quarantined
    before = warehouse_versions(warehouse, "payments")
    execute(shop, "UPDATE payments SET payment_installments = 7, "
                  "updated_at = '2031-01-02 00:00:00' WHERE rowid = 2")  # newer source rows

    blocked = cli("run", "--pipeline", "payments", "--no-dbt")

    reason = (f"payments: blocked by quarantined batch {load_id}: "
              "expect_column_values_to_be_between(column='payment_value', min_value=0) failed: "
              "1 unexpected value(s), e.g. [Decimal('-5.00')]; nothing newer loads until it is "
              f"fixed and replayed (framework replay --pipeline payments --load-id {load_id})")
    assert blocked.exit_code == 1
    assert reason in " ".join(blocked.output.split()), blocked.output[-600:]
    assert "(framework release --pipeline payments --load-id" in " ".join(blocked.output.split())
    assert warehouse_versions(warehouse, "payments") == before  # nothing newer landed
    for shown in (cli("list"), cli("history", "--pipeline", "payments"),
                  cli("plan", "--pipeline", "payments", "--no-dbt")):
        assert reason in " ".join(shown.output.split()), shown.output
    assert '"status": "blocked"' in cli("history", "--json").output

    if way_out == "replay":  # the expectation was wrong: a negative payment is a refund
        spec.write_text(original.replace("nullable: false, min: 0,", "nullable: false,"))
        out = cli("replay", "--pipeline", "payments", "--load-id", load_id)
        assert not list((tmp_path / "state" / "lake" / "quarantine" / "payments").glob(
            f"{load_id}*")), "the replayed batch's quarantined copy is gone"
    else:  # the row was wrong: fixed in the source, the batch let go on purpose
        execute(shop, "UPDATE payments SET payment_value = 5, updated_at = '2031-01-03 00:00:00' "
                      "WHERE rowid = 1")
        out = cli("release", "--pipeline", "payments", "--load-id", load_id,
                  "--reason", "row fixed in the source")
        text = " ".join(out.output.split())
        assert f"payments: batch {load_id} released by " in text
        assert text.endswith(": row fixed in the source")
        history = cli("history", "--pipeline", "payments", "--json").output
        assert '"status": "released"' in history and "row fixed in the source" in history
    assert out.exit_code == 0, out.output

    after = run_json("--pipeline", "payments", "--no-dbt")["payments"]

    assert after["status"] == "success", after
    assert warehouse_versions(warehouse, "payments") == source_versions(shop, "payments")
    assert "blocked" not in cli("list").output


def test_release_refuses_a_batch_that_is_not_quarantined_and_wants_a_reason(
        shop: str, project_dir: Path) -> None:
    first = run_json("--pipeline", "payments", "--no-dbt")["payments"]

    loaded = cli("release", "--pipeline", "payments", "--load-id", first["load_id"],
                 "--reason", "x")
    no_reason = cli("release", "--pipeline", "payments", "--load-id", "1.2", "--reason", " ")

    assert loaded.exit_code == 1
    assert (f"payments: release: batch {first['load_id']} is not quarantined (quarantined "
            "batches: none)") in loaded.output
    assert no_reason.exit_code == 1
    assert "release: say why with --reason TEXT (it is recorded)" in no_reason.output


def test_the_stage_api_loads_nothing_past_a_batch_quarantined_after_extract(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    from framework import api
    from framework.quarantine import PipelineBlocked

    spec = project_dir / "pipelines" / "payments.yml"
    spec.write_text(spec.read_text().replace("  suite: payments\n", NON_NEGATIVE))
    first = api.extract("payments")
    api.transform("payments", first)
    api.validate("payments", first)
    api.load("payments", first)
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    before = warehouse_versions(warehouse, "payments")
    execute(shop, "UPDATE payments SET payment_value = -5, updated_at = '2031-01-01 00:00:00' "
                  "WHERE rowid = 1")
    [bad] = api.extract("payments")
    execute(shop, "UPDATE payments SET payment_installments = 7, "
                  "updated_at = '2031-01-02 00:00:00' WHERE rowid = 2")
    both = api.extract("payments")  # a second DAG run extracts before the first validates
    assert both[0] == bad and len(both) == 2
    api.transform("payments", both)
    with pytest.raises(StageError, match=f"batch {bad} quarantined"):
        api.validate("payments", [bad])

    with pytest.raises(PipelineBlocked, match=f"^payments: blocked by quarantined batch {bad}"):
        api.load("payments", both[1:])  # the newer batch, alone (a task cleared by hand)

    assert warehouse_versions(warehouse, "payments") == before


def test_blank_text_from_another_program_lands_as_null_not_quarantined(
        shop: str, tmp_path: Path) -> None:
    """A blank zip code became '00000' (lpad of ''), and a blank state failed the state's
    length check, quarantining customers and blocking every pipeline after it."""
    execute(shop, "INSERT INTO customers VALUES ('c-blank', 'u-blank', '', '  ', '', "
                  "'2030-01-01 00:00:00'), ('c-space', 'u-space', '   ', 'x', '  ', "
                  "'2030-01-01 00:00:00')")

    record = run_json("--pipeline", "customers", "--no-dbt")["customers"]

    import duckdb

    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT customer_id, customer_zip_code_prefix, customer_city, "
                           "customer_state FROM landing.customers WHERE customer_id IN "
                           "('c-blank', 'c-space') ORDER BY 1").fetchall()
    finally:
        con.close()
    assert record["status"] == "success", record["error"]
    assert rows == [("c-blank", None, None, None), ("c-space", None, "x", None)]



def test_an_order_dated_1900_leaves_every_real_date_its_row_in_dim_dates(
        shop: str, tmp_path: Path) -> None:
    """dim_dates spans at most dim_dates_max_days from the first date: a sentinel date another
    program wrote (1900-01-01) cut the real dates off, and every fact's date-key test failed
    the whole build."""
    for order_id, day in (("o-1900", "1900-01-01"), ("o-1899", "1899-12-31")):
        execute(shop, "INSERT INTO orders (order_id, customer_id, order_status, "
                      f"order_purchase_timestamp, updated_at) SELECT '{order_id}', customer_id, "
                      f"'delivered', '{day} 00:00:00', updated_at FROM orders LIMIT 1")

    records = run_json("--all")

    import duckdb

    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        missing = con.execute("SELECT count(*) FROM marts.fact_orders f LEFT JOIN "
                              "marts.dim_dates d ON f.purchase_date_key = d.date_key "
                              "WHERE d.date_key IS NULL").fetchone()
        first = con.execute("SELECT min(date_day) FROM marts.dim_dates").fetchone()
        # every day of the real orders' span, not only the days an order holds
        real = con.execute("SELECT count(*), min(date_day), max(date_day) FROM marts.dim_dates "
                           "WHERE date_day >= (SELECT min(purchase_date) FROM marts.fact_orders "
                           "WHERE purchase_date > DATE '2000-01-01')").fetchone()
        weekdays = con.execute("SELECT bool_and(day_of_week_iso = isodow(date_day) AND "
                               "day_name = dayname(date_day)) FROM marts.dim_dates").fetchone()
        months = con.execute("SELECT count(*), count(DISTINCT month_start_date), "
                             "min(month_start_date), max(month_start_date) "
                             "FROM marts.mart_revenue_monthly").fetchone()
    finally:
        con.close()
    assert {r["status"] for r in records.values()} == {"success"}, {
        n: r["error"] for n, r in records.items()}
    assert missing == (0,) and str(first[0]) == "1899-12-31"
    assert real[0] == (real[2] - real[1]).days + 1
    assert weekdays == (True,)  # 1899-12-31 is a Sunday (7), not day 0
    # one row per month from the first purchase month to the last, the years between included
    count, distinct, first_month, last_month = months
    assert str(first_month) == "1899-12-01"
    assert count == distinct == (last_month.year - 1899) * 12 + last_month.month - 12 + 1


def test_a_source_id_equal_to_the_unknown_member_key_is_named_and_can_be_moved(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """A guest customer or product '-1' (a legacy system's own sentinel) met the unknown
    member's key: the dimension held '-1' twice and its unique test failed every build, with
    nothing saying why. Now a test names the id, and the project moves the unknown key."""
    execute(shop, "CREATE TEMP TABLE guest AS SELECT * FROM products LIMIT 1",
            "UPDATE guest SET product_id = '-1'", "INSERT INTO products SELECT * FROM guest",
            "UPDATE order_items SET product_id = '-1' WHERE rowid IN "
            "(SELECT rowid FROM order_items LIMIT 3)")

    failed = run_json("--pipeline", "products")["products"]  # a scheduled task runs one

    assert failed["models_status"] != "built"
    assert "assert_unknown_member_key_is_no_product_id" in str(failed["dbt"]), failed["dbt"]
    settings = project_dir / "dbt_ecommerce" / "dbt_project.yml"
    settings.write_text(settings.read_text().replace("unknown_member_key: '-1'",
                                                     "unknown_member_key: '(unknown)'"))

    records = run_json("--all", "--full-refresh")

    import duckdb

    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        keys = con.execute("SELECT product_id, is_unknown_member FROM marts.dim_products "
                           "WHERE product_id IN ('-1', '(unknown)') ORDER BY 1").fetchall()
        lines = con.execute("SELECT count(*) FROM marts.fact_order_items "
                            "WHERE product_key = '-1'").fetchone()
    finally:
        con.close()
    assert {r["models_status"] for r in records.values()} == {"built"}, {
        n: r["dbt"] for n, r in records.items()}
    assert keys == [("(unknown)", True), ("-1", False)]
    assert lines == (3,)


KEY_DECLARED = {
    "columns": "columns:\n  - {name: voucher_id, type: integer}\n"
               "  - {name: code, type: string, nullable: false}\n"
               "  - {name: updated_at, type: timestamp}\n",
    "written": "  expectations:\n    - expect_column_values_to_not_be_null: {column: voucher_id}\n"
               "    - expect_column_values_to_not_be_null: {column: code}\n",
    "undeclared": "  expectations:\n    - expect_column_values_to_not_be_null: {column: code}\n",
    "mostly": "  expectations:\n"
              "    - expect_column_values_to_not_be_null: {column: voucher_id, mostly: 0.1}\n"
              "    - expect_column_values_to_not_be_null: {column: code}\n"}


@pytest.mark.parametrize("how", sorted(KEY_DECLARED))
def test_a_null_key_is_quarantined_even_when_the_suite_only_warns(
        how: str, shop: str, project_dir: Path, tmp_path: Path) -> None:
    """A row without its key loaded under `severity: warn`: a merge never matched it, so each
    replay added another copy, and reconcile counted it missing and extra for good. The key's
    check fails the batch whether `columns:` implies it, the suite writes it (without a
    severity of its own, or with `mostly`), or nothing declares it."""
    (project_dir / "pipelines" / "vouchers.yml").write_text(
        vouchers_spec() + "quality:\n  severity: warn\n" + KEY_DECLARED[how])
    execute(shop, "CREATE TABLE vouchers (voucher_id INTEGER, code VARCHAR(16), "
                  "updated_at TIMESTAMP NOT NULL)",
            "INSERT INTO vouchers VALUES (1, NULL, '2031-01-01 00:00:00'), "
            "(NULL, 'B', '2031-01-01 00:00:00')")

    record = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    assert record["status"] == "quarantined", record["error"]
    assert "expect_column_values_to_not_be_null(column='voucher_id') failed" in record["error"]
    assert "code" not in record["error"]  # the other column's check still only warns
    assert any("expect_column_values_to_not_be_null(column='code')" in w
               for w in record["warnings"]), record["warnings"]
    assert record["rows_loaded"] == 0


def test_replaying_a_loaded_batch_that_fails_validation_now_changes_nothing(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """The batch was relabelled quarantined while its rows stayed in the warehouse: the
    pipeline was blocked, and `release` said its rows stay out, which they did not."""
    first = run_json("--pipeline", "payments", "--no-dbt")["payments"]
    spec = project_dir / "pipelines" / "payments.yml"
    spec.write_text(spec.read_text().replace("  suite: payments\n", NON_NEGATIVE.replace(
        "min_value: 0", "min_value: 1000000")))
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    before = warehouse_versions(warehouse, "payments")

    replayed = cli("replay", "--pipeline", "payments", "--load-id", first["load_id"])

    text = " ".join(replayed.output.split())
    assert replayed.exit_code == 1, replayed.output
    assert (f"payments: validate: batch {first['load_id']} is loaded, and fails validation now: "
            "expect_column_values_to_be_between(column='payment_value', min_value=1000000) "
            "failed") in text, text
    assert "it stays loaded as it was" in text
    assert warehouse_versions(warehouse, "payments") == before
    assert "blocked" not in cli("list").output
    assert '"status": "quarantined"' not in cli("history", "--pipeline", "payments",
                                                "--json").output.split("replay")[0]
    con = duckdb.connect(str(warehouse))
    try:
        assert con.execute("SELECT status FROM landing._framework_batches WHERE load_id = ?",
                           [first["load_id"]]).fetchall() == [("loaded",)]
    finally:
        con.close()


def test_a_transform_that_renames_the_key_is_named_and_its_batch_loads_once_fixed(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """A pipeline without `columns:` whose SELECT renamed its key failed with DuckDB's
    "Referenced column not found" on the key's implied not-null check: the error now names the
    key and the SQL to fix, and the batch waits in the lake until it is fixed."""
    (project_dir / "pipelines" / "vouchers.yml").write_text(
        vouchers_spec() + "transform:\n  engine: duckdb\n"
        "  sql: SELECT voucher_id AS id, code, updated_at FROM batch\n"
        "warehouse:\n  write_disposition: append\n")
    execute(shop, "CREATE TABLE vouchers (voucher_id INTEGER, code VARCHAR(16), "
                  "updated_at TIMESTAMP NOT NULL)",
            "INSERT INTO vouchers VALUES (1, 'A', '2031-01-01 00:00:00'), "
            "(2, 'B', '2031-01-02 00:00:00')")

    failed = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    assert failed["status"] == "failed"
    assert failed["error"] == (
        "vouchers: validate: the batch has no column 'voucher_id' of source.primary_key "
        "[voucher_id], on which the warehouse table is keyed: keep it in transform.sql's "
        "SELECT under that name")
    spec = project_dir / "pipelines" / "vouchers.yml"
    spec.write_text(spec.read_text().replace("voucher_id AS id", "voucher_id"))
    fixed = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]
    assert fixed["status"] == "success", fixed["error"]
    landed = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "vouchers")
    assert sorted((r["voucher_id"], r["code"]) for r in landed) == [(1, "A"), (2, "B")]
