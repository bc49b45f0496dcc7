"""`framework init`: a table the project has never seen, onboarded and run with no file written
by hand; existing files are never overwritten."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import yaml

from framework.project import Project
from framework.spec.columns import rules
from tests.e2e.helpers import cli, execute, run_json
from tests.onboarding.conftest import TABLE, connect_project

NEW_FILES = (f"pipelines/{TABLE}.yml", f"pipelines/sql/{TABLE}.sql",
             f"dbt_ecommerce/models/staging/stg_{TABLE}.sql",
             f"dbt_ecommerce/models/staging/stg_{TABLE}.yml")
LANDING_TYPES = {
    "account_id": "INTEGER", "email": "VARCHAR", "tier": "VARCHAR", "points": "INTEGER",
    "lifetime_points": "BIGINT", "balance": "DECIMAL(10,2)", "score": "DOUBLE",
    "active": "BOOLEAN", "opened_on": "DATE", "created_at": "TIMESTAMP",
    "modified_at": "TIMESTAMP", "_load_id": "VARCHAR", "_loaded_at": "TIMESTAMP",
}


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_init_onboards_a_new_table_that_runs_to_the_warehouse_and_dbt(
        new_source: str, project_dir: Path, tmp_path: Path) -> None:
    before = snapshot(project_dir)

    result = cli("init", TABLE, "--connection", "loyalty")

    assert result.exit_code == 0, result.output
    after = snapshot(project_dir)
    assert sorted(set(after) - set(before)) == sorted(NEW_FILES)
    changed = [p for p in before if before[p] != after.get(p)]
    assert changed == ["dbt_ecommerce/models/sources.yml"]
    text = (project_dir / NEW_FILES[0]).read_text()
    assert text.startswith("# yaml-language-server: $schema=../pipeline.schema.json\n")
    spec = yaml.safe_load(text)
    assert spec["source"] == {"connection": "loyalty", "table": TABLE,
                              "primary_key": ["account_id"],
                              "incremental": {"cursor": "modified_at", "on_null": "fail",
                                              "lag": "10m"}}
    assert spec["transform"] == {"engine": "duckdb", "sql_file": f"sql/{TABLE}.sql"}
    assert spec["dbt"] == {"select": [f"stg_{TABLE}+"]}
    sqlite = new_source.startswith("sqlite")
    integer = "bigint" if sqlite else "integer"  # SQLite's INTEGER is 64-bit
    assert spec["columns"][0] == {"name": "account_id", "type": integer, "nullable": False,
                                  "unique": True, "description": "Primary key."}
    assert {c["name"]: c["type"] for c in spec["columns"]}["balance"] == "decimal(10,2)"
    assert cli("validate").exit_code == 0

    records = run_json("--pipeline", TABLE)

    record = records[TABLE]
    assert record["status"] == "success", record
    assert record["rows_extracted"] == record["rows_loaded"] == 25
    assert record["dbt"]["status"] == "success"  # the run's shared dbt build
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        types = dict(con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                                 f"WHERE table_schema = 'landing' AND table_name = '{TABLE}' "
                                 "ORDER BY ordinal_position").fetchall())
        landed = con.execute(f"SELECT account_id, email, balance, lifetime_points FROM "
                             f"landing.{TABLE} ORDER BY account_id").fetchall()
        staged = con.execute(f"SELECT count(*) FROM staging.stg_{TABLE}").fetchone()
    finally:
        con.close()
    integers = {"account_id": "BIGINT", "points": "BIGINT"} if sqlite else {}
    assert types == LANDING_TYPES | integers
    assert landed[0] == (1, "member1@example.com", Decimal("0.25"), 10_000_000_001)
    assert [row[0] for row in landed] == list(range(1, 26))
    assert staged == (25,)


def test_init_refuses_to_overwrite_any_file(sqlite_source: str, project_dir: Path) -> None:
    stray = project_dir / "pipelines" / "sql" / f"{TABLE}.sql"
    stray.write_text("SELECT 1 FROM batch\n")
    before = snapshot(project_dir)

    refused = cli("init", TABLE, "--connection", "loyalty")

    assert refused.exit_code == 1
    assert refused.output.strip() == (f"error: pipelines/sql/{TABLE}.sql already exists; "
                                      "framework init never overwrites a file (remove it, or "
                                      "pass another --name)")
    assert snapshot(project_dir) == before
    stray.unlink()
    assert cli("init", TABLE, "--connection", "loyalty").exit_code == 0
    written = snapshot(project_dir)

    again = cli("init", TABLE, "--connection", "loyalty")

    assert again.exit_code == 1
    assert again.output.strip() == (f"error: pipelines/{TABLE}.yml already exists; framework "
                                    "init never overwrites a file (remove it, or pass another "
                                    "--name)")
    assert snapshot(project_dir) == written
    assert cli("init", TABLE, "--connection", "loyalty", "--name", "orders").exit_code == 1


def test_init_with_another_name_and_no_key_constraint(project_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A table without a primary key needs --primary-key; --name names the pipeline; with no
    column named like updated_at, the timestamp column holding the latest value is the cursor."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE Visits (visit_id INTEGER NOT NULL, page TEXT, "
                             "seen DATETIME, synced DATETIME)"))
        conn.execute(sa.text("INSERT INTO Visits VALUES (1, '/', '2024-01-01 00:00:00.000000', "
                             "'2024-05-01 00:00:00.000000')"))
    engine.dispose()
    connect_project(project_dir, url, monkeypatch)

    missing = cli("init", "Visits", "--connection", "loyalty", "--name", "visits")
    assert missing.exit_code == 1
    assert "has no primary key or unique column" in missing.output
    assert "--primary-key" in missing.output
    done = cli("init", "Visits", "--connection", "loyalty", "--name", "visits",
               "--primary-key", "visit_id")

    assert done.exit_code == 0, done.output
    spec = yaml.safe_load((project_dir / "pipelines" / "visits.yml").read_text())
    assert spec["name"] == "visits" and spec["source"]["table"] == "Visits"
    assert spec["source"]["primary_key"] == ["visit_id"]
    assert spec["source"]["incremental"]["cursor"] == "synced"
    assert "holds the latest timestamp" in done.output


@pytest.mark.parametrize(("columns", "rows", "cursor", "on_null"), [
    # the latest column holds NULLs (another, always set, would miss its changes): it, reading
    # its NULL rows every run
    ("last_active DATETIME, registered DATETIME",
     "(1, '2024-06-01 00:00:00', '2024-01-01 00:00:00'), (2, NULL, '2024-02-01 00:00:00')",
     "last_active", "include"),
    # the latest column is always set, another holds NULLs
    ("last_active DATETIME, registered DATETIME",
     "(1, '2024-06-01 00:00:00', NULL), (2, '2024-01-01 00:00:00', '2024-02-01 00:00:00')",
     "last_active", "fail"),
    # updated_at NULL until a row's first update: still the cursor (another misses updates)
    ("updated_at DATETIME, created_at DATETIME NOT NULL",
     "(1, NULL, '2024-01-01 00:00:00'), (2, '2024-03-01 00:00:00', '2024-02-01 00:00:00')",
     "updated_at", "include"),
    # an open end (a legacy 9999-12-31) is no time of change: a cursor there reads nothing
    ("valid_from DATETIME NOT NULL, valid_to DATETIME NOT NULL",
     ("(1, '2024-01-01 00:00:00', '9999-12-31 00:00:00'), "
      "(2, '2024-02-01 00:00:00', '2024-03-01 00:00:00')"),
     "valid_from", "fail"),
], ids=["latest-with-nulls", "latest-always-set", "updated-at-with-nulls", "open-end"])
def test_init_writes_a_cursor_its_first_run_can_read(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: str,
        rows: str, cursor: str, on_null: str) -> None:
    """init chose the column with the latest value and wrote `on_null: fail`: a
    `date_last_active` NULL for customers never seen again failed the first run (found by a
    trial on a WooCommerce schema)."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, "
                             f"{columns})"))
        conn.execute(sa.text(f"INSERT INTO customers VALUES {rows}"))
    engine.dispose()
    connect_project(project_dir, url, monkeypatch)

    done = cli("init", "customers", "--connection", "loyalty", "--name", "members")

    assert done.exit_code == 0, done.output
    spec = yaml.safe_load((project_dir / "pipelines" / "members.yml").read_text())
    assert (spec["source"]["incremental"]["cursor"], spec["source"]["incremental"]["on_null"]) \
        == (cursor, on_null)
    if "valid_to" in columns:
        assert "note: cursor: not valid_to, which holds dates to come (an open end is no time " \
            "of change)" in done.output
    record = run_json("--pipeline", "members", "--no-dbt")["members"]
    assert (record["status"], record["rows_loaded"]) == ("success", 2), record["error"]


def test_an_empty_table_still_gets_a_cursor_and_sqlite_text_never_pads(tmp_path: Path) -> None:
    """A table with no rows yet (a schema just made) got no cursor once dates to come were
    passed over: every run would read it whole. SQLite compares 'a ' and 'a' apart: its
    CHAR(3) must not join a fact on rtrim (a key 'a' and 'a ' both would double the row)."""
    from framework.onboarding.init import read_table

    url = f"sqlite:///{tmp_path / 'new.db'}"
    execute(url, "CREATE TABLE visits (visit_id INTEGER PRIMARY KEY, code CHAR(3), "
                 "seen DATETIME, synced DATETIME)")
    engine = sa.create_engine(url)
    try:
        table = read_table(engine, sa.inspect(engine), "sqlite", "lab", "visits", None, [])
    finally:
        engine.dispose()

    assert table.cursor == "synced"
    assert [c.pads for c in table.columns] == [False] * 4


def test_init_names_an_unknown_table(sqlite_source: str) -> None:
    result = cli("init", "loyalty_acounts", "--connection", "loyalty")
    assert result.exit_code == 1
    assert result.output.strip() == ("error: no table 'loyalty_acounts' in source 'loyalty' "
                                     f"(did you mean '{TABLE}'?)")


def test_init_takes_key_and_cursor_names_that_differ_from_the_lake_by_case_alone(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table another program made with upper-case names (`ID`, `Updated_At`): the lake writes
    them `id` and `updated_at`, which both warehouses match, as the spec validator allows; a
    camel-case key (`VisitId`, `visit_id` in the lake) is refused with the spec's reason."""
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    execute(url, 'CREATE TABLE "Visits" ("ID" INTEGER PRIMARY KEY, "Page" TEXT, "Updated_At" '
                 'DATETIME)', 'CREATE TABLE "Clicks" ("ClickId" INTEGER PRIMARY KEY, "updated_at" '
                 'DATETIME)', *(f"INSERT INTO \"Visits\" VALUES ({n}, '/p{n}', "
                               f"'2024-01-0{n} 10:00:00')" for n in range(1, 6)))
    connect_project(project_dir, url, monkeypatch)

    done = cli("init", "Visits", "--connection", "loyalty", "--name", "visits")

    assert done.exit_code == 0, done.output
    spec = yaml.safe_load((project_dir / "pipelines" / "visits.yml").read_text())
    assert spec["source"]["primary_key"] == ["ID"]
    assert spec["source"]["incremental"]["cursor"] == "Updated_At"
    assert cli("validate").exit_code == 0
    checks = [(r.kind, r.columns) for r in rules(Project.discover(project_dir).pipeline("visits"))]
    assert ("not_null", ("id",)) in checks and ("unique", ("id",)) in checks  # the lake's name
    assert not [c for c in checks if "ID" in c[1]]  # once: the key is its declared column
    first = run_json("--pipeline", "visits")["visits"]
    assert first["status"] == "success" and first["rows_loaded"] == 5, first
    execute(url, "UPDATE \"Visits\" SET \"Page\" = '/moved', \"Updated_At\" = "
                 "'2024-02-01 10:00:00' WHERE \"ID\" = 2")
    second = run_json("--pipeline", "visits", "--no-dbt")["visits"]
    # the changed row, and the last one again: init's lag re-reads ten minutes below the top
    assert second["status"] == "success" and second["rows_extracted"] == 2, second
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        landed = con.execute("SELECT id, page FROM landing.visits ORDER BY id").fetchall()
    finally:
        con.close()
    assert landed == [(1, "/p1"), (2, "/moved"), (3, "/p3"), (4, "/p4"), (5, "/p5")]

    refused = cli("init", "Clicks", "--connection", "loyalty", "--name", "clicks")

    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "error: table 'Clicks': 'ClickId' is stored in the lake as 'click_id' (dlt's snake_case "
        "names), where the warehouse would not find it; a primary key column needs a snake_case "
        "name: rename it in source.query (SELECT ... AS click_id)")


def test_init_keeps_a_unique_columns_values_as_written(project_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """init trims strings, but not a column a source UNIQUE constraint covers: 'a@x.com' and
    'a@x.com ' are two valid rows there, and trimmed they failed the unique check init declares
    from the constraint, quarantining the batch."""
    import sqlite3

    path = tmp_path / "users.db"
    with sqlite3.connect(path) as con:  # written by Python's sqlite3, not by the framework
        con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, "
                    "name TEXT, updated_at TEXT NOT NULL)")
        con.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", [
            (1, "a@x.com", " Ann ", "2024-01-01 00:00:00"),
            (2, "a@x.com ", "Bob", "2024-01-01 00:00:00")])
    con.close()
    connect_project(project_dir, f"sqlite:///{path}", monkeypatch)

    assert cli("init", "users", "--connection", "loyalty").exit_code == 0
    records = run_json("--pipeline", "users", "--no-dbt")

    assert records["users"]["status"] == "success", records
    con = duckdb.connect(str(project_dir.parent / "state" / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT id, email, name FROM landing.users ORDER BY id").fetchall()
    finally:
        con.close()
    assert rows == [(1, "a@x.com", "Ann"), (2, "a@x.com ", "Bob")]


def test_init_quotes_columns_named_like_sql_words_and_the_pipeline_runs(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`at` (as in AT TIME ZONE), `some`, `both` and `left` were written bare into the
    transform's SQL, which DuckDB could not parse: the onboarded pipeline failed its first
    run."""
    url = f"sqlite:///{tmp_path / 'checkins.db'}"
    execute(url, "CREATE TABLE checkins (id INTEGER PRIMARY KEY, at TIMESTAMP, some TEXT, "
                 "both INTEGER, \"left\" TEXT, updated_at TIMESTAMP)",
            "INSERT INTO checkins VALUES (1, '2024-01-01 10:00:00', 'x', 2, 'l', "
            "'2024-01-02 00:00:00')")
    connect_project(project_dir, url, monkeypatch)

    done = cli("init", "checkins", "--connection", "loyalty")
    record = run_json("--pipeline", "checkins", "--no-dbt")["checkins"]

    assert done.exit_code == 0, done.output
    assert record["status"] == "success", record["error"]


def test_a_source_column_named_loaded_at_keeps_its_values_in_staging(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The staging model init wrote selected the source's `loaded_at` and then the framework's
    load time as `loaded_at` again: DuckDB renamed the second `loaded_at_1`, so the source's
    values kept the name and the framework's time went under one nobody reads (Snowflake
    refuses the duplicate)."""
    url = f"sqlite:///{tmp_path / 'feeds.db'}"
    execute(url, "CREATE TABLE feeds (id INTEGER PRIMARY KEY, loaded_at TIMESTAMP, "
                 "updated_at TIMESTAMP)",
            "INSERT INTO feeds VALUES (1, '2020-05-05 05:05:05', '2024-01-02 00:00:00')")
    connect_project(project_dir, url, monkeypatch)

    done = cli("init", "feeds", "--connection", "loyalty")
    record = run_json("--pipeline", "feeds")["feeds"]

    assert done.exit_code == 0, done.output
    assert record["status"] == "success", record["error"]
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        staged = con.execute("SELECT * FROM staging.stg_feeds").fetchdf()
        loaded = con.execute("SELECT max(_loaded_at) FROM landing.feeds").fetchone()
    finally:
        con.close()
    assert list(staged.columns) == ["id", "loaded_at", "updated_at", "framework_loaded_at"]
    assert str(staged["loaded_at"][0]) == "2020-05-05 05:05:05"
    assert loaded is not None and staged["framework_loaded_at"][0] == loaded[0]


def test_the_staging_model_follows_a_type_changed_in_columns_after_init(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """init's staging model cast every column to the type init declared: once `columns:` said
    decimal(38,11) for a numeric without precision, landing held 0.12345678901 and the staging
    model rounded it to init's decimal(38,9), 0.123456789."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    execute(url, "CREATE TABLE entries (id INTEGER PRIMARY KEY, rate NUMERIC, "
                 "updated_at TIMESTAMP)",
            "INSERT INTO entries VALUES (1, '0.12345678901', '2024-01-02 00:00:00')")
    connect_project(project_dir, url, monkeypatch)
    assert cli("init", "entries", "--connection", "loyalty").exit_code == 0
    spec = project_dir / "pipelines" / "entries.yml"
    assert '{name: rate, type: "decimal(38,9)"' in spec.read_text(), spec.read_text()
    spec.write_text(spec.read_text().replace('type: "decimal(38,9)"', 'type: "decimal(38,11)"'))

    record = run_json("--pipeline", "entries")["entries"]

    assert record["status"] == "success", record["error"]
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        staged = con.execute("SELECT rate, typeof(rate) FROM staging.stg_entries").fetchall()
    finally:
        con.close()
    assert staged == [(Decimal("0.12345678901"), "DECIMAL(38,11)")]
