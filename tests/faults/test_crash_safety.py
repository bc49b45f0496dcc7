"""Fault injection: a run SIGKILLed anywhere, then a clean run, leaves warehouse == source.

Each named kill point (framework/faults.py) is hit deterministically, then random-timing kills
land anywhere in between; after every crash a clean run must end with each landing table
holding exactly the source's current rows (every column), the marts adding up to the source,
every batch loaded once and no row in two loaded batches. Seeds are fixed and printed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from framework.demo.shop import create_shop, simulate_activity
from framework.faults import KILL_POINTS
from tests.conftest import copy_project
from tests.e2e.helpers import (
    KEYS,
    assert_landing_equals_source,
    assert_marts_match_source,
    mart_totals,
    run_json,
    source_mart_totals,
)
from tests.integration.test_server_sources import server_database
from tests.sources_independent import change_shop, write_shop

PIPELINES = ("customers", "orders")
ALL_TABLES = tuple(KEYS)


def framework(*args: str, kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if kill_at:
        env["FRAMEWORK_KILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, "-m", "framework.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ledger(path: Path) -> list[tuple[str, str, int]]:
    con = duckdb.connect(str(path))
    try:
        return con.execute("SELECT pipeline, load_id, row_count FROM landing._framework_batches "
                           "WHERE status = 'loaded'").fetchall()
    finally:
        con.close()


def assert_no_row_loaded_twice(tmp_path: Path) -> None:
    """The ledger's count of each loaded batch is its processed file's; no row, as the source
    gave it (its raw file, all its source columns: a changed row at the same timestamp counts
    as another row), is in two loaded batches. Raw, not processed: the transform lowercases
    cities, so a row re-cased at the same timestamp, a real new version, would look the same."""
    state = tmp_path / "state"
    con = duckdb.connect()

    def rows_of(pattern: Path) -> list[tuple[object, ...]]:
        result = con.execute(f"SELECT * FROM read_parquet('{pattern}')")
        names = [d[0] for d in result.description]
        # dlt's own per-row ids would make every row unique: compare the source's columns
        return [tuple(v for n, v in zip(names, r) if not n.startswith("_dlt"))
                for r in result.fetchall()]

    try:
        for pipeline in ALL_TABLES:
            batches = [(load_id, rows) for p, load_id, rows in ledger(state / "warehouse.duckdb")
                       if p == pipeline]
            seen: dict[str, str] = {}
            for load_id, rows in batches:
                processed = rows_of(state / "lake" / "processed" / pipeline / f"{load_id}.parquet")
                assert len(processed) == rows, \
                    f"{pipeline} {load_id}: ledger {rows}, file {len(processed)}"
                for row in rows_of(state / "lake" / "raw" / pipeline / f"{load_id}.*.parquet"):
                    digest = repr(row)
                    assert digest not in seen, (f"{pipeline}: row loaded twice, in batches "
                                                f"{seen[digest]} and {load_id}: {row}")
                    seen[digest] = load_id
    finally:
        con.close()


@pytest.fixture(scope="module")
def loaded_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shop after one complete `run --all`, made once for the module: every test
    starts from a copy of this state folder (shop, lake, dlt state, warehouse, marts) instead
    of loading and building it again. Nothing in it depends on where it lives."""
    base = tmp_path_factory.mktemp("crash_shop")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "FRAMEWORK_TARGET"):
            patch.delenv(name, raising=False)
        patch.setenv("FRAMEWORK_PROJECT_DIR", str(copy_project(base / "project")))
        patch.setenv("FRAMEWORK_STATE_DIR", str(base / "state"))
        create_shop(f"sqlite:///{base / 'state' / 'shop.db'}", scale=0.003, seed=5)
        assert {r["status"] for r in run_json("--all").values()} == {"success"}
    return base / "state"


@pytest.fixture
def crash_shop(project_dir: Path, tmp_path: Path, loaded_state: Path) -> str:
    shutil.copytree(loaded_state, tmp_path / "state")
    return f"sqlite:///{tmp_path / 'state' / 'shop.db'}"


def assert_recovered(url: str, tmp_path: Path) -> None:
    """A clean run finishes what the killed one left: landing equals the source on every
    column, the marts add up to the source, and no row was loaded twice."""
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    wait_until_free(warehouse)  # a killed run's dbt dies with it, a moment later
    before = {(p, load_id) for p, load_id, _ in ledger(warehouse)}
    records = run_json("--all")  # the clean run
    assert {r["status"] for r in records.values()} == {"success"}, {
        p: r["error"] for p, r in records.items()}
    reloaded = {(p, load_id) for p, r in records.items() for load_id in r["load_ids"]}
    assert not reloaded & before, "a batch was loaded twice"
    assert_landing_equals_source(url, warehouse, ALL_TABLES)
    assert_marts_match_source(url, warehouse)
    assert_no_row_loaded_twice(tmp_path)


def seed_of(point: str) -> int:
    """A seed per kill point that is the same in every process (hash() of a str is not)."""
    return zlib.crc32(point.encode()) % 1000


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_each_point_then_a_clean_run_loses_and_duplicates_nothing(
        point: str, crash_shop: str, tmp_path: Path) -> None:
    seed = seed_of(point)
    print(f"simulate_activity seed={seed}")  # shown with a failure: re-run with it
    simulate_activity(crash_shop, seed=seed, at_boundary=1)
    args = ["run", "--all"] if "dbt" in point else \
        ["run", *(a for p in PIPELINES for a in ("-p", p))]

    crashed = framework(*args, kill_at=point)
    _, err = crashed.communicate(timeout=300)

    assert crashed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert_recovered(crash_shop, tmp_path)


def wait_until_free(warehouse: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            duckdb.connect(str(warehouse)).close()
            return
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def written_pg_shop(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A PostgreSQL shop written by psql/COPY (tests/sources_independent.py): ties at one
    cursor value, whole-second timestamps, NULLs; no orphans (#15 would fail every build)."""
    with server_database("postgresql") as url:
        monkeypatch.setenv("SHOP_DB_URL", url)
        write_shop(url, orphans=False)
        assert {r["status"] for r in run_json("--all").values()} == {"success"}
        yield url


@pytest.mark.integration
@pytest.mark.parametrize("point", ["after_extract", "load", "dbt_build"])
def test_a_kill_on_an_independently_written_shop_then_a_clean_run_loses_nothing(
        point: str, written_pg_shop: str, tmp_path: Path) -> None:
    change_shop(written_pg_shop, 1)  # ties at the last cursor value, a changed row among them
    crashed = framework("run", "--all", kill_at=point)
    _, err = crashed.communicate(timeout=300)

    assert crashed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert_recovered(written_pg_shop, tmp_path)


def marker(tmp_path: Path) -> Path:
    return tmp_path / "state" / "targets" / "local" / "dbt_pending.json"


@pytest.mark.parametrize("point", ["before_dbt", "dbt_build"])
def test_a_run_killed_before_or_inside_dbt_leaves_models_owed_and_the_next_run_builds_them(
        point: str, crash_shop: str, tmp_path: Path) -> None:
    """Killed for real between the loads and dbt, or in the middle of dbt's build: the loads
    are in landing, the marts are stale, and the next run (nothing new to load) builds them."""
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    simulate_activity(crash_shop, seed=seed_of(point), at_boundary=1)
    crashed = framework("run", "--all", kill_at=point)
    _, err = crashed.communicate(timeout=300)
    assert crashed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    wait_until_free(warehouse)  # dbt dies with the run, a moment later

    assert_landing_equals_source(crash_shop, warehouse, ALL_TABLES)
    assert mart_totals(warehouse) != source_mart_totals(crash_shop), "the marts were built"
    assert "stg_orders+" in json.loads(marker(tmp_path).read_text())

    records = run_json("--all")

    assert {r["status"] for r in records.values()} == {"success"}
    assert all(r["rows_loaded"] == 0 for r in records.values())
    assert_marts_match_source(crash_shop, warehouse)
    assert not marker(tmp_path).exists()


def test_kills_at_random_moments_never_lose_or_duplicate_rows(crash_shop: str,
                                                              tmp_path: Path) -> None:
    seed = 20261126
    print(f"random kill timing seed={seed}")
    rng = random.Random(seed)
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


def test_a_kill_between_dlts_normalize_commit_and_its_cleanup_is_recovered(
        crash_shop: str, tmp_path: Path) -> None:
    """dlt's normalize renames the normalized package into place, then deletes the extracted
    one ("do not kill this process", its log says). A kill in between leaves the package in
    both folders: the next run must load it once, not fail on dlt re-committing it."""
    import dlt

    simulate_activity(crash_shop, seed=7, at_boundary=1)
    crashed = framework("run", "-p", "orders", kill_at="after_extract")
    _, err = crashed.communicate(timeout=300)
    assert crashed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    pipelines = tmp_path / "state" / "targets" / "local" / "dlt"
    pipeline_dir = pipelines / "orders"
    extracted = pipeline_dir / "normalize" / "extracted"
    (package,) = extracted.iterdir()
    kept = tmp_path / "kept"
    shutil.copytree(package, kept)

    dlt.attach("orders", pipelines_dir=str(pipelines)).normalize()
    assert (pipeline_dir / "load" / "normalized" / package.name).is_dir()
    shutil.copytree(kept, package)  # the state the kill leaves: committed, not yet cleaned

    assert_recovered(crash_shop, tmp_path)


def test_a_kill_that_tore_dlts_schema_file_in_the_lake_is_recovered(
        crash_shop: str, tmp_path: Path) -> None:
    """dlt writes a load's schema file into `raw/_dlt_version` in place: killed between its
    create and its write, it is empty, and every later load of the pending package parsed it
    and failed (found by pinning a kill there)."""
    simulate_activity(crash_shop, seed=11, at_boundary=1)
    crashed = framework("run", "-p", "orders", kill_at="after_extract")
    _, err = crashed.communicate(timeout=300)
    assert crashed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    schemas = list((tmp_path / "state" / "lake" / "raw" / "_dlt_version").glob("orders__*"))
    assert schemas
    for schema in schemas:
        schema.write_bytes(b"")

    assert_recovered(crash_shop, tmp_path)


def test_a_torn_columns_record_is_warned_about_and_written_again(
        crash_shop: str, tmp_path: Path) -> None:
    """The source's columns, kept in the lake, were rewritten in place by every run: a kill
    there left the file empty and the pipeline failed on every run after."""
    columns = tmp_path / "state" / "lake" / "raw" / "_framework_columns" / "orders.json"
    kept = columns.read_text()
    columns.write_bytes(b"")
    simulate_activity(crash_shop, seed=12, at_boundary=1)

    records = run_json("--all")

    assert records["orders"]["status"] == "success", records["orders"]["error"]
    assert any("_framework_columns/orders.json is unreadable" in w
               for w in records["orders"]["warnings"])
    assert json.loads(columns.read_text()) == json.loads(kept)
    assert_landing_equals_source(crash_shop, tmp_path / "state" / "warehouse.duckdb", ALL_TABLES)
