"""Exact cursors on server types (PostgreSQL timestamp/timestamptz/date, MariaDB DATETIME(0),
DATETIME(6), TIMESTAMP), and a stateless worker on an S3 lake (moto)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from tests.e2e.helpers import execute, run_json
from tests.e2e.test_incremental_exact import events_spec
from tests.integration.conftest import S3Server
from tests.integration.test_server_sources import server_database

# (server, cursor column type, first-run boundary literal, the same instant spelled otherwise,
#  a later value)
CASES = [
    ("postgresql", "timestamp", "2017-01-14 21:19:00", "2017-01-14 21:19:00.000000",
     "2017-01-14 21:19:00.000001"),
    ("postgresql", "timestamptz", "2017-01-14 21:19:00+00", "2017-01-14 23:19:00+02:00",
     "2017-01-14 21:19:01+00"),
    ("postgresql", "date", "2017-01-14", "2017-01-14 00:00:00", "2017-01-15"),
    ("mariadb", "DATETIME", "2017-01-14 21:19:00", "2017-01-14 21:19:00.000000",
     "2017-01-14 21:19:01"),
    ("mariadb", "DATETIME(6)", "2017-01-14 21:19:00", "2017-01-14 21:19:00.000000",
     "2017-01-14 21:19:00.000001"),
    ("mariadb", "TIMESTAMP NULL", "2017-01-14 21:19:00", "2017-01-14 21:19:00.000000",
     "2017-01-14 21:19:01"),
]


def landed(path: Path) -> dict[int, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT event_id, v FROM landing.events").fetchall()
    finally:
        con.close()
    assert len(rows) == len({r[0] for r in rows}), "duplicate keys in landing.events"
    return dict(rows)


def source(url: str) -> dict[int, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT event_id, v FROM events")).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


@pytest.fixture
def events_project(project_dir: Path, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for spec in (project_dir / "pipelines").glob("*.yml"):
        spec.unlink()
    (project_dir / "pipelines" / "events.yml").write_text(events_spec())
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    yield project_dir


def run() -> dict[str, Any]:
    record = run_json("--pipeline", "events", "--no-dbt")["events"]
    assert record["status"] == "success", record["error"]
    return record


@pytest.mark.integration
@pytest.mark.parametrize(("server", "cursor_type", "first", "same", "later"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_server_cursor_types_catch_the_boundary_once(
        events_project: Path, tmp_path: Path, server: str, cursor_type: str, first: str,
        same: str, later: str) -> None:
    with server_database(server) as url:
        (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        execute(url, f"CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     f"updated_at {cursor_type})",
                f"INSERT INTO events VALUES (1, 0, '{first}'), (2, 0, '{first}')")
        assert run()["rows_extracted"] == 2
        execute(url, f"INSERT INTO events VALUES (3, 0, '{same}'), (4, 0, '{later}')",
                f"UPDATE events SET v = 1, updated_at = '{same}' WHERE event_id = 1")

        assert run()["rows_extracted"] == 3
        assert landed(tmp_path / "warehouse.duckdb") == source(url)
        assert run()["rows_extracted"] == 0


@pytest.mark.integration
@pytest.mark.parametrize("disposition", ["merge", "append"])
def test_a_worker_without_state_resumes_from_an_s3_lake(
        events_project: Path, tmp_path: Path, moto_s3: S3Server,
        monkeypatch: pytest.MonkeyPatch, disposition: str) -> None:
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    moto_s3.create_bucket(bucket)
    (events_project / "framework.yml").write_text(
        "targets:\n  s3:\n    lake:\n      url: ${LAKE_URL}\n      endpoint_url: ${AWS_ENDPOINT_URL}\n"
        "      region: ${AWS_REGION}\n      access_key_id: ${AWS_ACCESS_KEY_ID}\n"
        "      secret_access_key: ${AWS_SECRET_ACCESS_KEY}\n"
        "    warehouse:\n      type: duckdb\n      path: ${DUCKDB_PATH}\n")
    for key, value in {"FRAMEWORK_TARGET": "s3", "LAKE_URL": f"s3://{bucket}/lake",
                       "AWS_ENDPOINT_URL": moto_s3.endpoint_url, "AWS_REGION": moto_s3.region,
                       "AWS_ACCESS_KEY_ID": moto_s3.access_key_id,
                       "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key}.items():
        monkeypatch.setenv(key, value)
    (events_project / "pipelines" / "events.yml").write_text(events_spec(disposition=disposition))
    db = tmp_path / "events.db"
    (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: sqlite:///{db}\n")
    url = f"sqlite:///{db}"
    execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                 "updated_at DATETIME)",
            "INSERT INTO events VALUES (1, 0, '2017-01-14 21:19:00'), "
            "(2, 0, '2017-01-14 21:19:00')")
    state = tmp_path / "state"
    assert run()["rows_extracted"] == 2
    shutil.rmtree(state)
    execute(url, "INSERT INTO events VALUES (3, 0, '2017-01-14T21:19:00'), "
                 "(4, 0, '2017-01-14 21:20:00')",
            "UPDATE events SET v = 1 WHERE event_id = 2")

    assert run()["rows_extracted"] == 3
    shutil.rmtree(state)
    assert run()["rows_extracted"] == 0
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        rows = sorted(con.execute("SELECT event_id, v FROM landing.events").fetchall())
    finally:
        con.close()
    if disposition == "merge":
        assert dict(rows) == source(url)
    else:
        assert rows == [(1, 0), (2, 0), (2, 1), (3, 0), (4, 0)]


@pytest.mark.integration
@pytest.mark.parametrize("lag", ["", ", lag: 10m"], ids=["no-lag", "lag"])
def test_a_transaction_committing_after_a_run_read_past_it_needs_lag(
        events_project: Path, tmp_path: Path, lag: str) -> None:
    """A writer's `now()` is its transaction's start: a row committed after a run read past
    that time sits below the boundary. Without `lag` it is skipped for good (what init's
    `lag: 10m` is for); with it the next run reads it."""
    with server_database("postgresql") as url:
        (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        (events_project / "pipelines" / "events.yml").write_text(events_spec(extra=lag))
        execute(url, "CREATE TABLE events (event_id int PRIMARY KEY, v int, "
                     "updated_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                "INSERT INTO events (event_id, v) VALUES (1, 1)")
        run()
        late = sa.create_engine(url)
        try:
            with late.connect() as conn:
                conn.execute(sa.text("INSERT INTO events (event_id, v, updated_at) "
                                     "VALUES (2, 1, now())"))  # open: now() is this moment
                execute(url, "INSERT INTO events (event_id, v) VALUES (3, 1)")
                run()  # reads 3, past 2's time; 2 is not committed yet
                conn.commit()
        finally:
            late.dispose()
        run()
        expected = source(url)

    assert set(expected) == {1, 2, 3}
    assert set(landed(tmp_path / "warehouse.duckdb")) == ({1, 2, 3} if lag else {1, 3})


@pytest.mark.integration
def test_a_row_deleted_then_inserted_again_at_the_boundary_comes_back_on_postgresql(
        events_project: Path, tmp_path: Path) -> None:
    """The row-version pre-check sees the new version, and the read dropped it as landed."""
    with server_database("postgresql") as url:
        (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        (events_project / "pipelines" / "events.yml").write_text(
            events_spec() + "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
        execute(url, "CREATE TABLE events (event_id int PRIMARY KEY, v int, "
                     "updated_at timestamp NOT NULL)",
                "INSERT INTO events VALUES (1, 1, '2017-01-13'), (2, 1, '2017-01-14'), "
                "(3, 1, '2017-01-14')")
        run()
        execute(url, "CREATE TABLE saved AS SELECT * FROM events WHERE event_id = 3",
                "DELETE FROM events WHERE event_id = 3")
        run()
        execute(url, "INSERT INTO events SELECT * FROM saved")
        run()
        after = run()
        expected = source(url)

    assert landed(tmp_path / "warehouse.duckdb") == expected == {1: 1, 2: 1, 3: 1}
    assert after["rows_extracted"] == 0


@pytest.mark.integration
@pytest.mark.parametrize(("before", "after"), [("timestamp", "timestamptz"),
                                               ("timestamptz", "timestamp")])
def test_a_cursor_column_that_changes_its_time_zone_kind_keeps_running_with_lag(
        events_project: Path, tmp_path: Path, before: str, after: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """`ALTER ... TYPE timestamptz` (or back) leaves a stored last value of the other kind:
    with a lag, dlt compared the two and failed every later run with "can't compare
    offset-naive and offset-aware datetimes"."""
    with server_database("postgresql") as url:
        (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        (events_project / "pipelines" / "events.yml").write_text(events_spec(extra=", lag: 10m"))
        execute(url, f"CREATE TABLE events (event_id int PRIMARY KEY, v int, updated_at {before})",
                "INSERT INTO events VALUES (1, 1, '2017-01-14 21:19:00'), "
                "(2, 1, '2017-01-14 21:20:00')")
        run()
        execute(url, "SET TIME ZONE 'UTC'",
                f"ALTER TABLE events ALTER COLUMN updated_at TYPE {after}",
                "INSERT INTO events VALUES (3, 1, '2017-01-14 21:25:00')",
                "UPDATE events SET v = 2, updated_at = '2017-01-14 21:26:00' WHERE event_id = 1")

        assert run()["rows_extracted"] == 3  # 1, 3, and 2 inside the lag window
        assert landed(tmp_path / "warehouse.duckdb") == source(url)
    assert "reading it with the pyarrow backend instead" not in caplog.text


# (cursor type, lag, the top value, a value at the window's lower edge)
WINDOWS = [
    ("DATETIME(6)", "10m", "2018-01-01 10:00:00.500000", "2018-01-01 09:50:00.500000"),
    ("TIMESTAMP NULL", "10m", "2018-01-01 10:00:00", "2018-01-01 09:50:00"),
    ("DATE", "24h", "2018-01-02", "2018-01-01"),
    ("BIGINT", "0.5", "100", "99"),  # dlt reads from int(100 - 0.5) = 99
]


@pytest.mark.integration
@pytest.mark.parametrize(("cursor_type", "lag", "top", "edge"), WINDOWS,
                         ids=[w[0] for w in WINDOWS])
def test_a_look_back_window_on_mariadb_skips_dlt_until_a_row_in_it_changes(
        events_project: Path, tmp_path: Path, cursor_type: str, lag: str, top: str,
        edge: str) -> None:
    """init writes `lag: 10m`; off PostgreSQL every run read the window again, a batch, a
    load and a dbt build every 15 minutes for nothing. The digests of the window's rows that
    the last read kept tell it, and a late row at the window's edge is still read."""
    with server_database("mariadb") as url:
        (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        (events_project / "pipelines" / "events.yml").write_text(
            events_spec(extra=f", lag: {lag}"))
        execute(url, f"CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     f"updated_at {cursor_type})",
                f"INSERT INTO events VALUES (1, 0, '{top}'), (2, 0, '{top}')")
        assert run()["rows_extracted"] == 2
        assert run()["rows_extracted"] == 0  # the window as the last read met it
        execute(url, f"INSERT INTO events VALUES (3, 0, '{edge}')")  # committed late
        assert run()["rows_extracted"] == 3
        execute(url, "UPDATE events SET v = 7 WHERE event_id = 3")  # its cursor kept
        assert run()["rows_extracted"] == 3
        assert run()["rows_extracted"] == 0
        assert landed(tmp_path / "warehouse.duckdb") == source(url)


@pytest.mark.integration
@pytest.mark.parametrize("lag", ["", ", lag: 10m"], ids=["boundary", "window"])
def test_a_bigint_unsigned_key_on_mariadb_lets_a_run_with_nothing_new_skip_dlt(
        events_project: Path, tmp_path: Path, lag: str) -> None:
    """WooCommerce's ids are BIGINT UNSIGNED: an int to the driver the pre-check reads with,
    a decimal(20,0) through Arrow, so their digests never matched, and every run with nothing
    new read the boundary (or the window) again and loaded it (found by a trial)."""
    with server_database("mariadb") as url:
        (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        (events_project / "pipelines" / "events.yml").write_text(events_spec(extra=lag))
        execute(url, "CREATE TABLE events (event_id BIGINT UNSIGNED PRIMARY KEY, v INTEGER, "
                     "updated_at DATETIME(6))",
                "INSERT INTO events VALUES (1, 0, '2018-01-01 10:00:00'), "
                "(18446744073709551615, 0, '2018-01-01 10:00:00')")
        assert run()["rows_extracted"] == 2

        assert run()["rows_extracted"] == 0
        assert {int(k): v for k, v in landed(tmp_path / "warehouse.duckdb").items()} == \
            source(url)


@pytest.mark.integration
def test_a_table_read_through_a_query_instead_is_no_schema_change(
        events_project: Path, tmp_path: Path) -> None:
    """The zero-date error's fix moves a table to `source.query`: SQLAlchemy then names its
    DECIMAL(10, 2) NUMERIC(10, 2), and the run warned of a changed type (found by a trial)."""
    with server_database("mariadb") as url:
        (events_project / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "amount DECIMAL(10, 2), updated_at DATETIME(6))",
                "INSERT INTO events VALUES (1, 0, 1.50, '2018-01-01 10:00:00')")
        spec = events_project / "pipelines" / "events.yml"
        spec.write_text(spec.read_text() + "columns:\n"
                        "  - {name: event_id, type: integer, nullable: false}\n"
                        "  - {name: v, type: integer}\n"
                        "  - {name: amount, type: \"decimal(10,2)\"}\n"
                        "  - {name: updated_at, type: timestamp}\n")
        run()
        spec.write_text(spec.read_text().replace(
            "table: events", "query: SELECT event_id, v, amount, updated_at FROM events"))
        execute(url, "INSERT INTO events VALUES (2, 0, 2.25, '2018-01-02 10:00:00')")

        record = run()

        assert not any("schema changed" in w for w in record["warnings"]), record["warnings"]
        assert landed(tmp_path / "warehouse.duckdb") == source(url)
