"""Columns declared once in the pipeline file, and everything derived from them.

A `columns:` entry is the one place a column's type, rules, PII handling and description are
written. Three enforcers read it, so none keeps a copy that could drift:

- the transform casts its output to the declared types (`projection`), for DuckDB and Spark;
- the Great Expectations suite gets one expectation per rule (`expectations`);
- dbt's `landing` source gets one test per rule (`dbt_tests`, see `framework dbt-sources`).

Rules come from the declarations plus the primary key (never null, unique as a whole); both
enforcers turn the same `Rule` list into their own vocabulary.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framework.spec.model import Column, Expectation, PipelineSpec

PORTABLE_TYPES = ("string", "integer", "bigint", "decimal(p,s)", "double", "boolean", "date",
                  "timestamp", "timestamptz", "binary")
TYPE_PATTERN = (r"^(string|integer|bigint|double|boolean|date|timestamp|timestamptz|binary"
                r"|decimal\([0-9]{1,2}, ?[0-9]{1,2}\))$")
NUMERIC = ("integer", "bigint", "decimal", "double")
TEMPORAL = ("date", "timestamp", "timestamptz")
MAX_PRECISION = 38
UNBOUNDED_DECIMAL = "decimal(38,9)"  # a numeric with no declared precision
UNSIGNED_BIGINT = "decimal(20,0)"  # MySQL's BIGINT UNSIGNED reaches 2^64 - 1: past int64

_SQL = {
    "duckdb": {"string": "VARCHAR", "integer": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE",
               "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
               "timestamptz": "TIMESTAMPTZ", "binary": "BLOB"},
    "spark": {"string": "STRING", "integer": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE",
              "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
              "timestamptz": "TIMESTAMP_LTZ", "binary": "BINARY"},
}
_HASH = {"duckdb": "sha256({})", "spark": "sha2({}, 256)"}
_QUOTE = {"duckdb": '"', "spark": "`"}
_EXCEPT = {"duckdb": "EXCLUDE", "spark": "EXCEPT"}


# Columns the lake stores under the name the source gives them: dlt's snake_case naming keeps
# exactly these (lower case, digits, single underscores, no trailing `_`, a leading digit only
# after `_`). Key, cursor and soft-delete columns are matched by name after the lake.
LAKE_COLUMN_PATTERN = r"^(?:[a-z]|_[a-z0-9])(?:_?[a-z0-9])*$"
_KEPT_BY_DLT = re.compile(LAKE_COLUMN_PATTERN)


@functools.lru_cache(maxsize=4096)  # called per JSON key of a file's every record
def dlt_column_name(name: str) -> str:
    """A source column's name in the lake, as dlt writes it (snake_case: 'Order_ID' ->
    'order_id'). Names dlt keeps skip dlt's naming module, whose import costs seconds that a
    plan or a run with nothing new need not pay."""
    if _KEPT_BY_DLT.match(name):
        return name
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return str(NamingConvention().normalize_identifier(name))


# What the framework writes on every landing row (`_deleted_at`: reconcile's mark). A source
# column of one of these names would be taken for the framework's own: a merge compared the
# source's text as its load order (an update lost), a replay deleted by it (rows doubled).
FRAMEWORK_COLUMNS = ("_load_id", "_loaded_at", "_deleted_at")


def framework_column_clash(columns: Iterable[str]) -> str | None:
    """Why these columns cannot land: one is named (as dlt names it in the lake) like a
    column the framework writes. None if none is."""
    for column in columns:
        lake = dlt_column_name(column)
        if lake in FRAMEWORK_COLUMNS:
            shown = f"'{column}'" + (f" ('{lake}' in the lake)" if lake != column else "")
            return (f"column {shown} is one the framework writes on every landing row "
                    f"({', '.join(FRAMEWORK_COLUMNS)}); rename it in source.query or the "
                    f"transform (SELECT ... \"{column}\" AS source{lake})")
    return None


def lake_name_collisions(columns: Iterable[str]) -> str | None:
    """Which columns dlt's snake_case naming makes one in the lake (`Name` and `name`, `a.b` and
    `a_b`), said with the fix; None if none are."""
    named: dict[str, list[str]] = {}
    for column in columns:
        named.setdefault(dlt_column_name(column), []).append(column)
    clashes = "; ".join(f"{' and '.join(repr(c) for c in same)} are all '{lake}'"
                        for lake, same in named.items() if len(same) > 1)
    if not clashes:
        return None
    return (f"columns of the source have one name in the lake (dlt's snake_case names): "
            f"{clashes}; rename all but one in source.query (SELECT ... \"Name\" AS name_2)")


# -- types ---------------------------------------------------------------------------------------


def base_type(portable: str) -> str:
    """`decimal(12,2)` -> `decimal`; other types are their own base."""
    return portable.split("(", 1)[0].strip()


def decimal_parts(portable: str) -> tuple[int, int]:
    precision, scale = re.findall(r"\d+", portable)
    return int(precision), int(scale)


def canonical(portable: str) -> str:
    """One spelling per type (`decimal(12, 2)` and `decimal(12,2)` are the same)."""
    if base_type(portable) == "decimal":
        return "decimal({},{})".format(*decimal_parts(portable))
    return portable


def sql_type(portable: str, engine: str = "duckdb") -> str:
    """The engine's SQL spelling of a portable type."""
    if base_type(portable) == "decimal":
        return "DECIMAL({}, {})".format(*decimal_parts(portable))
    return _SQL[engine][portable]


def type_problem(portable: str) -> str | None:
    """Why a well-formed decimal type is not a valid one; None if it is."""
    if base_type(portable) != "decimal":
        return None
    precision, scale = decimal_parts(portable)
    if not 1 <= precision <= MAX_PRECISION:
        return f"decimal precision must be 1 to {MAX_PRECISION}, got {precision}"
    if scale > precision:
        return f"decimal scale ({scale}) cannot exceed its precision ({precision})"
    return None


def from_sqlalchemy(sa_type: Any, dialect: str = "") -> str:
    """The portable type that holds every value of a reflected SQLAlchemy column type exactly.

    SQLite's INTEGER is 64-bit (bigint); MySQL's unsigned integers need the next size up;
    `real`/`float` widen exactly to double; a numeric keeps its precision and scale (one wider
    than 38 digits lands as its text); a time zone is kept (timestamptz); bytes stay bytes.
    Types with no portable twin (time, interval, uuid, json, money, arrays, network addresses,
    ...) land as their exact text.
    """
    import sqlalchemy as sa

    name = type(sa_type).__name__.upper()
    if isinstance(sa_type, sa.Boolean):
        return "boolean"
    if name == "YEAR":
        return "integer"
    if isinstance(sa_type, sa.Integer):
        unsigned = bool(getattr(sa_type, "unsigned", False))
        if isinstance(sa_type, sa.BigInteger):
            return UNSIGNED_BIGINT if unsigned else "bigint"
        if dialect == "sqlite" or (unsigned and name in ("INTEGER", "INT", "MEDIUMINT")):
            return "bigint"
        return "integer"
    if isinstance(sa_type, sa.Float) or name in ("REAL", "DOUBLE", "DOUBLE_PRECISION"):
        return "double"
    if isinstance(sa_type, sa.Numeric):
        precision = getattr(sa_type, "precision", None)
        scale = getattr(sa_type, "scale", None) or 0
        if precision is not None and precision > MAX_PRECISION:
            return "string"  # the reader lands it as its exact text (sources/sql/as_text.py)
        if precision is None:
            return UNBOUNDED_DECIMAL
        return f"decimal({precision},{min(scale, precision)})"
    if isinstance(sa_type, sa.DateTime):
        return "timestamptz" if getattr(sa_type, "timezone", False) else "timestamp"
    if isinstance(sa_type, sa.Date):
        return "date"
    if isinstance(sa_type, (sa.LargeBinary, sa.BINARY, sa.VARBINARY)):
        return "binary"
    return "string"


def matches_warehouse(portable: str, warehouse_type: str) -> bool:
    """Whether a warehouse column type (DuckDB or Snowflake spelling) holds the portable type."""
    found = warehouse_type.upper().replace(" ", "")
    base = base_type(portable)
    if base == "decimal":
        precision, scale = decimal_parts(portable)
        return found in (f"DECIMAL({precision},{scale})", f"NUMBER({precision},{scale})")
    accepted = {
        "string": ("VARCHAR", "TEXT", "STRING"), "integer": ("INTEGER", "INT", "NUMBER(38,0)"),
        "bigint": ("BIGINT", "NUMBER(38,0)"), "double": ("DOUBLE", "FLOAT"),
        "boolean": ("BOOLEAN",), "date": ("DATE",), "timestamp": ("TIMESTAMP", "TIMESTAMP_NTZ"),
        "timestamptz": ("TIMESTAMPWITHTIMEZONE", "TIMESTAMPTZ", "TIMESTAMP_TZ"),
        "binary": ("BLOB", "BINARY", "VARBINARY", "BYTEA"),
    }[base]
    return found.split("(", 1)[0] in accepted if base in ("string", "timestamp", "timestamptz",
                                                           "binary") else found in accepted


# -- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One check derived from the declarations: `not_null`, `unique`, `accepted_values`,
    `range` or `unique_key` (a compound primary key). `from_key`: implied by the primary key."""

    kind: str
    columns: tuple[str, ...]
    values: tuple[Any, ...] = ()
    low: Any = None
    high: Any = None
    from_key: bool = False


def kept(spec: PipelineSpec) -> list[Column]:
    """Declared columns that reach the landing table (`pii: drop` ones do not)."""
    return [c for c in spec.columns if c.pii != "drop"]


def rules(spec: PipelineSpec) -> list[Rule]:
    """Every rule the declarations imply, in declaration order, the key's first; none when the
    pipeline declares no columns (its checks are then its quality suite alone)."""
    if not spec.columns:
        return []
    from framework.spec.model import lake_name

    key = [lake_name(k) for k in spec.source.primary_key]  # the checks read the lake's names
    found: list[Rule] = [Rule("not_null", (k,), from_key=True) for k in key]
    # A batch may hold several versions of a key (an API paged by a cursor token): the load
    # keeps the latest, so the batch's key is not unique, and need not be.
    versions = bool(getattr(spec.source, "serves_versions", False))
    if not versions:
        found.append(Rule("unique", (key[0],), from_key=True) if len(key) == 1 else
                     Rule("unique_key", tuple(key), from_key=True))
    for column in kept(spec):
        one = (column.name,)
        if not column.nullable:
            found.append(Rule("not_null", one))
        if column.unique and not (versions and [lake_name(column.name)] == key):
            found.append(Rule("unique", one))
        if column.accepted_values:
            found.append(Rule("accepted_values", one, values=tuple(column.accepted_values)))
        if column.min is not None or column.max is not None:
            found.append(Rule("range", one, low=column.min, high=column.max))
    unique: dict[tuple[str, tuple[str, ...]], Rule] = {}
    for rule in found:  # a key column also declared `nullable: false` is checked once
        seen = unique.setdefault((rule.kind, rule.columns), rule)
        if seen.from_key and not rule.from_key:  # declared too: no longer only the key's
            unique[(rule.kind, rule.columns)] = replace(seen, from_key=False)
    return list(unique.values())


def expectations(spec: PipelineSpec) -> list[Expectation]:
    """The Great Expectations suite the declarations imply."""
    from framework.spec.model import Expectation

    types = {c.name: base_type(c.type) for c in spec.columns}
    out: list[Expectation] = []
    for rule in rules(spec):
        column = rule.columns[0]
        if rule.kind == "not_null":
            item: dict[str, Any] = {"expect_column_values_to_not_be_null": {"column": column}}
        elif rule.kind == "unique":
            item = {"expect_column_values_to_be_unique": {"column": column}}
        elif rule.kind == "unique_key":
            item = {"expect_compound_columns_to_be_unique": {"column_list": list(rule.columns)}}
        elif rule.kind == "accepted_values":
            item = {"expect_column_values_to_be_in_set": {"column": column,
                                                          "value_set": list(rule.values)}}
        else:
            bounds = {"min_value": _bound(rule.low, types.get(column)),
                      "max_value": _bound(rule.high, types.get(column))}
            item = {"expect_column_values_to_be_between": {
                "column": column, **{k: v for k, v in bounds.items() if v is not None}}}
        out.append(Expectation.model_validate(item))
    return out


def _bound(value: Any, base: str | None) -> Any:
    """Date and timestamp bounds compared as such, not as text."""
    if value is None or base not in TEMPORAL or not isinstance(value, str):
        return value
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed.date() if base == "date" else parsed


def _literal(value: Any, base: str | None) -> Any:
    """A bound as dbt's SQL compares it: dates and timestamps as naive UTC ISO text."""
    bound = _bound(value, base)
    return bound.isoformat(sep=" ") if isinstance(bound, dt.datetime) else \
        bound.isoformat() if isinstance(bound, dt.date) else bound


def dbt_tests(spec: PipelineSpec) -> tuple[dict[str, list[Any]], list[Any]]:
    """dbt data tests the declarations imply: per column, and for the table.

    The key's uniqueness is a property of the landing table only when batches are merged (or
    replace it); an `append` table keeps every version of a row.
    """
    appended = spec.warehouse.write_disposition == "append"
    types = {c.name: base_type(c.type) for c in spec.columns}
    per_column: dict[str, list[Any]] = {}
    table: list[Any] = []
    for rule in rules(spec):
        if rule.from_key and appended and rule.kind in ("unique", "unique_key"):
            continue
        column = rule.columns[0]
        if rule.kind == "unique_key":
            table.append({"unique_combination_of_columns": {
                "arguments": {"combination_of_columns": list(rule.columns)}}})
            continue
        if rule.kind in ("not_null", "unique"):
            test: Any = rule.kind
        elif rule.kind == "accepted_values":
            arguments: dict[str, Any] = {"values": list(rule.values)}
            if not all(isinstance(v, str) for v in rule.values):
                arguments["quote"] = False
            test = {"accepted_values": {"arguments": arguments}}
        else:
            bounds = {"min_value": _literal(rule.low, types.get(column)),
                      "max_value": _literal(rule.high, types.get(column))}
            test = {"accepted_range": {"arguments": {k: v for k, v in bounds.items()
                                                     if v is not None}}}
        per_column.setdefault(column, []).append(test)
    return per_column, table


# -- the transform's projection ------------------------------------------------------------------


def projection(spec: PipelineSpec, sql: str, engine: str) -> str:
    """The transform's SQL wrapped so that declared columns come first, in declaration order,
    cast to their types (and hashed, masked or dropped as their `pii` says); columns the SQL
    outputs but the pipeline does not declare follow unchanged, for the warehouse contract.
    """
    if not spec.columns:
        return sql
    from framework.compiled.sql import pii_projection, quote_identifier
    from framework.spec.model import PiiRule

    quote = _QUOTE[engine]
    rules_ = [PiiRule(column=c.name, action=c.pii) for c in spec.columns if c.pii]
    _, replaced = pii_projection(rules_, _HASH[engine], quote)
    select: list[str] = []
    for column in kept(spec):
        name = quote_identifier(column.name, quote)
        value = replaced.get(column.name, name)
        select.append(f"CAST({value} AS {sql_type(column.type, engine)}) AS {name}")
    declared = ", ".join(quote_identifier(c.name, quote) for c in spec.columns)
    body = sql.strip().rstrip(";").rstrip()
    return (f"SELECT {', '.join(select)}, * {_EXCEPT[engine]} ({declared})\n"
            f"FROM (\n{body}\n) AS declared_columns")
