"""The machine's run log (framework/runs.py) opened by many threads of one run at once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from framework.runs import RunLog


def test_threads_opening_a_new_log_at_once_all_succeed(tmp_path: Path) -> None:
    for attempt in range(30):  # the race lost within a few tries before the schema was locked
        path = tmp_path / f"runs{attempt}.db"
        errors: list[BaseException] = []

        def open_log(path: Path = path, errors: list[BaseException] = errors) -> None:
            try:
                RunLog(path)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=open_log) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


def test_a_log_from_before_synced_existed_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE runs (run_id TEXT, pipeline TEXT, target TEXT, started_at TEXT, "
                    "finished_at TEXT, status TEXT, record TEXT, PRIMARY KEY (run_id, pipeline))")
        con.execute("INSERT INTO runs VALUES ('r1', 'orders', 'local', 'a', 'b', 'success', '{}')")

    log = RunLog(path)

    assert log.unsynced() == ["{}"]
