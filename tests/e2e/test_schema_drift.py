"""Schema drift in the source under each contract: never a silent change."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from tests.conftest import service_unavailable
from tests.e2e.helpers import cli, run_json

SPEC = """\
name: gadgets
source:
  connection: gadgets
  table: gadgets
  primary_key: [gadget_id]
  incremental: {cursor: updated_at}
lake:
  path: gadgets
warehouse:
  contract: CONTRACT
"""


def gadgets(project_dir: Path, url: str, contract: str) -> sa.Engine:
    (project_dir / "sources" / "gadgets.yml").write_text(f"name: gadgets\nurl: {url}\n")
    (project_dir / "pipelines" / "gadgets.yml").write_text(SPEC.replace("CONTRACT", contract))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS gadgets"))
        conn.execute(sa.text("CREATE TABLE gadgets (gadget_id INTEGER PRIMARY KEY, "
                             "name VARCHAR(20), price NUMERIC(8, 2), updated_at TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO gadgets VALUES (1, 'a', 1.50, '2020-01-01 00:00:00.000000'), "
                             "(2, 'b', 2.25, '2020-01-02 00:00:00.000000')"))
    return engine


def change(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def landed(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def lake_batches(tmp_path: Path) -> int:
    return len(list((tmp_path / "state" / "lake" / "raw" / "gadgets").glob("*.parquet")))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gadgets.db'}"


def test_a_new_column_under_evolve_flows_to_the_warehouse_with_a_warning(
        project_dir: Path, sqlite_url: str, tmp_path: Path) -> None:
    engine = gadgets(project_dir, sqlite_url, "evolve")
    run_json("--pipeline", "gadgets", "--no-dbt")
    change(engine, "ALTER TABLE gadgets ADD COLUMN colour VARCHAR(10) DEFAULT 'blue'",
           "UPDATE gadgets SET colour = 'red', updated_at = '2021-01-01 00:00:00' WHERE gadget_id = 2")

    record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]
    before_refresh = landed(tmp_path, "SELECT gadget_id, colour FROM landing.gadgets ORDER BY 1")
    refreshed = run_json("--pipeline", "gadgets", "--no-dbt", "--full-refresh")["gadgets"]

    assert record["status"] == "success"
    assert ("gadgets: source schema changed: new column(s) colour (rows loaded before keep "
            "NULL in the new column until they change; run once with --full-refresh to fill "
            "them)") in record["warnings"]
    assert any("added column(s) colour" in w for w in record["warnings"])
    # the default moved no cursor: row 1, below the boundary, was not read again
    assert before_refresh == [(1, None), (2, "red")]
    assert refreshed["status"] == "success", refreshed["error"]
    assert landed(tmp_path, "SELECT gadget_id, colour FROM landing.gadgets ORDER BY 1") == \
        [(1, "blue"), (2, "red")]


def test_a_new_column_the_transform_does_not_select_is_named_with_where_to_select_it(
        project_dir: Path, sqlite_url: str, tmp_path: Path) -> None:
    """`init` writes a SELECT naming each column: under evolve, a new source column stopped in
    the raw zone while the run's warning suggested it flowed on."""
    engine = gadgets(project_dir, sqlite_url, "evolve")
    spec = project_dir / "pipelines" / "gadgets.yml"
    spec.write_text(spec.read_text() + "transform:\n  sql: SELECT gadget_id, name, price, "
                    "updated_at FROM batch\n")
    run_json("--pipeline", "gadgets", "--no-dbt")
    change(engine, "ALTER TABLE gadgets ADD COLUMN colour VARCHAR(10)",
           "UPDATE gadgets SET colour = 'red', updated_at = '2021-01-01 00:00:00' WHERE gadget_id = 1")

    record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert record["status"] == "success"
    assert ("gadgets: source schema changed: new column(s) colour (a new column reaches the "
            "warehouse once the transform selects it: transform.sql) (rows loaded before keep "
            "NULL in the new column until they change; run once with --full-refresh to fill "
            "them)") in record["warnings"]


def test_a_new_column_under_freeze_stops_before_anything_is_written(
        project_dir: Path, sqlite_url: str, tmp_path: Path) -> None:
    engine = gadgets(project_dir, sqlite_url, "freeze")
    run_json("--pipeline", "gadgets", "--no-dbt")
    change(engine, "ALTER TABLE gadgets ADD COLUMN colour VARCHAR(10)",
           "UPDATE gadgets SET colour = 'red', updated_at = '2021-01-01 00:00:00' WHERE gadget_id = 1")

    result = cli("run", "--pipeline", "gadgets", "--no-dbt")

    assert result.exit_code == 1
    assert ("gadgets: extract: source schema changed: new column(s) colour; warehouse.contract "
            "is 'freeze', nothing was extracted") in result.output
    assert lake_batches(tmp_path) == 1
    assert landed(tmp_path, "SELECT count(*) FROM landing.gadgets WHERE "
                            "updated_at >= '2021-01-01'") == [(0,)]


def test_a_dropped_column_is_named_and_new_rows_land_without_it(
        project_dir: Path, sqlite_url: str, tmp_path: Path) -> None:
    engine = gadgets(project_dir, sqlite_url, "evolve")
    run_json("--pipeline", "gadgets", "--no-dbt")
    change(engine, "ALTER TABLE gadgets DROP COLUMN name",
           "INSERT INTO gadgets (gadget_id, price, updated_at) VALUES (3, 9.99, '2021-01-01 00:00:00')")

    record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert any("dropped column(s) name" in w for w in record["warnings"])
    rows = dict(landed(tmp_path, "SELECT gadget_id, name FROM landing.gadgets"))
    # The column stays in the warehouse: history keeps its values, rows read after the drop
    # (the new one, and the boundary row re-read) carry NULL, as the source no longer has it.
    assert rows[1] == "a" and rows[3] is None and set(rows) == {1, 2, 3}


def test_a_dropped_not_null_column_lands_null_in_later_rows(
        project_dir: Path, sqlite_url: str, tmp_path: Path) -> None:
    """dlt's schema held the column NOT NULL, as the source did, and dlt writes a dropped
    column into later batches as NULL: every run after the drop failed, 'declared
    non-nullable but contains nulls', --full-refresh too."""
    gadgets(project_dir, sqlite_url, "evolve")
    engine = sa.create_engine(sqlite_url)
    change(engine, "CREATE TABLE g2 (gadget_id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL, "
                   "price NUMERIC(8, 2), updated_at TIMESTAMP)",
           "INSERT INTO g2 SELECT * FROM gadgets", "DROP TABLE gadgets",
           "ALTER TABLE g2 RENAME TO gadgets")
    run_json("--pipeline", "gadgets", "--no-dbt")
    change(engine, "ALTER TABLE gadgets DROP COLUMN name",
           "INSERT INTO gadgets (gadget_id, price, updated_at) VALUES (3, 9.99, '2021-01-01')")

    record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert record["status"] == "success", record["error"]
    assert dict(landed(tmp_path, "SELECT gadget_id, name FROM landing.gadgets")) == {
        1: "a", 2: "b", 3: None}


@pytest.mark.integration
def test_a_declared_column_renamed_at_the_source_stops_until_mapped(
        project_dir: Path, tmp_path: Path) -> None:
    """dlt writes a dropped column into the batch as NULL: under `evolve` a renamed declared
    column overwrote every re-read row's value with NULL on the merge, with one warning."""
    spec = project_dir / "pipelines" / "gadgets.yml"
    with postgres_database("renamed") as url:
        engine = gadgets(project_dir, url, "evolve")
        spec.write_text(spec.read_text() + "columns:\n  - {name: gadget_id, type: integer}\n"
                        "  - {name: name, type: string}\n")
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, "ALTER TABLE gadgets RENAME COLUMN name TO title",
               "UPDATE gadgets SET price = 3.00, updated_at = '2021-01-01 00:00:00' "
               "WHERE gadget_id = 1")
        engine.dispose()

        refused = cli("run", "--pipeline", "gadgets", "--no-dbt")
        batches = lake_batches(tmp_path)
        spec.write_text(spec.read_text().replace(
            "  table: gadgets\n", "  query: SELECT gadget_id, title AS name, price, updated_at "
            "FROM gadgets\n"))
        mapped = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert refused.exit_code == 1
    assert ("error: gadgets: extract: source schema changed: new column(s) title; dropped "
            "column(s) name; 'name' is declared in columns: but the source no longer has it: "
            "map the new name in source.query (SELECT title AS name, ...), or remove the "
            "declaration (or, where the transform now computes it, run once with "
            "--full-refresh); nothing was extracted") in refused.output.splitlines(), \
        refused.output
    assert batches == 1
    assert mapped["status"] == "success", mapped.get("error")
    assert not [w for w in mapped["warnings"] if "changed type" in w], mapped["warnings"]
    assert landed(tmp_path, "SELECT gadget_id, name, CAST(price AS VARCHAR) FROM "
                            "landing.gadgets ORDER BY 1") == [(1, "a", "3.00"), (2, "b", "2.25")]


def test_a_sqlite_cursor_the_source_now_hands_over_as_text_is_one_line(
        project_dir: Path, sqlite_url: str) -> None:
    """A table's TIMESTAMP read as a query's untyped column: the stored boundary (a datetime)
    met text, and the run failed with a bare ArrowTypeError."""
    gadgets(project_dir, sqlite_url, "evolve")
    spec = project_dir / "pipelines" / "gadgets.yml"
    run_json("--pipeline", "gadgets", "--no-dbt")
    spec.write_text(spec.read_text().replace("  table: gadgets\n",
                                             "  query: SELECT * FROM gadgets\n"))

    result = cli("run", "--pipeline", "gadgets", "--no-dbt")

    assert result.exit_code == 1
    assert ("error: gadgets: extract: cursor 'updated_at' now reads as string, but earlier runs "
            "stored datetime") in result.output, result.output
    assert "--full-refresh" in result.output


@contextmanager
def postgres_database(suffix: str) -> Iterator[str]:
    """A database of its own on the test server (suites sharing the server never meet)."""
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                             isolation_level="AUTOCOMMIT")
    name = f"drift_{uuid.uuid4().hex[:8]}_{suffix}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        service_unavailable(f"PostgreSQL: {str(exc).splitlines()[0]}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


WIDEN = ("ALTER TABLE gadgets ALTER COLUMN price TYPE NUMERIC(14, 4)",
         "UPDATE gadgets SET price = 12345.6789, updated_at = '2021-01-01' WHERE gadget_id = 1")


@pytest.mark.integration
@pytest.mark.parametrize("contract", ["evolve", "freeze"])
def test_a_widened_type_is_followed_or_refused(contract: str, project_dir: Path,
                                               tmp_path: Path) -> None:
    with postgres_database(contract) as url:
        engine = gadgets(project_dir, url, contract)
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, *WIDEN)
        engine.dispose()

        result = cli("run", "--pipeline", "gadgets", "--no-dbt")

    assert "changed type(s) price (NUMERIC(8, 2) -> NUMERIC(14, 4))" in result.output
    if contract == "freeze":
        assert result.exit_code == 1 and lake_batches(tmp_path) == 1
    else:
        assert result.exit_code == 0, result.output
        assert "changed column type(s) price (DECIMAL(8,2) -> DECIMAL(14,4))" in result.output
        assert landed(tmp_path, "SELECT CAST(price AS VARCHAR) FROM landing.gadgets "
                                "WHERE gadget_id = 1") == [("12345.6789",)]


@pytest.mark.integration
def test_an_integer_widened_to_bigint_lands_as_bigint(project_dir: Path, tmp_path: Path) -> None:
    """Declared `integer` (as init declares an INT), then `bigint` after the source widened it:
    the landing column became DECIMAL(19,0), a decimal where every model expects an integer."""
    spec = project_dir / "pipelines" / "gadgets.yml"
    with postgres_database("bigint") as url:
        engine = gadgets(project_dir, url, "evolve")
        spec.write_text(spec.read_text() + "columns:\n  - {name: gadget_id, type: integer}\n")
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, "ALTER TABLE gadgets ALTER COLUMN gadget_id TYPE BIGINT",
               "INSERT INTO gadgets VALUES (9007199254740993, 'c', 1, '2021-01-01')")
        engine.dispose()
        spec.write_text(spec.read_text().replace("type: integer", "type: bigint"))

        result = cli("run", "--pipeline", "gadgets", "--no-dbt")

    assert result.exit_code == 0, result.output
    assert landed(tmp_path, "SELECT max(gadget_id), typeof(max(gadget_id)) "
                            "FROM landing.gadgets") == [(9007199254740993, "BIGINT")]


@pytest.mark.integration
def test_a_decimal_widened_past_its_declared_type_stops_every_run_until_declared(
        project_dir: Path, tmp_path: Path) -> None:
    """The declared decimal(8,2) would round the widened column's 12345.6789 to 12345.68, on
    every run after a first one that warned: the runs stop, naming the fix, until it is made."""
    declared = "columns:\n  - {name: gadget_id, type: integer}\n  - {name: price, type: 'decimal(8,2)'}\n"
    spec = project_dir / "pipelines" / "gadgets.yml"
    with postgres_database("declared") as url:
        engine = gadgets(project_dir, url, "evolve")
        spec.write_text(spec.read_text() + declared)
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, *WIDEN)
        engine.dispose()

        runs = [cli("run", "--pipeline", "gadgets", "--no-dbt") for _ in range(2)]
        batches = lake_batches(tmp_path)
        spec.write_text(spec.read_text().replace("decimal(8,2)", "decimal(14,4)"))
        fixed = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    for result in runs:
        assert result.exit_code == 1
        assert ("error: gadgets: extract: source schema changed: changed type(s) price "
                "(NUMERIC(8, 2) -> NUMERIC(14, 4)); 'price' is now NUMERIC(14, 4), which its "
                "declared decimal(8,2) would round; declare it decimal(14,4) in columns: (and in "
                "the transform's CAST), or round it in source.query on purpose; nothing was "
                "extracted") in result.output.splitlines(), result.output
    assert batches == 1
    assert fixed["status"] == "success", fixed
    assert landed(tmp_path, "SELECT CAST(price AS VARCHAR) FROM landing.gadgets "
                            "WHERE gadget_id = 1") == [("12345.6789",)]


def test_initial_value_starts_the_first_run_at_that_cursor(project_dir: Path, sqlite_url: str,
                                                          tmp_path: Path) -> None:
    gadgets(project_dir, sqlite_url, "evolve")
    spec = project_dir / "pipelines" / "gadgets.yml"
    spec.write_text(spec.read_text().replace(
        "incremental: {cursor: updated_at}",
        "incremental: {cursor: updated_at, initial_value: '2020-01-02T00:00:00'}"))

    record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert record["status"] == "success", record["error"]
    assert landed(tmp_path, "SELECT gadget_id FROM landing.gadgets") == [(2,)]


@pytest.mark.integration
def test_a_column_added_with_a_default_loads_no_boundary_row_twice(project_dir: Path,
                                                                   tmp_path: Path) -> None:
    """A new column fills every existing row with its default: the rows at the last cursor value
    differ from their lake copies only by a column the lake never had, so they are not new, and
    an append table does not get them a second time."""
    spec = project_dir / "pipelines" / "gadgets.yml"
    with postgres_database("added") as url:
        engine = gadgets(project_dir, url, "evolve")
        spec.write_text(spec.read_text() + "  write_disposition: append\n")
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, "ALTER TABLE gadgets ADD COLUMN region TEXT NOT NULL DEFAULT 'EU'")
        engine.dispose()

        record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert record["status"] in ("success", "nothing new"), record["error"]
    assert landed(tmp_path, "SELECT gadget_id, count(*) FROM landing.gadgets GROUP BY 1 "
                            "ORDER BY 1") == [(1, 1), (2, 1)]


@pytest.mark.integration
def test_text_turned_to_numbers_keeps_a_text_column_whose_rows_are_not_numbers(
        project_dir: Path, tmp_path: Path) -> None:
    """The source turns `name` to integers (its rows say 5 and 7 now; the lake and the
    warehouse hold 'a' and 'b'). The boundary row compares as different instead of failing the
    cast, and the warehouse keeps its text column rather than narrowing it over 'a': before,
    every run failed, at the extract, then at the load."""
    with postgres_database("narrowed") as url:
        engine = gadgets(project_dir, url, "evolve")
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, "UPDATE gadgets SET name = '7' WHERE gadget_id = 2",
               "UPDATE gadgets SET name = '5', updated_at = '2021-01-01' WHERE gadget_id = 1",
               "ALTER TABLE gadgets ALTER COLUMN name TYPE INTEGER USING name::integer")
        engine.dispose()

        records = [run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"] for _ in range(2)]

    assert [r["status"] for r in records] == ["success", "success"], records
    assert records[1]["load_id"] is None  # the next run finds nothing new
    assert landed(tmp_path, "SELECT gadget_id, name FROM landing.gadgets ORDER BY 1") == \
        [(1, "5"), (2, "7")]


@pytest.mark.integration
def test_a_retyped_decimal_never_rounds_the_rows_already_loaded(project_dir: Path,
                                                                tmp_path: Path) -> None:
    """numeric(20,10) becomes an unbounded numeric, which lands as decimal(38,9): no decimal
    holds both (39 digits), and the new rows fit the table's decimal(20,10), so the table keeps
    it. Before, the table turned to decimal(38,9) and 1.0000000001 became 1.000000000."""
    with postgres_database("rescaled") as url:
        engine = gadgets(project_dir, url, "evolve")
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, "ALTER TABLE gadgets ALTER COLUMN price TYPE NUMERIC(20, 10)",
               "UPDATE gadgets SET price = 1.0000000001, updated_at = '2021-01-01' "
               "WHERE gadget_id = 1",
               "UPDATE gadgets SET updated_at = '2021-06-01' WHERE gadget_id = 2")
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, "ALTER TABLE gadgets ALTER COLUMN price TYPE NUMERIC",
               "INSERT INTO gadgets VALUES (3, 'c', 2.5, '2022-01-01')")
        engine.dispose()

        record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert record["status"] == "success", record["error"]
    assert landed(tmp_path, "SELECT gadget_id, CAST(price AS VARCHAR) FROM landing.gadgets "
                            "ORDER BY 1") == [(1, "1.0000000001"), (2, "2.2500000000"),
                                              (3, "2.5000000000")]


@pytest.mark.integration
def test_discard_stops_a_batch_the_tables_types_would_round(project_dir: Path,
                                                            tmp_path: Path) -> None:
    """'discard' keeps the table's decimal(8,2); the widened column's 12345.6789 would land as
    12345.68. The load stops, naming the column, the value and the way out."""
    with postgres_database("discard") as url:
        engine = gadgets(project_dir, url, "discard")
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, *WIDEN)
        engine.dispose()

        result = cli("run", "--pipeline", "gadgets", "--no-dbt")

    assert result.exit_code == 1
    assert ("error: gadgets: load: column price changed type in the source (DECIMAL(8,2) -> "
            "DECIMAL(14,4)); the DECIMAL(8,2) of landing.gadgets would change the batch's value "
            "'12345.6789': warehouse.contract is 'discard', which keeps the table's types (set "
            "'evolve' to widen it)") in result.output.splitlines(), result.output
    assert landed(tmp_path, "SELECT CAST(price AS VARCHAR) FROM landing.gadgets "
                            "WHERE gadget_id = 1") == [("1.50",)]


@pytest.mark.integration
@pytest.mark.parametrize(("read", "now"), [("table", "DOUBLE PRECISION"), ("query", "FLOAT")])
def test_a_declared_decimal_whose_source_turned_to_floats_stops_the_run(
        read: str, now: str, project_dir: Path, tmp_path: Path) -> None:
    """The declared decimal(8,2) would round the float column's 1.2345 to 1.23 on every run.
    A query's columns were typed for numerics only: its float read as no type, said nothing."""
    declared = "columns:\n  - {name: gadget_id, type: integer}\n  - {name: price, type: 'decimal(8,2)'}\n"
    spec = project_dir / "pipelines" / "gadgets.yml"
    with postgres_database("floats") as url:
        engine = gadgets(project_dir, url, "evolve")
        if read == "query":
            spec.write_text(spec.read_text().replace("  table: gadgets\n",
                                                     "  query: SELECT * FROM gadgets\n"))
        spec.write_text(spec.read_text() + declared)
        run_json("--pipeline", "gadgets", "--no-dbt")
        change(engine, "ALTER TABLE gadgets ALTER COLUMN price TYPE DOUBLE PRECISION",
               "UPDATE gadgets SET price = 1.2345, updated_at = '2021-01-01' WHERE gadget_id = 1")
        engine.dispose()

        result = cli("run", "--pipeline", "gadgets", "--no-dbt")

    assert result.exit_code == 1
    assert (f"'price' is now {now}, which its declared decimal(8,2) would round; "
            "declare it double in columns: (and in the transform's CAST), or round it in "
            "source.query on purpose; nothing was extracted") in result.output, result.output
    assert lake_batches(tmp_path) == 1


@pytest.mark.integration
@pytest.mark.parametrize(("cursor", "initial"), [("price", "'2.00'"), ("name", "'2020-01-01'")])
def test_a_quoted_initial_value_is_read_as_its_cursor_column_compares_it(
        cursor: str, initial: str, project_dir: Path, tmp_path: Path) -> None:
    """'2.00' on a numeric cursor was read as seconds since 1970 and failed on the server; an
    ISO date on a text cursor failed in Arrow. Each starts the first run at that value."""
    spec = project_dir / "pipelines" / "gadgets.yml"
    with postgres_database(f"initial_{cursor}") as url:
        engine = gadgets(project_dir, url, "evolve")
        change(engine, "UPDATE gadgets SET name = '2019-01-01' WHERE gadget_id = 1",
               "UPDATE gadgets SET name = '2021-01-01' WHERE gadget_id = 2")
        engine.dispose()
        spec.write_text(spec.read_text().replace(
            "incremental: {cursor: updated_at}",
            f"incremental: {{cursor: {cursor}, initial_value: {initial}}}"))

        planned = cli("plan", "--pipeline", "gadgets", "--json")
        record = run_json("--pipeline", "gadgets", "--no-dbt")["gadgets"]

    assert record["status"] == "success", record["error"]
    assert landed(tmp_path, "SELECT gadget_id FROM landing.gadgets") == [(2,)]
    plan = json.loads(planned.stdout[planned.stdout.index("["):])[0]
    assert (plan["rows_waiting"], plan["rows_label"]) == (
        1, "at or after source.incremental.initial_value")
