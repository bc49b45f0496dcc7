"""Incremental extraction is exact on every spelling of a cursor value, on any worker.

The source rows are written with Python's `sqlite3` module directly, in the spellings other
programs use (no fraction, `T`, offsets, a bare date), so that nothing in the framework's own
code path decides how a value looks. Every case compares the warehouse with the source and
counts the rows each run extracted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.helpers import cli, run_json


def events_spec(cursor: str = "updated_at", extra: str = "", disposition: str = "merge") -> str:
    return (f"name: events\nsource:\n  connection: events\n  table: events\n"
            f"  primary_key: [event_id]\n  incremental: {{cursor: {cursor}{extra}}}\n"
            f"lake:\n  path: events\nwarehouse:\n  write_disposition: {disposition}\n")


@dataclass
class Events:
    """A SQLite `events` table, its pipeline, and a lake and warehouse outside the state
    folder (so a test can delete the state folder alone)."""

    db: Path
    project: Path
    warehouse: Path
    state: Path

    def write(self, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        con = sqlite3.connect(self.db)
        try:
            if rows is None:
                con.execute(sql)
            else:
                con.executemany(sql, rows)
            con.commit()
        finally:
            con.close()

    def source(self) -> dict[int, int]:
        con = sqlite3.connect(self.db)
        try:
            return dict(con.execute("SELECT event_id, v FROM events").fetchall())
        finally:
            con.close()

    def landed(self, missing_ok: bool = False) -> list[tuple[int, int]]:
        """The warehouse's rows; with `missing_ok`, none before a first batch is loaded."""
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            if missing_ok and not con.execute(
                    "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'landing' "
                    "AND table_name = 'events'").fetchall():
                return []
            return sorted(con.execute("SELECT event_id, v FROM landing.events").fetchall())
        finally:
            con.close()

    def reset(self) -> None:
        """Back to nothing (each example of a property test): no lake, no warehouse, no state
        folder (nor a second worker's), no source file."""
        shutil.rmtree(self.warehouse.parent / "lake", ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)
        shutil.rmtree(self.state.with_name("state-2"), ignore_errors=True)
        self.warehouse.unlink(missing_ok=True)
        self.db.unlink(missing_ok=True)

    def run(self) -> dict[str, Any]:
        record = run_json("--pipeline", "events", "--no-dbt")["events"]
        assert record["status"] == "success", record["error"]
        return record

    def spec(self, text: str) -> None:
        (self.project / "pipelines" / "events.yml").write_text(text)

    def replay_killed(self, load_id: str, at: str) -> None:
        """`framework replay` of the batch, killed (SIGKILL) at checkpoint `at`."""
        replay = subprocess.run([sys.executable, "-m", "framework.cli", "replay", "--pipeline",
                                 "events", "--load-id", load_id], cwd=self.project, check=False,
                                capture_output=True, env={**os.environ, "FRAMEWORK_KILL_AT": at})
        assert replay.returncode == -9, replay.stderr[-600:]

    def quarantined_and_released(self, reason: str) -> dict[str, Any]:
        """A run whose batch is quarantined, then released on purpose: its record."""
        record = run_json("--pipeline", "events", "--no-dbt")["events"]
        assert record["status"] == "quarantined", record["error"]
        released = cli("release", "--pipeline", "events", "--load-id", record["load_id"],
                       "--reason", reason)
        assert released.exit_code == 0, released.output
        return record


@pytest.fixture
def events(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Events]:
    for spec in (project_dir / "pipelines").glob("*.yml"):
        spec.unlink()
    db = tmp_path / "events.db"
    (project_dir / "sources" / "events.yml").write_text(f"name: events\nurl: sqlite:///{db}\n")
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    found = Events(db, project_dir, tmp_path / "warehouse.duckdb", tmp_path / "state")
    found.spec(events_spec())
    yield found


def create(events: Events, cursor_type: str = "DATETIME", cursor: str = "updated_at") -> None:
    events.write(f"CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                 f"{cursor} {cursor_type})")


# Pairs of spellings of one instant: the first run's maximum is written the first way, rows
# at that same instant arrive later written the second way.
SPELLINGS = [
    ("2017-01-14 21:19:00.000000", "2017-01-14 21:19:00"),
    ("2017-01-14 21:19:00", "2017-01-14 21:19:00.000000"),
    ("2017-01-14 21:19:00", "2017-01-14T21:19:00"),
    ("2017-01-14T21:19:00.000", "2017-01-14 21:19:00+00:00"),
    ("2017-01-14 21:19:00", "2017-01-14 23:19:00+02:00"),
    ("2017-01-14 21:19:00.5", "2017-01-14T21:19:00.500000Z"),
    ("2017-01-14", "2017-01-14 00:00:00.000000"),
    ("2017-01-14 00:00:00", "2017-01-14"),
]


@pytest.mark.parametrize(("first", "later"), SPELLINGS,
                         ids=[f"{a}|{b}" for a, b in SPELLINGS])
def test_rows_at_the_boundary_in_another_spelling_are_caught_once(events: Events, first: str,
                                                                  later: str) -> None:
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(1, 1, "2017-01-13 08:00:00"), (2, 1, first), (3, 1, first)])
    assert events.run()["rows_extracted"] == 3
    # A new row and a changed row at the boundary, in the other spelling; row 3 untouched.
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(4, 1, later)])
    events.write("UPDATE events SET v = 2, updated_at = ? WHERE event_id = 2", [(later,)])

    assert events.run()["rows_extracted"] == 2
    assert dict(events.landed()) == events.source()
    assert events.run()["rows_extracted"] == 0


def test_text_in_a_sqlite_integer_column_is_named_with_the_mapping(events: Events) -> None:
    """SQLite keeps 'three' in an INTEGER column; the read failed with a bare
    `ArrowTypeError: Expected bytes, got a 'int' object`, naming no column."""
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(1, 1, "2017-01-13 08:00:00"), (2, "three", "2017-01-13 08:00:00")])

    result = cli("run", "--pipeline", "events", "--no-dbt")

    assert result.exit_code == 1
    assert ("error: events: extract: column 'v' holds 'three': beside the INTEGER values of its "
            "own type (SQLite keeps any value in any column; no lake column holds both); map it "
            "in source.query: CAST(v AS TEXT) AS v, or a CASE that keeps the values of its type"
            ) in result.output.splitlines(), result.output


@pytest.mark.parametrize("action", ["remove", "mark"])
def test_a_row_deleted_then_inserted_again_at_the_boundary_comes_back(
        events: Events, action: str) -> None:
    """Reconcile took the row out of the warehouse, but its copy in the lake's boundary batch
    (and the stored digests) still said 'landed': inserted again unchanged, it was dropped
    as read before, on every run, missing (or marked deleted) for good."""
    events.spec(events_spec() + f"deletes:\n  reconcile: {action}\n  max_fraction: 0.5\n")
    create(events)
    rows = [(1, 1, "2017-01-13 08:00:00"), (2, 1, "2017-01-14 21:19:00"),
            (3, 1, "2017-01-14 21:19:00")]
    events.write("INSERT INTO events VALUES (?, ?, ?)", rows)
    events.run()
    events.write("DELETE FROM events WHERE event_id = 3")
    events.run()  # reconcile removes (or marks) 3
    events.write("INSERT INTO events VALUES (?, ?, ?)", [rows[2]])

    events.run()
    after = events.run()

    live = duckdb.connect(str(events.warehouse), read_only=True)
    try:
        marked = live.execute("SELECT count(*) FROM landing.events WHERE "
                              + ("_deleted_at IS NOT NULL" if action == "mark" else "false")
                              ).fetchone()
    finally:
        live.close()
    assert dict(events.landed()) == events.source()
    assert marked == (0,)
    assert after["rows_extracted"] == 0  # read again once, then nothing new


@pytest.mark.parametrize("gap", [1, 2])
def test_a_row_deleted_then_inserted_again_after_the_boundary_was_read_again_comes_back(
        events: Events, gap: int) -> None:
    """A run between reconcile's delete and the insert read the boundary again (row 2) into a
    new batch; the row's copy in the older batch, from before the delete, still said
    'landed', and so did its stored digest: inserted again unchanged, it was dropped for good
    (found by a review)."""
    events.spec(events_spec() + "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    create(events)
    at = "2017-01-14 21:19:00"
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(1, 1, "2017-01-13 08:00:00"), (2, 1, at), (3, 1, at)])
    events.run()
    events.write("DELETE FROM events WHERE event_id = 3")
    events.run()  # reconcile removes 3
    read_around = [events.run() for _ in range(gap)]
    events.write("INSERT INTO events VALUES (3, 1, ?)", [(at,)])

    back = events.run()
    after = events.run()

    assert [r["rows_extracted"] for r in read_around] == [1] + [0] * (gap - 1)
    assert back["rows_extracted"] == 1
    assert after["rows_extracted"] == 0
    assert dict(events.landed()) == events.source() == {1: 1, 2: 1, 3: 1}


def test_a_released_row_stays_out_after_another_rows_reconciled_delete(events: Events) -> None:
    """A row released from quarantine sat at the boundary. Reconcile's delete of another row
    made the boundary's rows read again, the released one with them: its batch was quarantined
    again and the pipeline blocked until a second release."""
    events.spec(events_spec() + "quality:\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n"
                "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    create(events)
    insert = "INSERT INTO events VALUES (?, ?, ?)"
    events.write(insert, [(1, 1, "2017-01-13 08:00:00"), (2, 1, "2017-01-14 21:19:00"),
                          (3, 1, "2017-01-14 21:19:00")])
    events.run()
    events.write(insert, [(4, -1, "2017-01-14 21:19:00")])  # at the boundary, and bad
    bad = run_json("--pipeline", "events", "--no-dbt")["events"]
    assert bad["status"] == "quarantined", bad["error"]
    released = cli("release", "--pipeline", "events", "--load-id", bad["load_id"],
                   "--reason", "row 4 stays out")
    assert released.exit_code == 0, released.output
    events.write("DELETE FROM events WHERE event_id = 1")
    events.run()  # reconcile removes 1

    again = events.run()
    after = events.run()

    assert again["rows_extracted"] == 2  # rows 2 and 3, which the delete may have touched
    assert after["rows_extracted"] == 0
    assert events.landed() == [(2, 1), (3, 1)]


def test_a_loaded_row_copied_into_a_released_batch_comes_back_after_its_delete(
        events: Events) -> None:
    """A boundary read again after a reconcile copies every boundary row into its batch; that
    batch released, a row the warehouse held from an earlier batch, deleted and then inserted
    again unchanged, matched its copy there and was kept out for good (found by a review)."""
    events.spec(events_spec() + "quality:\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n"
                "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    create(events)
    insert, at = "INSERT INTO events VALUES (?, ?, ?)", "2017-01-14 21:19:00"
    events.write(insert, [(1, 1, "2017-01-13 08:00:00"), (2, 1, at), (3, 1, at)])
    events.run()
    events.write("DELETE FROM events WHERE event_id = 1")
    events.run()  # reconcile removes 1: the boundary is read again next
    events.write(insert, [(4, -1, at)])
    events.quarantined_and_released("row 4 stays out")  # 2 and 3 again, and 4
    events.write("DELETE FROM events WHERE event_id = 2")
    events.run()  # reconcile removes 2
    events.write(insert, [(2, 1, at)])  # back, unchanged

    events.run()
    events.run()

    assert dict(events.landed()) == {2: 1, 3: 1}  # row 4 stays out, released


def test_a_released_row_in_a_look_back_window_stays_out_until_it_changes(
        events: Events) -> None:
    """`lag` (init writes 10m) reads the window again on every run: a row released from
    quarantine came back with the next new row, and its batch was quarantined again, as long
    as the row stayed in the window."""
    events.spec(events_spec(extra=", lag: 3600") + "quality:\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n")
    create(events)
    insert = "INSERT INTO events VALUES (?, ?, ?)"
    events.write(insert, [(1, 1, "2017-01-14 21:00:00"), (2, 1, "2017-01-14 21:19:00")])
    events.run()
    events.write(insert, [(3, -1, "2017-01-14 21:20:00")])
    bad = run_json("--pipeline", "events", "--no-dbt")["events"]
    assert bad["status"] == "quarantined", bad["error"]
    released = cli("release", "--pipeline", "events", "--load-id", bad["load_id"],
                   "--reason", "row 3 stays out")
    assert released.exit_code == 0, released.output
    assert events.run()["rows_extracted"] == 0  # nothing new: the window as the last read met it
    events.write(insert, [(4, 1, "2017-01-14 21:21:00")])

    newer = events.run()
    events.write("UPDATE events SET v = 5 WHERE event_id = 3")  # fixed at the source
    fixed = events.run()

    assert newer["rows_extracted"] == 3  # the window but the released row: 1, 2 and 4
    assert fixed["rows_extracted"] == 4  # row 3 too, changed
    assert dict(events.landed()) == events.source()


def released_in_a_window(events: Events, extra_rows: list[tuple[int, int, str]]) -> None:
    """Rows 1 and 2 loaded in a one-hour window (with `extra_rows`), then bad row 3 at its top:
    the batch holding it (and rows 1 and 2, read again) quarantined, then released."""
    events.spec(events_spec(extra=", lag: 3600") + "quality:\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n")
    create(events)
    insert = "INSERT INTO events VALUES (?, ?, ?)"
    events.write(insert, [(1, 1, "2017-01-14 21:00:00"), (2, 1, "2017-01-14 21:19:00"),
                          *extra_rows])
    events.run()
    events.write(insert, [(3, -1, "2017-01-14 21:20:00")])
    events.quarantined_and_released("row 3 stays out")


def test_a_window_row_changed_in_place_and_back_is_read_each_time(events: Events) -> None:
    """Row 1's version sat in the released batch too: changed (cursor kept) it loaded, and
    changed back it matched that copy and was dropped, the warehouse keeping the change
    (found by a review)."""
    released_in_a_window(events, [])
    events.write("UPDATE events SET v = 7 WHERE event_id = 1")
    events.run()
    events.write("UPDATE events SET v = 1 WHERE event_id = 1")

    events.run()

    assert dict(events.landed()) == {1: 1, 2: 1}


def test_a_full_refresh_after_a_release_reads_every_row(events: Events) -> None:
    """The window's filter of released rows ran on a full refresh too: rows 1 and 2, copied
    into the released batch, were left out of the whole read that replaced the table (found
    by a review). The whole read holds row 3 again, and is quarantined, the table kept."""
    released_in_a_window(events, [(i, 1, "2017-01-13 08:00:00") for i in range(10, 20)])

    full = run_json("--pipeline", "events", "--no-dbt", "--full-refresh")["events"]

    assert full["status"] == "quarantined", full["error"]
    assert dict(events.landed()) == {k: v for k, v in events.source().items() if k != 3}


def test_a_released_row_in_a_window_stays_out_after_another_rows_reconciled_delete(
        events: Events) -> None:
    """Released batches older than reconcile's last delete were ignored: any delete brought
    the released row back, and the pipeline was blocked again (found by a trial on MariaDB)."""
    released_in_a_window(events, [(10, 1, "2017-01-13 08:00:00")])
    spec = events.project / "pipelines" / "events.yml"
    spec.write_text(spec.read_text() + "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    events.write("DELETE FROM events WHERE event_id = 10")
    events.run()  # reconcile removes 10

    events.write("INSERT INTO events VALUES (4, 1, '2017-01-14 21:21:00')")
    after = events.run()

    assert after["status"] == "success"
    assert dict(events.landed()) == {1: 1, 2: 1, 4: 1}


def test_a_window_row_deleted_then_inserted_again_comes_back(events: Events) -> None:
    """The window's digests, kept by a read before reconcile's delete, still held row 1:
    inserted again unchanged, the pre-check found the window as the last read met it and
    skipped dlt, row 1 missing for good."""
    released_in_a_window(events, [])
    spec = events.project / "pipelines" / "events.yml"
    spec.write_text(spec.read_text() + "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    events.write("DELETE FROM events WHERE event_id = 1")
    events.run()  # reconcile removes 1
    events.write("INSERT INTO events VALUES (1, 1, '2017-01-14 21:00:00')")  # back, unchanged

    back = events.run()
    after = events.run()

    assert back["rows_extracted"] == 2  # the window read again, row 1 in it; row 3 stays out
    assert after["rows_extracted"] == 0
    assert dict(events.landed()) == {1: 1, 2: 1}


def test_a_released_batch_replayed_reaches_the_warehouse_and_later_reads(
        events: Events) -> None:
    """A released batch replayed after its rule was relaxed loads its rows, and the window's
    re-reads no longer leave them out."""
    released_in_a_window(events, [])
    events.spec(events_spec(extra=", lag: 3600"))  # the rule relaxed
    [released] = [r["load_id"] for r in json.loads(cli("history", "--pipeline", "events",
                                                         "--json").stdout)
                  if r["status"] == "quarantined"]
    assert cli("replay", "--pipeline", "events", "--load-id", released).exit_code == 0
    quiet = events.run()
    events.write("INSERT INTO events VALUES (4, 1, '2017-01-14 21:21:00')")

    again = events.run()

    assert quiet["rows_extracted"] == 0  # the window unchanged: dlt skipped
    assert again["rows_extracted"] == 4  # the window, row 3 with it
    assert dict(events.landed()) == {1: 1, 2: 1, 3: -1, 4: 1}


def test_a_row_loaded_before_lag_was_added_is_not_kept_out_by_a_release(
        events: Events) -> None:
    """The first read with a window met every row anew and recorded its batch as each row's
    first: released, it kept out row 1, loaded long before; deleted by reconcile and inserted
    again unchanged, row 1 was lost for good (found by a review)."""
    create(events)
    insert = "INSERT INTO events VALUES (?, ?, ?)"
    events.write(insert, [(1, 1, "2017-01-14 21:00:00"), (2, 1, "2017-01-14 21:10:00"),
                          (5, 1, "2017-01-14 21:15:00")])
    events.run()  # no window yet
    events.spec(events_spec(extra=", lag: 3600") + "quality:\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n"
                "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    events.write(insert, [(3, -1, "2017-01-14 21:20:00")])
    events.quarantined_and_released("row 3 stays out")
    events.write("DELETE FROM events WHERE event_id = 1")
    events.run()  # reconcile removes 1
    events.write(insert, [(1, 1, "2017-01-14 21:00:00"), (4, 1, "2017-01-14 21:21:00")])

    record = run_json("--pipeline", "events", "--no-dbt")["events"]

    # Row 3 comes back with the window (its batch was the window's first read, which knew no
    # row's first batch): quarantined again, never lost. Row 1 is not kept out.
    assert record["status"] == "quarantined", record["error"]
    assert cli("release", "--pipeline", "events", "--load-id", record["load_id"],
               "--reason", "row 3 stays out").exit_code == 0
    events.write("UPDATE events SET v = 0 WHERE event_id = 3")  # fixed at the source
    events.run()
    # row 4, new in the batch released second, stays out with it until it changes
    assert dict(events.landed()) == {1: 1, 2: 1, 3: 0, 5: 1}


def test_a_window_row_another_batch_loaded_is_not_kept_out_by_its_first_batchs_release(
        events: Events) -> None:
    """Row 5's first batch, left in the lake by a killed run, was quarantined and released
    after a later read had carried row 5 into the warehouse: deleted by reconcile and inserted
    again unchanged, row 5 stayed out for good (found by a review)."""
    events.spec(events_spec(extra=", lag: 3600") + "quality:\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n"
                "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    create(events)
    insert = "INSERT INTO events VALUES (?, ?, ?)"
    events.write(insert, [(1, 1, "2017-01-14 21:00:00"), (2, 1, "2017-01-14 21:10:00")])
    events.run()
    events.write(insert, [(5, 1, "2017-01-14 21:15:00"), (3, -1, "2017-01-14 21:20:00")])
    killed = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--pipeline",
                             "events", "--no-dbt"], cwd=events.project, check=False,
                            env={**os.environ, "FRAMEWORK_KILL_AT": "after_lake_write"},
                            capture_output=True)
    assert killed.returncode == -9, killed.stderr[-600:]
    events.write("UPDATE events SET v = 0 WHERE event_id = 3")  # fixed at the source
    held = run_json("--pipeline", "events", "--no-dbt")["events"]  # reads again, then the
    assert held["status"] == "quarantined"                          # killed run's batch
    assert cli("release", "--pipeline", "events", "--load-id", held["load_ids"][0],
               "--reason", "the killed run's row 3").exit_code == 0
    events.run()  # the second read's batch loads, row 5 with it
    events.write("DELETE FROM events WHERE event_id = 5")
    events.run()  # reconcile removes 5
    events.write(insert, [(5, 1, "2017-01-14 21:15:00")])  # back, unchanged

    events.run()

    assert dict(events.landed()) == events.source() == {1: 1, 2: 1, 3: 0, 5: 1}


@pytest.mark.parametrize(("killed", "stages"), [(False, False), (True, False), (False, True)],
                         ids=["replayed", "killed-after-load", "orchestrator-stages"])
def test_a_batch_replayed_after_a_delete_does_not_keep_the_deleted_row_out(
        events: Events, killed: bool, stages: bool) -> None:
    """Row 2's update sat in a released batch when reconcile deleted row 2. Replayed, the
    batch loaded without row 2 (deleted after it was read), but its copy still said
    'landed': row 2 inserted again as that update was dropped for good (found by a review).
    So too when the replay is killed right after its load commits."""
    rule = ("quality:\n  expectations:\n"
            "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n")
    deletes = "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n"
    events.spec(events_spec() + rule + deletes)
    create(events)
    insert, at = "INSERT INTO events VALUES (?, ?, ?)", "2017-01-14 21:19:00"
    events.write(insert, [(1, 1, "2017-01-13 08:00:00"), (2, 1, "2017-01-13 09:00:00")])
    events.run()
    events.write("UPDATE events SET v = 2, updated_at = ? WHERE event_id = 2", [(at,)])
    events.write(insert, [(4, -1, at)])  # bad: holds the batch back
    bad = events.quarantined_and_released("row 4 stays out")
    events.write("DELETE FROM events WHERE event_id = 2")
    events.run()  # reconcile removes 2
    events.spec(events_spec() + deletes)  # the rule relaxed
    if killed:
        events.replay_killed(bad["load_id"], at="after_load")
    else:
        assert cli("replay", "--pipeline", "events", "--load-id", bad["load_id"]
                   ).exit_code == 0
    assert dict(events.landed()) == {1: 1, 4: -1}  # row 2 stays deleted
    events.write(insert, [(2, 2, at)])  # back, as its update

    if stages:  # Airflow's tasks: each stage its own call
        from framework import api

        for _ in range(2):
            pending = api.extract("events", project_dir=events.project)
            for stage in (api.transform, api.validate, api.load):
                stage("events", pending, project_dir=events.project)
    else:
        events.run()
        after = events.run()
        assert after["rows_extracted"] == 0

    assert dict(events.landed()) == events.source() == {1: 1, 2: 2, 4: -1}


@pytest.mark.parametrize("fails", ["validation", "killed"])
def test_a_replay_that_fails_again_leaves_its_rows_kept_out(events: Events, fails: str
                                                            ) -> None:
    """A released batch replayed without a fix is quarantined again, or its replay killed
    before it loads; released once more, its bad row stays out as before, and does not come
    back with the next run (found by a review: the record had been changed ahead)."""
    events.spec(events_spec() + "quality:\n  expectations:\n"
                "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n"
                "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    create(events)
    insert, at = "INSERT INTO events VALUES (?, ?, ?)", "2017-01-14 21:19:00"
    events.write(insert, [(1, 1, "2017-01-13 08:00:00"), (2, 1, "2017-01-13 09:00:00")])
    events.run()
    events.write(insert, [(3, 1, at), (4, -1, at)])
    bad = events.quarantined_and_released("row 4 stays out")
    events.write("DELETE FROM events WHERE event_id = 1")
    events.run()  # reconcile removes 1

    if fails == "killed":
        events.replay_killed(bad["load_id"], at="transform")
    else:
        again = cli("replay", "--pipeline", "events", "--load-id", bad["load_id"])
        assert again.exit_code == 1, again.output
        assert cli("release", "--pipeline", "events", "--load-id", bad["load_id"],
                   "--reason", "still out").exit_code == 0
    after = events.run()

    assert after["status"] == "success" and after["rows_extracted"] == 0
    assert dict(events.landed()) == {2: 1}


def test_a_torn_reconcile_record_reads_the_boundary_again(events: Events, tmp_path: Path
                                                          ) -> None:
    """The record of reconcile's last delete is kept with the lake; torn (an older version
    wrote it in place and was killed), it proves nothing, so the rows at the boundary are
    read and merged again: never a failed run, never a row lost."""
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(1, 1, "2017-01-13 08:00:00"), (2, 1, "2017-01-14 21:19:00"),
                  (3, 1, "2017-01-14 21:19:00")])
    events.run()
    record = tmp_path / "lake" / "raw" / "_framework_reconciled" / "events.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"through": "17')

    again = events.run()

    assert again["rows_extracted"] == 2  # the two rows at the boundary, merged on their key
    assert dict(events.landed()) == events.source()


def test_a_number_in_a_sqlite_timestamp_column_is_named_with_the_mapping(
        events: Events) -> None:
    """Another program wrote epoch seconds into a TIMESTAMP column: SQLAlchemy's parser
    failed with a bare `TypeError: fromisoformat: argument must be str`, naming no column."""
    events.write("CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                 "shipped TIMESTAMP, updated_at TIMESTAMP)")
    events.write("INSERT INTO events VALUES (?, ?, ?, ?)",
                 [(1, 1, "2017-01-13 08:00:00", "2017-01-13"), (2, 1, 1700000000, "2017-01-13")])

    result = cli("run", "--pipeline", "events", "--no-dbt")

    assert result.exit_code == 1
    assert ("error: events: extract: column 'shipped' holds 1700000000: a number where SQLite "
            "keeps a timestamp as text; map it in source.query: datetime(shipped, 'unixepoch') "
            "AS shipped for epoch seconds, or CAST(shipped AS TEXT) AS shipped"
            ) in result.output.splitlines(), result.output


@pytest.mark.parametrize(("cursor_type", "boundary", "above"), [
    ("DATE", "2017-01-14", "2017-01-15"),
    ("INTEGER", 5, 6),
    ("VARCHAR(8)", "b", "c"),
])
def test_date_integer_and_text_cursors_catch_the_boundary(events: Events, cursor_type: str,
                                                          boundary: Any, above: Any) -> None:
    create(events, cursor_type)
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(1, 1, boundary), (2, 1, boundary)])
    assert events.run()["rows_extracted"] == 2
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(3, 1, boundary), (4, 1, above)])
    events.write("UPDATE events SET v = 2 WHERE event_id = 1")

    assert events.run()["rows_extracted"] == 3
    assert dict(events.landed()) == events.source()
    assert events.run()["rows_extracted"] == 0


# -- stateless workers ---------------------------------------------------------------------


def change_round(events: Events, round_: int) -> int:
    """A new row, a new row at the current maximum (spelled another way), an update: 3 rows."""
    con = sqlite3.connect(events.db)
    try:
        top = con.execute("SELECT max(julianday(updated_at)) FROM events").fetchone()[0]
        at_top = con.execute("SELECT strftime('%Y-%m-%dT%H:%M:%S', ?)", (top,)).fetchone()[0]
        later = con.execute("SELECT datetime(?, '+1 minute')", (top,)).fetchone()[0]
        next_id = con.execute("SELECT max(event_id) + 1 FROM events").fetchone()[0]
        con.executemany("INSERT INTO events VALUES (?, ?, ?)",
                        [(next_id, round_, at_top), (next_id + 1, round_, later)])
        con.execute("UPDATE events SET v = ?, updated_at = ? WHERE event_id = ?",
                    (100 + round_, later, 1 + round_))
        con.commit()
    finally:
        con.close()
    return 3


@pytest.mark.parametrize("disposition", ["merge", "append"])
def test_a_worker_without_the_state_folder_resumes_from_the_lake(
        events: Events, disposition: str) -> None:
    events.spec(events_spec(disposition=disposition))
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(i, 0, f"2017-01-14 21:{i:02d}:00") for i in range(1, 11)])
    assert events.run()["rows_extracted"] == 10
    versions = 10
    for round_ in range(1, 3):
        shutil.rmtree(events.state)  # a new machine: no dlt state, no run records, no locks
        versions += change_round(events, round_)
        assert events.run()["rows_extracted"] == 3
    shutil.rmtree(events.state)
    assert events.run()["rows_extracted"] == 0

    landed = events.landed()
    if disposition == "merge":
        assert dict(landed) == events.source()
    else:  # every version once: the row's first version, then each update
        assert len(landed) == versions and len(set(landed)) == versions
        assert {k for k, _ in landed} == set(events.source())


def test_a_lake_wiped_under_a_worker_with_its_state_folder_is_filled_again(
        events: Events) -> None:
    """A lake deleted (or a new one configured) while this machine keeps its state folder: dlt
    takes a lake without its `raw/init` for a new one and drops the local cursor, so the next
    run reads every row again into it. Writing `init` before dlt's sync (for a first run with
    --full-refresh) hid that: the run read only the new row, and the lake lacked the rest."""
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(i, 0, f"2017-01-14 21:{i:02d}:00") for i in range(1, 4)])
    assert events.run()["rows_extracted"] == 3
    shutil.rmtree(events.warehouse.parent / "lake")
    events.write("INSERT INTO events VALUES (4, 0, '2017-01-14 22:00:00')")

    assert events.run()["rows_extracted"] == 4
    assert dict(events.landed()) == events.source()


def test_two_workers_with_their_own_state_take_turns_on_one_lake(
        events: Events, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(i, 0, f"2017-01-14 21:{i:02d}:00") for i in range(1, 11)])
    workers = [tmp_path / "worker-a", tmp_path / "worker-b"]
    monkeypatch.setenv("FRAMEWORK_STATE_DIR", str(workers[0]))
    assert events.run()["rows_extracted"] == 10
    for round_ in range(1, 5):
        monkeypatch.setenv("FRAMEWORK_STATE_DIR", str(workers[round_ % 2]))
        change_round(events, round_)
        assert events.run()["rows_extracted"] == 3, f"round {round_}"
        assert dict(events.landed()) == events.source()
    monkeypatch.setenv("FRAMEWORK_STATE_DIR", str(workers[1]))
    assert events.run()["rows_extracted"] == 0


# -- many rows at one cursor value ---------------------------------------------------------


def test_rows_sharing_one_cursor_value_keep_the_state_small_and_changes_caught(
        events: Events) -> None:
    rows = 30_000
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(i, 0, "2020-06-01 00:00:00") for i in range(rows)])
    assert events.run()["rows_extracted"] == rows

    state_files = list(events.state.rglob("dlt/events/state.json"))
    assert state_files and state_files[0].stat().st_size < 8_000  # dlt's hashes: ~1 MB here
    lake_states = sorted((events.db.parent / "lake" / "raw" / "_dlt_pipeline_state").iterdir())
    assert lake_states[-1].stat().st_size < 8_000
    assert events.run()["rows_extracted"] == 0
    events.write("UPDATE events SET v = 1 WHERE event_id IN (7, 29999)")
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(rows, 0, "2020-06-01T00:00:00")])
    assert events.run()["rows_extracted"] == 3
    assert dict(events.landed()) == events.source()


# -- lag in the cursor's unit --------------------------------------------------------------


def test_lag_on_a_date_cursor_is_days(events: Events) -> None:
    events.spec(events_spec(extra=", lag: 1d"))
    create(events, "DATE")
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(i, 0, f"2017-01-{i:02d}") for i in range(1, 21)])
    assert events.run()["rows_extracted"] == 20
    events.write("UPDATE events SET v = 1 WHERE event_id = 19")  # committed late, a day back

    # `plan` counts what the run reads: the window as well as the rows at the cursor.
    planned = cli("plan", "--pipeline", "events", "--no-dbt")
    assert ("2 row(s) at or after the cursor, less the lag window (read again, merged on the "
            "key)") in planned.output, planned.output

    # The window is one day (19th and 20th), not 86400 days (every row).
    assert events.run()["rows_extracted"] == 2
    assert dict(events.landed()) == events.source()


def test_lag_on_an_integer_cursor_is_cursor_units(events: Events) -> None:
    events.spec(events_spec(cursor="seq", extra=", lag: 3"))
    create(events, "INTEGER", cursor="seq")
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(i, 0, i) for i in range(1, 1001)])
    assert events.run()["rows_extracted"] == 1000
    events.write("UPDATE events SET v = 1 WHERE event_id = 998")

    assert events.run()["rows_extracted"] == 4  # seq 997..1000
    assert dict(events.landed()) == events.source()


def test_a_duration_lag_on_an_integer_cursor_is_one_line(events: Events) -> None:
    events.spec(events_spec(cursor="seq", extra=", lag: 10m"))
    create(events, "INTEGER", cursor="seq")
    events.write("INSERT INTO events VALUES (1, 0, 1)")

    result = cli("run", "--pipeline", "events", "--no-dbt")

    assert result.exit_code == 1
    assert "events: extract: pipelines/events.yml: source.incremental.lag: '10m' is a duration " \
           "but cursor 'seq' is a number (INTEGER); give the look-back in cursor units " \
           "(lag: 100)" in result.output
    assert "Traceback" not in result.output



# -- the pre-check on the same rule --------------------------------------------------------


def precheck(events: Events) -> tuple[bool, dict[str, Any] | None]:
    import dlt
    import sqlalchemy as sa

    from framework.project import Project
    from framework.runner import runner_for
    from framework.sources.sql.cursor import boundary_state
    from framework.sources.sql.precheck import nothing_new

    project = Project.discover(events.project)
    ctx = runner_for(project, None).context(project.pipeline("events"))
    pipeline = dlt.pipeline(pipeline_name="events", pipelines_dir=str(ctx.state_dir / "dlt"))
    connection = project.connection("events")
    engine = sa.create_engine(connection.url)
    table = sa.Table("events", sa.MetaData(), autoload_with=engine)
    engine.dispose()
    return (nothing_new(ctx, pipeline, table, connection),
            boundary_state(pipeline.state, "events"))


@pytest.mark.parametrize("at_boundary", [3, 100])
def test_the_precheck_compares_boundary_rows_by_digest_or_with_the_lake(
        events: Events, at_boundary: int) -> None:
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(i, 0, "2017-01-14 21:19:00" if i % 2 else "2017-01-14T21:19:00.000000")
                  for i in range(at_boundary)])
    events.run()
    found, boundary = precheck(events)
    assert found is True
    assert boundary is not None
    # few rows: their digests are in the state; many: the pre-check reads the lake
    assert (boundary["digests"] is None) == (at_boundary > 64)

    events.write("UPDATE events SET v = 1 WHERE event_id = 1")
    assert precheck(events)[0] is False
    assert events.run()["rows_extracted"] == 1
    assert precheck(events)[0] is True
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(at_boundary, 0, "2017-01-14 21:19:00")])
    assert precheck(events)[0] is False


def test_a_state_in_the_lake_from_a_load_that_never_completed_is_not_restored(
        events: Events, monkeypatch: pytest.MonkeyPatch) -> None:
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(1, 0, "2017-01-14 21:19:00")])
    events.run()
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(2, 0, "2017-01-14 21:20:00")])
    # Killed after dlt wrote the batch and its state to the lake; then the completion record
    # is taken away: the lake now looks as if the kill came just before dlt wrote it.
    monkeypatch.setenv("FRAMEWORK_KILL_AT", "after_lake_write")
    import subprocess
    import sys

    killed = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--pipeline",
                             "events", "--no-dbt"], capture_output=True, check=False)
    assert killed.returncode == -9
    monkeypatch.delenv("FRAMEWORK_KILL_AT")
    loads = sorted((events.db.parent / "lake" / "raw" / "_dlt_loads").iterdir())
    loads[-1].unlink()
    shutil.rmtree(events.state)  # and the machine is gone with its pending package

    record = events.run()

    assert record["rows_extracted"] == 1
    assert dict(events.landed()) == events.source()


def test_a_worker_whose_clock_is_behind_the_last_batch_refuses_to_extract(
        events: Events) -> None:
    """The merge keeps the newer batch's row by load id, which is the extracting machine's
    clock: a worker 60 s ahead loaded a batch, a worker on the right time then read the
    row's newer version, and its batch, older by that clock, lost to it silently."""
    import subprocess
    import sys

    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)", [(1, 0, "2017-01-14 21:19:00")])
    ahead = ("import time; real = time.time; time.time = lambda: real() + 60; "
             "from framework.cli import main; main(['run', '--pipeline', 'events', '--no-dbt'])")
    first = subprocess.run([sys.executable, "-c", ahead], capture_output=True, text=True,
                           check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    events.write("UPDATE events SET v = 1, updated_at = '2017-01-14 21:20:00' "
                 "WHERE event_id = 1")

    refused = cli("run", "--pipeline", "events", "--no-dbt")
    from framework import api
    from framework.errors import FrameworkError

    with pytest.raises(FrameworkError, match="clock is .* behind batch"):  # Airflow's task
        api.extract("events", project_dir=events.project)

    assert refused.exit_code == 1
    assert re.search(r"error: events: this machine's clock is \d+\.\d s behind batch \d+\.\d+ "
                     r"in the warehouse .*set the clock right \(NTP\) and run again, nothing "
                     r"was extracted", refused.output), refused.output
    assert events.landed() == [(1, 0)]


def test_a_worker_whose_clock_is_behind_the_last_delete_refuses_to_extract(
        events: Events) -> None:
    """A worker 60 s ahead removed a key gone from the source, stamping the delete by its
    clock; the key came back, and a worker on the right time read it in a batch that, older
    than the delete by those clocks, would have left it out for good."""
    import subprocess
    import sys

    events.spec(events_spec() + "deletes:\n  reconcile: remove\n  max_fraction: 1\n")
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(1, 0, "2017-01-14 21:19:00"), (2, 0, "2017-01-14 21:19:00")])
    assert cli("run", "--pipeline", "events", "--no-dbt").exit_code == 0
    events.write("DELETE FROM events WHERE event_id = 2")
    ahead = ("import time; real = time.time; time.time = lambda: real() + 60; "
             "from framework.cli import main; main(['run', '--pipeline', 'events', '--no-dbt'])")
    first = subprocess.run([sys.executable, "-c", ahead], capture_output=True, text=True,
                           check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert events.landed() == [(1, 0)]
    events.write("INSERT INTO events VALUES (2, 1, '2017-01-14 21:20:00')")

    refused = cli("run", "--pipeline", "events", "--no-dbt")

    assert refused.exit_code == 1
    assert re.search(r"error: events: this machine's clock is \d+\.\d s behind a delete at "
                     r"\d+\.\d+ in the warehouse", refused.output), refused.output


def test_a_state_from_before_the_boundary_was_kept_dedups_against_the_whole_lake(
        events: Events, tmp_path: Path) -> None:
    """Upgrading: the first run of this code on a lake written by the previous extract (dlt's
    boundary hashes, no boundary entry of ours) loads no boundary row twice, even on append."""
    old = older_framework("7bb9ce8", tmp_path / "old")
    events.spec(events_spec(disposition="append"))
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(1, 0, "2017-01-14 21:19:00.000000"), (2, 0, "2017-01-14 21:19:00.000000")])
    first = old_framework(old, "run", "--pipeline", "events", "--no-dbt")
    assert first.returncode == 0, first.stdout + first.stderr
    events.write("UPDATE events SET v = 1 WHERE event_id = 2")

    assert events.run()["rows_extracted"] == 1
    assert sorted(events.landed()) == [(1, 0), (2, 0), (2, 1)]


def older_framework(commit: str, into: Path) -> Path:
    """`framework/` as commit `commit` had it, under `into` (a clone without history fails
    here in one line: CI's checkout needs `fetch-depth: 0`)."""
    import subprocess

    archive = subprocess.run(["git", "archive", commit, "framework"], capture_output=True,
                             cwd=Path(__file__).parents[2], check=False)
    if archive.returncode:
        pytest.fail(f"git archive {commit}: {archive.stderr.decode().strip()} (a shallow clone? "
                    "the upgrade tests need the history)")
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def old_framework(code: Path, *args: str) -> Any:
    """The framework of an older commit (its `framework/` under `code`) run as a process: `-P`
    keeps the working directory, this checkout, off the path, or `-m` would import it."""
    import os
    import subprocess
    import sys

    script = ("import framework, sys; "
              f"assert framework.__file__.startswith({str(code)!r}); "
              "from framework.cli import main; sys.argv[0] = 'framework'; main()")
    return subprocess.run([sys.executable, "-P", "-c", script, *args],
                          env={**os.environ, "PYTHONPATH": str(code)},
                          capture_output=True, text=True, check=False)


def test_the_first_boundary_entry_after_an_upgrade_still_looks_in_the_old_batches(
        events: Events, tmp_path: Path) -> None:
    """Upgrading from a state with dlt's cursor only: this code's first load at the old
    boundary value named its own batch alone, so the next read at that value found the older
    batches' rows in no batch it named and appended them again."""
    old = older_framework("7bb9ce8", tmp_path / "old")
    events.spec(events_spec(disposition="append"))
    create(events)
    insert = "INSERT INTO events VALUES (?, ?, ?)"
    events.write(insert, [(1, 0, "2017-01-14 21:19:00"), (2, 0, "2017-01-14 21:19:00")])
    first = old_framework(old, "run", "--pipeline", "events", "--no-dbt")
    assert first.returncode == 0, first.stdout + first.stderr
    events.write(insert, [(3, 0, "2017-01-14 21:19:00")])
    assert events.run()["rows_extracted"] == 1
    events.write(insert, [(4, 0, "2017-01-14 21:19:00"), (5, 0, "2017-01-14 21:20:00")])

    assert events.run()["rows_extracted"] == 2
    assert events.run()["rows_extracted"] == 0
    assert sorted(events.landed()) == [(k, 0) for k in range(1, 6)]


@pytest.mark.parametrize("backend", ["sqlalchemy", "connectorx"])
def test_every_backend_catches_boundary_rows_once(events: Events, backend: str) -> None:
    (events.project / "sources" / "events.yml").write_text(
        f"name: events\nurl: sqlite:///{events.db}\nbackend: {backend}\n")
    events.spec(events_spec(disposition="append"))
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(1, 0, "2017-01-14 21:19:00"), (2, 0, "2017-01-14 21:19:00")])
    assert events.run()["rows_extracted"] == 2
    events.write("INSERT INTO events VALUES (3, 0, '2017-01-14T21:19:00')")

    assert events.run()["rows_extracted"] == 1
    assert sorted(events.landed()) == [(1, 0), (2, 0), (3, 0)]
