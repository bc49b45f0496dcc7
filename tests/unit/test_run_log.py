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


def test_a_grown_log_answers_list_history_and_the_push_from_its_indexes(tmp_path: Path) -> None:
    """The log gains a record per pipeline per run; `list` read every pipeline's records and
    every synced key, and each push scanned for the unsynced and matched records by their whole
    JSON text: on a 300k-record log, `list` took 78 s and a run with nothing new 64 s."""
    import json

    from framework.runs import INDEXES, RunRecord

    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as con:  # a log made before the indexes, with its records
        con.execute("CREATE TABLE runs (run_id TEXT, pipeline TEXT, target TEXT, started_at TEXT, "
                    "finished_at TEXT, status TEXT, record TEXT, synced INTEGER NOT NULL "
                    "DEFAULT 0, PRIMARY KEY (run_id, pipeline))")
        con.execute("CREATE TABLE quarantined (pipeline TEXT, target TEXT, load_id TEXT, "
                    "reason TEXT, PRIMARY KEY (pipeline, target, load_id))")
    log = RunLog(path)
    for number in range(3):
        log.save(RunRecord(run_id=f"r{number}", pipeline="orders", target="local",
                           started_at=f"2026-01-0{number + 1}T00:00:00"))
    pending = log.unsynced()
    log.mark_synced(pending[:2])
    log.save(RunRecord(run_id="r0", pipeline="orders", target="local",  # saved again since
                       started_at="2026-01-01T00:00:00", status="success"))

    assert [json.loads(r)["run_id"] for r in log.unsynced()] == ["r0", "r2"]
    assert log.synced_keys([("r0", "orders"), ("r1", "orders"), ("r2", "orders")]) == \
        {("r1", "orders")}
    with sqlite3.connect(path) as con:
        assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")} \
            >= set(INDEXES)
        by_pipeline = "SELECT record FROM runs WHERE pipeline = ? ORDER BY started_at DESC LIMIT 50"
        for sql, args in [(by_pipeline, ("orders",)),
                          ("SELECT record FROM runs ORDER BY started_at DESC LIMIT 20", ()),
                          ("SELECT record FROM runs WHERE synced = 0 ORDER BY started_at", ())]:
            plan = " ".join(str(r[-1]) for r in con.execute(f"EXPLAIN QUERY PLAN {sql}", args))
            assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, (sql, plan)


def test_threads_share_one_connection_and_a_killed_process_keeps_its_records(
        tmp_path: Path) -> None:
    """The log commits without an fsync (a write-ahead log at `synchronous = NORMAL`: each
    commit cost 16 ms before, twice per pipeline per run) on one connection the `--threads`
    workers share. Every record of eight threads lands, another reader sees them while the
    writer is open, and a process killed before closing its log leaves every record it saved."""
    import os
    import subprocess
    import sys

    from framework.runs import RunRecord

    path = tmp_path / "runs.db"
    log = RunLog(path)

    def save(worker: int) -> None:
        for number in range(25):
            log.save(RunRecord(run_id=f"r{worker}-{number}", pipeline=f"p{worker}", target="local"))

    threads = [threading.Thread(target=save, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 200
    assert len(RunLog(path).history(None, 500)) == 200

    killed = tmp_path / "killed.db"
    script = ("import os, sys\nfrom pathlib import Path\nfrom framework.runs import RunLog, "
              "RunRecord\nlog = RunLog(Path(sys.argv[1]))\nfor n in range(50):\n"
              "    log.save(RunRecord(run_id=f'r{n}', pipeline='orders', target='local'))\n"
              "os.kill(os.getpid(), 9)\n")
    done = subprocess.run([sys.executable, "-c", script, str(killed)], check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == -9
    assert (tmp_path / "killed.db-wal").exists()  # never checkpointed: the records are there
    assert len(RunLog(killed).history("orders", 100)) == 50


def test_a_damaged_log_is_set_aside_once_whoever_meets_the_damage_and_no_record_is_lost(
        tmp_path: Path) -> None:
    """Every page of the log but the first zeroed (it opens, then reads fail), met by eight
    threads of one run at once and by a second run (another RunLog, its connection opened on
    the old file). Each of them set it aside before: the second moved the first's new, healthy
    log aside too, and records written meanwhile were lost."""
    from framework.runs import RunRecord

    path = tmp_path / "runs.db"
    log = RunLog(path)
    for number in range(300):
        log.save(RunRecord(run_id=f"old{number}", pipeline="orders", target="local"))
    other = RunLog(path)  # another run on this state folder, its connection open
    assert len(other.history(None, 1)) == 1
    log.close()
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[:4096] + bytes(len(data) - 4096))

    def save(worker: int) -> None:
        for number in range(5):
            log.save(RunRecord(run_id=f"new{worker}-{number}", pipeline="orders",
                               target="local"))

    threads = [threading.Thread(target=save, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.save(RunRecord(run_id="other", pipeline="orders", target="local"))

    aside = [p for p in tmp_path.glob("runs.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        saved = {r[0] for r in con.execute("SELECT run_id FROM runs")}
    assert saved == {f"new{w}-{n}" for w in range(8) for n in range(5)} | {"other"}
