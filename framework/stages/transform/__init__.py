"""Transform: the spec's SQL over one raw batch, written as processed Parquet (one file or parts).

Engines are interchangeable: both read the batch as the relation `batch`, apply the PII rules
the same way and write the same layout, so validate and load never know which one ran. The
pipeline's declared `columns` wrap the SQL (`framework.spec.columns.projection`): the output
holds exactly the declared types, whichever engine ran it.
"""

from __future__ import annotations

import re
from typing import Protocol

from framework.compiled.sql import pii_projection, quote_identifier
from framework.context import RunContext
from framework.errors import StageError

__all__ = ["TransformEngine", "engine_for", "pii_projection", "quote_identifier", "transform"]


class TransformEngine(Protocol):
    def run(self, ctx: RunContext, sql: str, raw_files: list[str], output: str) -> int:
        """Run the compiled `sql` (`CompiledPipeline.sql`) and write the transformed batch to `output` or to its parts (`framework.lake.part_file`);
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

    output = ctx.lake.batch_file(PROCESSED, ctx.spec.lake.path, load_id)
    # A replay (maybe on the other engine) must not leave an earlier output's parts beside the new.
    ctx.lake.remove_batch(PROCESSED, ctx.spec.lake.path, load_id)
    engine = str(ctx.spec.transform.engine)
    # Compiled: the spec's SQL, its declared columns (cast, PII), then `transform.pii`.
    sql = ctx.compiled.sql.for_engine(engine)
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
    replaced = re.search(r'Column "([^"]+)" in (?:REPLACE|EXCLUDE) list not found', message)
    rules = [r.column for r in ctx.spec.transform.pii]
    if replaced and replaced.group(1) in rules:  # transform.pii's projection
        from framework.spec.columns import dlt_column_name

        column = replaced.group(1)
        lake = dlt_column_name(column)
        message = (f"pipelines/{ctx.spec.name}.yml: transform.pii[{rules.index(column)}].column: "
                   f"'{column}' is not a column of the transform's output"
                   + (f" (the lake stores the source's '{column}' as '{lake}': name that)"
                      if lake != column else ""))
    missing = re.search(r"column '([^']+)' does not exist in the batch$", message)
    if missing and missing.group(1) in declared:
        message += ", or is declared in columns but not selected by the transform"
    return StageError(exc.pipeline, exc.stage, message)
