"""A project started with `framework new`, onboarded with `init --all` from a database another
program wrote, runs to its star schema: the skeleton holds what init's models call."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from tests.e2e.helpers import cli, run_json


def test_new_then_init_all_runs_to_the_star_schema(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The star's date keys call the `date_key` macro, and a composite key's test
    `unique_combination_of_columns`, which `new` did not copy: every fact and the date
    dimension failed to compile on the first run of a new project."""
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)  # text timestamps as another program spells them
    con.execute("CREATE TABLE parents (pid TEXT PRIMARY KEY, name TEXT, updated_at TIMESTAMP)")
    con.execute("CREATE TABLE kids (kid INTEGER PRIMARY KEY, pid TEXT REFERENCES parents(pid), "
                "amount NUMERIC, updated_at TIMESTAMP)")
    con.executemany("INSERT INTO parents VALUES (?, ?, ?)",
                    [(f"p{i}", f"n{i}", "2024-05-01T10:00:00Z") for i in range(5)])
    con.executemany("INSERT INTO kids VALUES (?, ?, ?, ?)",  # p5..p7 missing: orphans
                    [(i, f"p{i % 8}", "12.50", "2024-05-01 10:00:00.000") for i in range(20)])
    # A composite key: its test calls unique_combination_of_columns, which `new` did not copy
    con.execute("CREATE TABLE visits (pid TEXT, day INTEGER, note TEXT, updated_at TIMESTAMP, "
                "PRIMARY KEY (pid, day))")
    con.executemany("INSERT INTO visits VALUES (?, ?, ?, ?)",
                    [(f"p{i % 3}", i, None, "2024-05-02 10:00:00") for i in range(6)])
    con.commit()
    con.close()
    project = tmp_path / "proj"
    for name, value in {"FRAMEWORK_PROJECT_DIR": str(project),
                        "FRAMEWORK_STATE_DIR": str(tmp_path / "state"),
                        "SOURCE_DB_URL": f"sqlite:///{db}"}.items():
        monkeypatch.setenv(name, value)
    for name in ("LAKE_URL", "DUCKDB_PATH", "FRAMEWORK_TARGET"):
        monkeypatch.delenv(name, raising=False)
    assert cli("new", str(project)).exit_code == 0
    onboarded = cli("init", "--all", "--connection", "main")
    assert onboarded.exit_code == 0, onboarded.output

    records = run_json("--all")

    assert {r["models_status"] for r in records.values()} == {"built"}, {
        n: r["error"] for n, r in records.items()}
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        facts = con.execute("SELECT count(*) FROM marts.fact_kids").fetchone()
    finally:
        con.close()
    assert facts == (20,)
