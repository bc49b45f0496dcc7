"""`framework run --all --threads 1` against `--threads 4` on the five shop pipelines.

    uv run python benchmarks/threads.py [--scale 1] [--repeat 1] [--threads 1,4] [--no-dbt]

The source is the demo shop (framework.demo.shop, `--scale 1` is about 100k orders, 112k items,
104k payments, 99k customers, 33k products) written into the PostgreSQL database `threads_shop`
at 127.0.0.1:5432 (kept between invocations, made again when the scale or seed changes). Each
case runs `framework run --all --threads N --json` in a process of its own with a fresh state
folder (a full first load into a new DuckDB warehouse, then the one dbt build), measures its
wall seconds, and checks every pipeline succeeded with as many rows loaded as the source holds.
Prints one line per case and the ratio of the first case's time to each other's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "threads"
DB = "threads_shop"
PG = "postgres@127.0.0.1:5432"
TABLES = ("customers", "products", "orders", "order_items", "payments")


def psql(db: str, sql: str) -> str:
    result = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-XAtq",
                             "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True,
                            check=False)
    if result.returncode:
        raise SystemExit(f"psql ({db}): {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_shop(scale: float, seed: int) -> dict[str, int]:
    """The shop in `threads_shop` at this scale and seed; its row count per table."""
    marker = f"framework threads bench: demo shop scale={scale} seed={seed}"
    exists = psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DB}'")
    if not exists or psql(DB, "SELECT obj_description('orders'::regclass) "
                              "WHERE to_regclass('orders') IS NOT NULL") != marker:
        print(f"generating the demo shop (scale {scale}) in {DB} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        psql("postgres", f"DROP DATABASE IF EXISTS {DB}")
        psql("postgres", f"CREATE DATABASE {DB}")
        sys.path.insert(0, str(ROOT))
        from framework.demo.shop import create_shop

        create_shop(f"postgresql+psycopg://{PG}/{DB}", scale=scale, seed=seed)
        psql(DB, f"COMMENT ON TABLE orders IS '{marker}'")
        psql(DB, "VACUUM ANALYZE")
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return {t: int(psql(DB, f"SELECT count(*) FROM {t}")) for t in TABLES}


def project_copy() -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import copy_project

    dest = WORK / "project"
    if dest.exists():
        shutil.rmtree(dest)
    return Path(copy_project(dest))


def run_case(project: Path, threads: int, dbt: bool, counts: dict[str, int]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `run --all --threads N` from a fresh state
    folder: on a busy machine the CPU seconds show the work stayed the same."""
    state = WORK / f"state-{threads}"
    shutil.rmtree(state, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("LAKE_URL", "DUCKDB_PATH",
                                                            "FRAMEWORK_TARGET")}
    env.update(FRAMEWORK_PROJECT_DIR=str(project), FRAMEWORK_STATE_DIR=str(state),
               SHOP_DB_URL=f"postgresql+psycopg://{PG}/{DB}", GX_ANALYTICS_ENABLED="false",
               DBT_SEND_ANONYMOUS_USAGE_STATS="false", TQDM_DISABLE="1")
    cmd = [str(Path(sys.executable).parent / "framework"), "run", "--all", "--threads",
           str(threads), "--json", *([] if dbt else ["--no-dbt"])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(WORK),
                          check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise SystemExit(f"--threads {threads}: exit {done.returncode}: {tail}\n{done.stdout}")
    records = {r["pipeline"]: r for r in json.loads(done.stdout[done.stdout.index("["):])}
    loaded = {name: r["rows_loaded"] for name, r in records.items()}
    if loaded != counts or {r["status"] for r in records.values()} != {"success"}:
        raise SystemExit(f"--threads {threads}: loaded {loaded}, source {counts}")
    return seconds, cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", default="1,4", help="comma-separated cases (default 1,4)")
    parser.add_argument("--no-dbt", action="store_true", help="stop after the loads")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    counts = ensure_shop(args.scale, args.seed)
    print(f"source {DB}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items())
          + f" ({sum(counts.values()):,} rows)")
    project = project_copy()
    cases = [int(n) for n in args.threads.split(",")]
    times: dict[int, list[float]] = {n: [] for n in cases}
    cpus: dict[int, list[float]] = {n: [] for n in cases}
    for _ in range(args.repeat):
        for threads in cases:  # interleaved, so a busy spell of the machine hits every case
            wall, cpu = run_case(project, threads, not args.no_dbt, counts)
            times[threads].append(wall)
            cpus[threads].append(cpu)
            print(f"  --threads {threads}: {wall:.1f} s wall, {cpu:.1f} s CPU (load average "
                  f"{os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    first = statistics.median(times[cases[0]])
    what = "loads only" if args.no_dbt else "loads and the dbt build"
    print(f"run --all ({what}), median of {args.repeat}, {os.cpu_count()} cores:")
    for threads in cases:
        median = statistics.median(times[threads])
        print(f"  --threads {threads}: {median:6.1f} s wall, {statistics.median(cpus[threads]):6.1f}"
              f" s CPU   ratio to --threads {cases[0]}: {first / median:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
