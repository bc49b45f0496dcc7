"""Validate on Spark: the DuckDB path's plan, run as Spark jobs over the processed batch.

Great Expectations on a Spark DataFrame runs several Spark jobs per expectation (17.5 s for a
4,773-row batch against 0.05 s on DuckDB). The expectations with an exact meaning here (not
null, between numbers, in set, unique, compound unique; no `mostly` or other options: the ones
`framework.stages.validate` counts in DuckDB) are instead:

- all of them answered by ONE aggregation over the batch: the rows each row-wise check
  rejects, and per uniqueness its rows and distinct keys (equal when it holds);
- only for checks that failed: one query sampling at most 3 unexpected values of each, and per
  failed uniqueness a grouping (duplicate rows counted, 3 duplicated keys sampled).

Only the rest goes to GX, on the Spark DataFrame with just the columns it names. GX is not even
imported when nothing is left for it. Each result is tied to its spec entry by index, as on
DuckDB, and rendered the same way. The conditions are Spark Column expressions built from the
expectation's arguments (no SQL text, so no identifier quoting to get wrong).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from framework.context import RunContext
from framework.errors import StageError
from framework.spec.model import Expectation
from framework.stages.validate import (
    UNIQUE,
    Validation,
    _args,
    _collect,
    _columns,
    _Failure,
    _outcome,
    _sql_condition,
    require_keys,
    unique_columns,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

SAMPLE = 3


def validate_on_spark(ctx: RunContext, expectations: list[Expectation],
                      files: list[str]) -> Validation:
    from framework.spark import read_parquet

    failures: dict[int, _Failure] = {}
    counted = [i for i, e in enumerate(expectations) if _sql_condition(e) is not None]
    rest = [i for i in range(len(expectations)) if i not in counted]
    with read_parquet(ctx, files) as frame:
        require_keys(ctx, frame.columns)
        _check_counted(ctx, frame, expectations, counted, failures)
        if rest:
            chosen = [expectations[i] for i in rest]
            columns = _columns(chosen)
            _collect(ctx, chosen, rest, frame if columns is None else
                     frame.select(*map(column_ref, columns)), failures)
    return _outcome(ctx, expectations, failures)


def _check_counted(ctx: RunContext, frame: DataFrame, expectations: list[Expectation],
                   indexes: list[int], failures: dict[int, _Failure]) -> None:
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    row_wise: dict[int, Column] = {}
    unique: dict[int, list[Column]] = {}
    for index in indexes:
        expectation = expectations[index]
        try:
            if expectation.name in UNIQUE:
                columns = [column_ref(c) for c in unique_columns(expectation)]
                frame.select(*columns)  # analysis only: a missing column fails here, named
                unique[index] = columns
            else:
                condition = unexpected_condition(expectation)
                frame.select(condition)
                row_wise[index] = condition
        except PySparkException as exc:
            raise StageError(ctx.spec.name, "validate", f"{_described(expectation)}: "
                             f"{_first_line(exc)}") from None
    # ONE aggregation answers every check when the batch is good: count(when(c, true)) counts
    # the rows where c holds; a key is unique iff its rows (NULL keys aside) are as many as
    # its distinct values. Only a failed check costs more: its sample, its duplicate count.
    aggregates = [F.count(F.when(c, True)).alias(f"c{i}") for i, c in row_wise.items()]
    for i, columns in unique.items():
        present = _any_present(columns)
        aggregates += [F.count(F.when(present, True)).alias(f"rows{i}"),
                       F.count_distinct(F.when(present, F.struct(*columns))).alias(f"keys{i}")]
    if not aggregates:
        return
    counts = frame.agg(*aggregates).collect()[0]
    failed = {i: int(counts[f"c{i}"]) for i in row_wise if counts[f"c{i}"]}
    samples = _samples(frame, {i: (row_wise[i], expectations[i]) for i in failed})
    for index, unexpected in failed.items():
        failures[index] = _Failure(_described(expectations[index]), unexpected, samples[index])
    for index, columns in unique.items():
        if counts[f"rows{index}"] != counts[f"keys{index}"]:
            unexpected, sample = _duplicates(frame, columns)
            failures[index] = _Failure(_described(expectations[index]), unexpected, sample)


def _samples(frame: DataFrame, failed: dict[int, tuple[Column, Expectation]]
             ) -> dict[int, list[Any]]:
    """Up to SAMPLE unexpected values of each failed row-wise check, in one query: a union of
    one small select per check, each value in a column of its own (so it keeps its type)."""
    from functools import reduce

    from pyspark.sql import functions as F

    if not failed:
        return {}
    selects = [frame.where(condition).select(
        F.lit(index).alias("_check"), column_ref(expectation.kwargs["column"]).alias(f"v{index}"))
        .limit(SAMPLE) for index, (condition, expectation) in failed.items()]
    rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), selects).collect()
    return {i: [r[f"v{i}"] for r in rows if r["_check"] == i] for i in failed}


def unexpected_condition(expectation: Expectation) -> Column:
    """True for a row the expectation rejects, as `_sql_condition` means it on DuckDB."""
    from pyspark.sql import functions as F

    kwargs = expectation.kwargs
    col = column_ref(kwargs["column"])
    if expectation.name == "expect_column_values_to_not_be_null":
        return col.isNull()
    if expectation.name == "expect_column_values_to_be_in_set":
        return col.isNotNull() & ~col.isin(list(kwargs["value_set"]))
    # expect_column_values_to_be_between, numeric bounds (the only kind _sql_condition accepts)
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    outside = F.lit(False)
    if low is not None:
        outside = outside | ((col <= low) if kwargs.get("strict_min") else (col < low))
    if high is not None:
        outside = outside | ((col >= high) if kwargs.get("strict_max") else (col > high))
    return col.isNotNull() & outside


def _duplicates(frame: DataFrame, columns: list[Column]) -> tuple[int, list[Any]]:
    """Rows whose key another row shares (NULL keys ignored, as on DuckDB) and 3 such keys."""
    from pyspark.sql import functions as F

    groups = frame.where(_any_present(columns)).groupBy(*columns).count() \
        .where(F.col("count") > 1)
    total = groups.agg(F.sum("count")).collect()[0][0]
    top = groups.orderBy(F.col("count").desc()).limit(SAMPLE).collect()
    sample = [r[0] if len(columns) == 1 else tuple(r[:-1]) for r in top]
    return int(total or 0), sample


def _any_present(columns: list[Column]) -> Column:
    from functools import reduce

    return reduce(lambda a, b: a | b, (c.isNotNull() for c in columns))


def column_ref(name: str) -> Column:
    """A column by its exact name (dots and spaces are part of the name, not struct access)."""
    from pyspark.sql import functions as F

    return F.col("`" + str(name).replace("`", "``") + "`")


def _described(expectation: Expectation) -> str:
    return f"{expectation.name}({_args(expectation.kwargs)})"


def _first_line(exc: Exception) -> str:
    import re

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return re.sub(r"\s*SQLSTATE: \w+\.?", "", first).strip()
