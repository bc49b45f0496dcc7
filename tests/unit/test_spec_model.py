"""The pipeline spec model: frozen, with the documented defaults and helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from framework.spec.loader import load_spec
from framework.spec.model import Dbt, Expectation, Incremental, PipelineSpec

ROOT = Path(__file__).resolve().parents[2]


def minimal(**extra: Any) -> PipelineSpec:
    data: dict[str, Any] = {
        "name": "orders",
        "source": {"connection": "shop", "table": "orders", "primary_key": ["order_id"]},
        "lake": {"path": "orders"},
    }
    return PipelineSpec.model_validate({**data, **extra})


def test_spec_model_is_frozen() -> None:
    spec: Any = minimal()  # Any: assigning is what is being tested
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "customers"
    with pytest.raises(ValidationError, match="frozen"):
        spec.source.table = "customers"
    with pytest.raises(ValidationError, match="frozen"):
        spec.warehouse.write_disposition = "append"
    with pytest.raises(ValidationError, match="frozen"):
        spec.source.incremental = None
    assert spec.name == "orders" and spec.source.table == "orders"


def test_spec_model_defaults() -> None:
    spec = minimal()
    assert spec.warehouse.db_schema == "landing"
    assert spec.warehouse.table is None
    assert spec.table == "orders"
    assert spec.warehouse.write_disposition == "merge"
    assert spec.warehouse.contract == "evolve"
    assert spec.quality.severity == "error"
    assert spec.quality.suite is None
    assert spec.quality.expectations == []
    assert spec.transform.engine == "duckdb"
    assert spec.transform.sql is None and spec.transform.sql_file is None
    assert spec.transform.pii == []
    assert spec.lake.format == "parquet"
    assert spec.source.incremental is None
    assert spec.cursor is None
    assert spec.dbt is None
    assert spec.depends_on == [] and spec.tags == []
    assert spec.owner == "data-platform" and spec.description == ""
    assert spec.schedule is None


def test_spec_model_enum_values_are_plain_strings() -> None:
    spec = minimal(warehouse={"write_disposition": "append"})
    assert spec.warehouse.write_disposition == "append"
    assert type(spec.warehouse.write_disposition) is str
    assert type(spec.transform.engine) is str


def test_spec_model_table_defaults_to_name_unless_given() -> None:
    assert minimal().table == "orders"
    assert minimal(warehouse={"table": "orders_landing"}).table == "orders_landing"


def test_spec_model_warehouse_schema_key() -> None:
    spec = minimal(warehouse={"schema": "raw_landing"})
    assert spec.warehouse.db_schema == "raw_landing"


def test_spec_model_cursor() -> None:
    spec = minimal(source={"connection": "shop", "table": "orders", "primary_key": ["order_id"],
                           "incremental": {"cursor": "updated_at"}})
    assert spec.cursor == "updated_at"
    assert spec.source.incremental is not None
    assert spec.source.incremental.on_null == "fail"
    assert spec.source.incremental.initial_value is None


@pytest.mark.parametrize(("lag", "seconds"), [
    ("10m", 600.0), (30, 30.0), (0, 0.0), (2.5, 2.5), ("2h", 7200.0), ("1d", 86400.0),
    ("45s", 45.0), ("250ms", 0.25), ("1.5h", 5400.0), ("500us", 0.0005),
])
def test_spec_model_lag_seconds(lag: str | float, seconds: float) -> None:
    assert Incremental(cursor="updated_at", lag=lag).lag_seconds == pytest.approx(seconds)


def test_spec_model_lag_defaults_to_zero() -> None:
    assert Incremental(cursor="updated_at").lag_seconds == 0.0


@pytest.mark.parametrize("lag", ["10 minutes", "m10", "-5", -1])
def test_spec_model_lag_rejects(lag: str | float) -> None:
    with pytest.raises(ValidationError):
        Incremental(cursor="updated_at", lag=lag)


def test_spec_model_dbt_select_accepts_a_string() -> None:
    assert Dbt.model_validate({"select": "stg_orders+"}).select == ["stg_orders+"]
    assert Dbt(select=["stg_orders+", "tag:orders"]).select == ["stg_orders+", "tag:orders"]
    assert minimal(dbt={"select": "tag:orders"}).dbt == Dbt(select=["tag:orders"])


def test_spec_model_dbt_select_not_empty() -> None:
    with pytest.raises(ValidationError):
        Dbt(select=[])


def test_spec_model_expectation_name_kwargs_severity() -> None:
    expectation = Expectation.model_validate(
        {"expect_column_values_to_be_between": {"column": "price", "min_value": 0},
         "severity": "warn"})
    assert expectation.name == "expect_column_values_to_be_between"
    assert expectation.kwargs == {"column": "price", "min_value": 0}
    assert expectation.severity_or("error") == "warn"


def test_spec_model_expectation_severity_defaults_to_the_suite() -> None:
    expectation = Expectation.model_validate({"expect_column_values_to_be_unique": {"column": "a"}})
    assert expectation.name == "expect_column_values_to_be_unique"
    assert expectation.severity_or("error") == "error"
    assert expectation.severity_or("warn") == "warn"


def test_spec_model_expectation_kwargs_is_a_copy() -> None:
    expectation = Expectation.model_validate({"expect_column_values_to_be_unique": {"column": "a"}})
    expectation.kwargs["column"] = "b"
    assert expectation.kwargs == {"column": "a"}


@pytest.mark.parametrize(("item", "message"), [
    ({"severity": "warn"}, "'severity' alone is not an expectation"),
    ({"expect_a": {}, "expect_b": {}}, "a second expectation in the same list item"),
    ({"column_values_unique": {}}, "is not an expectation name"),
    ({"expect_a": [1]}, "the arguments must be a mapping"),
    ({"expect_a": {}, "severity": "fatal"}, "'fatal' is not one of: error, warn"),
    ("expect_a", "an expectation maps its name to its arguments"),
])
def test_spec_model_expectation_rejects(item: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Expectation.model_validate(item)


def test_spec_model_quality_expectations() -> None:
    spec = minimal(quality={"severity": "warn", "expectations": [
        {"expect_column_values_to_not_be_null": {"column": "order_id"}}]})
    assert spec.quality.severity == "warn"
    assert [e.name for e in spec.quality.expectations] == ["expect_column_values_to_not_be_null"]


@pytest.mark.parametrize("schedule", ["@daily", "@hourly", "*/15 * * * *", "0 3 * * 1-5"])
def test_spec_model_schedule_accepts(schedule: str) -> None:
    assert minimal(schedule=schedule).schedule == schedule


@pytest.mark.parametrize("schedule", ["@dayly", "61 * * * *", "0 0 * * * *", "daily"])
def test_spec_model_schedule_rejects(schedule: str) -> None:
    with pytest.raises(ValidationError):
        minimal(schedule=schedule)


def test_spec_model_table_or_query() -> None:
    query = {"connection": "shop", "query": "SELECT 1 AS id", "primary_key": ["id"]}
    assert minimal(source=query).source.table is None
    with pytest.raises(ValidationError, match="not both"):
        minimal(source={**query, "table": "orders"})
    with pytest.raises(ValidationError, match="missing 'table' or 'query'"):
        minimal(source={"connection": "shop", "primary_key": ["id"]})


def test_spec_model_forbids_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        minimal(retries=3)


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yml")),
                         ids=lambda p: p.stem)
def test_spec_model_loads_shipped_pipeline(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.table == spec.warehouse.table or spec.table == spec.name
