"""A no-op run on a bulk-loaded PostgreSQL table skips dlt without re-reading its rows, and
stays exact (framework/sources/sql/versions.py).

The table is written by SQL (`generate_series`), 25,000 rows sharing one `updated_at`: more
than the pre-check's MAX_ROWS, so before the row versions it re-read every row on every run.
Whether dlt's extract ran is counted on dlt's own `Pipeline.extract`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from framework.sources.sql import versions
from framework.sources.sql.precheck import MAX_ROWS
from tests.e2e.helpers import execute, run_json
from tests.e2e.test_incremental_exact import events_spec
from tests.integration.test_server_sources import server_database

ROWS = 25_000
assert ROWS > MAX_ROWS  # the case the pre-check used to hand to dlt
AT = "2018-01-01 00:00:00"


@pytest.fixture
def bulk(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A PostgreSQL `events` table bulk-loaded at one `updated_at`, landed once."""
    for spec in (project_dir / "pipelines").glob("*.yml"):
        spec.unlink()
    (project_dir / "pipelines" / "events.yml").write_text(events_spec())
    # lake and warehouse outside the state folder, so a test can delete the state alone
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    with server_database("postgresql") as url:
        (project_dir / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        execute(url, "CREATE TYPE kind AS ENUM ('odd', 'even')",
                "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                "note TEXT, kind kind, updated_at TIMESTAMP)",
                f"INSERT INTO events SELECT i, i % 7, 'n' || i, "
                f"CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END::kind, '{AT}' "
                f"FROM generate_series(1, {ROWS}) AS i")
        assert run()["rows_extracted"] == ROWS
        yield url


@contextmanager
def events_on_postgresql(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         spec: str) -> Iterator[str]:
    """The `events` pipeline (`spec`) alone, on a PostgreSQL database of its own (its URL)."""
    for old in (project_dir / "pipelines").glob("*.yml"):
        old.unlink()
    (project_dir / "pipelines" / "events.yml").write_text(spec)
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    with server_database("postgresql") as url:
        (project_dir / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        yield url


def run() -> dict[str, Any]:
    record = run_json("--pipeline", "events", "--no-dbt")["events"]
    assert record["status"] == "success", record["error"]
    return record


@pytest.fixture
def dlt_extracts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pipelines whose dlt extract ran (dlt's own method, counted on its way through)."""
    import dlt

    calls: list[str] = []
    extract = dlt.Pipeline.extract

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(self.pipeline_name)
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(dlt.Pipeline, "extract", counted)
    return calls


def landed(tmp_path: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        return sorted(con.execute(
            "SELECT event_id, v, note, kind, updated_at FROM landing.events").fetchall())
    finally:
        con.close()


def source(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(sa.text(
                "SELECT event_id, v, note, kind::text, updated_at FROM events")).all())
    finally:
        engine.dispose()


def assert_no_op_skips_dlt(calls: list[str]) -> None:
    before = len(calls)
    assert run()["rows_extracted"] == 0
    assert len(calls) == before, "dlt ran its extract on a table with nothing new"


def assert_read_once_more_then_skipped(calls: list[str], tmp_path: Path, url: str) -> None:
    """The fingerprint no longer matches: the next run reads again and loads nothing, the one
    after skips dlt, and the landing table equals the source."""
    before = len(calls)
    assert run()["rows_extracted"] == 0
    assert len(calls) == before + 1
    assert_no_op_skips_dlt(calls)
    assert landed(tmp_path) == source(url)


@pytest.mark.integration
def test_a_no_op_run_on_rows_sharing_the_cursor_does_not_run_dlt(
        bulk: str, tmp_path: Path, dlt_extracts: list[str]) -> None:
    assert_no_op_skips_dlt(dlt_extracts)
    assert_no_op_skips_dlt(dlt_extracts)
    assert landed(tmp_path) == source(bulk)


@pytest.mark.integration
@pytest.mark.parametrize(("statements", "extracted"), [
    # a value changed at the boundary, its cursor not
    (["UPDATE events SET note = 'changed' WHERE event_id = 17"], 1),
    # a new row at the boundary value
    ([f"INSERT INTO events VALUES ({ROWS + 1}, 0, 'new', 'even', '{AT}')"], 1),
    # the same row deleted and written again with the same values: read again, not loaded
    (["DELETE FROM events WHERE event_id = 5",
      f"INSERT INTO events VALUES (5, 5, 'n5', 'odd', '{AT}')"], 0),
    # an update that writes the same values: a new version, nothing new to load
    (["UPDATE events SET v = v WHERE event_id = 9"], 0),
    # a row moves above the boundary: the boundary moves with it
    (["UPDATE events SET updated_at = '2018-01-02' WHERE event_id = 8"], 1),
], ids=["updated", "inserted", "deleted-and-rewritten", "same-values", "moved-up"])
def test_a_change_at_the_boundary_is_read_exactly_once(
        bulk: str, tmp_path: Path, dlt_extracts: list[str], statements: list[str],
        extracted: int) -> None:
    execute(bulk, *statements)

    assert run()["rows_extracted"] == extracted
    assert landed(tmp_path) == source(bulk)
    assert_no_op_skips_dlt(dlt_extracts)


@pytest.mark.integration
@pytest.mark.parametrize(("statement", "extracted"), [
    ("ALTER TABLE events ADD COLUMN flag INTEGER DEFAULT 1", ROWS),  # kept as the default
    ("ALTER TYPE kind RENAME VALUE 'even' TO 'pair'", ROWS // 2),
], ids=["column-added-with-a-default", "enum-label-renamed"])
def test_a_change_that_writes_no_row_version_is_still_read(
        bulk: str, tmp_path: Path, dlt_extracts: list[str], statement: str,
        extracted: int) -> None:
    execute(bulk, statement)

    assert run()["rows_extracted"] == extracted
    assert landed(tmp_path) == source(bulk)
    assert_no_op_skips_dlt(dlt_extracts)


@pytest.mark.integration
def test_a_row_deleted_at_the_boundary_leaves_nothing_new(bulk: str,
                                                          dlt_extracts: list[str]) -> None:
    execute(bulk, "DELETE FROM events WHERE event_id = 4")

    assert run()["rows_extracted"] == 0
    assert_no_op_skips_dlt(dlt_extracts)


@pytest.mark.integration
def test_a_worker_without_the_state_folder_skips_dlt_and_still_sees_a_change(
        bulk: str, tmp_path: Path, dlt_extracts: list[str]) -> None:
    shutil.rmtree(tmp_path / "state")
    assert_no_op_skips_dlt(dlt_extracts)  # the fingerprint came back with the lake's state

    shutil.rmtree(tmp_path / "state")
    execute(bulk, "UPDATE events SET v = 100 WHERE event_id = 21")
    assert run()["rows_extracted"] == 1
    assert landed(tmp_path) == source(bulk)


@pytest.mark.integration
def test_vacuum_full_moves_the_versions_and_costs_one_read(bulk: str, tmp_path: Path,
                                                           dlt_extracts: list[str]) -> None:
    execute(bulk, "UPDATE events SET note = 'changed' WHERE event_id = 2")
    assert run()["rows_extracted"] == 1
    engine = sa.create_engine(bulk, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:  # compacts the dead version away: later rows move
            conn.execute(sa.text("VACUUM FULL events"))
    finally:
        engine.dispose()

    assert_read_once_more_then_skipped(dlt_extracts, tmp_path, bulk)


@pytest.mark.integration
def test_a_change_between_the_fingerprint_and_the_read_is_never_missed(
        bulk: str, tmp_path: Path, dlt_extracts: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer commits right after the fingerprint is taken, before dlt's read: the
    read takes the row, and the next run reads once more to find nothing new."""
    taken = versions.at_maximum

    def then_a_writer(*args: Any) -> Any:
        fingerprint = taken(*args)
        execute(bulk, "UPDATE events SET note = 'raced' WHERE event_id = 17")
        return fingerprint

    monkeypatch.setattr(versions, "at_maximum", then_a_writer)
    execute(bulk, "UPDATE events SET note = 'changed' WHERE event_id = 16")

    assert run()["rows_extracted"] == 2  # the read saw the writer's row too
    monkeypatch.setattr(versions, "at_maximum", taken)
    assert_read_once_more_then_skipped(dlt_extracts, tmp_path, bulk)


@pytest.mark.integration
def test_a_change_during_the_read_is_caught_by_the_next_run(
        bulk: str, tmp_path: Path, dlt_extracts: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer commits once the read has its snapshot (its first batch is out): the
    read misses the row, and a fingerprint taken any later than the read would hide it."""
    from framework.sources.sql import readers

    conform = readers.conform
    written: list[bool] = []

    def then_a_writer(table: Any, schema: Any) -> Any:
        if not written:
            written.append(True)
            execute(bulk, "UPDATE events SET note = 'during' WHERE event_id = 17")
        return conform(table, schema)

    monkeypatch.setattr(readers, "conform", then_a_writer)
    execute(bulk, "UPDATE events SET note = 'changed' WHERE event_id = 16")

    assert run()["rows_extracted"] == 1
    monkeypatch.setattr(readers, "conform", conform)
    assert run()["rows_extracted"] == 1
    assert_no_op_skips_dlt(dlt_extracts)
    assert landed(tmp_path) == source(bulk)


@pytest.mark.integration
@pytest.mark.parametrize(("cursor_type", "value"), [
    ("timestamptz", "2018-01-01 02:00:00+02"), ("date", "2018-01-01"), ("bigint", "5"),
    ("numeric(12, 2)", "5.50"), ("timestamp(3)", "2018-01-01 00:00:00.123"),
])
def test_every_ordered_cursor_type_skips_and_catches(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        dlt_extracts: list[str], cursor_type: str, value: str) -> None:
    for spec in (project_dir / "pipelines").glob("*.yml"):
        spec.unlink()
    (project_dir / "pipelines" / "events.yml").write_text(events_spec())
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    rows = MAX_ROWS + 1
    with server_database("postgresql") as url:
        (project_dir / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        execute(url, f"CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     f"updated_at {cursor_type})",
                f"INSERT INTO events SELECT i, 0, '{value}' FROM generate_series(1, {rows}) i")
        assert run()["rows_extracted"] == rows
        assert_no_op_skips_dlt(dlt_extracts)
        execute(url, "UPDATE events SET v = 1 WHERE event_id = 3")
        assert run()["rows_extracted"] == 1
        assert_no_op_skips_dlt(dlt_extracts)


@pytest.mark.integration
@pytest.mark.parametrize("statements", [
    [],
    # a transaction that committed late: its row sits inside the window, below the boundary
    ["INSERT INTO events VALUES (0, 0, 'late', 'even', TIMESTAMP '2017-12-31 23:55:00')"],
    ["UPDATE events SET note = 'changed' WHERE event_id = 17"],
], ids=["nothing", "late-commit-in-window", "updated"])
def test_a_look_back_window_skips_dlt_only_while_its_rows_are_unchanged(
        bulk: str, project_dir: Path, tmp_path: Path, dlt_extracts: list[str],
        statements: list[str]) -> None:
    """init writes `lag: 10m`, and every run read the window again: a batch, a load and a
    dbt build every 15 minutes for nothing. The window's row versions tell the same."""
    (project_dir / "pipelines" / "events.yml").write_text(events_spec(extra=", lag: 10m"))
    run()  # the first read with the window: its fingerprint is taken
    execute(bulk, *statements)
    before = len(dlt_extracts)

    run()

    assert len(dlt_extracts) == before + (1 if statements else 0)
    assert landed(tmp_path) == source(bulk)
    assert_no_op_skips_dlt(dlt_extracts)


@pytest.mark.integration
def test_a_changed_look_back_window_reads_again_once(
        bulk: str, project_dir: Path, tmp_path: Path, dlt_extracts: list[str]) -> None:
    """A wider `lag` covers rows the last fingerprint did not: one the last read left below
    its window is read once, then the runs skip dlt again."""
    (project_dir / "pipelines" / "events.yml").write_text(events_spec(extra=", lag: 10m"))
    run()
    (project_dir / "pipelines" / "events.yml").write_text(events_spec(extra=", lag: 2h"))
    execute(bulk, "INSERT INTO events VALUES (0, 0, 'old', 'even', TIMESTAMP '2017-12-31 23:00:00')")
    before = len(dlt_extracts)

    run()

    assert len(dlt_extracts) == before + 1
    assert landed(tmp_path) == source(bulk)
    assert_no_op_skips_dlt(dlt_extracts)


@pytest.mark.integration
@pytest.mark.parametrize(("cursor_type", "lag", "top", "late"), [
    ("bigint", "0.5", "100", "99"),  # dlt reads from int(100 - 0.5) = 99
    ("integer", "3", "100", "97"),
    ("date", "24h", "2018-01-02", "2018-01-01"),
    ("timestamptz", "10m", "2018-01-01 10:00:00+00", "2018-01-01 09:50:00+00"),
])
def test_a_look_back_window_on_any_cursor_type_catches_a_late_row(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        dlt_extracts: list[str], cursor_type: str, lag: str, top: str, late: str) -> None:
    """The window's start in SQL is never narrower than where dlt's read starts: a row at the
    window's edge committed late is read, then the next run skips dlt."""
    with events_on_postgresql(project_dir, tmp_path, monkeypatch,
                              events_spec(extra=f", lag: {lag}")) as url:
        execute(url, f"CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     f"updated_at {cursor_type})",
                f"INSERT INTO events VALUES (1, 0, '{top}'), (2, 0, '{top}')")
        run()
        assert_no_op_skips_dlt(dlt_extracts)
        execute(url, f"INSERT INTO events VALUES (3, 0, '{late}')")
        before = len(dlt_extracts)

        run()

        assert len(dlt_extracts) == before + 1
        landed_keys = {r[0] for r in landed_rows(tmp_path)}
        assert landed_keys == {1, 2, 3}
        assert_no_op_skips_dlt(dlt_extracts)


def landed_rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT event_id FROM landing.events").fetchall()
    finally:
        con.close()


@pytest.mark.integration
def test_a_look_back_window_on_a_decimal_cursor_is_one_line(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with events_on_postgresql(project_dir, tmp_path, monkeypatch,
                              events_spec(extra=", lag: 1.5")) as url:
        execute(url, "CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                     "updated_at numeric(12, 2))", "INSERT INTO events VALUES (1, 0, 10)")
        record = run_json("--pipeline", "events", "--no-dbt")["events"]

    assert record["status"] == "failed"
    assert record["error"] == (
        "events: extract: pipelines/events.yml: source.incremental.lag: dlt has no look-back "
        "window for a decimal cursor ('updated_at', NUMERIC(12, 2)); remove lag, or use an "
        "integer or timestamp cursor")


@pytest.mark.integration
@pytest.mark.parametrize("lag", ["", ", lag: 10m"], ids=["at-the-boundary", "in-the-window"])
def test_a_composite_type_that_gains_an_attribute_is_read_again(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        dlt_extracts: list[str], lag: str) -> None:
    """`ALTER TYPE ... ADD ATTRIBUTE` changes what every row of a column of that type reads as,
    and writes no row version: the landing table kept the old text."""
    with events_on_postgresql(project_dir, tmp_path, monkeypatch,
                              events_spec(extra=lag)) as url:
        execute(url, "CREATE TYPE pair AS (a int, b text)",
                "CREATE TABLE events (event_id INTEGER PRIMARY KEY, p pair, "
                "updated_at TIMESTAMP NOT NULL)",
                "INSERT INTO events VALUES (1, ROW(1, 'x'), '2018-01-01'), "
                "(2, ROW(2, 'y'), '2018-01-01')")
        run()
        assert_no_op_skips_dlt(dlt_extracts)
        execute(url, "ALTER TYPE pair ADD ATTRIBUTE c int CASCADE")

        assert run()["rows_extracted"] == 2
        con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
        try:
            pairs = sorted(con.execute("SELECT event_id, p FROM landing.events").fetchall())
        finally:
            con.close()
    assert pairs == [(1, "(1,x,)"), (2, "(2,y,)")]


@pytest.mark.integration
@pytest.mark.parametrize("lag", ["", ", lag: 10m"], ids=["no-window", "window"])
@pytest.mark.parametrize("statements", [
    [],
    ["UPDATE events SET note = 'changed' WHERE event_id = 30"],  # no cursor, changed
    [f"INSERT INTO events VALUES ({ROWS + 1}, 0, 'new', 'odd', NULL)"],  # a new one
    ["UPDATE events SET updated_at = NULL WHERE event_id = 21"],  # a cursor cleared
    ["UPDATE events SET updated_at = '2018-01-02' WHERE event_id = 40"],  # one set
    ["DELETE FROM events WHERE event_id = 50"],
], ids=["nothing", "updated", "inserted", "cursor-cleared", "cursor-set", "deleted"])
def test_rows_with_no_cursor_skip_dlt_only_while_unchanged(
        bulk: str, project_dir: Path, tmp_path: Path, dlt_extracts: list[str], lag: str,
        statements: list[str]) -> None:
    """`on_null: include` (init writes it for an updated_at that is NULL until a row's first
    update) reads the rows with no cursor on every run: 2,500 of them here, more than the
    digests other databases keep. Their row versions tell that none changed."""
    execute(bulk, "UPDATE events SET updated_at = NULL WHERE event_id % 10 = 0")
    (project_dir / "pipelines" / "events.yml").write_text(
        events_spec(extra=f", on_null: include{lag}"))
    # read once more: the rows with no cursor (and with the window, every row: all in it)
    assert run()["rows_extracted"] == (ROWS if lag else ROWS // 10)
    assert_no_op_skips_dlt(dlt_extracts)
    execute(bulk, *statements)
    before = len(dlt_extracts)

    run()

    assert len(dlt_extracts) == before + (1 if statements else 0)
    assert landed(tmp_path) == source(bulk) or "DELETE" in statements[0]  # reconcile's part
    assert_no_op_skips_dlt(dlt_extracts)
