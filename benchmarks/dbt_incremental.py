"""dbt build time: the full build against the build after 1% new orders.

    uv run python benchmarks/dbt_incremental.py [--orders 1000000] [--repeat 1]

Writes the five landing tables of a shop of `--orders` orders (benchmarks/shop_data.py, by SQL
inside DuckDB, as the framework's loader leaves them) into a warehouse file of its own under
benchmarks/.work/, then times, each in a process of its own as the framework runs it
(`framework/stages/model.py`: every pipeline's `stg_<table>+` selection, the seeds, cautious
indirect selection, models and tests, its log flags, the project parsed beforehand):

1. the full build (`--full-refresh`, as on a new warehouse): every pipeline's selection, as
   after a first load of every table;
2. the build after 1% new orders (one line and one payment each) merged into landing with a
   later `_loaded_at`: the selections of the three pipelines that loaded them (orders,
   order_items, payments: the runner builds the selections its loads left owed, and the
   customers and products pipelines found nothing new), their incremental facts and the marts
   taking only what changed;
3. the same build again with nothing new: what such a build pays whatever the data (dbt's
   start, the tests, the marts over all history).

Prints both (wall and CPU seconds), their ratio (the issue's target: at most 25%) and what each
build's slowest nodes took. The 1% wave is removed from landing again, so `--repeat` measures the
same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from shop_data import TABLES, landing_columns, select, sizes, wave

WAVE_TABLES = list(wave(1))  # the tables a wave of new orders writes
BASE_LOADED_AT = "2026-01-01 00:00:00"
WAVE_LOADED_AT = "2026-01-02 00:00:00"


def make_landing(path: Path, orders: int) -> None:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA landing")
    for table in TABLES:
        con.execute(f"CREATE TABLE landing.{table} AS SELECT *, 'base' AS _load_id, "
                    f"TIMESTAMP '{BASE_LOADED_AT}' AS _loaded_at FROM ({landing_columns(select(table, orders))})")
    con.close()


def add_wave(path: Path, orders: int) -> int:
    import duckdb

    con = duckdb.connect(str(path))
    for table, sql in wave(orders).items():
        con.execute(f"INSERT INTO landing.{table} SELECT *, 'wave' AS _load_id, "
                    f"TIMESTAMP '{WAVE_LOADED_AT}' AS _loaded_at FROM ({sql})")
    new = con.execute("SELECT count(*) FROM landing.orders WHERE _load_id = 'wave'").fetchone()
    con.close()
    return int(new[0]) if new else 0


def remove_wave(path: Path) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    for table in TABLES:
        con.execute(f"DELETE FROM landing.{table} WHERE _load_id = 'wave'")
    con.close()


def dbt(command: list[str], warehouse: Path, work: Path) -> tuple[float, float]:
    """Run one dbt command in a process of its own, with the framework's flags; its wall and
    CPU seconds (user + system: on a shared machine they move much less than wall)."""
    args = [sys.executable, "-m", "dbt.cli.main", *command,
            "--project-dir", str(ROOT / "dbt_ecommerce"), "--profiles-dir", str(ROOT / "dbt_ecommerce"),
            "--target", "local", "--target-path", str(work / "target"),
            "--log-path", str(work / "logs"), "--log-level", "none", "--log-level-file", "info",
            "--no-use-colors"]
    env = {**os.environ, "DUCKDB_PATH": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DO_NOT_TRACK": "1"}
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(args, env=env, check=False, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"dbt {command[0]} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dbt_build(warehouse: Path, work: Path, full_refresh: bool,
              tables: list[str]) -> tuple[tuple[float, float], list[tuple[str, float]]]:
    """The build the runner makes after loads of `tables`: their pipelines' selections."""
    seconds = dbt(["build", "--select", *[f"stg_{t}+" for t in tables], "resource_type:seed",
                   "--indirect-selection", "cautious", *(["--full-refresh"] if full_refresh else [])],
                  warehouse, work)
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    nodes = sorted(((r["unique_id"], r["execution_time"]) for r in results), key=lambda x: -x[1])
    return seconds, nodes


def by_kind(nodes: list[tuple[str, float]]) -> dict[str, float]:
    """Seconds per node kind (model, test, snapshot, seed): where a build's time goes."""
    kinds: dict[str, float] = {}
    for uid, seconds in nodes:
        kinds[uid.split(".")[0]] = kinds.get(uid.split(".")[0], 0.0) + seconds
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--top", type=int, default=8, help="slowest nodes to list per build")
    opts = parser.parse_args()
    work = BENCH / ".work" / f"dbt-{opts.orders}"
    warehouse = work / "warehouse.duckdb"
    started = time.perf_counter()
    make_landing(warehouse, opts.orders)
    rows = ", ".join(f"{t} {n:,}" for t, n in sizes(opts.orders).items())
    print(f"landing: {rows} ({time.perf_counter() - started:.1f} s); load {os.getloadavg()[0]:.2f}")
    # Parsed once, untimed: the framework's builds reuse the parse of the last one (dbt's partial
    # parsing), so neither build below should pay for a full parse.
    dbt(["parse"], warehouse, work)
    for run in range(1, opts.repeat + 1):
        (full, full_cpu), full_nodes = dbt_build(warehouse, work, True, list(TABLES))
        new = add_wave(warehouse, opts.orders)
        (incremental, inc_cpu), inc_nodes = dbt_build(warehouse, work, False, WAVE_TABLES)
        (idle, idle_cpu), idle_nodes = dbt_build(warehouse, work, False, WAVE_TABLES)
        remove_wave(warehouse)
        print(f"run {run}: full build {full:.1f} s ({full_cpu:.1f} CPU s); after {new:,} new orders "
              f"(1%) {incremental:.1f} s ({inc_cpu:.1f} CPU s) = {incremental / full:.0%} of the full "
              f"build by wall, {inc_cpu / full_cpu:.0%} by CPU (target <= 25%); then with nothing "
              f"new {idle:.1f} s ({idle_cpu:.1f} CPU s: {idle_cpu / full_cpu:.0%}); "
              f"load {os.getloadavg()[0]:.2f}")
        for name, nodes in (("full", full_nodes), ("incremental", inc_nodes),
                            ("nothing new", idle_nodes)):
            kinds = ", ".join(f"{k}s {s:.1f}" for k, s in sorted(by_kind(nodes).items()))
            slowest = ", ".join(f"{n.split('.')[-1 if n.startswith('model') else 2]} {s:.2f}"
                                for n, s in nodes[:opts.top])
            print(f"  {name}: {kinds}; slowest: {slowest}")


if __name__ == "__main__":
    main()
