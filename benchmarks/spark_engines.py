"""One batch through DuckDB, Spark `local[*]` and a Spark standalone cluster: wall time per engine.

A benchmark, not a test. It writes a raw order_items batch (`spark_vs_duckdb.generate`: the
types dlt writes, one Parquet file per million rows), starts a standalone master and workers on
loopback from the jars pyspark ships (`tests/spark/cluster.py`), then, for each engine in a
fresh process of its own, transforms the batch with pipelines/sql/order_items.sql and validates
the result with the order_items suite (not null, unique key, price >= 0: what a run does between
extract and load). It prints, per engine: session start (Spark's JVM and executors), transform,
validate, processed files written, and the whole process (Python start and imports included).

    uv run python benchmarks/spark_engines.py                       # 5M rows, 2 workers x 1 core
    uv run python benchmarks/spark_engines.py --rows 1000000 --workers 1 --worker-memory 2g
    uv run python benchmarks/spark_engines.py --engines local          # one engine alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.spark_vs_duckdb import generate, in_own_process
from tests.spark.cluster import standalone_cluster


def worker(engine: str, master: str, files: list[str], lake: str,
           conf: dict[str, str]) -> dict[str, float]:
    """One engine, one batch, in this process: the timings as JSON on stdout."""
    from framework.compiled import run_context
    from framework.lake import PROCESSED
    from framework.project import Project
    from framework.settings.targets import build_target
    from framework.stages.transform import transform
    from framework.stages.validate import validate

    started = time.perf_counter()
    project = Project(ROOT, dict(os.environ))
    spec = project.pipeline("order_items")
    spec = spec.model_copy(update={"transform": spec.transform.model_copy(update={
        "engine": "duckdb" if engine == "duckdb" else "spark"})})
    target = build_target("bench", {"lake": {"url": lake},
                                    "warehouse": {"path": str(Path(lake) / "w.duckdb")},
                                    "spark": {"master": master, "conf": conf}})
    ctx = run_context(project, target, spec)
    session = 0.0
    if engine != "duckdb":
        from framework import spark

        spark.session(target)
        session = time.perf_counter() - started
    begun = time.perf_counter()
    _, rows = transform(ctx, "1795000000.1", files)
    transformed = time.perf_counter() - begun
    processed = ctx.lake.batch_files(PROCESSED, spec.lake.path, "1795000000.1")
    begun = time.perf_counter()
    outcome = validate(ctx, processed)
    validated = time.perf_counter() - begun
    assert outcome.passed, outcome.errors
    return {"rows": rows, "files": len(processed), "session": session,
            "transform": transformed, "validate": validated,
            "total": time.perf_counter() - started}


def measure(engine: str, master: str, files: list[str], lake: Path,
            conf: dict[str, str]) -> dict[str, float]:
    return in_own_process(engine, [__file__, "--worker", engine, "--master", master,
                                   "--lake", str(lake), "--conf", json.dumps(conf), *files],
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-cores", type=int, default=1)
    parser.add_argument("--worker-memory", default="1g")
    parser.add_argument("--engines", default="duckdb,local,cluster",
                        help="which of duckdb, local, cluster to run (comma-separated)")
    parser.add_argument("--worker", choices=["duckdb", "local", "cluster"])
    parser.add_argument("--master")
    parser.add_argument("--lake")
    parser.add_argument("--conf", default="{}")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.master, args.files, args.lake,
                                json.loads(args.conf))))
        return

    scratch = Path(tempfile.mkdtemp(prefix="spark-engines-"))
    try:
        files = generate(scratch / "raw", args.rows)
        results = {}
        with standalone_cluster(scratch / "cluster", workers=args.workers,
                                cores=args.worker_cores, memory=args.worker_memory) as cluster:
            executor = {"spark.executor.memory": args.worker_memory,
                        "spark.executor.cores": str(args.worker_cores)}
            for engine, master, conf in (("duckdb", "local[*]", {}),
                                         ("local", "local[*]", {}),
                                         ("cluster", cluster.master_url, executor)):
                if engine not in args.engines.split(","):
                    continue
                results[engine] = measure(engine, master, files, scratch / f"lake-{engine}", conf)
                print(f"{engine:>8}: {results[engine]}", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert {r["rows"] for r in results.values()} == {args.rows}, results
    lines = [(f"order_items.sql + the order_items suite on {args.rows:,} rows, {os.cpu_count()} "
              f"CPUs; cluster: {args.workers} worker(s) x {args.worker_cores} core(s), "
              f"{args.worker_memory}; seconds"), "",
             "| engine | session start | transform | validate | files | process (wall) |",
             "|---|---:|---:|---:|---:|---:|"]
    names = {"duckdb": "DuckDB", "local": "Spark local[*]", "cluster": "Spark standalone"}
    for engine, r in results.items():
        lines.append(f"| {names[engine]} | {r['session']:.1f} | {r['transform']:.1f} | "
                     f"{r['validate']:.1f} | {r['files']} | {r['process']:.1f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
