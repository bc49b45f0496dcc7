"""Property: random interleavings of inserts, updates and same-timestamp rows between runs
never lose or duplicate a row — after every run the warehouse equals the source."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import duckdb
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import api
from tests.conftest import copy_project

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


def source_rows(engine: sa.Engine) -> dict[int, tuple[int, dt.datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_id, v, updated_at FROM events")).all()
    return {r[0]: (r[1], r[2] if isinstance(r[2], dt.datetime) else
                   dt.datetime.fromisoformat(str(r[2]))) for r in rows}


def warehouse_rows(path: Path) -> dict[int, tuple[int, dt.datetime]]:
    con = duckdb.connect(str(path))
    try:
        rows = con.execute("SELECT event_id, v, updated_at FROM landing.events").fetchall()
    finally:
        con.close()
    assert len(rows) == len({r[0] for r in rows}), "duplicate keys in the warehouse"
    return {r[0]: (r[1], r[2]) for r in rows}


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(rounds)
def test_any_interleaving_of_changes_between_runs_keeps_warehouse_equal_to_source(
        plan: list[list[tuple[str, int, str]]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = copy_project(Path(folder) / "project")
        for spec in (root / "pipelines").glob("*.yml"):
            spec.unlink()
        db = Path(folder) / "events.db"
        (root / "sources" / "events.yml").write_text(f"name: events\nurl: sqlite:///{db}\n")
        (root / "pipelines" / "events.yml").write_text(SPEC)
        saved = {k: os.environ.get(k) for k in ("FRAMEWORK_PROJECT_DIR", "FRAMEWORK_STATE_DIR")}
        os.environ["FRAMEWORK_PROJECT_DIR"] = str(root)
        os.environ["FRAMEWORK_STATE_DIR"] = str(Path(folder) / "state")
        engine = sa.create_engine(f"sqlite:///{db}")
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE events (event_id INTEGER PRIMARY KEY, "
                                     "v INTEGER, updated_at DATETIME NOT NULL)"))
                conn.execute(sa.text("INSERT INTO events VALUES (0, 0, :t)"), {"t": START})
            version = 0
            for changes in plan:
                with engine.begin() as conn:
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
                records = api.run(["events"], dbt=False)
                assert records[0].status == "success", records[0].error
                assert warehouse_rows(Path(folder) / "state" / "warehouse.duckdb") == \
                    source_rows(engine)
        finally:
            engine.dispose()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
