"""The DuckDB transform engine: one in-memory connection per batch, Parquet in and out."""

from __future__ import annotations

import re

from framework.context import RunContext
from framework.errors import StageError
from framework.stages.load.duckdb import memory_limit, scratch_connection, sql_text

SMALL_ROW_GROUP = 16_384  # rows per row group when the default's do not fit in memory


class DuckDBEngine:
    def run(self, ctx: RunContext, sql: str, raw_files: list[str], output: str) -> int:
        import duckdb

        con = scratch_connection(ctx.state_dir)
        try:
            con.execute("SET preserve_insertion_order = false")
            if ctx.lake.target.is_s3:
                con.register_filesystem(ctx.lake.fs)
            else:
                ctx.lake.fs.makedirs(output.rsplit("/", 1)[0], exist_ok=True)
            con.execute(f"CREATE VIEW batch AS SELECT * FROM read_parquet([{', '.join(map(sql_text, raw_files))}], "
                        "union_by_name = true)")
            # zstd at level 1, Arrow's default and the raw zone's: DuckDB's default level 3
            # takes 0.2-0.5 s more per 1M rows, for files 7% larger to 14% smaller
            # (benchmarks/profile.md).
            copy = (f"COPY ({sql}) TO {sql_text(output)} (FORMAT parquet, COMPRESSION zstd, "
                    "COMPRESSION_LEVEL 1")
            try:
                row = con.execute(copy + ")").fetchone()
            except duckdb.OutOfMemoryException:
                # Wide rows (KBs of text, hundreds of columns): each thread holds a row group
                # of 122,880 of them, past the cap (400k rows of 1 KB at 384 MB), and the batch
                # failed every run until the cap was raised. One thread writing smaller row
                # groups fits.
                con.execute("SET threads = 1")
                row = con.execute(f"{copy}, ROW_GROUP_SIZE {SMALL_ROW_GROUP})").fetchone()
            return int(row[0]) if row else 0
        except duckdb.OutOfMemoryException as exc:
            raise StageError(ctx.spec.name, "transform", f"{_explain(ctx, exc)}; the batch's "
                             f"rows need more than FRAMEWORK_DUCKDB_MEMORY={memory_limit()} "
                             "even on one thread: raise it (2GB, say)") from None
        except duckdb.Error as exc:
            raise StageError(ctx.spec.name, "transform", _explain(ctx, exc)) from None
        finally:
            con.close()


def _explain(ctx: RunContext, exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0]
    where = f"pipelines/{ctx.spec.transform.sql_file}" if ctx.spec.transform.sql_file \
        else f"pipelines/{ctx.spec.name}.yml: transform.sql"
    column = re.search(r'column "?([^"\s]+)"? not found', text, re.IGNORECASE) or \
        re.search(r'Referenced column "([^"]+)"', text)
    if column:
        return f"{where}: column '{column.group(1)}' does not exist in the batch"
    return f"{where}: {text}"
