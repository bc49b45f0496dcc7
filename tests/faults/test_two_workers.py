"""Two workers, two "machines": separate state folders, one lake, one warehouse, one source.

Worker A runs `--all` and is SIGKILLed in the middle of its first load while worker B, started
at the same time, waits for the warehouse; B then takes over A's lease (A's process is gone),
finishes A's batch from the lake and completes. The warehouse equals the source, no batch or
row was loaded twice, and `history` on either machine shows both workers' runs: A's marked
failed by B, which took over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from framework.demo.shop import create_shop, simulate_activity
from tests.e2e.helpers import assert_landing_equals_source, assert_marts_match_source
from tests.faults.test_crash_safety import ALL_TABLES, assert_no_row_loaded_twice, ledger


def worker(tmp_path: Path, name: str, *args: str, kill_at: str | None = None
           ) -> subprocess.Popen[bytes]:
    """The framework CLI as worker `name`: its own state folder, the shared lake/warehouse."""
    shared = tmp_path / "state"
    env = {**os.environ, "FRAMEWORK_STATE_DIR": str(tmp_path / name),
           "FRAMEWORK_WORKER_ID": name, "LAKE_URL": str(shared / "lake"),
           "DUCKDB_PATH": str(shared / "warehouse.duckdb"),
           "SHOP_DB_URL": f"sqlite:///{shared / 'shop.db'}"}
    env.pop("FRAMEWORK_KILL_AT", None)
    if kill_at:
        env["FRAMEWORK_KILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, "-m", "framework.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def holds_warehouse(tmp_path: Path, pid: int, timeout: float = 120) -> None:
    """Wait until process `pid` holds the shared DuckDB warehouse (its pid in the lock file)."""
    lock = tmp_path / "state" / "warehouse.duckdb.lock"
    deadline = time.monotonic() + timeout
    while not (lock.is_file() and lock.read_text().strip() == str(pid)):
        assert time.monotonic() < deadline, "worker A never took the warehouse"
        time.sleep(0.05)


def test_two_workers_one_killed_mid_load_leave_the_warehouse_equal_to_the_source(
        project_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    (tmp_path / "state").mkdir()
    create_shop(url, scale=0.003, seed=5)

    a = worker(tmp_path, "worker-a", "run", "--all", kill_at="load")
    holds_warehouse(tmp_path, a.pid)
    b = worker(tmp_path, "worker-b", "run", "--all", "--json")
    _, a_err = a.communicate(timeout=300)
    b_out, b_err = b.communicate(timeout=600)

    assert a.returncode == -signal.SIGKILL, a_err.decode()[-2000:]
    assert b.returncode == 0, b_err.decode()[-3000:]
    records = json.loads(b_out.decode()[b_out.decode().index("["):])
    assert {r["status"] for r in records} == {"success"}, records
    assert {r["worker"] for r in records} == {"worker-b"}
    took_over = [w for r in records for w in r["warnings"] if "took over the lease" in w]
    assert len(took_over) == 1 and "worker-a (pid " in took_over[0], took_over
    assert f"process {a.pid} is gone" in took_over[0]

    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert_landing_equals_source(url, warehouse, ALL_TABLES)
    assert_marts_match_source(url, warehouse)
    loaded = [(p, load_id) for p, load_id, _ in ledger(warehouse)]
    assert len(loaded) == len(set(loaded))
    assert_no_row_loaded_twice(tmp_path)

    # More activity; both machines run again at once: each pipeline once, nothing twice.
    simulate_activity(url, seed=7, at_boundary=1)
    again = [worker(tmp_path, name, "run", "--all") for name in ("worker-a", "worker-b")]
    for proc in again:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
    assert_landing_equals_source(url, warehouse, ALL_TABLES)
    assert_marts_match_source(url, warehouse)
    assert_no_row_loaded_twice(tmp_path)

    # Either machine's history shows both workers; A's killed run is failed, naming B.
    for name in ("worker-a", "worker-b"):
        shown = worker(tmp_path, name, "history", "--json", "--limit", "100")
        out, err = shown.communicate(timeout=120)
        assert shown.returncode == 0, err.decode()
        history = json.loads(out.decode()[out.decode().index("["):])
        assert {r["worker"] for r in history} == {"worker-a", "worker-b"}, name
        killed = [r for r in history if r["worker"] == "worker-a" and r["status"] == "failed"]
        assert len(killed) == 1, [(r["worker"], r["pipeline"], r["status"]) for r in history]
        assert "stopped mid-run; worker-b (run " in killed[0]["error"]
        assert not [r for r in history if r["status"] == "running"]
