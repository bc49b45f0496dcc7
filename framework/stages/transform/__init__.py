"""Transform: the spec's SQL over one raw batch, written as processed Parquet (one file or parts).

Engines are interchangeable: both read the batch as the relation `batch`, apply the PII rules
the same way and write the same layout, so validate and load never know which one ran. The
pipeline's declared `columns` wrap the SQL (`framework.spec.columns.projection`): the output
holds exactly the declared types, whichever engine ran it.
"""

from __future__ import annotations

import re
from typing import Protocol

from framework.context import RunContext
from framework.errors import StageError
from framework.spec.model import PiiRule


class TransformEngine(Protocol):
    def run(self, ctx: RunContext, sql: str, raw_files: list[str], output: str) -> int:
        """Write the transformed batch to `output` or to its parts (`framework.lake.part_file`);
        return its row count."""


def engine_for(name: str) -> TransformEngine:
    if name == "spark":
        from framework.stages.transform.spark_engine import SparkEngine

        return SparkEngine()
    from framework.stages.transform.duckdb_engine import DuckDBEngine

    return DuckDBEngine()


def transform(ctx: RunContext, load_id: str, raw_files: list[str]) -> tuple[str, int]:
    """Run the spec's transform over one batch; return the batch's processed name
    (`Lake.batch_file`) and its rows. Its files are `Lake.batch_files(PROCESSED, ...)`."""
    from framework.lake import PROCESSED
    from framework.spec.columns import projection

    output = ctx.lake.batch_file(PROCESSED, ctx.spec.lake.path, load_id)
    # A replay (maybe on the other engine) must not leave an earlier output's parts beside the new.
    ctx.lake.remove_batch(PROCESSED, ctx.spec.lake.path, load_id)
    sql = ctx.project.transform_sql(ctx.spec) or "SELECT * FROM batch"
    engine = str(ctx.spec.transform.engine)
    # Declared columns: cast to their types and their PII applied, after the spec's SQL.
    sql = projection(ctx.spec, sql, engine)
    try:
        rows = engine_for(engine).run(ctx, sql, raw_files, output)
    except StageError as exc:
        raise _declared_hint(ctx, exc) from None
    return output, rows


def _declared_hint(ctx: RunContext, exc: StageError) -> StageError:
    """A missing column that `columns` declares may be missing from the SQL's output."""
    message = str(exc).removeprefix(f"{exc.pipeline}: {exc.stage}: ")
    declared = {c.name for c in ctx.spec.columns}
    excluded = re.search(r'Column "([^"]+)" in EXCLUDE list not found', message)
    if excluded and excluded.group(1) in declared:  # our projection's EXCLUDE: not selected
        where = f"pipelines/{ctx.spec.transform.sql_file}" if ctx.spec.transform.sql_file \
            else f"pipelines/{ctx.spec.name}.yml: transform.sql"
        message = (f"{where}: column '{excluded.group(1)}' is declared in columns but not "
                   "selected by the transform; select it or remove its declaration")
    missing = re.search(r"column '([^']+)' does not exist in the batch$", message)
    if missing and missing.group(1) in declared:
        message += ", or is declared in columns but not selected by the transform"
    return StageError(exc.pipeline, exc.stage, message)


def pii_projection(rules: list[PiiRule], hash_template: str, quote: str = '"'
                   ) -> tuple[list[str], dict[str, str]]:
    """Columns to drop and SQL expressions replacing hashed or masked columns.

    The SQL is common to DuckDB and Spark SQL so both engines give identical values.
    """
    dropped: list[str] = []
    replaced: dict[str, str] = {}
    for rule in rules:
        col = quote_identifier(rule.column, quote)
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


def quote_identifier(name: str, quote: str = '"') -> str:
    """A column name from a pipeline file as a quoted SQL identifier: DuckDB quotes with `"`,
    Spark with a backtick, and both escape the quote character by doubling it."""
    return quote + name.replace(quote, quote * 2) + quote
