"""Fault injection: a run SIGKILLed anywhere, then a clean run, leaves warehouse == source.

Each named kill point (framework/faults.py) is hit deterministically, then random-timing kills
land anywhere in between; after every crash a clean run must end with each landing table
holding exactly the source's current rows, every batch loaded once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from framework.demo.shop import create_shop, simulate_activity
from framework.faults import KILL_POINTS
from tests.e2e.helpers import run_json, source_versions, warehouse_versions

PIPELINES = ("customers", "orders")


def framework(*args: str, kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if kill_at:
        env["FRAMEWORK_KILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, "-m", "framework.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ledger(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path))
    try:
        return con.execute("SELECT pipeline, load_id FROM landing._framework_batches "
                           "WHERE status = 'loaded'").fetchall()
    finally:
        con.close()


@pytest.fixture
def crash_shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.003, seed=5)
    assert {r["status"] for r in run_json("--all").values()} == {"success"}
    return url


def assert_recovered(url: str, tmp_path: Path) -> None:
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    before = ledger(warehouse)
    records = run_json("--all")  # the clean run
    assert {r["status"] for r in records.values()} == {"success"}, {
        p: r["error"] for p, r in records.items()}
    reloaded = {(p, load_id) for p, r in records.items() for load_id in r["load_ids"]}
    assert not reloaded & set(before), "a batch was loaded twice"
    for table in ("customers", "orders", "order_items", "payments", "products"):
        assert warehouse_versions(warehouse, table) == source_versions(url, table), table
    batches = ledger(warehouse)
    assert len(batches) == len(set(batches))


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_each_point_then_a_clean_run_loses_and_duplicates_nothing(
        point: str, crash_shop: str, tmp_path: Path) -> None:
    simulate_activity(crash_shop, seed=hash(point) % 1000, at_boundary=1)
    args = ["run", "--all"] if point == "dbt" else ["run", *(a for p in PIPELINES for a in ("-p", p))]

    crashed = framework(*args, kill_at=point)
    _, err = crashed.communicate(timeout=300)

    assert crashed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert_recovered(crash_shop, tmp_path)


def test_kills_at_random_moments_never_lose_or_duplicate_rows(crash_shop: str,
                                                              tmp_path: Path) -> None:
    rng = random.Random(20261126)
    kills = 0
    for attempt in range(6):
        simulate_activity(crash_shop, seed=100 + attempt, at_boundary=1)
        proc = framework("run", "--all")
        time.sleep(rng.uniform(0.5, 8.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=300)
    print(f"random kills: {kills} of 6 runs")
    assert kills >= 3
    assert_recovered(crash_shop, tmp_path)


def children(pid: int) -> dict[int, str]:
    """Live child processes of `pid` and their command lines, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skip_allowed_in_ci(reason="PR_SET_PDEATHSIG exists on Linux only")
@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_a_run_killed_during_dbt_takes_its_dbt_process_with_it(crash_shop: str,
                                                               tmp_path: Path) -> None:
    simulate_activity(crash_shop, seed=17, at_boundary=1)
    proc = framework("run", "--all")
    deadline = time.monotonic() + 120
    dbt: list[int] = []
    while not dbt and time.monotonic() < deadline and proc.poll() is None:
        dbt = [p for p, cmd in children(proc.pid).items() if "dbt.cli.main" in cmd]
        time.sleep(0.05)
    assert dbt, "the run never started dbt"

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    deadline = time.monotonic() + 1.5  # at once: left alone, dbt would still be starting up
    while alive(dbt[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(dbt[0]), "dbt outlived the run that started it"
    assert_recovered(crash_shop, tmp_path)
