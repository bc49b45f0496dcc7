"""The whole shop: five tables at `--orders` orders, the shipped pipelines, against the scanner.

    uv run python benchmarks/shop.py [--orders 1000000] [--paths scanner,full,no-op,no-op-all,full-threads4]
                                     [--repeat N]

Generates, inside PostgreSQL (127.0.0.1:5432, database `perf_shop`, by generate_series; kept
between invocations and re-made when the generator or size changes), the shop's five tables in
real shapes (benchmarks/shop_data.py: customers and products bulk-loaded with one shared
`updated_at`, the others distinct; NULLs; numeric(12,2) money; varchar(32) ids; primary keys and
`updated_at` indexes), then runs, each in a process of its own, measuring the whole process
(wall seconds, peak RSS, CPU seconds via wait4):

- `scanner`: DuckDB's postgres_scanner copying the five tables to Parquet (one process);
- `full`: `framework run --all --no-dbt --json` on a copy of the project (pipeline files as
  shipped), fresh state, DuckDB warehouse: extract, transform, validate, load of every table;
- `no-op`: `framework run --all --no-dbt --json` on that state with nothing new (the full run
  left the dbt models owed: `run --all` would build them first);
- `no-op-all`: `framework run --all --json` with nothing new and no model owed (a first
  `run --all`, not measured, builds what the `--no-dbt` runs left owed);
- `full-threadsN` (e.g. `full-threads4`): the full run again from a fresh state of its own with
  `--threads N`, to set beside `full` (one pipeline at a time).

Prints one table per round (ratios to the scanner of the same round) and each pipeline's stage
seconds; with `--repeat N`, N rounds of every path (the framework's from a fresh state each) and
then, per path, the median wall seconds and the median of the rounds' own ratios: on a shared
2-core machine one invocation's ratio moves by a fifth from one run to the next. The raw figures
go to benchmarks/results/shop-<time>.json (ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    RAW_RESULTS,
    ROOT,
    WORK,
    Measure,
    base_env,
    compile_framework,
    ensure_venv,
    pg_url,
    psql,
    run_process,
    site_packages,
)
from shop_data import KEYS, TABLES, select, sizes

DB = "perf_shop"
GENERATOR = "framework-bench shop v2"  # change when shop_data's rows change

DDL = {
    "customers": """customer_id varchar(32) NOT NULL, customer_unique_id varchar(32) NOT NULL,
        customer_zip_code_prefix varchar(5), customer_city varchar(64),
        customer_state varchar(2), updated_at timestamp NOT NULL""",
    "products": """product_id varchar(32) NOT NULL, product_category_name varchar(64),
        product_name_lenght integer, product_description_lenght integer,
        product_photos_qty integer, product_weight_g integer, product_length_cm integer,
        product_height_cm integer, product_width_cm integer, updated_at timestamp NOT NULL""",
    "orders": """order_id varchar(32) NOT NULL, customer_id varchar(32) NOT NULL,
        order_status varchar(16) NOT NULL, order_purchase_timestamp timestamp NOT NULL,
        order_approved_at timestamp, order_delivered_carrier_date timestamp,
        order_delivered_customer_date timestamp, order_estimated_delivery_date timestamp,
        updated_at timestamp NOT NULL""",
    "order_items": """order_id varchar(32) NOT NULL, order_item_id integer NOT NULL,
        product_id varchar(32) NOT NULL, seller_id varchar(32), shipping_limit_date timestamp,
        price numeric(12,2) NOT NULL, freight_value numeric(12,2),
        updated_at timestamp NOT NULL""",
    "payments": """order_id varchar(32) NOT NULL, payment_sequential integer NOT NULL,
        payment_type varchar(16), payment_installments integer,
        payment_value numeric(12,2) NOT NULL, updated_at timestamp NOT NULL""",
}


def ensure_shop(orders: int) -> None:
    """Database `perf_shop` holding exactly the generated shop of `orders` orders."""
    if not psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DB}'"):
        psql("postgres", f"CREATE DATABASE {DB}")
    marker = f"{GENERATOR} orders={orders}"
    current = psql(DB, "SELECT obj_description(oid) FROM pg_class WHERE relname = 'orders' "
                       "AND relkind = 'r'")
    if current == marker:
        return
    print(f"generating the shop at {orders:,} orders in {DB} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    for table in TABLES:
        psql(DB, f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({DDL[table]})")
        psql(DB, f"INSERT INTO {table} {select(table, orders)}")
        psql(DB, f"ALTER TABLE {table} ADD PRIMARY KEY ({KEYS[table]}); "
                 f"CREATE INDEX ix_{table}_updated_at ON {table} (updated_at)")
        psql(DB, f"VACUUM (FREEZE, ANALYZE) {table}")
    psql(DB, f"COMMENT ON TABLE orders IS '{marker}'")
    print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def warm() -> None:
    """Read every table once so no path pays for a cold cache."""
    for table in TABLES:
        psql(DB, f"SELECT count(*) FROM {table}")


def scanner(run_dir: Path) -> Measure:
    m = Measure("duckdb-postgres-scanner, 5 tables -> Parquet", 0, load=os.getloadavg()[0])
    venv = ensure_venv("duckdb")
    extension = next(site_packages(venv).glob(
        "duckdb_extension_postgres_scanner/extensions/*/postgres_scanner.duckdb_extension"))
    dsn = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={DB}"
    cmd = [str(venv / "bin" / "python"), str(BENCH / "drivers.py"), "duckdb-scanner", dsn,
           str(run_dir / "scanner"), str(extension), ",".join(TABLES)]
    code, text = run_process(cmd, base_env(), run_dir / "scanner-log", 3600, m)
    m.rows, m.error = (json.loads(text.splitlines()[-1])["rows"], None) if code == 0 \
        else (None, text)
    return m


def framework(run_dir: Path, name: str, args: list[str], log: str) -> tuple[Measure, list[dict]]:
    """`framework ARGS --json` on the project copy and state under run_dir."""
    from tests.conftest import copy_project

    project = run_dir / "project"
    if not project.exists():
        copy_project(project)
    env = {**base_env(), "FRAMEWORK_PROJECT_DIR": str(project),
           "FRAMEWORK_STATE_DIR": str(run_dir / "state"),
           "SHOP_DB_URL": pg_url(DB, "postgresql+psycopg")}
    m = Measure(name, 0, load=os.getloadavg()[0])
    cmd = [str(Path(sys.executable).parent / "framework"), *args, "--json"]
    code, text = run_process(cmd, env, run_dir / f"{log}-log", 3600, m)
    if code:
        m.error = text
        return m, []
    records = json.loads(text[text.index("["):])
    m.rows = sum(int(r.get("rows_loaded") or 0) for r in records)
    failed = [f"{r['pipeline']}: {r['status']}" for r in records
              if r["status"] not in ("success", "skipped", "nothing new")]
    m.error = "; ".join(failed) or None
    return m, records


def one_round(paths: list[str], run_dir: Path) -> tuple[list[Measure], dict[str, list[dict]]]:
    """Every path of `paths` once, in order, the framework's from a fresh state."""
    if "full" in paths and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    measures: list[Measure] = []
    records: dict[str, list[dict]] = {}
    if "scanner" in paths:
        measures.append(scanner(run_dir))
    if "full" in paths:
        m, records["full"] = framework(run_dir, "framework run --all --no-dbt",
                                       ["run", "--all", "--no-dbt"], "full")
        measures.append(m)
    if "no-op" in paths:
        m, records["no-op"] = framework(run_dir, "framework run --all --no-dbt, nothing new",
                                        ["run", "--all", "--no-dbt"], "no-op")
        measures.append(m)
    if "no-op-all" in paths:
        # The issue's own case: `run --all`, dbt included, nothing new and no model owed. A
        # first `run --all` (not measured) builds what the `--no-dbt` runs left owed.
        framework(run_dir, "framework run --all, building the owed models", ["run", "--all"],
                  "dbt-owed")
        m, records["no-op-all"] = framework(run_dir, "framework run --all, nothing new",
                                            ["run", "--all"], "no-op-all")
        measures.append(m)
    for threads in [p.removeprefix("full-threads") for p in paths if p.startswith("full-threads")]:
        # A fresh state and warehouse of its own: the same first load, N pipelines at a time.
        own = run_dir / f"threads-{threads}"
        shutil.rmtree(own, ignore_errors=True)
        own.mkdir(parents=True)
        m, records[f"full-threads{threads}"] = framework(
            own, f"framework run --all --no-dbt --threads {threads}",
            ["run", "--all", "--no-dbt", "--threads", threads], "full")
        measures.append(m)
    return measures, records


def scanner_of(measures: list[Measure]) -> Measure | None:
    """The round's anchor: DuckDB's scanner."""
    return next((m for m in measures if m.path.startswith("duckdb")), None)


def measured(m: Measure | None) -> bool:
    """A run that finished: a failed run's seconds measure nothing."""
    return m is not None and bool(m.seconds) and not m.error


def print_round(measures: list[Measure], records: dict[str, list[dict]]) -> None:
    base = scanner_of(measures)
    print("| path | rows | wall s | ratio | peak RSS MB | CPU s | load |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in measures:
        ratio = f"{m.seconds / base.seconds:.1f}x" if base and base.seconds and m.seconds else ""
        print(f"| {m.path} | {m.rows if m.rows is not None else '-'} | {m.seconds or 0:.1f} | "
              f"{ratio} | {(m.rss_kb or 0) / 1024:.0f} | {m.cpu or 0:.1f} | {m.load:.1f} |"
              + (f" error: {m.error}" if m.error else ""))
    for kind, recs in records.items():
        print(f"\n{kind}: stage seconds per pipeline")
        for r in recs:
            stages = ", ".join(f"{k} {v:.2f}" for k, v in (r.get("seconds") or {}).items())
            print(f"  {r['pipeline']}: {r['status']}, {r.get('rows_loaded')} rows; {stages}")


def print_medians(rounds: list[list[Measure]]) -> None:
    """Per path over the rounds: the median wall and its range, the median of each round's own
    ratio to that round's scanner, the largest peak RSS and the median CPU seconds."""
    print(f"\nover {len(rounds)} rounds (each ratio against the scanner of its own round):")
    print("| path | median wall s | range s | median ratio | ratios | peak RSS MB | median CPU s |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for i, first in enumerate(rounds[0]):
        pairs = [(r[i], scanner_of(r)) for r in rounds]
        runs = [m for m, _ in pairs if measured(m)]
        if not runs:
            continue
        ratios = [m.seconds / base.seconds for m, base in pairs if measured(m) and measured(base)]
        walls = [m.seconds or 0.0 for m in runs]
        median_ratio = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        print(f"| {first.path} | {statistics.median(walls):.1f} | {min(walls):.1f}-{max(walls):.1f} "
              f"| {median_ratio} | {', '.join(f'{x:.2f}' for x in ratios)} | "
              f"{max((m.rss_kb or 0) for m in runs) / 1024:.0f} | "
              f"{statistics.median(m.cpu or 0.0 for m in runs):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--paths", default="scanner,full,no-op")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every path (a fresh state each); medians when more than one")
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    paths = opts.paths.split(",")
    ensure_shop(opts.orders)
    compile_framework()
    warm()
    run_dir = WORK / f"shop-{opts.orders}"
    rows = ", ".join(f"{t} {n:,}" for t, n in sizes(opts.orders).items())
    rounds: list[list[Measure]] = []
    raw: list[dict] = []
    RAW_RESULTS.mkdir(exist_ok=True)
    out = RAW_RESULTS / f"shop-{time.strftime('%Y%m%dT%H%M%S')}.json"
    for number in range(1, opts.repeat + 1):
        measures, records = one_round(paths, run_dir)
        rounds.append(measures)
        raw.append({"measures": [asdict(m) for m in measures], "records": records})
        print(f"\n{'round ' + str(number) + ': ' if opts.repeat > 1 else ''}shop at "
              f"{opts.orders:,} orders ({rows}); PostgreSQL {DB}")
        print_round(measures, records)
        # written after every round: a later failure keeps what was measured
        out.write_text(json.dumps({"orders": opts.orders, "rounds": raw}, indent=1, default=str))
    if opts.repeat > 1:
        print_medians(rounds)


if __name__ == "__main__":
    main()
