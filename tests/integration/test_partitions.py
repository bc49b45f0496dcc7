"""`source.partitions`: a full read split into ranges read at once, in one PostgreSQL snapshot.

The tables are filled by the servers themselves (generate_series, MariaDB's sequence engine):
ties, NULLs in the partition column, every row sharing one cursor value as a bulk load leaves
them. A part that fails, or a process killed mid-read, lands nothing; the next run lands every
row once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from tests.e2e.helpers import assert_landing_equals_source, cli, execute
from tests.integration.test_server_sources import server_database

ROWS = 6000
# Minute-wide ties in created_at, a NULL every 50th row, one shared updated_at.
FILL = {
    "postgresql": f"INSERT INTO events SELECT i, i % 7, CASE WHEN i % 50 = 0 THEN NULL ELSE "
                  f"TIMESTAMP '2017-01-01' + (i / 10) * INTERVAL '1 minute' END, "
                  f"TIMESTAMP '2017-02-01' FROM generate_series(1, {ROWS}) AS i",
    "mariadb": f"INSERT INTO events SELECT seq, seq % 7, IF(seq % 50 = 0, NULL, "
               f"TIMESTAMP '2017-01-01 00:00:00' + INTERVAL (seq DIV 10) MINUTE), "
               f"TIMESTAMP '2017-02-01 00:00:00' FROM seq_1_to_{ROWS}",
}


def spec(table: str = "events", partitions: str = "{column: created_at, count: 4}",
         disposition: str = "merge", cursor: bool = True) -> str:
    incremental = "  incremental: {cursor: updated_at}\n" if cursor else ""
    return (f"name: events\nsource:\n  connection: events\n  table: {table}\n"
            f"  primary_key: [event_id]\n{incremental}"
            f"  partitions: {partitions}\n"
            f"lake:\n  path: events\nwarehouse:\n  write_disposition: {disposition}\n")


@pytest.fixture
def events_project(project_dir: Path) -> Path:
    for pipeline in (project_dir / "pipelines").glob("*.yml"):
        pipeline.unlink()
    return project_dir


def use(project: Path, url: str, pipeline: str) -> None:
    (project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
    (project / "pipelines" / "events.yml").write_text(pipeline)


def run(*args: str) -> tuple[dict[str, Any], list[str]]:
    """The run's record and its engine log messages."""
    result = cli("--log-format", "json", "run", "--pipeline", "events", "--no-dbt", "--json",
                 *args)
    record = json.loads(result.stdout[result.stdout.index("["):])[0]
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines()
                if line.startswith("{")]
    return record, messages


def landing_keys(warehouse: Path) -> list[int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT event_id FROM landing.events").fetchall()]
    finally:
        con.close()


def assert_landed_once(url: str, warehouse: Path) -> None:
    keys = landing_keys(warehouse)
    assert len(keys) == len(set(keys)), "a row landed twice"
    assert_landing_equals_source(url, warehouse, ["events"], keys=["event_id"])


@pytest.mark.integration
@pytest.mark.parametrize("partitions", ["{column: created_at, count: 4}", "{count: 3}"],
                         ids=["created_at", "primary-key"])
def test_the_first_read_is_split_and_later_runs_read_the_cursor_once(
        events_project: Path, tmp_path: Path, partitions: str) -> None:
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    server = "postgresql"
    with server_database(server) as url:
        use(events_project, url, spec(partitions=partitions))
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)", FILL[server])

        record, said = run()

        assert record["status"] == "success", record["error"]
        assert record["rows_extracted"] == ROWS
        parts = partitions.split("count: ")[1].rstrip("}")
        column = "created_at" if "created_at" in partitions else "event_id"
        assert f"reading `events` in {parts} partitions of `{column}` at once" in said
        assert_landed_once(url, warehouse)

        execute(url, "UPDATE events SET v = 100, updated_at = '2017-02-02' WHERE event_id <= 3",
                "INSERT INTO events VALUES (7001, 1, NULL, '2017-02-02'), "
                "(7002, 2, '2016-01-01', '2017-02-02')")
        record, said = run()

        assert record["rows_extracted"] == 5
        assert not [m for m in said if "partitions" in m]  # one cursor read
        assert_landed_once(url, warehouse)
        assert run()[0]["rows_extracted"] == 0

        record, said = run("--full-refresh")  # a full read again: split again
        assert record["rows_extracted"] == ROWS + 2
        assert f"reading `events` in {parts} partitions of `{column}` at once" in said
        assert_landed_once(url, warehouse)


@pytest.mark.integration
def test_every_part_reads_in_one_snapshot_while_the_source_is_written(
        events_project: Path, tmp_path: Path) -> None:
    with server_database("postgresql") as url:
        use(events_project, url, spec(table="events_v", partitions="{count: 4}"))
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)", FILL["postgresql"],
                "CREATE TABLE ticker (n BIGINT)", "INSERT INTO ticker VALUES (0)",
                # each row says which snapshot its read saw
                "CREATE VIEW events_v AS SELECT event_id, v, updated_at, "
                "txid_current_snapshot()::text AS seen FROM events")
        stop = threading.Event()

        def commit_all_the_time() -> None:  # every commit moves the next snapshot on
            with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as con:
                while not stop.is_set():
                    con.execute("UPDATE ticker SET n = n + 1")

        writer = threading.Thread(target=commit_all_the_time)
        writer.start()
        try:
            record, said = run()
        finally:
            stop.set()
            writer.join()

        assert record["status"] == "success", record["error"]
        assert "reading `events_v` in 4 partitions of `event_id` at once" in said
        con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
        try:
            seen = con.execute("SELECT DISTINCT seen FROM landing.events").fetchall()
            assert con.execute("SELECT count(*) FROM landing.events").fetchone() == (ROWS,)
        finally:
            con.close()
        assert len(seen) == 1, seen


@pytest.mark.integration
def test_mysql_reads_in_one_pass_as_its_connections_share_no_snapshot(
        events_project: Path, tmp_path: Path) -> None:
    with server_database("mariadb") as url:
        use(events_project, url, spec())
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)", FILL["mariadb"])

        record, said = run()

        assert record["rows_extracted"] == ROWS
        assert ("source.partitions: mysql connections are read in one pass (parts need "
                "PostgreSQL's shared snapshots)") in said
        assert_landed_once(url, tmp_path / "state" / "warehouse.duckdb")


@pytest.mark.integration
def test_a_pipeline_without_a_cursor_splits_every_run(events_project: Path,
                                                      tmp_path: Path) -> None:
    with server_database("postgresql") as url:
        use(events_project, url, spec(partitions="{count: 2}", disposition="replace",
                                      cursor=False))
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)", FILL["postgresql"])
        for _ in range(2):
            record, said = run()
            assert record["rows_extracted"] == ROWS
            assert "reading `events` in 2 partitions of `event_id` at once" in said
            assert_landed_once(url, tmp_path / "state" / "warehouse.duckdb")


@pytest.mark.integration
def test_a_double_precision_column_is_split_too(events_project: Path, tmp_path: Path) -> None:
    """SQLAlchemy 2.1's Float is no longer a Numeric: a float column was refused as having
    'no range to split' while the message asked for a number."""
    with server_database("postgresql") as url:
        use(events_project, url, spec(partitions="{column: score, count: 3}"))
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, score DOUBLE PRECISION, "
                     "updated_at TIMESTAMP NULL)",
                f"INSERT INTO events SELECT i, CASE WHEN i % 50 = 0 THEN NULL ELSE i / 7.0 END, "
                f"TIMESTAMP '2017-02-01' FROM generate_series(1, {ROWS}) AS i")

        record, said = run()

        assert record["status"] == "success", record["error"]
        assert "reading `events` in 3 partitions of `score` at once" in said
        assert_landed_once(url, tmp_path / "state" / "warehouse.duckdb")


@pytest.mark.integration
def test_a_part_that_fails_lands_nothing_and_the_next_run_lands_every_row_once(
        events_project: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    with server_database("postgresql") as url:
        use(events_project, url, spec(table="events_v", partitions="{count: 4}",
                                      disposition="append"))
        # Row 4500 fails in the third of four parts, after the others have streamed rows.
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)", FILL["postgresql"],
                "CREATE VIEW events_v AS SELECT event_id, v, 100 / (event_id - 4500) AS ratio, "
                "updated_at FROM events")

        record, _ = run()

        assert record["status"] == "failed"
        assert "division by zero" in record["error"]
        assert not (tmp_path / "state" / "lake" / "raw" / "events").exists()
        execute(url, "CREATE OR REPLACE VIEW events_v AS SELECT event_id, v, "
                     "100 / NULLIF(event_id - 4500, 0) AS ratio, updated_at FROM events")
        record, _ = run()

        assert record["status"] == "success", record["error"]
        assert record["rows_extracted"] == ROWS
        assert sorted(landing_keys(warehouse)) == list(range(1, ROWS + 1))


@pytest.mark.integration
def test_a_process_killed_mid_read_lands_nothing_and_the_next_run_lands_every_row_once(
        events_project: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    with server_database("postgresql") as url:
        use(events_project, url, spec(partitions="{count: 4}", disposition="append"))
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL)", FILL["postgresql"])

        killed = subprocess.run(
            [sys.executable, "-m", "framework.cli", "run", "--pipeline", "events", "--no-dbt"],
            env={**os.environ, "FRAMEWORK_KILL_AT": "extract_partition"}, capture_output=True,
            check=False)

        assert killed.returncode == -9, killed.stderr.decode()[-2000:]
        record, _ = run()
        assert record["status"] == "success", record["error"]
        assert sorted(landing_keys(warehouse)) == list(range(1, ROWS + 1))
        assert_landed_once(url, warehouse)
