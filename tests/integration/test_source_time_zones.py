"""Sources whose sessions or spellings are not in UTC: incremental reads lose and repeat nothing.

The framework's naive timestamps are UTC. A server, database or session in another zone reads
a bound like '2026-06-01 10:00' in that zone, hands zoned values over as its wall-clock times
and (MySQL) converts TIMESTAMP values to it; SQLite reads some spellings of a time not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import service_unavailable
from tests.e2e.helpers import execute, run_json
from tests.integration.test_server_sources import landed, one_table, server_database

EVENTS = "CREATE TABLE events (id INTEGER PRIMARY KEY, updated_at {kind} NOT NULL, note TEXT)"


def incremental_events(project_dir: Path, url: str) -> None:
    """Source `lab` at `url` and pipeline `events`, incremental on `updated_at`."""
    one_table(project_dir, url, "events")
    spec = project_dir / "pipelines" / "events.yml"
    spec.write_text(spec.read_text().replace(
        "  primary_key: [id]\n", "  primary_key: [id]\n  incremental: {cursor: updated_at}\n"))


def assert_mariadb_timestamps_land_in_utc(project_dir: Path, url: str, read_url: str) -> None:
    """TIMESTAMPs written in UTC at `url`, read through `read_url` by two runs, land as
    written."""
    execute(url, "SET time_zone = '+00:00'", EVENTS.format(kind="TIMESTAMP(6)"),
            "INSERT INTO events VALUES (1, '2026-06-01 10:00:00', 'a')")
    incremental_events(project_dir, read_url)
    run_json("--pipeline", "events", "--no-dbt")
    execute(url, "SET time_zone = '+00:00'",
            "INSERT INTO events VALUES (2, '2026-06-01 12:00:00', 'b')")

    record = run_json("--pipeline", "events", "--no-dbt")["events"]

    assert record["status"] == "success", record["error"]
    assert landed(project_dir, "SELECT id, updated_at FROM landing.events ORDER BY id") == [
        (1, datetime(2026, 6, 1, 10)), (2, datetime(2026, 6, 1, 12))]


def zoned(url: str, zone: str) -> None:
    """Every new session of the database `url` starts in `zone`."""
    base, name = url.rsplit("/", 1)
    admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER DATABASE {name} SET timezone TO '{zone}'"))
    finally:
        admin.dispose()


@pytest.mark.integration
def test_a_query_over_timestamptz_in_a_zone_west_of_utc_skips_no_row(project_dir: Path) -> None:
    """A query's columns have no type: the bound went out as '2026-06-01 10:00:00.000001', which
    a New York session reads four hours late, and the rows 1 and 3 hours after it were skipped
    for good."""
    with server_database("postgresql") as url:
        zoned(url, "America/New_York")
        execute(url, EVENTS.format(kind="timestamptz"),
                "INSERT INTO events VALUES (1, '2026-06-01 10:00:00+00', 'first')")
        (project_dir / "sources" / "lab.yml").write_text(f"name: lab\nurl: {url}\n")
        (project_dir / "pipelines" / "events.yml").write_text(
            "name: events\nsource:\n  connection: lab\n"
            "  query: SELECT id, updated_at, note FROM events\n  primary_key: [id]\n"
            "  incremental: {cursor: updated_at}\nlake:\n  path: events\n")
        run_json("--pipeline", "events", "--no-dbt")
        execute(url, "INSERT INTO events VALUES (2, '2026-06-01 11:00:00+00', '1h later'), "
                     "(3, '2026-06-01 13:00:00+00', '3h later'), "
                     "(4, '2026-06-01 15:00:00+00', '5h later')")

        record = run_json("--pipeline", "events", "--no-dbt")["events"]

        assert record["status"] == "success", record["error"]
        assert landed(project_dir, "SELECT id, updated_at FROM landing.events ORDER BY id") == [
            (1, datetime(2026, 6, 1, 10, tzinfo=UTC)), (2, datetime(2026, 6, 1, 11, tzinfo=UTC)),
            (3, datetime(2026, 6, 1, 13, tzinfo=UTC)), (4, datetime(2026, 6, 1, 15, tzinfo=UTC))]


@pytest.mark.integration
def test_the_repeated_autumn_hour_of_a_session_zone_appends_no_row_twice(
        project_dir: Path) -> None:
    """Read row by row in a New York session, 01:30 EDT and 01:10 EST (the later instant) came
    as datetimes of one zone, which Python compares by wall clock: the stored maximum fell an
    hour behind, and every run appended both rows again."""
    with server_database("postgresql") as url:
        zoned(url, "America/New_York")
        execute(url, EVENTS.format(kind="timestamptz"),
                "INSERT INTO events VALUES (1, '2026-11-01 01:30:00 EDT', 'a'), "
                "(2, '2026-11-01 01:10:00 EST', 'b')")
        incremental_events(project_dir, url)
        spec = project_dir / "pipelines" / "events.yml"
        spec.write_text(spec.read_text() + "warehouse:\n  write_disposition: append\n")
        (project_dir / "sources" / "lab.yml").write_text(
            f"name: lab\nurl: {url}\nbackend: sqlalchemy\n")

        records = [run_json("--pipeline", "events", "--no-dbt")["events"] for _ in range(3)]

        assert all(r["status"] == "success" for r in records), records
        assert landed(project_dir, "SELECT id, count(*), min(updated_at) FROM landing.events "
                                   "GROUP BY id ORDER BY id") == [
            (1, 1, datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
            (2, 1, datetime(2026, 11, 1, 6, 10, tzinfo=UTC))]


@pytest.mark.integration
def test_mariadb_timestamps_land_as_utc_whatever_the_sessions_zone(project_dir: Path) -> None:
    """A session set to -05:00 (here by the URL's init_command; a server's own zone does the
    same) converted TIMESTAMP values to its zone: 10:00 UTC landed as 05:00."""
    with server_database("mariadb") as url:
        assert_mariadb_timestamps_land_in_utc(
            project_dir, url, url + "?init_command=SET%20time_zone%3D%27-05%3A00%27")


def test_a_sqlite_time_spelled_with_a_bare_offset_is_read_incrementally(
        project_dir: Path, tmp_path: Path) -> None:
    """SQLite's julianday() cannot read '2026-06-01 12:02:00+0200' (10:02 UTC): the SQL filter
    left it out of every incremental read, though a full read lands it."""
    path = tmp_path / "events.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(EVENTS.format(kind="TIMESTAMP"))
        db.execute("INSERT INTO events VALUES (1, '2026-06-01 10:00:00', 'a')")
    incremental_events(project_dir, f"sqlite:///{path}")
    run_json("--pipeline", "events", "--no-dbt")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO events VALUES (2, '2026-06-01 12:02:00+0200', 'b')")

    record = run_json("--pipeline", "events", "--no-dbt")["events"]

    assert record["status"] == "success", record["error"]
    assert landed(project_dir, "SELECT id, updated_at FROM landing.events ORDER BY id") == [
        (1, datetime(2026, 6, 1, 10)), (2, datetime(2026, 6, 1, 10, 2))]


@pytest.fixture
def mariadb_west_of_utc(tmp_path: Path) -> Iterator[str]:
    """A MariaDB server of the test's own whose zone is -05:00 (`--default-time-zone`): the
    shared server's zone must not change under the other tests. Its URL, database `lab`."""
    import shutil
    import socket
    import subprocess
    import time

    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd") or \
        (Path("/usr/sbin/mariadbd").is_file() and "/usr/sbin/mariadbd")
    if not install or not server:
        service_unavailable("a MariaDB server of its own: mariadbd is not installed")
    data = tmp_path / "mariadb"
    subprocess.run([install, "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(server), "--no-defaults", f"--datadir={data}", "--user=root", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={data}/mariadb.sock", "--skip-grant-tables",
         "--innodb-buffer-pool-size=16M", "--default-time-zone=-05:00"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"mysql+pymysql://root@127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                execute(f"{url}/", "CREATE DATABASE lab")
                break
            except sa.exc.OperationalError:
                time.sleep(0.1)
        yield f"{url}/lab"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.integration
def test_mariadb_server_west_of_utc_lands_utc_timestamps_and_skips_no_row(
        mariadb_west_of_utc: str, project_dir: Path) -> None:
    """connectorx cannot set its session's zone, and the server converts TIMESTAMP values to its
    own: such a server's tables are read row by row in UTC sessions instead."""
    assert_mariadb_timestamps_land_in_utc(project_dir, mariadb_west_of_utc, mariadb_west_of_utc)
