"""One benchmark path per process: `python benchmarks/drivers.py PATH ARGS...`.

The harness (`run.py`) starts each path in a process of its own and measures that process's
wall time and peak RSS, so everything a path does counts: interpreter start, imports, reading
the source, writing Parquet. Each driver prints one JSON line `{"rows": N}` when it is done.

The DuckDB anchor runs under the anchor's own virtual environment (duckdb pinned, extension from
PyPI), every other Python path under the project's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable


def duckdb_scanner(dsn: str, output: str, extension: str, tables: str = "") -> int:
    """DuckDB's postgres_scanner straight to Parquet: `COPY (SELECT * FROM pg.t) TO 'x.parquet'`.
    With `tables` (comma-separated), each table to `<output>/<table>.parquet`, one after another."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    targets = [(t, os.path.join(output, f"{t}.parquet")) for t in tables.split(",")] if tables \
        else [("order_items", output)]
    if tables:
        os.makedirs(output, exist_ok=True)
    rows = 0
    for table, path in targets:
        row = con.execute(f"COPY (SELECT * FROM pg.public.{table}) TO '{path}' "
                          "(FORMAT parquet)").fetchone()
        rows += int(row[0]) if row else 0
    return rows


def dlt_sql_table(backend: str, url: str, output: str, pipelines_dir: str) -> int:
    """dlt's `sql_table` with one of its own backends, defaults otherwise, to filesystem Parquet."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt
    from dlt.sources.sql_database import sql_table

    pipeline = dlt.pipeline(pipeline_name=f"bench_{backend}", pipelines_dir=pipelines_dir,
                            destination=dlt.destinations.filesystem(bucket_url=output),
                            dataset_name="raw")
    pipeline.run(sql_table(credentials=url, table="order_items", backend=backend),
                 loader_file_format="parquet")
    normalize = pipeline.last_trace.last_normalize_info
    return int(normalize.row_counts.get("order_items", 0)) if normalize else 0


def framework_extract(project_dir: str) -> int:
    """The framework's extract hop alone (framework.api.extract: lock, dlt load, run record)."""
    import pyarrow.parquet as pq

    from framework import api
    from framework.sources.sql import adapter

    if os.environ.get("BENCH_CHUNK_ROWS"):  # a prototype of another CHUNK_ROWS
        adapter.CHUNK_ROWS = int(os.environ["BENCH_CHUNK_ROWS"])
    api.extract("order_items", project_dir=project_dir)
    lake = os.path.join(os.environ["FRAMEWORK_STATE_DIR"], "lake", "raw", "order_items")
    return sum(pq.ParquetFile(os.path.join(lake, f)).metadata.num_rows
               for f in os.listdir(lake) if f.endswith(".parquet"))


# -- prototypes of changes outside the benchmark, applied by monkeypatching -------------------
# `BENCH_PROTOTYPES=name,...` runs `framework` with them (README.md).

# name -> a function that monkeypatches the change in. Shipped since, and gone from here:
# validate-duckdb (framework/stages/validate.py), noop-precheck (framework/sources/sql/precheck.py),
# duckdb-memory (FRAMEWORK_DUCKDB_MEMORY); validate-sample (GX on a sample) was not proposed.
PROTOTYPES: dict[str, Callable[[], None]] = {}


def framework_cli(*args: str) -> int:
    """`framework ARGS` with the prototypes named in BENCH_PROTOTYPES applied first."""
    for name in filter(None, os.environ.get("BENCH_PROTOTYPES", "").split(",")):
        PROTOTYPES[name]()
    from framework.cli import main

    main(list(args))
    return 0


DRIVERS = {
    "duckdb-scanner": duckdb_scanner,
    "dlt": dlt_sql_table,
    "framework-extract": framework_extract,
    "framework-cli": framework_cli,
}


if __name__ == "__main__":
    name, *args = sys.argv[1:]
    rows = DRIVERS[name](*args)  # type: ignore[operator]
    print(json.dumps({"rows": rows}), flush=True)
