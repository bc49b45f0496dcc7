"""Transform: the spec's SQL over one raw batch, written as one processed Parquet file.

Engines are interchangeable: both read the batch as the relation `batch`, apply the PII rules
the same way and write the same layout, so validate and load never know which one ran.
"""

from __future__ import annotations

from typing import Protocol

from framework.context import RunContext
from framework.spec.model import PiiRule


class TransformEngine(Protocol):
    def run(self, ctx: RunContext, sql: str, raw_files: list[str], output: str) -> int:
        """Write the transformed batch to `output`; return its row count."""


def engine_for(name: str) -> TransformEngine:
    if name == "spark":
        from framework.stages.transform.spark_engine import SparkEngine

        return SparkEngine()
    from framework.stages.transform.duckdb_engine import DuckDBEngine

    return DuckDBEngine()


def transform(ctx: RunContext, load_id: str, raw_files: list[str]) -> tuple[str, int]:
    """Run the spec's transform over one batch; return the processed file and its rows."""
    from framework.lake import PROCESSED

    output = ctx.lake.batch_file(PROCESSED, ctx.spec.lake.path, load_id)
    sql = ctx.project.transform_sql(ctx.spec) or "SELECT * FROM batch"
    rows = engine_for(str(ctx.spec.transform.engine)).run(ctx, sql, raw_files, output)
    return output, rows


def pii_projection(rules: list[PiiRule], hash_template: str, quote: str = '"'
                   ) -> tuple[list[str], dict[str, str]]:
    """Columns to drop and SQL expressions replacing hashed or masked columns.

    The SQL is common to DuckDB and Spark SQL so both engines give identical values.
    """
    dropped: list[str] = []
    replaced: dict[str, str] = {}
    for rule in rules:
        col = f"{quote}{rule.column}{quote}"
        if rule.action == "drop":
            dropped.append(rule.column)
        elif rule.action == "hash":
            replaced[rule.column] = hash_template.format(f"CAST({col} AS STRING)")
        else:
            replaced[rule.column] = (
                f"CASE WHEN {col} IS NULL THEN NULL ELSE concat(substring(CAST({col} AS STRING), 1, 2), "
                f"repeat('*', greatest(length(CAST({col} AS STRING)) - 2, 0))) END"
            )
    return dropped, replaced
