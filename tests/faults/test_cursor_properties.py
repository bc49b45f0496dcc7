"""Property: random interleavings of inserts, updates and same-timestamp rows between runs
never lose or duplicate a row — after every run the warehouse equals the source."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import api
from tests.conftest import copy_project
from tests.e2e.helpers import duckdb_landing_rows, landing_differences, source_rows

SPEC = """\
name: events
source:
  connection: events
  table: events
  primary_key: [event_id]
  incremental: {cursor: updated_at}
lake:
  path: events
"""
START = dt.datetime(2024, 1, 1, 12, 0, 0, 123456)

# An operation: insert a new row, or update an existing one (by index), stamped either with
# exactly the current maximum cursor value (the boundary) or a little after it.
operation = st.tuples(st.sampled_from(["insert", "update"]), st.integers(0, 1000),
                      st.sampled_from(["same", "later"]))
rounds = st.lists(st.lists(operation, min_size=1, max_size=6), min_size=1, max_size=4)


class SQLAlchemyWriter:
    """The project's way: SQLAlchemy binds a datetime with six fractional digits."""

    def __init__(self, db: Path) -> None:
        self.engine = sa.create_engine(f"sqlite:///{db}")

    def create(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE events (event_id INTEGER PRIMARY KEY, "
                                 "v INTEGER, updated_at DATETIME NOT NULL)"))
            conn.execute(sa.text("INSERT INTO events VALUES (0, 0, :t)"), {"t": START})

    def apply(self, changes: list[tuple[str, int, str]], version: int) -> int:
        with self.engine.begin() as conn:
            for kind, pick, stamp in changes:
                top = conn.execute(sa.text("SELECT max(updated_at) FROM events")).scalar_one()
                top = top if isinstance(top, dt.datetime) else dt.datetime.fromisoformat(str(top))
                when = top if stamp == "same" else top + dt.timedelta(microseconds=1 + pick)
                version += 1
                ids = [r[0] for r in conn.execute(sa.text("SELECT event_id FROM events"))]
                if kind == "insert":
                    conn.execute(sa.text("INSERT INTO events VALUES (:i, :v, :t)"),
                                 {"i": max(ids) + 1, "v": version, "t": when})
                else:
                    conn.execute(sa.text("UPDATE events SET v = :v, updated_at = :t "
                                         "WHERE event_id = :i"),
                                 {"i": ids[pick % len(ids)], "v": version, "t": when})
        return version

    def close(self) -> None:
        self.engine.dispose()


class SQLite3Writer:
    """Python's sqlite3 with its default adapters, as a program in the wild writes: whole
    seconds (a datetime without a fraction is stored without one), every other value with a
    `T` between date and time."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.writes = 0

    def _text(self, when: dt.datetime) -> object:
        self.writes += 1
        return when.isoformat(sep="T") if self.writes % 2 == 0 else when  # default adapter

    def create(self) -> None:
        with sqlite3.connect(self.db) as con:
            con.execute("CREATE TABLE events (event_id INTEGER PRIMARY KEY, v INTEGER, "
                        "updated_at DATETIME NOT NULL)")
            con.execute("INSERT INTO events VALUES (0, 0, ?)", (START.replace(microsecond=0),))

    def apply(self, changes: list[tuple[str, int, str]], version: int) -> int:
        with sqlite3.connect(self.db) as con:
            for kind, pick, stamp in changes:
                top = max(dt.datetime.fromisoformat(r[0])
                          for r in con.execute("SELECT updated_at FROM events"))
                when = top if stamp == "same" else top + dt.timedelta(seconds=1 + pick % 5)
                version += 1
                ids = [r[0] for r in con.execute("SELECT event_id FROM events")]
                if kind == "insert":
                    con.execute("INSERT INTO events VALUES (?, ?, ?)",
                                (max(ids) + 1, version, self._text(when)))
                else:
                    con.execute("UPDATE events SET v = ?, updated_at = ? WHERE event_id = ?",
                                (version, self._text(when), ids[pick % len(ids)]))
        return version

    def close(self) -> None:
        pass


WRITERS = {"sqlalchemy": SQLAlchemyWriter, "sqlite3": SQLite3Writer}


@pytest.mark.parametrize("writer", [
    "sqlalchemy",
    pytest.param("sqlite3", marks=pytest.mark.xfail(strict=True, reason=(
        "#13: SQLite text timestamps written without a fraction or with a T are compared as "
        "text at the boundary: rows at the last cursor value are missed or read again"))),
])
def test_any_interleaving_of_changes_between_runs_keeps_warehouse_equal_to_source(
        writer: str) -> None:
    # derandomize: the examples come from a fixed seed, so a failure reproduces as printed.
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True, database=None)
    @given(rounds)
    def check(plan: list[list[tuple[str, int, str]]]) -> None:
        print(f"writer={writer} plan={plan}")
        run_plan(WRITERS[writer], plan)

    check()


def run_plan(writer_class: type[SQLAlchemyWriter | SQLite3Writer],
             plan: list[list[tuple[str, int, str]]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = copy_project(Path(folder) / "project")
        for spec in (root / "pipelines").glob("*.yml"):
            spec.unlink()
        db = Path(folder) / "events.db"
        url = f"sqlite:///{db}"
        (root / "sources" / "events.yml").write_text(f"name: events\nurl: {url}\n")
        (root / "pipelines" / "events.yml").write_text(SPEC)
        saved = {k: os.environ.get(k) for k in ("FRAMEWORK_PROJECT_DIR", "FRAMEWORK_STATE_DIR")}
        os.environ["FRAMEWORK_PROJECT_DIR"] = str(root)
        os.environ["FRAMEWORK_STATE_DIR"] = str(Path(folder) / "state")
        writer = writer_class(db)
        try:
            writer.create()
            version = 0
            for changes in plan:
                version = writer.apply(changes, version)
                records = api.run(["events"], dbt=False)
                assert records[0].status == "success", records[0].error
                problems = landing_differences(
                    source_rows(url, "events"),
                    duckdb_landing_rows(Path(folder) / "state" / "warehouse.duckdb", "events"),
                    "events", keys=["event_id"])
                assert problems == [], problems
        finally:
            writer.close()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
