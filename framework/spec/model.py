"""The pipeline file as typed, frozen data.

These models are the single source of truth for `pipeline.schema.json`: the schema is generated
from them (`framework schema`), and a test fails when the committed file drifts.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import (
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from framework.sources.registry import SourceSpec
from framework.spec.base import (  # noqa: F401 - re-exported: the spec's vocabulary
    DURATION_PATTERN,
    Incremental,
    NullCursorPolicy,
    ProblemAt,
)
from framework.spec.base import (
    SpecModel as _Model,
)
from framework.spec.base import (
    no_duplicates as _no_duplicates,
)
from framework.spec.columns import (
    LAKE_COLUMN_PATTERN,
    NUMERIC,
    TEMPORAL,
    TYPE_PATTERN,
    base_type,
    canonical,
    dlt_column_name,
    type_problem,
)

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
# dlt's naming keeps exactly these names: no trailing `_`, no `__`.
LAKE_PATH_PATTERN = r"^[a-z](_?[a-z0-9])*$"
# Arguments of an expectation that name columns.
COLUMN_ARGUMENTS = ("column", "column_A", "column_B")
AIRFLOW_PRESETS = frozenset(
    {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
)
EXPECTATION_NAME = re.compile(r"^expect_[a-z0-9_]+$")


class LakeFormat(StrEnum):
    parquet = "parquet"


class Lake(_Model):
    """Where batches are kept in the lake: `raw/<path>/`, `processed/<path>/`, `quarantine/<path>/`."""

    path: str = Field(
        pattern=LAKE_PATH_PATTERN,
        description="Folder under each lake zone that holds this table's batches: lower case, "
        "digits and single underscores (dlt renames anything else).",
        examples=["orders"],
    )
    format: LakeFormat = Field(
        default=LakeFormat.parquet, description="File format of the batches.", examples=["parquet"]
    )


class PiiAction(StrEnum):
    hash = "hash"
    mask = "mask"
    drop = "drop"


class PiiRule(_Model):
    """Personal data handled before anything leaves the transform."""

    column: str = Field(description="Column holding personal data.", examples=["customer_zip_code_prefix"])
    action: PiiAction = Field(
        description="`hash` (SHA-256 hex), `mask` (keep the first two characters) or `drop`.",
        examples=["hash"],
    )


Scalar = str | int | float | bool


class Column(_Model):
    """A landing table column, declared once: cast, checked, tested and documented from here."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Column name as the transform outputs it and the landing table holds it.",
        examples=["order_status"],
    )
    type: Annotated[str, StringConstraints(pattern=TYPE_PATTERN)] = Field(
        description="Portable type the transform casts the column to, so the landing table has "
        "exactly this type: `string`, `integer`, `bigint`, `decimal(p,s)`, `double` (64-bit), "
        "`boolean`, `date`, `timestamp` (no time zone), `timestamptz` (an instant, time zone "
        "kept) or `binary` (bytes).",
        examples=["string", "decimal(12,2)", "timestamp"],
    )
    nullable: bool = Field(
        default=True,
        description="`false`: a NULL fails the batch (Great Expectations) and the dbt source "
        "test. Primary key columns are never null.",
        examples=[False],
    )
    unique: bool = Field(
        default=False,
        description="`true`: no two rows share a value (a single-column primary key always is).",
        examples=[True],
    )
    accepted_values: list[Scalar] | None = Field(
        default=None,
        min_length=1,
        description="The only values the column may hold (NULL aside).",
        examples=[["delivered", "shipped", "canceled"]],
        json_schema_extra={"uniqueItems": True},
    )
    min: int | float | str | None = Field(
        default=None,
        description="Smallest allowed value (inclusive): a number, or an ISO date or timestamp.",
        examples=[0],
    )
    max: int | float | str | None = Field(
        default=None,
        description="Largest allowed value (inclusive): a number, or an ISO date or timestamp.",
        examples=[100000],
    )
    pii: PiiAction | None = Field(
        default=None,
        description="Personal data: `hash` (SHA-256 hex), `mask` (keep the first two "
        "characters) or `drop` (never leaves the transform). The alternative to `transform.pii`.",
        examples=["mask"],
    )
    description: str = Field(
        default="",
        description="What the column holds; documents the dbt `landing` source.",
        examples=["Order status: delivered, shipped, canceled, ..."],
    )

    @field_validator("type")
    @classmethod
    def _valid_type(cls, value: str) -> str:
        problem = type_problem(value)
        if problem:
            raise ValueError(problem)
        return canonical(value)

    @field_validator("accepted_values")
    @classmethod
    def _distinct_values(cls, value: list[Scalar] | None) -> list[Scalar] | None:
        if value is not None:
            for index, item in enumerate(value):
                if item in value[:index]:
                    raise ProblemAt(index, f"'{item}' is listed twice; remove one")
        return value

    @model_validator(mode="after")
    def _rules_fit(self) -> Column:
        base = base_type(self.type)
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is None:
                continue
            if base in NUMERIC and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ProblemAt(bound, f"a {self.type} column takes a number as '{bound}'")
            if base in TEMPORAL and not _iso(value):
                raise ProblemAt(bound, f"a {self.type} column takes an ISO {base} as "
                                f"'{bound}', e.g. '2016-01-01'")
            if base not in NUMERIC + TEMPORAL:
                raise ProblemAt(bound, f"'{bound}' applies to numbers, dates and timestamps, "
                                f"not to a {self.type} column")
        if self.min is not None and self.max is not None and _order(self.min) > _order(self.max):
            raise ProblemAt("max", f"max ({self.max}) is below min ({self.min})")
        if self.pii in ("hash", "mask") and base != "string":
            raise ProblemAt("type", f"pii: {self.pii} makes text; declare 'type: string'")
        if self.pii and (self.accepted_values or self.min is not None or self.max is not None):
            raise ProblemAt("pii", f"the checks would see {self.pii}ed values; remove "
                            "accepted_values, min and max, or the pii action")
        if self.pii == "drop" and (not self.nullable or self.unique):
            raise ProblemAt("pii", "a dropped column is not in the landing table, so it cannot "
                            "be checked; remove 'nullable: false' and 'unique: true'")
        return self


def _iso(value: Any) -> bool:
    import datetime as dt

    try:
        dt.datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _order(value: Any) -> Any:
    import datetime as dt

    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value)
        return parsed.replace(tzinfo=None) if parsed.tzinfo is None else \
            parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return value


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


class Transform(_Model):
    """SQL over the new batch, exposed as the relation `batch`."""

    engine: Engine = Field(
        default=Engine.duckdb,
        description="Engine that runs the transform: `duckdb` on one machine, `spark` for tables "
        "that outgrow it.",
        examples=["duckdb"],
    )
    sql: str | None = Field(
        default=None,
        description="Inline SELECT over `batch`. Give `sql` or `sql_file`; omit both to pass the "
        "batch through unchanged.",
        examples=["SELECT order_id, lower(trim(order_status)) AS order_status FROM batch"],
    )
    sql_file: str | None = Field(
        default=None,
        description="Path of a .sql file holding the SELECT over `batch`, relative to the "
        "pipeline file.",
        examples=["sql/orders.sql"],
    )
    pii: list[PiiRule] = Field(
        default_factory=list,
        description="Columns to hash, mask or drop after the SQL runs.",
        examples=[[{"column": "customer_zip_code_prefix", "action": "mask"}]],
    )

    @model_validator(mode="after")
    def _one_sql(self) -> Transform:
        if self.sql is not None and self.sql_file is not None:
            raise ProblemAt("sql_file", "give 'sql' or 'sql_file', not both; remove one of them")
        return self


class Severity(StrEnum):
    error = "error"
    warn = "warn"


class Expectation(RootModel[dict[str, Any]]):
    """One Great Expectations expectation by its snake_case name, with its arguments."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "type": "object",
            "description": "One Great Expectations expectation: its snake_case name as the key, "
            "its arguments as the value, and an optional `severity` overriding the suite's.",
            "examples": [{"expect_column_values_to_not_be_null": {"column": "order_id"}}],
            "properties": {
                "severity": {
                    "enum": ["error", "warn"],
                    "description": "Severity of this expectation alone.",
                    "examples": ["warn"],
                }
            },
            "patternProperties": {
                "^expect_[a-z0-9_]+$": {
                    "type": "object",
                    "description": "Arguments of the expectation, as Great Expectations names them.",
                    "examples": [{"column": "order_id"}],
                }
            },
            "additionalProperties": False,
            "minProperties": 1,
            # Exactly one `expect_...` key, plus `severity` when it is given.
            "if": {"required": ["severity"]},
            "then": {"minProperties": 2, "maxProperties": 2},
            "else": {"maxProperties": 1},
        },
    )

    @model_validator(mode="before")
    @classmethod
    def _one_expectation(cls, value: Any) -> Any:
        problem = expectation_problem(value)
        if problem:
            raise ProblemAt(problem.key, problem.message)
        return value

    @property
    def name(self) -> str:
        return next(k for k in self.root if k != "severity")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.root[self.name])

    def severity_or(self, default: str) -> str:
        return str(self.root.get("severity", default))


class ExpectationProblem(NamedTuple):
    """What is wrong with one expectation, under which of its keys, and whether the key's
    name (rather than its value) is the mistake."""

    key: tuple[str | int, ...]
    message: str
    at_key: bool = False


def expectation_problem(item: Any) -> ExpectationProblem | None:
    """What is wrong with one expectation item; None if nothing.

    Shared by the schema step (inline expectations), the model and the suite files' check, so
    all three say the same thing.
    """
    from framework.spec.messages import did_you_mean, flow, quoted

    example = "- expect_column_values_to_not_be_null: {column: order_id}"
    if not isinstance(item, dict):
        if isinstance(item, str) and EXPECTATION_NAME.match(item):
            return ExpectationProblem((), f"an expectation maps its name to its arguments; "
                                          f"write '- {item}: {{column: ...}}'")
        return ExpectationProblem((), f"an expectation is one 'expect_...' key with its "
                                      f"arguments, e.g. '{example}'")
    names = [k for k in item if k != "severity"]
    for key in names:
        if not EXPECTATION_NAME.match(str(key)):
            hint = did_you_mean(str(key), ["severity"]) or (
                f" (did you mean 'expect_{key}'?)" if not str(key).startswith("expect")
                and EXPECTATION_NAME.match(f"expect_{key}") else "")
            return ExpectationProblem((key,), f"'{key}' is not an expectation name: names are "
                                              f"Great Expectations' snake_case names, starting "
                                              f"with 'expect_'{hint}", at_key=True)
    if not names:
        return ExpectationProblem((), f"'severity' alone is not an expectation; add the "
                                      f"expectation it applies to, e.g. '{example}'")
    if len(names) > 1:
        return ExpectationProblem((names[1],), f"a second expectation in the same list item; "
                                               f"start '{names[1]}' on its own line with '- '",
                                  at_key=True)
    arguments = item[names[0]]
    if not isinstance(arguments, dict):
        got = "nothing" if arguments is None else flow(arguments)
        return ExpectationProblem((names[0],), f"the arguments must be a mapping such as "
                                               f"{{column: order_id}} ({{}} for none), got {got}")
    for argument in COLUMN_ARGUMENTS:
        problem = column_name_problem(arguments[argument]) if argument in arguments else None
        if problem:
            return ExpectationProblem((names[0], argument), problem)
    listed = arguments.get("column_list")
    if listed is not None and not isinstance(listed, list):
        return ExpectationProblem((names[0], "column_list"), f"expected a list of column names, "
                                                             f"got {flow(listed)}")
    for index, column in enumerate(listed or []):
        problem = column_name_problem(column)
        if problem:
            return ExpectationProblem((names[0], "column_list", index), problem)
    values = arguments.get("value_set")
    if values is not None and not isinstance(values, list):  # text would be read letter by letter
        return ExpectationProblem((names[0], "value_set"), f"expected a list of values such as "
                                                           f"[a, b], got {flow(values)}")
    severity = item.get("severity", "error")
    if severity not in ("error", "warn"):
        return ExpectationProblem(("severity",), f"{quoted(severity)} is not one of: error, "
                                                 f"warn{did_you_mean(str(severity), ['error', 'warn'])}")
    return None


def column_name_problem(value: Any) -> str | None:
    """Why `value` cannot name a column; None if it can. Any printable text can: each SQL
    dialect quotes it (a YAML `.inf` or `true` is not text, and would become SQL as written)."""
    from framework.spec.messages import describe, flow, quoted

    if not isinstance(value, str):
        hint = f"; quote it if you mean the text: '{flow(value)}'" \
            if isinstance(value, (int, float)) else ""
        return f"expected a column name (a string), got {describe(value)}{hint}"
    if not value.strip():
        return "a column name must not be empty"
    if not value.isprintable():
        return f"{quoted(value)} holds a control character; a column name is printable text"
    return None


def lake_column_problem(value: str, role: str, api: bool = False) -> str | None:
    """Why a key, cursor or soft-delete column cannot be matched after the lake; None if it can.
    (`api`: an HTTP API's field, which no query renames.)"""
    problem = column_name_problem(value)
    if problem or re.match(LAKE_COLUMN_PATTERN, value):
        return problem
    from framework.spec.messages import quoted

    lake = dlt_column_name(value)
    if lake == value.lower():  # `Id` is `id` in the lake: both warehouses match it regardless
        return None
    fix = ("an API's field that is not snake_case cannot be one yet" if api else
           f"rename it in source.query (SELECT ... AS {lake})")
    return (f"{quoted(value)} is stored in the lake as '{lake}' (dlt's snake_case names), where "
            f"the warehouse would not find it; a {role} column needs a snake_case name: {fix}")


def lake_name(column: str) -> str:
    """A key, cursor or soft-delete column's name in the lake, where the declared columns and
    the checks name it: its own lower-cased (the one difference `lake_column_problem` allows:
    `ID` lands as `id`)."""
    return column.lower()


class Quality(_Model):
    """Great Expectations checks run on every processed batch before the warehouse."""

    suite: str | None = Field(
        default=None,
        description="Name of a suite in `quality/<suite>.yml` whose expectations are added to "
        "the inline ones.",
        examples=["orders"],
    )
    severity: Severity = Field(
        default=Severity.error,
        description="`error` stops before the warehouse and quarantines the batch; `warn` "
        "records the failure and goes on.",
        examples=["error"],
    )
    expectations: list[Expectation] = Field(
        default_factory=list,
        description="Inline expectations.",
        examples=[[{"expect_column_values_to_be_unique": {"column": "order_id"}}]],
    )


class WriteDisposition(StrEnum):
    merge = "merge"
    append = "append"
    replace = "replace"  # type: ignore[assignment]  # the member shadows str.replace


class Contract(StrEnum):
    evolve = "evolve"
    freeze = "freeze"
    discard = "discard"


class Warehouse(_Model):
    """The landing table the processed batch is loaded into."""

    db_schema: str = Field(
        default="landing",
        alias="schema",
        pattern=NAME_PATTERN,
        description="Warehouse schema of the landing table.",
        examples=["landing"],
    )
    table: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Landing table name; defaults to the pipeline's name.",
        examples=["orders"],
    )
    write_disposition: WriteDisposition = Field(
        default=WriteDisposition.merge,
        description="`merge` upserts on the primary key (the table holds the source's current "
        "rows), `append` adds every batch, `replace` swaps the table for the batch.",
        examples=["merge"],
    )
    contract: Contract = Field(
        default=Contract.evolve,
        description="New columns: `evolve` adds them (with a warning), `freeze` stops the run "
        "naming them, `discard` drops them.",
        examples=["evolve"],
    )


class Dbt(_Model):
    """dbt models built after the load."""

    # One selector may be written as a plain string; the model always holds a list.
    select: Annotated[list[str], WithJsonSchema({"anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]})] = Field(
        min_length=1,
        description="dbt selection built after a load: model names with graph operators, "
        "`tag:...`, `path:...`.",
        examples=[["stg_orders+"], ["tag:orders"]],
    )

    @field_validator("select", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class DeleteAction(StrEnum):
    remove = "remove"
    mark = "mark"


DEFAULT_MAX_DELETE_FRACTION = 0.1


class Deletes(_Model):
    """How rows deleted in the source leave the warehouse (one of the two ways)."""

    soft_delete_column: str | None = Field(
        default=None,
        description="Source column that marks a deleted row (a timestamp, or a flag): rows whose "
        "value is set and not false are removed from the warehouse. The transform must keep it.",
        examples=["deleted_at"],
    )
    reconcile: DeleteAction | None = Field(
        default=None,
        description="Compare every source key with the warehouse after a run and `remove` the "
        "rows whose key is gone, or `mark` them in `_deleted_at`.",
        examples=["mark"],
    )
    max_fraction: float = Field(
        default=DEFAULT_MAX_DELETE_FRACTION, ge=0, le=1,
        description="Safety valve of `reconcile`: the run stops, deleting nothing, when the keys "
        "gone from the source are more than this share of the landing table's rows (an empty "
        "or partial source read looks like mass deletion); `framework run --allow-mass-delete` "
        "applies them anyway. Default 0.1: a real day seldom deletes a tenth of a table.",
        examples=[0.1, 0.5],
    )

    @model_validator(mode="after")
    def _one_way(self) -> Deletes:
        if (self.soft_delete_column is None) == (self.reconcile is None):
            raise ValueError("give exactly one of 'soft_delete_column' or 'reconcile'")
        if "max_fraction" in self.model_fields_set and self.reconcile is None:
            raise ValueError("'max_fraction' limits 'reconcile' deletes; a soft_delete_column "
                             "deletes only the rows the source marks")
        return self


_CRON_FIELDS = (("minute", "0-59"), ("hour", "0-23"), ("day-of-month", "1-31"),
                ("month", "1-12"), ("day-of-week", "0-6"))


def schedule_problem(value: str) -> str | None:
    """Why `value` is neither a five-field cron expression nor an Airflow preset; None if it is."""
    from framework.spec.messages import did_you_mean

    presets = ", ".join(sorted(AIRFLOW_PRESETS))
    if value in AIRFLOW_PRESETS:
        return None
    if value.startswith("@"):
        return f"'{value}' is not an Airflow preset{did_you_mean(value, AIRFLOW_PRESETS)}; " \
               f"presets are {presets}"
    from croniter import croniter  # type: ignore[import-untyped,unused-ignore]

    fields = value.split()
    if len(fields) != 5:
        return (f"'{value}' has {len(fields)} field(s); a cron expression has five: minute hour "
                f"day-of-month month day-of-week (e.g. '*/15 * * * *'), or use a preset: {presets}")
    if croniter.is_valid(value):
        return None
    for index, (name, allowed) in enumerate(_CRON_FIELDS):
        alone = " ".join(fields[index] if i == index else "*" for i in range(5))
        if not croniter.is_valid(alone):
            return f"'{value}' is not a valid cron expression: the {name} field " \
                   f"'{fields[index]}' is not valid ({allowed}, '*', lists, ranges, steps)"
    return f"'{value}' is not a valid cron expression (minute hour day-of-month month " \
           f"day-of-week, e.g. '*/15 * * * *')"


class PipelineSpec(_Model):
    """One table's way from the source to the marts."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_enum_values=True,
        validate_default=True,
        populate_by_name=True,
        title="Pipeline",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Pipeline name, equal to the file name; names the landing table by default.",
        examples=["orders"],
    )
    description: str = Field(
        default="", description="What the table holds, for people and the DAG docs.",
        examples=["Orders placed in the shop, one row per order."],
    )
    owner: str = Field(
        default="data-platform", description="Team or person answerable for the pipeline.",
        examples=["data-platform"],
    )
    tags: list[str] = Field(
        default_factory=list, description="Free labels, used to select pipelines.",
        examples=[["core", "orders"]],
    )
    depends_on: list[str] = Field(
        default_factory=list,
        description="Pipelines that must run before this one (by name).",
        examples=[["customers", "products"]],
        json_schema_extra={"uniqueItems": True},
    )
    schedule: str | None = Field(
        default=None,
        description="Cron expression (five fields) or an Airflow preset such as `@daily`; "
        "used by the Airflow DAG factory.",
        examples=["0 * * * *", "@daily"],
    )
    source: SourceSpec = Field(
        description="Where the rows come from.",
        examples=[{"connection": "shop", "table": "orders", "primary_key": ["order_id"],
                   "incremental": {"cursor": "updated_at"}}],
    )
    lake: Lake = Field(description="Where batches are kept in the lake.",
                       examples=[{"path": "orders"}])
    transform: Transform = Field(
        default_factory=Transform, description="How a raw batch becomes a processed batch.",
        examples=[{"engine": "duckdb", "sql_file": "sql/orders.sql"}],
    )
    quality: Quality = Field(
        default_factory=Quality, description="Checks a processed batch must pass.",
        examples=[{"suite": "orders", "severity": "error"}],
    )
    warehouse: Warehouse = Field(
        default_factory=Warehouse, description="Landing table the batch is loaded into.",
        examples=[{"schema": "landing", "write_disposition": "merge", "contract": "evolve"}],
    )
    dbt: Dbt | None = Field(default=None, description="dbt models to build after the load.",
                            examples=[{"select": ["stg_orders+"]}])
    deletes: Deletes | None = Field(
        default=None,
        description="How source deletes reach the warehouse; omit to keep deleted rows.",
        examples=[{"soft_delete_column": "deleted_at"}, {"reconcile": "remove"}],
    )
    columns: list[Column] = Field(
        default_factory=list,
        description="The landing table's columns, declared once: their types (the transform "
        "casts to them), rules (not null, unique, accepted values, range: checked by Great "
        "Expectations and tested by dbt), PII handling and descriptions. With columns declared, "
        "the primary key is also checked: never null, unique.",
        examples=[[{"name": "order_id", "type": "string", "nullable": False, "unique": True,
                    "description": "Primary key."},
                   {"name": "order_status", "type": "string",
                    "accepted_values": ["delivered", "shipped", "canceled"]}]],
    )

    @field_validator("depends_on")
    @classmethod
    def _unique_dependencies(cls, value: list[str]) -> list[str]:
        return _no_duplicates(value)

    @field_validator("schedule")
    @classmethod
    def _schedule_is_cron(cls, value: str | None) -> str | None:
        problem = schedule_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _identifiers_fit(self) -> PipelineSpec:
        """Names matched after the lake keep their source name there; other names from the
        file are quoted by each SQL dialect, so they need only be printable text."""
        named: list[tuple[tuple[str | int, ...], str, str]] = [
            (("source", "primary_key", i), key, "primary key")
            for i, key in enumerate(self.source.primary_key)]
        if self.cursor:
            named.append((("source", "incremental", "cursor"), self.cursor, "cursor"))
        if self.deletes and self.deletes.soft_delete_column is not None:
            named.append((("deletes", "soft_delete_column"), self.deletes.soft_delete_column,
                          "soft-delete"))
        for key, name, role in named:
            problem = lake_column_problem(name, role, api=self.source.kind == "rest_api")
            if problem:
                raise ProblemAt(key, problem)
        for index, rule in enumerate(self.transform.pii):
            problem = column_name_problem(rule.column)
            if problem:
                raise ProblemAt(("transform", "pii", index, "column"), problem)
        return self

    @model_validator(mode="after")
    def _incremental_fits(self) -> PipelineSpec:
        """Refuse cursor settings that would load a row twice or mean nothing for the cursor."""
        if getattr(self.source, "rereads_rows", False) and \
                self.warehouse.write_disposition == WriteDisposition.append:
            raise ProblemAt(("warehouse", "write_disposition"), f"a {self.source.kind} source "
                            "reads a changed file again whole, and 'append' would add its rows "
                            "twice; use merge (the default)")
        incremental = getattr(self.source, "incremental", None)
        if not isinstance(incremental, Incremental):  # a kind's own notion of "new" (files)
            return self
        at = ("source", "incremental")
        if self.warehouse.write_disposition == WriteDisposition.append:
            if incremental.lag_seconds:
                raise ProblemAt((*at, "lag"), "a look-back window reads rows already loaded "
                                "again, and 'append' would add them twice; set "
                                "warehouse.write_disposition: merge, or remove lag")
            if incremental.on_null == NullCursorPolicy.include:
                raise ProblemAt((*at, "on_null"), "'include' reads every NULL-cursor row again "
                                "on every run, and 'append' would add it each time; set "
                                "warehouse.write_disposition: merge, or on_null: exclude")
            if self.deletes and self.deletes.reconcile is not None:
                raise ProblemAt(("deletes", "reconcile"), "after reconciled deletes the next run "
                                "reads the rows at the cursor's last value again, and 'append' "
                                "would add them twice; set warehouse.write_disposition: merge, "
                                "or remove deletes.reconcile")
        declared = {c.name: base_type(c.type) for c in self.columns if c.type}
        kind = declared.get(lake_name(incremental.cursor))
        if incremental.lag_seconds and kind is not None:
            if kind not in (*NUMERIC, *TEMPORAL):
                raise ProblemAt((*at, "lag"), f"a look-back window has no meaning for cursor "
                                f"'{incremental.cursor}' (declared {kind}); remove lag")
            if kind in NUMERIC and isinstance(incremental.lag, str):
                raise ProblemAt((*at, "lag"), f"'{incremental.lag}' is a duration but cursor "
                                f"'{incremental.cursor}' is declared {kind}; give the "
                                "look-back in cursor units (lag: 100)")
        return self

    @model_validator(mode="after")
    def _columns_fit(self) -> PipelineSpec:
        keys = {*self.source.primary_key, *map(lake_name, self.source.primary_key)}
        for index, rule in enumerate(self.transform.pii):
            if rule.column in keys:
                raise ProblemAt(("transform", "pii", index, "column"), f"'{rule.column}' is in "
                                "source.primary_key; the warehouse merges on it, so it cannot "
                                f"be {rule.action}ed")
        if not self.columns:
            return self
        names = [c.name for c in self.columns]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ProblemAt(("columns", index, "name"), f"'{name}' is declared twice "
                                f"(columns[{names.index(name)}]); keep one")
        where = {name: index for index, name in enumerate(names)}
        for index, rule in enumerate(self.transform.pii):
            if rule.column in where:
                at = where[rule.column]
                raise ProblemAt(("transform", "pii", index, "column"), f"'{rule.column}' is "
                                f"declared in columns[{at}]; give its PII there (pii: "
                                f"{rule.action}) and remove it from transform.pii")
        for index, key in enumerate(self.source.primary_key):
            declared = where.get(lake_name(key))
            if declared is None:
                raise ProblemAt(("source", "primary_key", index), f"'{key}' is not declared in "
                                f"columns; declare every primary key column (- name: {key})")
            column = self.columns[declared]
            if "nullable" in column.model_fields_set and column.nullable:
                raise ProblemAt(("columns", declared, "nullable"), f"'{key}' is in "
                                "source.primary_key, which is never null; remove "
                                "'nullable: true'")
            if column.pii:
                raise ProblemAt(("columns", declared, "pii"), f"'{key}' is in "
                                "source.primary_key; the warehouse merges on it, so it cannot "
                                f"be {column.pii}ed (masked keys collide, hashed keys no "
                                "longer match the source)")
        return self

    @property
    def table(self) -> str:
        """Landing table name."""
        return self.warehouse.table or self.name

    @model_validator(mode="after")
    def _keys_readable(self) -> PipelineSpec:
        """Delete reconciliation reads every current key; a kind that cannot (an API without a
        full listing) says so in its spec model's `reads_keys`."""
        if self.deletes and self.deletes.reconcile is not None and \
                not getattr(type(self.source), "reads_keys", False):
            raise ProblemAt(("deletes", "reconcile"), f"source kind '{self.source.kind}' cannot "
                            "list every current key, so deletes cannot be reconciled; use "
                            "deletes.soft_delete_column, or remove deletes")
        return self

    @model_validator(mode="after")
    def _soft_deletes_merge(self) -> PipelineSpec:
        """A soft-deleted row leaves a merged table only: declared on another, the column did
        nothing, and the rows the source marked deleted stayed in the warehouse."""
        disposition = self.warehouse.write_disposition
        if self.deletes and self.deletes.soft_delete_column is not None and \
                disposition != WriteDisposition.merge:
            raise ProblemAt(("deletes", "soft_delete_column"), "a soft delete removes a row "
                            f"from a merged table only ('{disposition}' loads the rows the "
                            "source marks as any other); set warehouse.write_disposition: "
                            "merge, or filter them out in source.query")
        return self

    @property
    def cursor(self) -> str | None:
        """The cursor column of a kind with one (`source.incremental.cursor`), else None."""
        incremental = getattr(self.source, "incremental", None)
        return getattr(incremental, "cursor", None)

    @property
    def reads(self) -> str:
        """How a run finds new rows, in a few words: the cursor column, the kind's own way
        (`files`: new and changed files), or the whole source every run."""
        return self.cursor or getattr(self.source, "new_rows_by", None) or "(full refresh)"
