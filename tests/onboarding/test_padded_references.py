"""A reference that meets its key only as the source compares text: MariaDB's PAD SPACE
collations ignore trailing spaces, so a store's `region_code` 'EU ' refers to region 'EU'.
init keeps keys and references as written (a trimmed reference missed a padded char(n) key),
so the fact's join and the reference test compare them as the source does."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.e2e.helpers import cli, run_json
from tests.integration.test_server_sources import execute, server_database


def test_a_reference_with_trailing_spaces_meets_its_key_on_mariadb(
        project_dir: Path, tmp_path: Path) -> None:
    with server_database("mariadb") as url:
        execute(url, "CREATE TABLE region (code varchar(6) PRIMARY KEY, name text NOT NULL) "
                     "COLLATE utf8mb4_general_ci",
                "CREATE TABLE store (id int PRIMARY KEY, region_code varchar(6) NOT NULL, "
                "FOREIGN KEY (region_code) REFERENCES region (code)) COLLATE utf8mb4_general_ci",
                "INSERT INTO region VALUES ('EU', 'Europe'), ('NA', 'North America')",
                "INSERT INTO store VALUES (1, 'EU '), (2, 'NA'), (3, 'eu')")
        (project_dir / "sources" / "legacy.yml").write_text(f"name: legacy\nurl: {url}\n")
        init = cli("init", "--connection", "legacy", "--all")
        records = run_json("--pipeline", "region", "--pipeline", "store")

    assert init.exit_code == 0, init.output
    assert {r["status"] for r in records.values()} == {"success"}, records
    # dbt's reference test ignores the padding too: only 'eu' (another case) is counted
    [warning] = records["store"]["dbt"]["warnings"]
    assert (warning["name"], warning["failures"]) == (
        "relationships_ignoring_trailing_spaces: stg_store.region_code", 1)
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        # as written in landing; every store in its region in the mart ('eu' is 'EU' to a
        # case-insensitive collation too, which no warehouse join here follows: unknown)
        assert con.execute("SELECT id, region_code FROM landing.store ORDER BY id").fetchall() \
            == [(1, "EU "), (2, "NA"), (3, "eu")]
        assert con.execute("SELECT f.id, d.name FROM marts.fact_store f JOIN marts.dim_region d "
                           "ON f.region_key = d.region_key ORDER BY f.id").fetchall() == [
            (1, "Europe"), (2, "North America"), (3, None)]
    finally:
        con.close()
