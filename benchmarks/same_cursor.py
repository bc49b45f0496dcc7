"""Rows sharing one cursor value cost what distinct values cost (issue #13).

    uv run python benchmarks/same_cursor.py [--rows 1000000] [--source postgresql|sqlite]
                                            [--code DIR]

Two source tables of the harness's `order_items` contract (benchmarks/run.py), `--rows` each:
`distinct` (every row its own `updated_at`, the harness's database) and `same` (every row one
`updated_at`, as after a bulk load or a migration). For each, in a fresh project and state:

1. `framework run --pipeline order_items --no-dbt` (whole process; its extract seconds too);
2. the state one pipeline keeps: dlt's `state.json` locally and the newest state file in the
   lake (`raw/_dlt_pipeline_state/`);
3. a run with nothing new (whole process);
4. one row changed at the boundary value without its cursor moving: the run must load it.

Prints the figures, the ratio same/distinct (target <= 1.2x), and writes them to
benchmarks/results/same-cursor-<time>.json and benchmarks/SAME-CURSOR.md. `--code DIR` runs
another checkout's `framework` package (e.g. the main branch, for before/after figures).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    BENCH,
    CREATE_SQL,
    RAW_RESULTS,
    ROWS_SQL,
    TABLE,
    WORK,
    Measure,
    base_env,
    ensure_source,
    make_project,
    pg_url,
    psql,
    run_process,
)

SAME_VALUE = "2018-01-01 00:00:00"
SAME_GENERATOR = "framework-bench order_items same-cursor v1"


def same_source(rows: int) -> str:
    """`framework_bench_same_<rows>`: the harness's rows, every `updated_at` one value."""
    db = f"framework_bench_same_{rows}"
    if not psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
        psql("postgres", f"CREATE DATABASE {db}")
    marker = f"{SAME_GENERATOR} rows={rows}"
    current = psql(db, f"SELECT obj_description(oid) FROM pg_class WHERE relname = '{TABLE}'")
    if current == marker and int(psql(db, f"SELECT count(*) FROM {TABLE}")) == rows:
        return db
    print(f"generating {rows:,} same-cursor rows in {db} ...", file=sys.stderr, flush=True)
    psql(db, CREATE_SQL)
    generated = ROWS_SQL.format(first=1, last=rows)
    head, _, _ = generated.rpartition("timestamp '2018-01-01' + g * interval '1 second'")
    tail = "\nFROM generate_series" + generated.rsplit("FROM generate_series", 1)[1]
    psql(db, head + f"timestamp '{SAME_VALUE}'" + tail)
    psql(db, f"ALTER TABLE {TABLE} ADD PRIMARY KEY (order_id, order_item_id); "
             f"CREATE INDEX ix_{TABLE}_updated_at ON {TABLE} (updated_at)")
    psql(db, f"COMMENT ON TABLE {TABLE} IS '{marker}'")
    psql(db, f"VACUUM (FREEZE, ANALYZE) {TABLE}")
    return db


def sqlite_source(rows: int, same: bool) -> str:
    """A SQLite copy of the PostgreSQL rows (timestamps as text, as SQLite keeps them)."""
    path = WORK / "same-cursor" / f"{'same' if same else 'distinct'}-{rows}.sqlite"
    if path.is_file():
        return f"sqlite:///{path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    db = same_source(rows) if same else ensure_source(rows)
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}") as source, \
            sqlite3.connect(partial) as target:
        target.execute(f"CREATE TABLE {TABLE} (order_id VARCHAR(32) NOT NULL, order_item_id "
                       "INTEGER NOT NULL, product_id VARCHAR(32) NOT NULL, seller_id "
                       "VARCHAR(32) NOT NULL, shipping_limit_date DATETIME, price NUMERIC(12, 2) "
                       "NOT NULL, freight_value NUMERIC(12, 2) NOT NULL, updated_at DATETIME "
                       "NOT NULL, PRIMARY KEY (order_id, order_item_id))")
        with source.cursor(name="rows") as cursor:
            cursor.execute(f"SELECT order_id, order_item_id, product_id, seller_id, "
                           f"shipping_limit_date::text, price::text, freight_value::text, "
                           f"updated_at::text FROM {TABLE}")
            while batch := cursor.fetchmany(50_000):
                target.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
        target.execute(f"CREATE INDEX ix_updated_at ON {TABLE} (updated_at)")
    partial.rename(path)
    return f"sqlite:///{path}"


def change_one_row(url: str, delta: int) -> None:
    """Change one row at the table's greatest cursor value, leaving its cursor as it is."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                f"UPDATE {TABLE} SET freight_value = freight_value + :d WHERE order_id = "
                f"(SELECT order_id FROM {TABLE} WHERE updated_at = (SELECT max(updated_at) FROM "
                f"{TABLE}) ORDER BY order_id LIMIT 1) AND order_item_id = 1"), {"d": delta})
    finally:
        engine.dispose()


def framework_run(case_dir: Path, env: dict[str, str], step: str) -> tuple[Measure, dict[str, Any]]:
    m = Measure(step, 0)
    cmd = [str(Path(sys.executable).parent / "framework"), "run", "--pipeline", TABLE,
           "--no-dbt", "--json"]
    code, text = run_process(cmd, env, case_dir / "logs" / step, 3600, m)
    if code:
        raise SystemExit(f"{case_dir.name} {step}: {text}")
    record: dict[str, Any] = json.loads(text[text.index("["):])[0]
    if record["status"] != "success":
        raise SystemExit(f"{case_dir.name} {step}: {record['status']}: {record.get('error')}")
    return m, record


def measure_case(name: str, url: str, rows: int, code_dir: str | None) -> dict[str, Any]:
    case_dir = WORK / "same-cursor" / name
    project = make_project(case_dir / "project")
    state = case_dir / "state"
    if state.exists():
        import shutil

        shutil.rmtree(state)
    env = {**base_env(), "FRAMEWORK_PROJECT_DIR": str(project), "FRAMEWORK_STATE_DIR": str(state),
           "SHOP_DB_URL": url}
    if code_dir:
        env["PYTHONPATH"] = code_dir
    out: dict[str, Any] = {"case": name, "rows": rows}
    full, record = framework_run(case_dir, env, "full")
    assert record["rows_loaded"] == rows, record
    out |= {"full_seconds": full.seconds, "extract_seconds": record["seconds"]["extract"],
            "full_rss_mb": (full.rss_kb or 0) / 1024, "full_cpu": full.cpu}
    local = state / "targets" / "local" / "dlt" / TABLE / "state.json"
    lake_states = sorted((state / "lake" / "raw" / "_dlt_pipeline_state").glob(f"{TABLE}__*"),
                         key=lambda p: p.stat().st_mtime)
    out |= {"state_bytes": local.stat().st_size if local.is_file() else None,
            "lake_state_bytes": lake_states[-1].stat().st_size if lake_states else None}
    noop, record = framework_run(case_dir, env, "no-op")
    assert record["rows_loaded"] == 0, record
    out |= {"noop_seconds": noop.seconds, "noop_cpu": noop.cpu}
    change_one_row(url, 1)
    try:
        changed, record = framework_run(case_dir, env, "changed-at-boundary")
    finally:
        change_one_row(url, -1)
    out |= {"changed_seconds": changed.seconds, "changed_rows": record["rows_loaded"]}
    return out


def render(results: list[dict[str, Any]], source: str, code_dir: str | None) -> str:
    by = {r["case"]: r for r in results}
    ratio = by["same"]["extract_seconds"] / by["distinct"]["extract_seconds"]
    lines = [(f"# Rows sharing one cursor value ({source} source, {results[0]['rows']:,} rows"
             f"{', code: ' + code_dir if code_dir else ''})"), "",
             (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
             "`benchmarks/same_cursor.py` (whole processes; 2 shared cores; load average "
             f"{os.getloadavg()[0]:.1f} at the end)."), "",
             ("| case | full run s (CPU s) | extract s | peak RSS MB | state.json | lake state file "
             "| no-op run s (CPU s) | 1 row changed at the boundary: s, rows loaded |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['full_seconds']:.2f} ({r['full_cpu']:.2f}) | "
                     f"{r['extract_seconds']:.2f} | {r['full_rss_mb']:.0f} | "
                     f"{r['state_bytes']:,} B | {r['lake_state_bytes']:,} B | "
                     f"{r['noop_seconds']:.2f} ({r['noop_cpu']:.2f}) | "
                     f"{r['changed_seconds']:.2f}, {r['changed_rows']} |")
    noops = ", ".join(f"{r['case']} {r['noop_seconds']:.2f} s" for r in results)
    small = max(r["state_bytes"] for r in results) < 2**20
    lines += ["", (f"Extract same/distinct: **{ratio:.2f}x** (target <= 1.2x); state under 1 MB: "
              f"{'yes' if small else 'NO'}; no-op runs: {noops} (target < 2 s).")]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--source", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--code", help="another checkout whose framework package to run")
    args = parser.parse_args(argv)
    if args.source == "postgresql":
        urls = {"distinct": pg_url(ensure_source(args.rows), "postgresql+psycopg"),
                "same": pg_url(same_source(args.rows), "postgresql+psycopg")}
    else:
        urls = {"distinct": sqlite_source(args.rows, False), "same": sqlite_source(args.rows, True)}
    results = [measure_case(name, url, args.rows, args.code) for name, url in urls.items()]
    text = render(results, args.source, args.code)
    print(text)
    RAW_RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (RAW_RESULTS / f"same-cursor-{stamp}.json").write_text(json.dumps(results, indent=1))
    report = BENCH / "SAME-CURSOR.md"
    previous = report.read_text() if report.is_file() else ""
    sections = [s for s in previous.split("\n# ") if s.strip() and
                f"({args.source} source" not in s.split("\n", 1)[0]]
    kept = "\n# ".join(sections)
    report.write_text(text + ("\n# " + kept.lstrip("# ") if kept else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
