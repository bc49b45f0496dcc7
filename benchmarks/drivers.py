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


def duckdb_scanner(dsn: str, output: str, extension: str) -> int:
    """DuckDB's postgres_scanner straight to Parquet: `COPY (SELECT * FROM pg.t) TO 'x.parquet'`."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    row = con.execute(f"COPY (SELECT * FROM pg.public.order_items) TO '{output}' "
                      "(FORMAT parquet)").fetchone()
    return int(row[0]) if row else 0


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
    from framework.stages import extract

    if os.environ.get("BENCH_CHUNK_ROWS"):  # a prototype of another CHUNK_ROWS
        extract.CHUNK_ROWS = int(os.environ["BENCH_CHUNK_ROWS"])
    api.extract("order_items", project_dir=project_dir)
    lake = os.path.join(os.environ["FRAMEWORK_STATE_DIR"], "lake", "raw", "order_items")
    return sum(pq.ParquetFile(os.path.join(lake, f)).metadata.num_rows
               for f in os.listdir(lake) if f.endswith(".parquet"))


# -- prototypes of changes outside the benchmark, applied by monkeypatching -------------------
# `BENCH_PROTOTYPES=validate-duckdb,noop-precheck` runs `framework` with them (README.md).

SAMPLE_ROWS = 100_000


def prototype_validate_sample() -> None:
    """Great Expectations on a reservoir sample of at most SAMPLE_ROWS rows of the batch, read
    by DuckDB, instead of the whole batch converted to pandas."""
    from contextlib import contextmanager

    from framework.stages import validate

    @contextmanager
    def sampled(ctx, processed):  # type: ignore[no-untyped-def]
        import duckdb

        con = duckdb.connect()
        try:
            yield con.execute(f"SELECT * FROM read_parquet('{processed}') USING SAMPLE "
                              f"reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (1)").df()
        finally:
            con.close()

    validate._read = sampled


def prototype_noop_precheck() -> None:
    """Before the dlt run, one query for the rows at or past dlt's stored cursor: when none is
    past it and every row at it hashes (dlt's own digest) into dlt's stored boundary hashes,
    nothing is new and dlt is not run."""
    from framework.stages import extract as stage

    original = stage.extract

    def extract(ctx):  # type: ignore[no-untyped-def]
        spec, inc = ctx.spec, ctx.spec.source.incremental
        state_file = ctx.state_dir / "dlt" / spec.name / "state.json"
        if ctx.full_refresh or not inc or inc.lag_seconds or spec.source.query \
                or not state_file.is_file():
            return original(ctx)
        import sqlalchemy as sa
        from dlt.common import json as dlt_json
        from dlt.extract.utils import digest_dedup_value

        state = dlt_json.typed_loads(state_file.read_text())
        resource = spec.source.table or spec.name
        cursor = state["sources"][spec.name]["resources"][resource]["incremental"][inc.cursor]
        last, seen = cursor["last_value"], set(cursor["unique_hashes"])
        engine = sa.create_engine(ctx.project.connection(spec.source.connection).url)
        try:
            table = sa.Table(resource, sa.MetaData(schema=spec.source.db_schema),
                             autoload_with=engine)
            with engine.connect() as conn:
                rows = conn.execute(sa.select(table).where(table.c[inc.cursor] >= last)
                                    .limit(len(seen) + 1)).mappings().all()
        finally:
            engine.dispose()
        columns = [c.name for c in table.c]
        if len(rows) <= len(seen) and all(r[inc.cursor] == last for r in rows) and all(
                digest_dedup_value([r[c] for c in columns]) in seen for r in rows):
            return stage.Extracted(None, 0)
        return original(ctx)

    stage.extract = extract


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _between(kw: dict) -> str:  # type: ignore[type-arg]
    column, bounds = _quote(kw["column"]), []
    if kw.get("min_value") is not None:
        bounds.append(f"{column} {'>' if kw.get('strict_min') else '>='} {kw['min_value']!r}")
    if kw.get("max_value") is not None:
        bounds.append(f"{column} {'<' if kw.get('strict_max') else '<='} {kw['max_value']!r}")
    return (f"SELECT count(*) FROM batch WHERE {column} IS NOT NULL AND NOT "
            f"({' AND '.join(bounds) or 'TRUE'})")


# Unexpected rows of an expectation, counted by DuckDB over the processed batch (view `batch`);
# GX's own meaning (NULLs are not unexpected except for not_be_null; every row of a duplicated
# value or key is unexpected).
SQL_CHECKS = {
    "expect_column_values_to_not_be_null":
        lambda kw: f"SELECT count(*) FROM batch WHERE {_quote(kw['column'])} IS NULL",
    "expect_column_values_to_be_between": lambda kw: _between(kw),
    "expect_column_values_to_be_unique": lambda kw: (
        f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM batch WHERE "
        f"{_quote(kw['column'])} IS NOT NULL GROUP BY {_quote(kw['column'])} "
        "HAVING count(*) > 1)"),
    "expect_compound_columns_to_be_unique": lambda kw: (
        "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM batch GROUP BY "
        + ", ".join(map(_quote, kw["column_list"])) + " HAVING count(*) > 1)"),
}


def prototype_validate_duckdb() -> None:
    """The expectations DuckDB can count exactly (SQL_CHECKS) run as SQL over the processed
    Parquet file; only the others go to Great Expectations (so GX and pandas are not even
    imported for a suite like order_items')."""
    from framework.stages import validate

    original_validate = validate.validate

    def run(ctx, processed):  # type: ignore[no-untyped-def]
        expectations = ctx.project.expectations(ctx.spec)
        if str(ctx.spec.transform.engine) == "spark" or not expectations:
            return original_validate(ctx, processed)
        import duckdb

        default = str(ctx.spec.quality.severity)
        outcome = validate.Validation(checked=len(expectations))
        rest = [e for e in expectations if e.name not in SQL_CHECKS]
        con = duckdb.connect()
        try:
            con.execute(f"CREATE VIEW batch AS SELECT * FROM read_parquet('{processed}')")
            for e in expectations:
                if e.name in SQL_CHECKS:
                    row = con.execute(SQL_CHECKS[e.name](e.kwargs)).fetchone()
                    if row and row[0]:
                        found = outcome.errors if e.severity_or(default) == "error" \
                            else outcome.warnings
                        found.append(f"{e.name}({validate._args(e.kwargs)}) failed: "
                                     f"{row[0]} unexpected value(s)")
        finally:
            con.close()
        if rest:
            with validate._read(ctx, processed) as frame:
                other = validate.run_expectations(ctx, rest, frame)
            outcome.errors += other.errors
            outcome.warnings += other.warnings
        return outcome

    validate.validate = run


DUCKDB_MEMORY = os.environ.get("BENCH_DUCKDB_MEMORY", "500MB")


def prototype_duckdb_memory() -> None:
    """Every DuckDB connection of the run (transform, warehouse load) capped at DUCKDB_MEMORY
    (`SET memory_limit`), spilling to its temp directory beyond; DuckDB's default is 80% of
    the machine's memory, which it uses for a 10M-row staged batch and MERGE."""
    import duckdb

    connect = duckdb.connect

    def capped(*args, **kwargs):  # type: ignore[no-untyped-def]
        con = connect(*args, **kwargs)
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        return con

    duckdb.connect = capped


PROTOTYPES = {"validate-sample": prototype_validate_sample,
              "duckdb-memory": prototype_duckdb_memory,
              "validate-duckdb": prototype_validate_duckdb,
              "noop-precheck": prototype_noop_precheck}


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
