"""The pipeline file as typed, frozen data.

These models are the single source of truth for `pipeline.schema.json`: the schema is generated
from them (`framework schema`), and a test fails when the committed file drifts.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
DURATION_PATTERN = r"^\d+(\.\d+)?(us|ms|s|m|h|d)$"
AIRFLOW_PRESETS = frozenset(
    {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
)
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class _Model(BaseModel):
    """Unknown keys are errors and a loaded spec never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)


class NullCursorPolicy(str, Enum):
    include = "include"
    exclude = "exclude"
    fail = "fail"


class Incremental(_Model):
    """How new and changed rows are found: a cursor column that only grows."""

    cursor: str = Field(
        description="Column that the source sets on every insert and update; rows above the last "
        "run's maximum (minus `lag`) are extracted.",
        examples=["updated_at"],
    )
    initial_value: str | int | None = Field(
        default=None,
        description="Cursor value the first run starts from (ISO timestamp or number); "
        "omit to take every row.",
        examples=["2016-01-01T00:00:00"],
    )
    lag: Annotated[float, Field(ge=0)] | Annotated[str, StringConstraints(pattern=DURATION_PATTERN)] = Field(
        default=0,
        description="Look-back window re-read on every run to catch rows committed late at the "
        "cursor boundary: seconds, or a duration such as `10m`, `2h`, `1d`. "
        "Re-read rows are de-duplicated on the primary key.",
        examples=["10m", 0],
    )
    on_null: NullCursorPolicy = Field(
        default=NullCursorPolicy.fail,
        description="What to do with a row whose cursor is NULL: `include` it in every run, "
        "`exclude` it, or `fail` the run naming the row.",
        examples=["fail"],
    )

    @property
    def lag_seconds(self) -> float:
        if isinstance(self.lag, str):
            number, unit = re.match(r"^([\d.]+)(\w+)$", self.lag).groups()  # type: ignore[union-attr]
            return float(number) * _DURATION_UNITS[unit]
        return float(self.lag)


class Source(_Model):
    """Where rows come from: a named connection and a table or a query."""

    connection: str = Field(
        description="Name of a connection defined in `sources/<name>.yml`.", examples=["shop"]
    )
    table: str | None = Field(
        default=None,
        description="Source table (or view) to read. Give `table` or `query`, not both.",
        examples=["orders"],
    )
    query: str | None = Field(
        default=None,
        description="SELECT statement to read instead of a table; the cursor filter is applied "
        "around it.",
        examples=["SELECT * FROM orders WHERE order_status <> 'test'"],
    )
    db_schema: str | None = Field(
        default=None,
        alias="schema",
        description="Database schema of `table`, when not the connection's default.",
        examples=["public"],
    )
    primary_key: list[str] = Field(
        min_length=1,
        description="Column(s) that identify a row; the warehouse merges on them.",
        examples=[["order_id"], ["order_id", "order_item_id"]],
    )
    incremental: Incremental | None = Field(
        default=None,
        description="Cursor settings for incremental extraction; omit for a full refresh on "
        "every run.",
        examples=[{"cursor": "updated_at", "lag": "10m"}],
    )

    @model_validator(mode="after")
    def _table_or_query(self) -> Source:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class LakeFormat(str, Enum):
    parquet = "parquet"


class Lake(_Model):
    """Where batches are kept in the lake: `raw/<path>/`, `processed/<path>/`, `quarantine/<path>/`."""

    path: str = Field(
        pattern=NAME_PATTERN,
        description="Folder under each lake zone that holds this table's batches.",
        examples=["orders"],
    )
    format: LakeFormat = Field(
        default=LakeFormat.parquet, description="File format of the batches.", examples=["parquet"]
    )


class PiiAction(str, Enum):
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


class Engine(str, Enum):
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
            raise ValueError("give 'sql' or 'sql_file', not both")
        return self


class Severity(str, Enum):
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
            "maxProperties": 2,
        },
    )

    @property
    def name(self) -> str:
        return next(k for k in self.root if k != "severity")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.root[self.name])

    def severity_or(self, default: str) -> str:
        return str(self.root.get("severity", default))


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


class WriteDisposition(str, Enum):
    merge = "merge"
    append = "append"
    replace = "replace"


class Contract(str, Enum):
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

    select: list[str] = Field(
        min_length=1,
        description="dbt selection built after a load: model names with graph operators, "
        "`tag:...`, `path:...`.",
        examples=[["stg_orders+"], ["tag:orders"]],
    )

    @field_validator("select", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class PipelineSpec(_Model):
    """One table's way from the source to the marts."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        use_enum_values=True,
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
    )
    schedule: str | None = Field(
        default=None,
        description="Cron expression (five fields) or an Airflow preset such as `@daily`; "
        "used by the Airflow DAG factory.",
        examples=["0 * * * *", "@daily"],
    )
    source: Source = Field(description="Where the rows come from.")
    lake: Lake = Field(description="Where batches are kept in the lake.")
    transform: Transform = Field(
        default_factory=Transform, description="How a raw batch becomes a processed batch."
    )
    quality: Quality = Field(
        default_factory=Quality, description="Checks a processed batch must pass."
    )
    warehouse: Warehouse = Field(
        default_factory=Warehouse, description="Landing table the batch is loaded into."
    )
    dbt: Dbt | None = Field(default=None, description="dbt models to build after the load.")

    @field_validator("schedule")
    @classmethod
    def _schedule_is_cron(cls, value: str | None) -> str | None:
        if value is None or value in AIRFLOW_PRESETS:
            return value
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a five-field cron expression or one of "
                             f"{', '.join(sorted(AIRFLOW_PRESETS))}")
        return value

    @property
    def table(self) -> str:
        """Landing table name."""
        return self.warehouse.table or self.name

    @property
    def cursor(self) -> str | None:
        return self.source.incremental.cursor if self.source.incremental else None
