"""`init --all` on a PostgreSQL schema shaped by nobody here (found by an onboarding trial):
partitions and inheriting children, tables whose names read alike, reserved words as
columns, generated names that meet, an edited pipeline on a re-run, and a numeric with no
precision declared wider afterwards. Each landed rows twice, lost a table, or failed dbt."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import yaml

from tests.e2e.helpers import cli, run_json
from tests.integration.test_server_sources import server_database, server_rows
from tests.onboarding.northwind import execute
from tests.onboarding.test_init_all import DEMO

DDL = [
    # partitions and an inheriting child: the parent's read returns their rows
    ("CREATE TABLE sales (sale_id int, sale_date date NOT NULL, amount numeric(10,2), "
    "PRIMARY KEY (sale_id, sale_date)) PARTITION BY RANGE (sale_date)"),
    "CREATE TABLE sales_2023 PARTITION OF sales FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')",
    "CREATE TABLE sales_2024 PARTITION OF sales FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "CREATE TABLE vehicles (vehicle_id int PRIMARY KEY, label text)",
    "CREATE TABLE cars (doors int) INHERITS (vehicles)",
    # a key by unique index alone (no constraint), and a partial one that is no key
    "CREATE TABLE tags (code text NOT NULL, label text)",
    "CREATE UNIQUE INDEX tags_code ON tags (code)",
    "CREATE TABLE drafts (code text, label text)",
    "CREATE UNIQUE INDEX drafts_code ON drafts (code) WHERE label IS NOT NULL",
    # two tables, one pipeline name
    'CREATE TABLE "OrderLines" (line_id int PRIMARY KEY, qty int)',
    "CREATE TABLE order_lines (line_id int PRIMARY KEY, note text)",
    # reserved words as columns, a dimension with a column named like its surrogate key, a
    # fact with two date columns whose keys read alike
    'CREATE TABLE regions (region_id int PRIMARY KEY, regions_key text, "group" text)',
    ('CREATE TABLE shipments (shipment_id int PRIMARY KEY, "order" int, "user" text, '
    'region_id int REFERENCES regions (region_id), ship_date date, ship timestamp, '
    '"select" date, raw_total numeric)'),
    # a legacy char(n) code as key and reference: both read padded ('EU    ')
    "CREATE TABLE depots (code char(6) PRIMARY KEY, city text)",
    "CREATE TABLE pallets (pallet_id int PRIMARY KEY, depot char(6) REFERENCES depots (code))",
]
DATA = [
    ("INSERT INTO sales VALUES (1, '2023-05-01', 10.50), (2, '2024-02-01', 3.25), "
    "(3, '2024-03-01', 7.00)"),
    "INSERT INTO tags VALUES ('a', 'x'), ('b', NULL)",
    "INSERT INTO vehicles VALUES (1, 'truck')",
    "INSERT INTO cars VALUES (2, 'sedan', 4)",
    "INSERT INTO \"OrderLines\" VALUES (1, 5), (2, 6)",
    "INSERT INTO order_lines VALUES (1, 'x')",
    "INSERT INTO regions VALUES (1, 'north', 'a'), (2, 'south', NULL)",
    ("INSERT INTO shipments VALUES (1, 10, 'ann', 1, '2024-01-02', '2024-01-03 10:00', "
    "'2024-01-04', 1 / 7.0), (2, 11, 'bob', 2, NULL, '2024-02-01', NULL, 2.5)"),
    "INSERT INTO depots VALUES ('EU', 'Lyon'), ('NA', 'Reno')",
    "INSERT INTO pallets VALUES (1, 'EU'), (2, 'NA'), (3, NULL)",
]


def landed(warehouse: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_an_unshaped_schema_lands_every_row_once_and_builds_its_marts(
        project_dir: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    with server_database("postgresql") as url:
        execute(url, DDL + DATA)
        (project_dir / "sources" / "odd.yml").write_text(f"name: odd\nurl: {url}\n")

        init = cli("init", "--connection", "odd", "--all")
        # 1/7.0 holds 20 decimals: the first read refuses decimal(38,9) and says to declare
        # them. Declared so, the pipeline file is a person's now.
        spec_path = project_dir / "pipelines" / "shipments.yml"
        spec = yaml.safe_load(spec_path.read_text())
        for column in spec["columns"]:
            if column["name"] == "raw_total":
                column["type"] = "decimal(38,20)"
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        first = run_json("--all")
        exact = server_rows(url, "SELECT raw_total::text FROM shipments ORDER BY shipment_id")
        # The source gains a column the edited pipeline does not declare.
        execute(url, ["ALTER TABLE shipments ADD COLUMN weight int",
                      'CREATE TABLE "Regions" (id int PRIMARY KEY)'])
        again = cli("init", "--connection", "odd", "--all")
        second = run_json("--all", "--full-refresh")

    assert init.exit_code == 0, init.output
    pipelines = {p.stem for p in (project_dir / "pipelines").glob("*.yml")} - DEMO
    assert pipelines == {"order_lines", "order_lines_2", "regions", "sales", "shipments",
                         "vehicles", "regions_2", "tags", "depots", "pallets"}, init.output
    assert "skipped table drafts: table 'drafts' has no primary key or unique column" \
        in init.output
    assert yaml.safe_load((project_dir / "pipelines" / "tags.yml").read_text())[
        "source"]["primary_key"] == ["code"]
    assert "note: order_lines: onboarded as order_lines_2 (order_lines is taken)" in init.output
    assert "sales_2023: a partition of sales, whose pipeline reads its rows" in init.output
    assert "cars: inherits from vehicles" in init.output
    assert {r["status"] for r in first.values()} == {"success"}, first
    assert all(r["dbt"]["status"] == "success" for r in first.values()), first
    # every row once: the partitions' rows through their parent only
    assert landed(warehouse, "SELECT count(*) FROM landing.sales") == [(3,)]
    assert landed(warehouse, "SELECT count(*) FROM landing.vehicles") == [(2,)]
    assert landed(warehouse, "SELECT line_id, qty FROM landing.order_lines ORDER BY 1") == [
        (1, 5), (2, 6)]
    assert landed(warehouse, "SELECT line_id, note FROM landing.order_lines_2") == [(1, "x")]
    # reserved words reach the marts; keys that read alike are numbered
    assert landed(warehouse, 'SELECT "order", "user" FROM staging.stg_shipments '
                             "ORDER BY 1") == [(10, "ann"), (11, "bob")]
    assert landed(warehouse, 'SELECT "order", select_date_key FROM marts.fact_shipments '
                             "ORDER BY 1") == [(10, 20240104), (11, -1)]
    fact_columns = [r[0] for r in landed(warehouse, "DESCRIBE marts.fact_shipments")]
    assert {"ship_date_key", "ship_date_key_2", "select_date_key", "region_key"} <= \
        set(fact_columns), fact_columns
    assert landed(warehouse, "SELECT regions_key, regions_sk IS NOT NULL FROM "
                             "marts.dim_regions WHERE region_id = 1") == [("north", True)]
    # a padded reference meets its padded key: no pallet goes to the unknown member
    assert landed(warehouse, "SELECT d.city FROM marts.fact_pallets f JOIN marts.dim_depots d "
                             "ON f.depot_key = d.depots_key ORDER BY f.pallet_id") == [
        ("Lyon",), ("Reno",), (None,)]
    # a table that reads like an onboarded one gets a new name; the pipeline keeps its table
    assert "note: Regions: onboarded as regions_2 (regions is taken)" in again.output
    assert yaml.safe_load((project_dir / "pipelines" / "regions.yml").read_text())[
        "source"]["table"] == "regions"
    # the edited pipeline is kept, and the models follow it (not the column it lacks)
    assert again.exit_code == 0, again.output
    assert "skipped pipelines/shipments.yml: not written by framework init" in again.output
    assert {r["status"] for r in second.values()} == {"success"}, second
    assert all(r["dbt"]["status"] == "success" for r in second.values()), second
    # declared wider, the money lands exactly: the transform no longer casts it to (38,9)
    assert [v for (v,) in landed(warehouse, "SELECT raw_total FROM landing.shipments "
                                           "ORDER BY shipment_id")] == [
        Decimal(e) for (e,) in exact]
    assert Decimal(exact[0][0]) != round(Decimal(exact[0][0]), 9)
