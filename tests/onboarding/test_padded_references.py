"""A reference that meets its key only as the source compares text: MariaDB's default
collations ignore trailing spaces (PAD SPACE) and case (`_ci`), so a store's `region_code`
'EU ' or 'eu' refers to region 'EU'. init keeps keys and references as written (a trimmed
reference missed a padded char(n) key), so the fact's join and the reference test compare them
as the source does; a binary collation's column, as written."""

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
                "INSERT INTO store VALUES (1, 'EU '), (2, 'NA'), (3, 'eu')",
                "CREATE TABLE tag (code varchar(6) PRIMARY KEY) COLLATE utf8mb4_bin",
                "CREATE TABLE label (id int PRIMARY KEY, tag_code varchar(6), "
                "FOREIGN KEY (tag_code) REFERENCES tag (code)) COLLATE utf8mb4_bin",
                "INSERT INTO tag VALUES ('a'), ('A')",
                "INSERT INTO label VALUES (1, 'a'), (2, 'A')")
        (project_dir / "sources" / "legacy.yml").write_text(f"name: legacy\nurl: {url}\n")
        init = cli("init", "--connection", "legacy", "--all")
        records = run_json("--all")

    assert init.exit_code == 0, init.output
    assert {r["status"] for r in records.values()} == {"success"}, records
    assert records["store"]["dbt"]["warnings"] == []  # the reference test compares alike
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        # as written in landing; every store in its region in the mart
        assert con.execute("SELECT id, region_code FROM landing.store ORDER BY id").fetchall() \
            == [(1, "EU "), (2, "NA"), (3, "eu")]
        assert con.execute("SELECT f.id, d.name FROM marts.fact_store f JOIN marts.dim_region d "
                           "ON f.region_key = d.region_key ORDER BY f.id").fetchall() == [
            (1, "Europe"), (2, "North America"), (3, "Europe")]
        # a binary collation's keys 'a' and 'A' are two: each label meets its own
        assert con.execute("SELECT f.id, d.code FROM marts.fact_label f JOIN marts.dim_tag d "
                           "ON f.tag_key = d.tag_key ORDER BY f.id").fetchall() == [
            (1, "a"), (2, "A")]
    finally:
        con.close()
