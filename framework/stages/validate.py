"""Validate: the spec's Great Expectations suite on one processed batch.

Failures of `error` severity stop the batch before the warehouse (it moves to `quarantine/`);
`warn` failures are recorded and the batch goes on.

Time and memory stay flat as batches grow:
- the commonest expectations with an exact SQL meaning (not null, between, in set, unique,
  compound unique; on text columns value lengths and regexes that RE2 reads as Python's `re`
  does; without `mostly` or other options) are counted by DuckDB straight from the Parquet
  file, without importing GX: uniqueness needs every row at once, the others are one scan;
- other row-wise expectations (GX's column-map kind: regex, lengths, types, ...) run through
  Great Expectations in chunks of `CHUNK_ROWS`, reading only the columns they name;
- anything else (aggregates, row counts) runs through GX on the whole batch, its columns only.
Spark batches are checked on Spark the same way (`framework.spark_validate`), never collected.
A batch may be several files (Spark's parts): each step reads them all.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from framework.context import RunContext
from framework.errors import StageError
from framework.spec.model import Expectation, lake_name
from framework.stages.load import as_files, quote
from framework.stages.load.duckdb import memory_limit, sql_text
from framework.stages.regex_re2 import re2_pattern

CHUNK_ROWS = 1_000_000
# GX keeps the current data context in a process-wide project manager, which `get_context`
# replaces: two threads validating at once (`run --threads N`) would swap contexts under each
# other. The DuckDB-counted expectations run outside this turn.
_GX_TURN = threading.Lock()


UNIQUE = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


@dataclass
class Validation:
    checked: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Each primary key once and no key column NULL, as this batch's own uniqueness and
    # not-null counts found: the load need not count the keys again (`Warehouse.load`).
    unique_keys: bool = False

    @property
    def passed(self) -> bool:
        return not self.errors


@dataclass
class _Failure:
    """One expectation's failure, summed over the chunks it ran on."""

    description: str
    unexpected: int = 0
    sample: list[Any] = field(default_factory=list)
    observed: Any = None

    def render(self) -> str:
        if self.unexpected:
            return (f"{self.description} failed: {self.unexpected} unexpected value(s), "
                    f"e.g. {self.sample[:3]}")
        return f"{self.description} failed: observed {self.observed}"


def validate(ctx: RunContext, processed: str | list[str]) -> Validation:
    expectations = list(ctx.compiled.expectations)  # implied by columns, suite, inline
    if not expectations:
        return Validation()
    processed = as_files(processed)
    if str(ctx.spec.transform.engine) == "spark":
        from framework.spark_validate import validate_on_spark

        return validate_on_spark(ctx, expectations, processed)
    failures: dict[int, _Failure] = {}
    in_sql = _check_in_sql(ctx, processed, expectations, failures)
    row_wise = [i for i, e in enumerate(expectations) if i not in in_sql and _chunkable(e)]
    whole = [i for i in range(len(expectations)) if i not in in_sql and i not in row_wise]
    for group, chunked in ((row_wise, True), (whole, False)):
        if group:
            chosen = [expectations[i] for i in group]
            for frame in _frames(ctx, processed, _columns(chosen), chunked):
                _collect(ctx, chosen, group, frame, failures)
    outcome = _outcome(ctx, expectations, failures)
    outcome.unique_keys = _keys_proven_unique(ctx, expectations,
                                              [i for i in in_sql if i not in failures])
    return outcome


def _keys_proven_unique(ctx: RunContext, expectations: list[Expectation],
                        passed: list[int]) -> bool:
    """Whether exact checks that passed (counted in SQL, no `mostly`) cover the primary key:
    its uniqueness, and not-null on each of its columns."""
    key = {lake_name(k) for k in ctx.spec.source.primary_key}
    checks = [expectations[i] for i in passed]
    unique = any(e.name in UNIQUE and set(unique_columns(e)) == key for e in checks)
    not_null = {e.kwargs["column"] for e in checks
                if e.name == "expect_column_values_to_not_be_null"}
    return bool(key) and unique and key <= not_null


def unique_columns(expectation: Expectation) -> list[str]:
    """The columns a uniqueness expectation groups by (`column` or `column_list`, whichever
    its name, as Great Expectations reads them)."""
    kwargs = expectation.kwargs
    return [kwargs["column"]] if "column" in kwargs else list(kwargs["column_list"])


def run_expectations(ctx: RunContext, expectations: list[Expectation], frame: Any) -> Validation:
    """Every expectation on one dataframe (pandas or Spark)."""
    failures: dict[int, _Failure] = {}
    _collect(ctx, expectations, list(range(len(expectations))), frame, failures)
    return _outcome(ctx, expectations, failures)


def _outcome(ctx: RunContext, expectations: list[Expectation],
             failures: dict[int, _Failure]) -> Validation:
    default = str(ctx.spec.quality.severity)
    outcome = Validation(checked=len(expectations))
    for index in sorted(failures):
        severity = expectations[index].severity_or(default)
        (outcome.errors if severity == "error" else outcome.warnings).append(
            failures[index].render())
    return outcome


def _collect(ctx: RunContext, expectations: list[Expectation], indexes: list[int], frame: Any,
             failures: dict[int, _Failure]) -> None:
    """Validate `frame` and add each failed expectation's result to `failures`."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    with _GX_TURN:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = (context.data_sources.add_spark if _is_spark(frame) else
                  context.data_sources.add_pandas)(f"{ctx.spec.name}_source")
        asset = source.add_dataframe_asset(name=ctx.spec.name)
        batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(
            batch_parameters={"dataframe": frame})
        # One expectation per suite run keeps each result tied to its spec entry by position.
        suite = gx.ExpectationSuite(name=ctx.spec.name)
        for index, expectation in zip(indexes, expectations):
            suite.add_expectation(_build(ctx, gx, index, expectation))
        results = batch.validate(suite).results
    for index, expectation, result in zip(indexes, expectations, _in_order(suite, results)):
        if result.success:
            continue
        details = result.result or {}
        failure = failures.setdefault(
            index, _Failure(f"{expectation.name}({_args(expectation.kwargs)})"))
        failure.unexpected += int(details.get("unexpected_count") or 0)
        failure.sample.extend(details.get("partial_unexpected_list") or [])
        failure.observed = details.get("observed_value", failure.observed)


def _in_order(suite: Any, results: list[Any]) -> list[Any]:
    """GX reports results in its own order: match each back to its expectation by type and
    by the arguments the spec gave (GX adds defaults of its own)."""
    remaining = list(results)
    ordered = []
    for expectation in suite.expectations:
        wanted = expectation.configuration
        match = next((r for r in remaining if r.expectation_config is not None
                      and r.expectation_config.type == wanted.type
                      and all(_same(r.expectation_config.kwargs.get(k), v)
                              for k, v in wanted.kwargs.items())), None)
        if match is None:
            raise RuntimeError(f"no Great Expectations result for {wanted.type}")
        remaining.remove(match)
        ordered.append(match)
    return ordered


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return bool(a == b)


def _sql_condition(expectation: Expectation) -> str | None:
    """SQL true for an unexpected row, when the expectation has an exact SQL meaning here."""
    kwargs = expectation.kwargs
    name = expectation.name
    if name in UNIQUE:
        return "duplicate" if set(kwargs) <= {"column", "column_list"} else None
    if "column" not in kwargs:
        return None
    col = quote(kwargs["column"])
    if name == "expect_column_values_to_not_be_null" and set(kwargs) == {"column"}:
        return f"{col} IS NULL"
    if name == "expect_column_values_to_be_in_set" and set(kwargs) == {"column", "value_set"}:
        values = ", ".join(_literal(v) for v in kwargs["value_set"]) or "NULL"
        return f"{col} IS NOT NULL AND {col} NOT IN ({values})"
    allowed = {"column", "min_value", "max_value", "strict_min", "strict_max"}
    if name == "expect_column_values_to_be_between" and set(kwargs) <= allowed:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if not all(v is None or isinstance(v, (int, float)) for v in (low, high)):
            return None  # dates and strings: GX's parsing rules apply
        parts = []  # bounds as literals: a YAML `.inf` is the number, not a column `inf`
        if low is not None:
            parts.append(f"{col} {'<=' if kwargs.get('strict_min') else '<'} {_literal(low)}")
        if high is not None:
            parts.append(f"{col} {'>=' if kwargs.get('strict_max') else '>'} {_literal(high)}")
        return f"{col} IS NOT NULL AND ({' OR '.join(parts)})" if parts else None
    return None


def _check_in_sql(ctx: RunContext, processed: list[str], expectations: list[Expectation],
                  failures: dict[int, _Failure]) -> list[int]:
    """Count unexpected rows in DuckDB over the Parquet file (no pandas, no GX import); the
    indexes of the expectations it answered."""
    if not any(_sql_condition(e) is not None or e.name in _TEXT_CHECKS for e in expectations):
        return []
    import duckdb

    from framework.stages.load.duckdb import connect

    con = connect()
    try:
        con.execute(f"SET memory_limit = {sql_text(memory_limit())}")
        if ctx.lake.target.is_s3:
            con.register_filesystem(ctx.lake.fs)
        con.execute("CREATE VIEW batch AS SELECT * FROM read_parquet("
                    f"[{', '.join(map(sql_text, processed))}])")
        types = batch_types(con)
        require_keys(ctx, types)
        conditions = _duckdb_conditions(con, expectations, types)
        checks = [(expectations[i], c) for i, c in conditions.items()]
        try:
            found = _sql_counts(con, checks)
        except duckdb.Error as error:
            for check in checks:  # name the expectation that cannot run (a missing column)
                try:
                    _sql_counts(con, [check])
                except duckdb.Error as exc:
                    raise StageError(ctx.spec.name, "validate", f"{check[0].name}"
                                     f"({_args(check[0].kwargs)}): "
                                     f"{str(exc).splitlines()[0]}") from None
            raise StageError(ctx.spec.name, "validate", str(error).splitlines()[0]) from None
        for index, (unexpected, sample) in zip(conditions, found):
            if unexpected:
                expectation = expectations[index]
                failures[index] = _Failure(f"{expectation.name}({_args(expectation.kwargs)})",
                                           unexpected, sample)
        return list(conditions)
    finally:
        con.close()


def batch_types(con: Any) -> dict[str, str]:
    """The `batch` view's columns and their DuckDB types."""
    return dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE batch)").fetchall())


def require_keys(ctx: RunContext, columns: Any) -> None:
    """The primary key's columns must come out of the transform: the warehouse table is keyed
    on them (merge, reconcile, the NULL-key check). A transform that dropped or renamed one is
    named, rather than DuckDB's or Spark's "column not found" on the first check using it."""
    present = {str(c).lower() for c in columns}
    missing = [k for k in ctx.spec.source.primary_key if lake_name(k).lower() not in present]
    if missing:
        transform = ctx.spec.transform
        keys = ", ".join(ctx.spec.source.primary_key)
        fix = (f"keep it in the SELECT of transform.sql_file ({transform.sql_file}) under that "
               "name" if transform.sql_file else "keep it in transform.sql's SELECT under that "
               "name" if transform.sql else "the source has no such column")
        raise StageError(ctx.spec.name, "validate", (
            f"the batch has no column {', '.join(map(repr, missing))} of source.primary_key "
            f"[{keys}], on which the warehouse table is keyed: {fix}"))


def _duckdb_conditions(con: Any, expectations: list[Expectation],
                       types: dict[str, str]) -> dict[int, str]:
    """Per expectation DuckDB can count: its condition for an unexpected row."""
    found = {}
    for index, expectation in enumerate(expectations):
        condition = _sql_condition(expectation)
        if condition is None and expectation.name in _TEXT_CHECKS:
            condition = _text_condition(con, expectation, types)
        if condition is not None:
            found[index] = condition
    return found


_TEXT_CHECKS = ("expect_column_value_lengths_to_equal", "expect_column_value_lengths_to_be_between",
                "expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
                "expect_column_values_to_match_regex_list",
                "expect_column_values_to_not_match_regex_list")


def _text_condition(con: Any, expectation: Expectation, types: dict[str, str]) -> str | None:
    """SQL true for a row a length or regex expectation rejects, on a text column only: GX
    measures and matches `str(value)` of pandas' value, which for other types is pandas'
    rendering (an int column with NULLs reads `5.0`). Lengths are characters in both (DuckDB's
    `length`, Python's `len`); a regex only when `re2_pattern` rewrites it exactly."""
    kwargs = expectation.kwargs
    name = expectation.name
    column = kwargs.get("column")
    kind = types.get(column)  # type: ignore[arg-type]
    if kind is None and any(str(column).lower() == k.lower() for k in types):
        return None  # DuckDB would find it whatever its case, pandas would not: GX says so
    if kind not in (None, "VARCHAR"):  # None: a missing column, DuckDB's error names it
        return None
    col = quote(str(column))
    if name == "expect_column_value_lengths_to_equal" and set(kwargs) == {"column", "value"}:
        value = kwargs["value"]
        if not _number(value, float):
            return None
        return f"{col} IS NOT NULL AND length({col}) <> {_literal(value)}"
    allowed = {"column", "min_value", "max_value", "strict_min", "strict_max"}
    if name == "expect_column_value_lengths_to_be_between" and set(kwargs) <= allowed:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        bounds = (low, high) != (None, None) and all(v is None or _number(v, int)
                                                     for v in (low, high))
        flags = all(isinstance(kwargs.get(k, False), bool) for k in ("strict_min", "strict_max"))
        if not (bounds and flags):
            return None  # GX's own checks and messages apply
        parts = []
        if low is not None:
            parts.append(f"length({col}) {'<=' if kwargs.get('strict_min') else '<'} {low}")
        if high is not None:
            parts.append(f"length({col}) {'>=' if kwargs.get('strict_max') else '>'} {high}")
        return f"{col} IS NOT NULL AND ({' OR '.join(parts)})"
    patterns = _patterns(expectation)
    matches = [_regex_match(con, col, p) for p in patterns or []]
    if not matches or None in matches:
        return None
    if "_not_match_" in name:  # unexpected: a value one of them finds
        return f"{col} IS NOT NULL AND ({' OR '.join(map(str, matches))})"
    joined = " AND " if kwargs.get("match_on") == "all" else " OR "
    return f"{col} IS NOT NULL AND NOT ({joined.join(map(str, matches))})"


def _patterns(expectation: Expectation) -> list[Any] | None:
    """The regexes of a regex expectation given just its column and patterns, else None."""
    kwargs = expectation.kwargs
    if expectation.name in ("expect_column_values_to_match_regex",
                            "expect_column_values_to_not_match_regex"):
        return [kwargs["regex"]] if set(kwargs) == {"column", "regex"} else None
    allowed = {"column", "regex_list"}
    if expectation.name == "expect_column_values_to_match_regex_list":
        if kwargs.get("match_on", "any") not in ("any", "all"):
            return None
        allowed.add("match_on")
    elif expectation.name != "expect_column_values_to_not_match_regex_list":
        return None
    listed = kwargs.get("regex_list")
    return listed if set(kwargs) <= allowed and isinstance(listed, list) else None


def _regex_match(con: Any, col: str, pattern: Any) -> str | None:
    """`regexp_matches` (RE2, anywhere in the value like `re.search`) when the pattern means
    the same there; None when it may not, or when DuckDB's RE2 refuses the rewriting."""
    import duckdb

    if not isinstance(pattern, str) or (rewritten := re2_pattern(pattern)) is None:
        return None
    try:
        con.execute("SELECT regexp_matches('', ?)", [rewritten]).fetchall()
    except duckdb.Error:  # beyond RE2's limits (nested counts): GX can still run it
        return None
    return f"regexp_matches({col}, {_literal(rewritten)})"


def _number(value: Any, kind: type) -> bool:
    """A plain finite number of `kind` (an int counts as a float; a bool as neither)."""
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return False
    return math.isfinite(value)


def _sql_counts(con: Any, checks: list[tuple[Expectation, str]]) -> list[tuple[int, list[Any]]]:
    """(unexpected rows, a sample of them) per expectation: the row-wise conditions counted
    together in one scan of the file, each uniqueness in a grouping of its own."""
    conditions = {i: c for i, (_, c) in enumerate(checks) if c != "duplicate"}
    counts = dict(zip(conditions, con.sql("SELECT " + ", ".join(
        f"count(*) FILTER (WHERE {c})" for c in conditions.values()) + " FROM batch"
        ).fetchall()[0])) if conditions else {}
    found = []
    for i, (expectation, _) in enumerate(checks):
        if i not in conditions:
            found.append(_duplicates(con, expectation))
        elif counts[i]:
            column = quote(expectation.kwargs["column"])
            found.append((int(counts[i]), [r[0] for r in con.sql(
                f"SELECT {column} FROM batch WHERE {conditions[i]} LIMIT 3").fetchall()]))
        else:
            found.append((0, []))
    return found


def _duplicates(con: Any, expectation: Expectation) -> tuple[int, list[Any]]:
    columns = unique_columns(expectation)
    cols = ", ".join(map(quote, columns))
    present = " OR ".join(f"{quote(c)} IS NOT NULL" for c in columns)
    rows = con.sql(f"SELECT {cols}, count(*) AS n FROM batch WHERE {present} "
                   f"GROUP BY ALL HAVING count(*) > 1 ORDER BY n DESC").fetchall()
    sample = [r[0] if len(columns) == 1 else tuple(r[:-1]) for r in rows[:3]]
    return sum(int(r[-1]) for r in rows), sample


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and not math.isfinite(value):  # `inf` alone names a column
        return f"CAST('{value!r}' AS DOUBLE)"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _chunkable(expectation: Expectation) -> bool:
    """Row-wise and judged row by row: uniqueness spans chunks, `mostly` is a batch ratio."""
    if expectation.name in UNIQUE or "mostly" in expectation.kwargs:
        return False
    return _row_wise(expectation.name)


def _row_wise(name: str) -> bool:
    """GX's map expectations judge each row alone, so they can run chunk by chunk."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    factory = getattr(gx.expectations, _class_name(name), None)
    return isinstance(factory, type) and issubclass(
        factory, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation))


def _columns(expectations: list[Expectation]) -> list[str] | None:
    """Columns the expectations read; None when one of them may read any (table-level)."""
    found: list[str] = []
    for expectation in expectations:
        kwargs = expectation.kwargs
        named = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        named += list(kwargs.get("column_list", []))
        if not named:
            return None
        found += [n for n in named if n not in found]
    return found


def _frames(ctx: RunContext, processed: list[str], columns: list[str] | None,
            chunked: bool) -> Iterator[Any]:
    """The batch as pandas: in chunks of CHUNK_ROWS, or whole; only the named columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = []
    for file in processed:
        with ctx.lake.fs.open(file.removeprefix("s3://"), "rb") as handle:
            parquet = pq.ParquetFile(handle)
            if not chunked:
                whole.append(parquet.read(columns=columns))
                continue
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
                yield batch.to_pandas()
    if whole:
        yield pa.concat_tables(whole).to_pandas()


def _build(ctx: RunContext, gx: Any, index: int, expectation: Expectation) -> Any:
    factory = getattr(gx.expectations, _class_name(expectation.name), None)
    if factory is None:
        raise StageError(ctx.spec.name, "validate", f"quality.expectations[{index}]: "
                         f"'{expectation.name}' is not a Great Expectations expectation")
    try:
        return factory(**expectation.kwargs)
    except Exception as exc:  # noqa: BLE001 # pydantic validation of the expectation's arguments
        first = str(exc).strip().splitlines()
        raise StageError(ctx.spec.name, "validate", f"{expectation.name}: invalid arguments "
                         f"{expectation.kwargs}: {' '.join(first[:3])}") from None


def _class_name(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _is_spark(frame: Any) -> bool:
    return type(frame).__module__.startswith("pyspark")


def _args(kwargs: dict[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in ("batch_id", "result_format")}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())
