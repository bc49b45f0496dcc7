"""The `sql` source kind in a pipeline file: a table or a query behind a named connection."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from framework.spec.base import Incremental, ProblemAt, SpecModel, no_duplicates


class Partitions(SpecModel):
    """How a full read of a large table is split into ranges read at the same time."""

    column: str | None = Field(
        default=None,
        description="Number, date or timestamp column whose range is split into `count` equal "
        "parts; omit to split the first `primary_key` column.",
        examples=["order_id", "created_at"],
    )
    count: PositiveInt = Field(
        le=64,
        description="Number of ranges read concurrently, each on its own connection, into one "
        "batch: either every part loads or none does.",
        examples=[4],
    )


class SqlSource(SpecModel):
    """Rows of a table or a query in a SQL database, through a named connection."""

    kind: Literal["sql"] = Field(
        default="sql",
        description="Source kind: `sql` (the default) reads a table or query through a "
        "connection in `sources/`.",
        examples=["sql"],
    )
    # Every current key can be read back, so `deletes.reconcile` works.
    reads_keys: ClassVar[bool] = True

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
        json_schema_extra={"uniqueItems": True},
    )
    incremental: Incremental | None = Field(
        default=None,
        description="Cursor settings for incremental extraction; omit for a full refresh on "
        "every run.",
        examples=[{"cursor": "updated_at", "lag": "10m"}],
    )

    partitions: Partitions | None = Field(
        default=None,
        description="Split a full read (the first run, a `--full-refresh`, every run of a "
        "pipeline without a cursor) into ranges of one column read concurrently. Incremental "
        "runs stay one cursor read. PostgreSQL only (the parts share one exported snapshot); "
        "other connections read in one pass.",
        examples=[{"column": "order_id", "count": 4}],
    )

    @property
    def partition_column(self) -> str | None:
        """The column a full read is split on, when the source declares partitions."""
        if self.partitions is None:
            return None
        return self.partitions.column or self.primary_key[0]

    @field_validator("primary_key")
    @classmethod
    def _unique_key(cls, value: list[str]) -> list[str]:
        return no_duplicates(value)

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if self.table is not None and self.query is not None:
            raise ProblemAt("query", "give 'table' or 'query', not both; remove one of them")
        if self.table is None and self.query is None:
            raise ValueError("missing 'table' or 'query'; name the source table (table: orders) "
                             "or give a SELECT (query: SELECT ...)")
        return self
