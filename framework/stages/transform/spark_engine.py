"""The Spark transform engine: the DuckDB engine's contract, on a SparkSession.

The batch's raw Parquet is the temp view `batch`; the compiled SQL (`CompiledPipeline.sql`)
runs over it; `transform.pii` is applied with the expressions compiled for both engines; the
result is written as the batch's parts `processed/<path>/<load_id>.<NNNNN>.parquet` (`framework.lake.part_file`), one per Spark
task that produced rows (as many as the data needs: the input splits, AQE's coalesced shuffle
partitions, `spark.sql.files.maxRecordsPerFile`), with the schema DuckDB writes (the session
settings in `framework.spark` make `CAST(x AS TIMESTAMP)` a naive microsecond timestamp;
INTEGER is int32 and DECIMAL(12, 2) decimal(12, 2) in both engines).

Spark writes in parallel on the executors, into a staging folder beside the output (nothing is
collected to the driver); the driver then moves each part file to its batch name (a rename on a
local lake, one copy on S3) and removes the folder. An empty result is still one part (Spark
writes one file holding the schema), so the warehouse sees the batch's columns. With an S3 lake
and a local master, input and output go through local temporary files (`framework.spark`).

A failure (bad SQL, a column the batch lacks) is one line naming the SQL file and the column;
the raw batch stays in the lake for a replay, and no partial output is left behind.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

from framework.compiled.sql import portable_sql, quote_identifier
from framework.context import RunContext
from framework.errors import StageError

__all__ = ["SparkEngine", "portable_sql"]

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class SparkEngine:
    def run(self, ctx: RunContext, sql: str, raw_files: list[str], output: str) -> int:
        from framework import spark as sparks

        spark = sparks.session(ctx.target)  # FrameworkError: no pyspark, no Java 17+
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        try:
            with sparks.read_parquet(ctx, raw_files, merge_schema=True) as batch:
                batch.createOrReplaceTempView("batch")
                try:
                    frame = _with_pii(ctx, spark.sql(sql))
                    return _write_parts(ctx, frame, output)
                finally:
                    spark.catalog.dropTempView("batch")
        except (PySparkException, Py4JJavaError) as exc:
            raise StageError(ctx.spec.name, "transform", _explain(ctx, exc)) from None


def _with_pii(ctx: RunContext, frame: DataFrame) -> DataFrame:
    """`transform.pii` as compiled for Spark, applied in place on the result's columns (the
    same columns in the same places as DuckDB's `SELECT * EXCLUDE (...) REPLACE (...)`)."""
    rules = ctx.compiled.sql.spark_pii
    if not rules:
        return frame
    present = {c.lower() for c in frame.columns}
    for column, _ in rules:
        if column.lower() not in present:
            raise StageError(ctx.spec.name, "transform", f"pipelines/{ctx.spec.name}.yml: "
                             f"transform.pii: column '{column}' is not in the transform's "
                             f"output (columns: {', '.join(frame.columns)})")
    drop = {c.lower() for c, expr in rules if expr is None}
    replace = {c.lower(): expr for c, expr in rules if expr is not None}
    exprs = [f"{replace[c.lower()]} AS {_quote(c)}" if c.lower() in replace else _quote(c)
             for c in frame.columns if c.lower() not in drop]
    return frame.selectExpr(*exprs)


def _quote(column: str) -> str:
    return quote_identifier(column, "`")


def _write_parts(ctx: RunContext, frame: DataFrame, output: str) -> int:
    """Write the batch as parts of `output`; return its rows (from the parts' footers)."""
    from framework.lake import part_file
    from framework.spark import lake_access, spark_url

    writer = frame.write.mode("overwrite")
    fs = ctx.lake.fs
    if lake_access(ctx.target) == "staged":
        with tempfile.TemporaryDirectory(prefix="framework-spark-out-") as folder:
            staging = os.path.join(folder, "out")
            writer.parquet(staging)
            parts = _parts(ctx, [os.path.join(staging, n) for n in os.listdir(staging)])
            rows = sum(_rows(part, open) for part in parts)
            for index, part in enumerate(parts):
                fs.put(part, part_file(output, index).removeprefix("s3://"))
            return rows
    load_id = posixpath.basename(output).removesuffix(".parquet")
    staging = posixpath.join(posixpath.dirname(output), f"_spark-{load_id}-{uuid.uuid4().hex[:8]}")
    staging_fs = staging.removeprefix("s3://")
    try:
        writer.parquet(spark_url(staging))
        parts = _parts(ctx, fs.ls(staging_fs, detail=False))
        rows = sum(_rows(part, fs.open) for part in parts)
        for index, part in enumerate(parts):
            fs.mv(part, part_file(output, index).removeprefix("s3://"))
        return rows
    finally:
        if fs.exists(staging_fs):
            fs.rm(staging_fs, recursive=True)


def _parts(ctx: RunContext, paths: list[str]) -> list[str]:
    """Spark's part files, in task order (`part-00000-...`), so part numbers follow them."""
    parts = sorted(p for p in paths if posixpath.basename(p).startswith("part-")
                   and p.endswith(".parquet"))
    if not parts:
        raise StageError(ctx.spec.name, "transform", "Spark wrote no part file for the batch")
    return parts


def _rows(path: str, opener: Any) -> int:
    import pyarrow.parquet as pq

    with opener(path, "rb") as handle:
        return int(pq.ParquetFile(handle).metadata.num_rows)


def _explain(ctx: RunContext, exc: Exception) -> str:
    where = f"pipelines/{ctx.spec.transform.sql_file}" if ctx.spec.transform.sql_file \
        else f"pipelines/{ctx.spec.name}.yml: transform.sql"
    condition = _call(exc, "getCondition") or ""
    if condition.startswith("UNRESOLVED_COLUMN"):
        params = _call(exc, "getMessageParameters") or {}
        name = str(params.get("objectName", "")).split(".")[-1].replace("`", "")
        return f"{where}: column '{name}' does not exist in the batch"
    return f"{where}: {_first_line(exc)}"


def _call(exc: Exception, method: str) -> Any:
    try:
        return getattr(exc, method)()
    except Exception:  # noqa: BLE001 - not a Spark error with conditions
        return None


def _first_line(exc: Exception) -> str:
    """The error's message, without Spark's SQLSTATE, plan and stack trace."""
    text = str(exc)
    java = getattr(exc, "java_exception", None)
    if java is not None and text.startswith("An error occurred while calling"):
        cause = java
        while cause.getCause() is not None:  # a failed job: the task's own error is the root
            cause = cause.getCause()
        text = f"{cause.getClass().getSimpleName()}: {cause.getMessage()}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    first = re.sub(r"\s*SQLSTATE: \w+\.?", "", first).strip()
    return re.sub(r"\.?;\s*line (\d+) pos (\d+)$", r". (line \1, pos \2)", first).rstrip(";")
