"""The transform's final SQL per engine: the spec's SQL, then its declared columns (cast, PII),
then `transform.pii`. Built once at compile time; the engines only run it.

The hash and mask expressions are common to DuckDB and Spark SQL so both engines give
identical values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from framework.spec.model import PiiRule, PipelineSpec

DEFAULT_SQL = "SELECT * FROM batch"
DUCKDB_HASH = "sha256({})"
SPARK_HASH = "sha2({}, 256)"

# DuckDB's unbounded VARCHAR is Spark's STRING (Spark's VARCHAR needs a length); rewritten
# outside literals, quoted identifiers and comments so one SQL file runs on both engines.
_NOT_CODE = re.compile(r"('(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|--[^\n]*"
                       r"|/\*.*?\*/)", re.DOTALL)
_VARCHAR = re.compile(r"\bVARCHAR\b(?!\s*\()", re.IGNORECASE)


@dataclass(frozen=True)
class TransformSql:
    """What each engine runs over the batch (the relation `batch`)."""

    duckdb: str  # final: `transform.pii` included (`SELECT * EXCLUDE ... REPLACE ...`)
    spark: str   # the same SQL in Spark's spelling, before `transform.pii`
    # `transform.pii` for Spark, applied on the result's columns in place (Spark SQL has no
    # `REPLACE`, and the columns keep DuckDB's order): column -> expression, None to drop.
    spark_pii: tuple[tuple[str, str | None], ...] = ()

    def for_engine(self, engine: str) -> str:
        return self.spark if engine == "spark" else self.duckdb


def transform_sql(spec: PipelineSpec, written: str | None) -> TransformSql:
    """`written` is the spec's SQL (its file's text, or inline); None means every column."""
    from framework.spec.columns import projection

    base = written or DEFAULT_SQL
    rules = list(spec.transform.pii)
    dropped, replaced = pii_projection(rules, SPARK_HASH, "`")
    spark_pii = tuple((r.column, None if r.column in dropped else replaced[r.column])
                      for r in rules)
    return TransformSql(duckdb=_duckdb_pii(rules, projection(spec, base, "duckdb")),
                        spark=portable_sql(projection(spec, base, "spark")),
                        spark_pii=spark_pii)


def _duckdb_pii(rules: list[PiiRule], sql: str) -> str:
    dropped, replaced = pii_projection(rules, DUCKDB_HASH)
    if not dropped and not replaced:
        return sql
    exclude = f" EXCLUDE ({', '.join(map(quote_identifier, dropped))})" if dropped else ""
    replace = (" REPLACE (" + ", ".join(f"{v} AS {quote_identifier(k)}"
                                        for k, v in replaced.items()) + ")"
               if replaced else "")
    return f"SELECT *{exclude}{replace} FROM ({sql}) AS transformed"


def portable_sql(sql: str) -> str:
    """The SQL with DuckDB's length-less `VARCHAR` as `STRING`, the one spelling Spark lacks."""
    parts = _NOT_CODE.split(sql)
    return "".join(part if i % 2 else _VARCHAR.sub("STRING", part) for i, part in enumerate(parts))


def pii_projection(rules: list[PiiRule], hash_template: str, quote: str = '"'
                   ) -> tuple[list[str], dict[str, str]]:
    """Columns to drop and SQL expressions replacing hashed or masked columns."""
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
