"""Two workers, two "machines": separate state folders, one lake, one warehouse, one source.

Worker A runs customers and orders and is SIGKILLed in the middle of its first load while worker
B, started at the same time, waits for the warehouse; B then takes over A's lease (A's process
is gone), finishes A's batch from the lake and completes. The warehouse equals the source, no
batch or row was loaded twice; a third worker with an empty state folder builds the dbt models
the others' loads left owed; `history` on any machine shows every worker's runs, A's marked
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

import duckdb
import pytest

from framework.demo.shop import create_shop
from tests.e2e.helpers import assert_landing_equals_source
from tests.faults.test_crash_safety import PIPELINES, assert_no_row_loaded_twice, ledger


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


@pytest.mark.timeout(1500)
def test_two_workers_one_killed_mid_load_leave_the_warehouse_equal_to_the_source(
        project_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    (tmp_path / "state").mkdir()
    create_shop(url, scale=0.003, seed=5)
    run = ["run", *(a for p in PIPELINES for a in ("-p", p))]

    a = worker(tmp_path, "worker-a", *run, "--no-dbt", kill_at="load")
    holds_warehouse(tmp_path, a.pid)
    b = worker(tmp_path, "worker-b", *run, "--no-dbt", "--json")
    _, a_err = a.communicate(timeout=600)
    b_out, b_err = b.communicate(timeout=900)

    assert a.returncode == -signal.SIGKILL, a_err.decode()[-2000:]
    assert b.returncode == 0, b_err.decode()[-3000:]
    records = json.loads(b_out.decode()[b_out.decode().index("["):])
    assert {r["status"] for r in records} == {"success"}, records
    assert {r["worker"] for r in records} == {"worker-b"}
    took_over = [w for r in records for w in r["warnings"] if "took over the lease" in w]
    assert len(took_over) == 1 and "lease of worker-a on " in took_over[0], took_over
    assert f"process {a.pid} is gone" in took_over[0]

    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert_landing_equals_source(url, warehouse, PIPELINES)
    loaded = [(p, load_id) for p, load_id, _ in ledger(warehouse)]
    assert len(loaded) == len(set(loaded))
    assert_no_row_loaded_twice(tmp_path)
    assert owed(warehouse) == {"stg_customers+", "snap_customers", "stg_orders+"}  # --no-dbt: both loads owe

    # A third machine with an empty disk: nothing new to load, yet it builds what the others'
    # loads left owed (the warehouse says so), and settles it there.
    c = worker(tmp_path, "worker-c", *run, "--json")
    c_out, c_err = c.communicate(timeout=900)
    assert c.returncode == 0, c_err.decode()[-3000:]
    built = json.loads(c_out.decode()[c_out.decode().index("["):])
    assert [r["rows_loaded"] for r in built] == [0, 0]
    assert {r["dbt"]["status"] for r in built} == {"success"}, built
    assert owed(warehouse) == set()
    assert_landing_equals_source(url, warehouse, PIPELINES)

    # Any machine's history shows every worker; A's killed run is failed, naming B.
    for name in ("worker-a", "worker-b"):
        shown = worker(tmp_path, name, "history", "--json", "--limit", "100")
        out, err = shown.communicate(timeout=120)
        assert shown.returncode == 0, err.decode()
        history = json.loads(out.decode()[out.decode().index("["):])
        assert {r["worker"] for r in history} == {"worker-a", "worker-b", "worker-c"}, name
        killed = [r for r in history if r["worker"] == "worker-a"]
        assert len(killed) == 1 and killed[0]["status"] == "failed", killed
        assert "stopped mid-run; worker-b (run " in killed[0]["error"]
        assert not [r for r in history if r["status"] == "running"]


def owed(warehouse: Path) -> set[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT selection FROM landing._framework_owed")
                .fetchall()}
    finally:
        con.close()


def finished(process: subprocess.Popen[bytes]) -> int:
    process.communicate(timeout=300)
    return process.returncode


@pytest.mark.timeout(600)
def test_a_batch_a_killed_worker_extracted_is_dropped_once_another_worker_loaded_past_it(
        tmp_path: Path, project_dir: Path) -> None:
    """Worker A is killed after extracting new orders; worker B reads and loads the same
    orders; A's next run loaded its own package as well: every new order appended twice (or,
    merged, rows deleted since brought back)."""
    from framework.demo.shop import simulate_activity

    shop = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(shop, scale=0.003, seed=3)
    spec = project_dir / "pipelines" / "orders.yml"
    spec.write_text(spec.read_text().replace("write_disposition: merge",
                                             "write_disposition: append"))
    run = ("run", "--pipeline", "orders", "--no-dbt")
    assert finished(worker(tmp_path, "worker-a", *run)) == 0
    simulate_activity(shop, seed=4, new_orders=5, status_changes=0, customer_moves=0)

    assert finished(worker(tmp_path, "worker-a", *run, kill_at="after_extract")) != 0
    assert finished(worker(tmp_path, "worker-b", *run)) == 0
    again = worker(tmp_path, "worker-a", *run, "--json")
    out, err = again.communicate(timeout=300)

    assert again.returncode == 0, err.decode()
    record = json.loads(out.decode()[out.decode().index("["):])[0]
    assert record["rows_loaded"] == 0, record
    assert any("another worker has loaded since" in w for w in record["warnings"]), record
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        rows, keys = con.execute("SELECT count(*), count(DISTINCT order_id) FROM landing.orders"
                                 ).fetchone() or (0, 0)
    finally:
        con.close()
    assert rows == keys
    assert_landing_equals_source(shop, tmp_path / "state" / "warehouse.duckdb", ["orders"])
