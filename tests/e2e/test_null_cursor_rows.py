"""Rows with no cursor (`on_null: include`) are read by every run and sent on only when they
changed since the last read (framework/sources/sql/null_rows.py), and the warehouse stays equal
to the source whatever happens between runs: a ledger lost, the state folder deleted, a
reconcile delete, a quarantined batch released.

The source is a SQLite table written with Python's `sqlite3`; 300 of its rows have no cursor,
more than the 256 digests the pre-check keeps, so every run reads them again.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import framework.reconcile
from framework.sources.sql.null_rows import row_hash
from tests.e2e.helpers import cli, run_json
from tests.e2e.test_incremental_exact import Events, create, events, events_spec  # noqa: F401

NULLS = 300
TOP = "2017-01-14 21:19:00"
INSERT = "INSERT INTO events VALUES (?, ?, ?)"


def with_null_rows(events: Events, spec: str = "") -> None:  # noqa: F811
    """Rows 1..300 with no cursor and row 301 at TOP, landed by a first run."""
    events.spec(events_spec(extra=", on_null: include") + spec)
    create(events)
    events.write(INSERT, [(i, 1, None) for i in range(1, NULLS + 1)] + [(NULLS + 1, 1, TOP)])
    assert events.run()["rows_extracted"] == NULLS + 1


def ledgers(events: Events) -> list[str]:  # noqa: F811
    folder = events.warehouse.parent / "lake" / "raw" / "_framework_nulls" / "events"
    return sorted(p.name for p in folder.glob("*.parquet")) if folder.exists() else []


def test_a_run_sends_on_only_the_rows_with_no_cursor_that_changed(
        events: Events) -> None:  # noqa: F811
    with_null_rows(events)
    events.write("UPDATE events SET v = 2 WHERE event_id = 7")
    events.write(INSERT, [(1000, 1, None), (1001, 1, "2017-01-15 00:00:00")])

    changed = events.run()
    kept = ledgers(events)  # this read's, and the one it compared with
    quiet = events.run()
    again = events.run()
    unchanged = ledgers(events)  # reads meeting the same rows write none
    events.write("UPDATE events SET v = 1 WHERE event_id = 7")  # back as it was first read
    back = events.run()

    assert changed["rows_extracted"] == 3  # row 7, and the two new rows
    assert quiet["rows_extracted"] == again["rows_extracted"] == 0
    assert back["rows_extracted"] == 1
    assert len(kept) == 2 and unchanged == kept
    assert len(ledgers(events)) == 2 and ledgers(events)[0] == kept[1]  # the oldest removed
    assert dict(events.landed()) == events.source()


def test_a_lost_ledger_sends_every_row_with_no_cursor_once(events: Events) -> None:  # noqa: F811
    """So does a full refresh, which reads every row; the run after it sends none again."""
    with_null_rows(events)
    shutil.rmtree(events.state)  # a worker without the state folder: the ledger is in the lake
    assert events.run()["rows_extracted"] == 0
    for ledger in ledgers(events):
        (events.warehouse.parent / "lake" / "raw" / "_framework_nulls" / "events" / ledger
         ).unlink()
    events.write("UPDATE events SET v = 3 WHERE event_id = 8")

    assert events.run()["rows_extracted"] == NULLS
    assert events.run()["rows_extracted"] == 0
    assert dict(events.landed()) == events.source()
    refreshed = run_json("--pipeline", "events", "--no-dbt", "--full-refresh")["events"]
    assert refreshed["rows_extracted"] == NULLS + 1
    assert events.run()["rows_extracted"] == 0


def test_a_row_with_no_cursor_deleted_then_inserted_again_comes_back(
        events: Events) -> None:  # noqa: F811
    """Reconcile took row 5 out of the warehouse; inserted again with the same values it
    matches the ledger of a read before the delete, which no longer says what landed."""
    with_null_rows(events, "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    events.write("DELETE FROM events WHERE event_id = 5")
    events.run()  # reconcile removes 5
    events.write(INSERT, [(5, 1, None)])

    back = events.run()
    after = events.run()

    assert back["rows_extracted"] >= 1
    assert after["rows_extracted"] == 0
    assert dict(events.landed()) == events.source()


@pytest.mark.parametrize("clock", ["", "behind"])
def test_a_row_deleted_while_a_run_reads_then_inserted_again_comes_back(
        events: Events, monkeypatch: pytest.MonkeyPatch, clock: str) -> None:  # noqa: F811
    """A writer deleted row 8 after the run's read met it and before reconcile read the source:
    that read sent nothing on, so it is no batch, and the newest batch dated it before the
    delete. Its ledger then held row 8, and row 8 inserted again unchanged was dropped for
    good (found by a review). So too when reconcile's clock is behind the read's (another
    worker's): the read is dated by the state that names it."""
    with_null_rows(events, "deletes:\n  reconcile: remove\n  max_fraction: 0.5\n")
    events.write("DELETE FROM events WHERE event_id = 7")
    reconcile = framework.reconcile.reconcile
    if clock:
        monkeypatch.setattr(framework.reconcile, "now_as_load_id", lambda: "1000000000.000000")

    def after_a_late_delete(*args: Any) -> Any:
        events.write("DELETE FROM events WHERE event_id = 8")
        return reconcile(*args)

    monkeypatch.setattr(framework.reconcile, "reconcile", after_a_late_delete)
    assert events.run()["rows_extracted"] == 0  # reconcile removes 7 and 8
    monkeypatch.setattr(framework.reconcile, "reconcile", reconcile)
    events.write(INSERT, [(8, 1, None)])  # back, unchanged

    events.run()
    after = events.run()

    assert after["rows_extracted"] == 0
    assert dict(events.landed()) == events.source()


def test_a_released_row_with_no_cursor_stays_out_until_it_changes(
        events: Events) -> None:  # noqa: F811
    with_null_rows(events, "quality:\n  expectations:\n"
                   "    - expect_column_values_to_be_between: {column: v, min_value: 0}\n")
    events.write("UPDATE events SET v = -1 WHERE event_id = 9")
    bad = events.quarantined_and_released("row 9's -1 stays out")

    quiet = events.run()
    events.write("UPDATE events SET v = 5 WHERE event_id = 9")  # fixed at the source
    fixed = events.run()

    assert bad["rows_extracted"] == 1
    assert quiet["rows_extracted"] == 0  # not quarantined again on every run
    assert fixed["rows_extracted"] == 1
    assert dict(events.landed()) == events.source()


def test_a_quarantined_row_with_no_cursor_lands_by_its_replay(
        events: Events) -> None:  # noqa: F811
    with_null_rows(events, "quality:\n  expectations:\n"
                   "    - expect_column_values_to_be_between: {column: v, min_value: -5}\n")
    events.write("UPDATE events SET v = -9 WHERE event_id = 11")
    bad = run_json("--pipeline", "events", "--no-dbt")["events"]
    assert bad["status"] == "quarantined", bad["error"]
    events.spec((events.project / "pipelines" / "events.yml").read_text()
                .replace("min_value: -5", "min_value: -10"))

    replayed = cli("replay", "--pipeline", "events", "--load-id", bad["load_id"])
    after = events.run()

    assert replayed.exit_code == 0, replayed.output
    assert after["rows_extracted"] == 0  # its version was the quarantined batch's
    assert dict(events.landed()) == events.source()


# An operation between runs on one row (picked by index): a new row with no cursor, a change to
# one with none (its cursor stays NULL), the same values written again, a cursor cleared, or one
# set past the top.
operation = st.tuples(st.sampled_from(["insert", "change", "same", "clear", "stamp"]),
                      st.integers(0, 10_000))
# A round: its operations, then whether the state folder or the ledgers are lost before its run.
rounds = st.lists(st.tuples(st.lists(operation, min_size=1, max_size=5),
                            st.sampled_from(["", "", "state", "ledger"])),
                  min_size=1, max_size=4)


@settings(max_examples=6, phases=[Phase.explicit, Phase.generate], deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, database=None)
@given(plan=rounds)
def test_any_changes_to_rows_with_no_cursor_keep_the_warehouse_equal_to_the_source(
        events: Events, plan: list[tuple[list[tuple[str, int]], str]]) -> None:  # noqa: F811
    events.reset()
    with_null_rows(events)
    version = 1
    for changes, lost in plan:
        for kind, pick in changes:
            version += 1
            apply(events, kind, pick, version)
        if lost == "state":
            shutil.rmtree(events.state)
        elif lost == "ledger":
            shutil.rmtree(events.warehouse.parent / "lake" / "raw" / "_framework_nulls")

        record = events.run()

        assert dict(events.landed()) == events.source()
        if lost != "ledger":  # each operation touches one row; unchanged ones are not sent
            assert record["rows_extracted"] <= len(changes)


def apply(events: Events, kind: str, pick: int, version: int) -> None:  # noqa: F811
    con = sqlite3.connect(events.db)
    try:
        rows: list[tuple[Any, ...]] = con.execute(
            "SELECT event_id, updated_at FROM events ORDER BY event_id").fetchall()
        nulls = [r[0] for r in rows if r[1] is None] or [rows[0][0]]
        stamped = [r[0] for r in rows if r[1] is not None] or [rows[0][0]]
        top = max((r[1] for r in rows if r[1] is not None), default=TOP)
        if kind == "insert":
            con.execute(INSERT, (rows[-1][0] + 1, version, None))
        elif kind == "change":
            con.execute("UPDATE events SET v = ? WHERE event_id = ?",
                        (version, nulls[pick % len(nulls)]))
        elif kind == "same":
            con.execute("UPDATE events SET v = v WHERE event_id = ?", (nulls[pick % len(nulls)],))
        elif kind == "clear":
            con.execute("UPDATE events SET updated_at = NULL WHERE event_id = ?",
                        (stamped[pick % len(stamped)],))
        else:
            con.execute("UPDATE events SET updated_at = datetime(?, '+1 second') "
                        "WHERE event_id = ?", (top, nulls[pick % len(nulls)]))
        con.commit()
    finally:
        con.close()


def test_a_source_written_as_text_by_another_program_keeps_its_ledger(
        events: Events, tmp_path: Path) -> None:  # noqa: F811
    """Values another program wrote in SQLite's loose typing (a number as text in an INTEGER
    column is still a number; an empty string is not NULL): read again unchanged, sent on
    never; the empty string made NULL, sent on once."""
    with_null_rows(events)
    events.write("UPDATE events SET v = '42' WHERE event_id = 20")
    events.write("INSERT INTO events VALUES (2000, 1, '')")  # a blank, not NULL, cursor

    first = run_json("--pipeline", "events", "--no-dbt")["events"]
    second = run_json("--pipeline", "events", "--no-dbt")["events"]

    assert first["status"] == second["status"] == "success", (first["error"], second["error"])
    assert second["rows_extracted"] == 0


def test_the_row_hash_tells_nested_values_apart() -> None:
    """DuckDB's `hash` takes an empty list for NULL and [[1], [2]] for [[1, 2]]: as text, a
    list column changed from one to the other is a change."""
    import duckdb
    import pyarrow as pa

    tags = pa.table({"tags": pa.array([None, [], [None], [[1], [2]], [[1, 2]], [[]]],
                                      type=pa.list_(pa.list_(pa.int64())))})
    con = duckdb.connect()
    con.register("t", tags)
    hashes = con.sql(f"SELECT {row_hash(tags.schema)} FROM t").fetchall()

    assert len(set(hashes)) == len(hashes)
