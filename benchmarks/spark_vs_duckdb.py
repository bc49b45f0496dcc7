"""Spark (local) against DuckDB on the same transform: pipelines/sql/order_items.sql.

A benchmark, not a test. For each size it writes a raw order_items batch (the types dlt
writes: strings, int64, timestamp[us], decimal(12, 2); one Parquet file per million rows, as a
dlt load would), then runs each engine's `run()` in a fresh process of its own and prints the
times and the ratio. Spark's session start (JVM, about 10-15 s) is timed apart from the
transform; each engine runs the batch twice (the first run pays Spark's JIT and code
generation warm-up, the second is what every further batch of a run costs); DuckDB writes one
processed Parquet file, Spark as many parts as its tasks (see docs/spark.md), and the process
column is the whole process, Python start and imports included. benchmarks/spark_engines.py
adds a standalone cluster and the validate stage.

    uv run python benchmarks/spark_vs_duckdb.py                    # 1M and 5M rows
    uv run python benchmarks/spark_vs_duckdb.py --sizes 200000 --master 'local[2]'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_ROWS = 1_000_000


def generate(folder: Path, rows: int) -> list[str]:
    """Raw order_items Parquet files holding `rows` rows (two items per order)."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    files = []
    for index, start in enumerate(range(0, rows, FILE_ROWS)):
        count = min(FILE_ROWS, rows - start)
        path = folder / f"1795000000.{index:06d}.{index}.parquet"
        con.execute(f"""
            COPY (
                SELECT
                    md5(CAST(i // 2 AS VARCHAR)) AS order_id,
                    CAST(i % 2 + 1 AS BIGINT) AS order_item_id,
                    md5('p' || CAST(i % 32951 AS VARCHAR)) AS product_id,
                    md5('s' || CAST(i % 3095 AS VARCHAR)) AS seller_id,
                    TIMESTAMP '2017-01-01' + to_microseconds(CAST(hash(i) % 50000000000000 AS BIGINT))
                        AS shipping_limit_date,
                    CAST((hash(i, 1) % 500000) / 100 AS DECIMAL(12, 2)) AS price,
                    CAST((hash(i, 2) % 10000) / 100 AS DECIMAL(12, 2)) AS freight_value,
                    TIMESTAMP '2016-09-01' + to_microseconds(CAST(i * 12345 AS BIGINT)) AS updated_at
                FROM range({start}, {start + count}) AS r(i)
            ) TO '{path}' (FORMAT parquet, COMPRESSION snappy)
        """)
        files.append(str(path))
    con.close()
    return files


def worker(engine: str, files: list[str], output: str, master: str) -> dict[str, float]:
    """One engine, one batch, in this process: the timings as JSON on stdout."""
    from framework.compiled import run_context
    from framework.project import Project
    from framework.settings.targets import build_target

    started = time.perf_counter()
    project = Project(ROOT, dict(os.environ))
    spec = project.pipeline("order_items")
    target = build_target("bench", {"lake": {"url": str(Path(output).parent)},
                                    "warehouse": {"path": str(Path(output).parent / "w.duckdb")},
                                    "spark": {"master": master}})
    ctx = run_context(project, target, spec)
    sql = project.transform_sql(spec) or ""
    session = 0.0
    if engine == "spark":
        from framework import spark
        from framework.stages.transform.spark_engine import SparkEngine as Engine

        spark.session(target)
        session = time.perf_counter() - started
    else:
        from framework.stages.transform.duckdb_engine import DuckDBEngine as Engine  # type: ignore[assignment]
    begun = time.perf_counter()
    rows = Engine().run(ctx, sql, files, output)
    cold = time.perf_counter() - begun
    total = time.perf_counter() - started
    # The same batch again in the same process: what each further batch of a run costs.
    begun = time.perf_counter()
    again = Engine().run(ctx, sql, files, output)
    warm = time.perf_counter() - begun
    assert again == rows
    return {"rows": rows, "session": session, "cold": cold, "warm": warm, "total": total}


def in_own_process(engine: str, command: list[str],
                   env: dict[str, str] | None = None) -> dict[str, float]:
    """Run one benchmark worker in a process of its own; its last stdout line is its JSON
    result, to which the whole process's wall time is added as `process`."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True,
                          check=False, cwd=ROOT, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = wall
    return result


def measure(engine: str, files: list[str], output: str, master: str) -> dict[str, float]:
    return in_own_process(engine, [__file__, "--worker", engine, "--output", output,
                                   "--master", master, *files])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--worker", choices=["duckdb", "spark"])
    parser.add_argument("--output")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.files, args.output, args.master)))
        return

    scratch = Path(tempfile.mkdtemp(prefix="spark-vs-duckdb-"))
    lines = [f"order_items.sql, Spark {args.master} vs DuckDB, {os.cpu_count()} CPUs; seconds",
             "",
             ("| rows | DuckDB 1st batch | Spark 1st batch | ratio | DuckDB next batch | "
              "Spark next batch | ratio | Spark session start | DuckDB process | Spark process "
              "| ratio |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    try:
        for size in args.sizes:
            files = generate(scratch / f"raw-{size}", size)
            results = {}
            for engine in ("duckdb", "spark"):
                output = scratch / f"out-{size}" / engine / "processed.parquet"
                output.parent.mkdir(parents=True, exist_ok=True)
                results[engine] = measure(engine, files, str(output), args.master)
                print(f"{size:>10,} rows {engine:>6}: {results[engine]}", file=sys.stderr)
            duck, spark = results["duckdb"], results["spark"]
            assert duck["rows"] == spark["rows"] == size, (duck, spark)
            lines.append(
                f"| {size:,} | {duck['cold']:.1f} | {spark['cold']:.1f} | "
                f"{spark['cold'] / duck['cold']:.1f}x | {duck['warm']:.1f} | "
                f"{spark['warm']:.1f} | {spark['warm'] / duck['warm']:.1f}x | "
                f"{spark['session']:.1f} | {duck['process']:.1f} | {spark['process']:.1f} | "
                f"{spark['process'] / duck['process']:.1f}x |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
