"""`columns:` declared once drive the Great Expectations suite, dbt's landing source and the
warehouse column types; the committed sources.yml is generated; spec errors are one line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from textwrap import dedent

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from framework.compiled import run_context
from framework.demo.shop import create_shop
from framework.errors import SpecErrors
from framework.onboarding.dbt_sources import render_sources, sources_path
from framework.project import Project
from framework.spec.columns import expectations, projection
from framework.spec.model import PipelineSpec
from tests.conftest import ROOT
from tests.e2e.helpers import cli, run_json

ORDERS = """\
name: orders
source:
  connection: shop
  table: orders
  primary_key: [order_id]
lake:
  path: orders
"""


def spec_of(text: str) -> PipelineSpec:
    return PipelineSpec.model_validate(yaml.safe_load(text))


def set_declaration(project: Path, pipeline: str, column: str, new: str) -> None:
    """Replace one column's line in `columns:` (the flow mapping that names it)."""
    path = project / "pipelines" / f"{pipeline}.yml"
    text, count = re.subn(rf"^  - \{{name: {column}, .*\}}$", f"  - {new}",
                          path.read_text(), flags=re.MULTILINE)
    assert count == 1, f"no one-line declaration of {column} in {path}"
    path.write_text(text)


def landing_type(warehouse: Path, table: str, column: str) -> str:
    con = duckdb.connect(str(warehouse))
    try:
        row = con.execute("SELECT data_type FROM information_schema.columns WHERE "
                          "table_schema = 'landing' AND table_name = ? AND column_name = ?",
                          [table, column]).fetchone()
    finally:
        con.close()
    assert row, f"landing.{table}.{column} does not exist"
    return str(row[0])


def source_tests(project: Path, table: str, column: str) -> dict[str, object]:
    sources = yaml.safe_load(sources_path(project / "dbt_ecommerce").read_text())
    [landing] = [s for s in sources["sources"] if s["name"] == "landing"]
    [entry] = [t for t in landing["tables"] if t["name"] == table]
    [found] = [c for c in entry["columns"] if c["name"] == column]
    return found


# -- one declaration, three enforcers -----------------------------------------------------------


def test_one_declaration_drives_the_checks_the_dbt_tests_and_the_warehouse_type(
        project_dir: Path, tmp_path: Path) -> None:
    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.005, seed=5)
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert source_tests(project_dir, "products", "product_photos_qty") == {
        "name": "product_photos_qty", "description": "Number of published product photos.",
        "data_type": "integer"}

    # 1. The type: integer -> bigint. The warehouse column and the dbt source follow.
    set_declaration(project_dir, "products", "product_photos_qty",
                    "{name: product_photos_qty, type: bigint, description: Photos.}")
    assert cli("dbt-sources").exit_code == 0
    first = run_json("--pipeline", "products", "--no-dbt")["products"]
    assert first["status"] == "success", first
    assert landing_type(warehouse, "products", "product_photos_qty") == "BIGINT"
    assert source_tests(project_dir, "products", "product_photos_qty")["data_type"] == "bigint"

    # 2. A rule: at most one photo, non-null. Great Expectations fails the batch, dbt tests it.
    set_declaration(project_dir, "products", "product_photos_qty",
                    "{name: product_photos_qty, type: bigint, nullable: false, max: 1}")
    assert cli("dbt-sources").exit_code == 0
    assert source_tests(project_dir, "products", "product_photos_qty")["data_tests"] == [
        "not_null", {"accepted_range": {"arguments": {"max_value": 1}}}]
    replayed = cli("replay", "--pipeline", "products", "--load-id", first["load_id"])
    assert replayed.exit_code == 1
    output = replayed.output.replace("\n", "")
    assert "fails validation now" in output and "column='product_photos_qty'" in output
    assert "it stays loaded as it was" in output  # its rows are in the warehouse

    # 3. A type changed after the table exists: the plan says the warehouse keeps its own.
    set_declaration(project_dir, "products", "product_photos_qty",
                    "{name: product_photos_qty, type: double}")
    planned = cli("plan", "--pipeline", "products", "--no-dbt", "--json")
    assert '"declared": "double"' in planned.stdout and '"warehouse": "BIGINT"' in planned.stdout


def test_declared_accepted_values_reach_great_expectations_and_dbt(project_dir: Path,
                                                                   tmp_path: Path) -> None:
    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.005, seed=5)
    set_declaration(project_dir, "customers", "customer_state",
                    "{name: customer_state, type: string, accepted_values: [SP]}")

    record = run_json("--pipeline", "customers", "--no-dbt")["customers"]

    assert record["status"] == "quarantined"
    assert "expect_column_values_to_be_in_set(column='customer_state', value_set=['SP'])" in \
        record["error"]
    assert cli("dbt-sources", "--check").exit_code == 1
    assert cli("dbt-sources").exit_code == 0
    assert source_tests(project_dir, "customers", "customer_state")["data_tests"] == [
        {"accepted_values": {"arguments": {"values": ["SP"]}}}]


# -- the generated sources.yml ------------------------------------------------------------------


def test_dbt_sources_committed_file_is_generated_from_the_pipelines() -> None:
    project = Project(ROOT)
    committed = sources_path(project.dbt_dir).read_text(encoding="utf-8")
    assert committed == render_sources(project.load_pipelines().values()), \
        "dbt_ecommerce/models/sources.yml is stale: run `framework dbt-sources`"


def test_dbt_sources_keeps_every_source_table_the_dbt_project_reads() -> None:
    """Every `source('landing', ...)` in the models and snapshots is a generated table."""
    dbt_dir = ROOT / "dbt_ecommerce"
    used = set()
    for path in [*dbt_dir.rglob("*.sql"), *dbt_dir.rglob("*.yml")]:
        used |= set(re.findall(r"source\(\s*'landing'\s*,\s*'(\w+)'\s*\)", path.read_text()))
    sources = yaml.safe_load(sources_path(dbt_dir).read_text())
    [landing] = sources["sources"]
    assert used and used <= {t["name"] for t in landing["tables"]}
    assert landing["schema"] == "landing"
    for table in landing["tables"]:
        assert {"_load_id", "_loaded_at"} <= {c["name"] for c in table["columns"]}


def test_dbt_sources_check_fails_when_stale(project_dir: Path) -> None:
    path = sources_path(project_dir / "dbt_ecommerce")
    path.write_text(path.read_text().replace("not_null", "unique", 1))

    stale = cli("dbt-sources", "--check")

    assert stale.exit_code == 1
    assert stale.output.strip() == ("error: dbt_ecommerce/models/sources.yml is out of date; "
                                    "run `framework dbt-sources`")
    assert cli("dbt-sources").exit_code == 0
    assert cli("dbt-sources", "--check").output.strip() == \
        "dbt_ecommerce/models/sources.yml is up to date"


# -- what the declarations imply ----------------------------------------------------------------


def test_columns_imply_the_key_rules_and_each_declared_rule() -> None:
    spec = spec_of(ORDERS.replace("primary_key: [order_id]", "primary_key: [order_id, line]") + dedent("""\
        columns:
          - {name: order_id, type: string, nullable: false}
          - {name: line, type: integer}
          - {name: status, type: string, nullable: false, accepted_values: [a, b]}
          - {name: total, type: "decimal(12, 2)", min: 0, max: 10}
          - {name: placed, type: timestamp, min: "2016-01-01"}
          - {name: email, type: string, pii: hash}
        """))
    assert [e.root for e in expectations(spec)] == [
        {"expect_column_values_to_not_be_null": {"column": "order_id"}},
        {"expect_column_values_to_not_be_null": {"column": "line"}},
        {"expect_compound_columns_to_be_unique": {"column_list": ["order_id", "line"]}},
        {"expect_column_values_to_not_be_null": {"column": "status"}},
        {"expect_column_values_to_be_in_set": {"column": "status", "value_set": ["a", "b"]}},
        {"expect_column_values_to_be_between": {"column": "total", "min_value": 0,
                                                "max_value": 10}},
        {"expect_column_values_to_be_between": {"column": "placed",
                                                "min_value": dt.datetime(2016, 1, 1)}},
    ]
    assert spec.columns[3].type == "decimal(12,2)"  # one spelling
    appended = spec_of(ORDERS + "warehouse: {write_disposition: append}\n"
                       "columns:\n  - {name: order_id, type: string}\n")
    from framework.spec.columns import dbt_tests

    assert dbt_tests(appended) == ({"order_id": ["not_null"]}, [])  # versions pile up
    declared = spec_of(ORDERS + "warehouse: {write_disposition: append}\n"
                       "columns:\n  - {name: order_id, type: string, unique: true}\n")
    assert dbt_tests(declared) == ({"order_id": ["not_null", "unique"]}, [])


def test_project_expectations_merge_implied_and_written(project_dir: Path) -> None:
    project = Project(project_dir)
    spec = project.pipeline("products")
    names = [(e.name, e.kwargs.get("column"), e.severity_or("error"))
             for e in project.expectations(spec)]
    assert names == [
        ("expect_column_values_to_not_be_null", "product_id", "error"),
        ("expect_column_values_to_be_unique", "product_id", "error"),
        ("expect_column_values_to_not_be_null", "updated_at", "error"),
        ("expect_column_values_to_be_between", "product_weight_g", "warn"),
    ]
    suite = project_dir / "quality" / "products.yml"
    suite.write_text("expectations:\n  - expect_column_values_to_be_unique: {column: product_id}\n"
                     "    severity: warn\n")
    severities = {(e.name, e.kwargs.get("column")): e.severity_or("error")
                  for e in project.expectations(spec)}
    assert severities[("expect_column_values_to_be_unique", "product_id")] == "warn"
    assert len([e for e in project.expectations(spec)
                if e.name == "expect_column_values_to_be_unique"]) == 1


# -- the transform casts, hashes, masks and drops -----------------------------------------------


def test_projection_casts_declared_columns_and_keeps_the_others(project_dir: Path,
                                                                tmp_path: Path) -> None:
    from framework.stages.transform import transform

    spec = spec_of(ORDERS + dedent("""\
        transform:
          sql: "SELECT order_id, amount, email, zip, secret, note FROM batch;"
        columns:
          - {name: amount, type: "decimal(10,2)"}
          - {name: order_id, type: bigint}
          - {name: email, type: string, pii: hash}
          - {name: zip, type: string, pii: mask}
          - {name: secret, type: string, pii: drop}
        """))
    project = Project(project_dir)
    ctx = run_context(project, project.target(None), spec)
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"order_id": ["7"], "amount": [1.234], "email": ["a@b.c"],
                             "zip": ["01310"], "secret": ["x"], "note": ["kept"]}), raw)

    output, rows = transform(ctx, "1.1", [str(raw)])

    table = pq.read_table(output)
    assert rows == 1
    assert table.column_names == ["amount", "order_id", "email", "zip", "note"]
    assert [str(f.type) for f in table.schema] == ["decimal128(10, 2)", "int64", "string",
                                                   "string", "string"]
    row = table.to_pylist()[0]
    assert row["order_id"] == 7 and str(row["amount"]) == "1.23" and row["note"] == "kept"
    assert len(row["email"]) == 64 and row["zip"] == "01***"
    assert "CAST(" in projection(spec, "SELECT 1", "spark") and "EXCEPT" in \
        projection(spec, "SELECT 1", "spark")


# -- spec errors --------------------------------------------------------------------------------


BASE = ORDERS
ERRORS = [
    pytest.param(
        "transform:\n  pii: [{column: email, action: hash}]\n"
        "columns:\n  - {name: order_id, type: string}\n  - {name: email, type: string, pii: mask}\n",
        "pipelines/orders.yml:9:18: transform.pii[0].column: 'email' is declared in columns[1]; "
        "give its PII there (pii: hash) and remove it from transform.pii",
        id="pii-in-both-places"),
    pytest.param(
        "columns:\n  - {name: order_id, type: string, nullable: true}\n",
        "pipelines/orders.yml:9:46: columns[0].nullable: 'order_id' is in source.primary_key, "
        "which is never null; remove 'nullable: true'",
        id="nullable-key"),
    pytest.param(
        "columns:\n  - {name: status, type: string}\n",
        "pipelines/orders.yml:5:17: source.primary_key[0]: 'order_id' is not declared in "
        "columns; declare every primary key column (- name: order_id)",
        id="undeclared-key"),
    pytest.param(
        "columns:\n  - {name: order_id, type: string}\n  - {name: total, type: integer, pii: hash}\n",
        "pipelines/orders.yml:10:25: columns[1].type: pii: hash makes text; declare "
        "'type: string'",
        id="hash-needs-string"),
    pytest.param(
        "columns:\n  - {name: order_id, type: string}\n  - {name: total, type: \"decimal(40,2)\"}\n",
        "pipelines/orders.yml:10:25: columns[1].type: decimal precision must be 1 to 38, got 40",
        id="decimal-precision"),
    pytest.param(
        "columns:\n  - {name: order_id, type: string}\n  - {name: total, type: integer, min: 5, max: 1}\n",
        "pipelines/orders.yml:10:47: columns[1].max: max (1) is below min (5)",
        id="min-above-max"),
    pytest.param(
        "columns:\n  - {name: order_id, type: string}\n  - {name: order_id, type: string}\n",
        "pipelines/orders.yml:10:12: columns[1].name: 'order_id' is declared twice "
        "(columns[0]); keep one",
        id="declared-twice"),
    pytest.param(
        "columns:\n  - {name: order_id, type: string, nulable: false}\n",
        "pipelines/orders.yml:9:36: columns[0].nulable: unknown key 'nulable' (did you mean "
        "'nullable'?)",
        id="unknown-key"),
]


@pytest.mark.parametrize("extra, expected", ERRORS)
def test_columns_spec_errors_are_one_located_line(project_dir: Path, extra: str,
                                                  expected: str) -> None:
    (project_dir / "pipelines" / "orders.yml").write_text(BASE + extra)
    with pytest.raises(SpecErrors) as raised:
        Project(project_dir).load_pipelines()
    assert [e.render() for e in raised.value.errors if e.path.endswith("orders.yml")] == \
        [expected]


def test_validate_format_github_prints_annotations(project_dir: Path) -> None:
    path = project_dir / "pipelines" / "orders.yml"
    path.write_text(path.read_text().replace("{name: order_approved_at, type: timestamp,",
                                             "{name: order_approved_at, type: datetime,"))

    result = cli("validate", "--format", "github")

    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(lines) == 1
    assert re.fullmatch(r"::error file=pipelines/orders\.yml,line=\d+,col=\d+::"
                        r"columns\[4\]\.type: 'datetime' does not match the pattern .*", lines[0])
    plain = cli("validate")
    assert plain.exit_code == 1 and "::error" not in plain.output


@pytest.mark.spark
def test_projection_gives_the_same_types_and_values_on_spark(project_dir: Path,
                                                             tmp_path: Path) -> None:
    from framework import spark as sparks
    from framework.errors import FrameworkError
    from framework.lake import PROCESSED
    from framework.stages.transform import transform
    from tests.conftest import service_unavailable

    project = Project(project_dir)
    target = project.target(None)
    try:
        sparks.session(target)
    except FrameworkError as exc:
        service_unavailable(str(exc))
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"order_id": ["7", "8"], "amount": [1.234, None],
                             "placed": ["2024-01-02 03:04:05.123456", None],
                             "email": ["a@b.c", None], "zip": ["01310", "2"],
                             "secret": ["x", "y"], "note": ["kept", None]}), raw)
    written = {}
    for engine in ("duckdb", "spark"):
        spec = spec_of(ORDERS + dedent(f"""\
            transform:
              engine: {engine}
              sql: SELECT * FROM batch
            columns:
              - {{name: order_id, type: bigint}}
              - {{name: amount, type: "decimal(10,2)"}}
              - {{name: placed, type: timestamp}}
              - {{name: email, type: string, pii: hash}}
              - {{name: zip, type: string, pii: mask}}
              - {{name: secret, type: string, pii: drop}}
            """))
        ctx = run_context(project, target, spec)
        load_id = f"1.{len(written)}"
        transform(ctx, load_id, [str(raw)])
        # Spark writes as many part files as the data needs: read the batch's files.
        files = ctx.lake.batch_files(PROCESSED, spec.lake.path, load_id)
        written[engine] = pa.concat_tables([pq.read_table(f) for f in files])
    duck, spark = written["duckdb"], written["spark"]
    assert duck.column_names == spark.column_names == ["order_id", "amount", "placed", "email",
                                                       "zip", "note"]
    assert [str(f.type) for f in spark.schema] == [str(f.type) for f in duck.schema] == [
        "int64", "decimal128(10, 2)", "timestamp[us]", "string", "string", "string"]
    assert spark.to_pylist() == duck.to_pylist()


def test_a_declared_column_the_transform_does_not_select_is_one_line(project_dir: Path,
                                                                     tmp_path: Path) -> None:
    from framework.errors import StageError
    from framework.stages.transform import transform

    spec = spec_of(ORDERS + dedent("""\
        transform:
          sql: SELECT order_id FROM batch
        columns:
          - {name: order_id, type: string}
          - {name: status, type: string}
        """))
    project = Project(project_dir)
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.table({"order_id": ["7"], "status": ["x"]}), raw)
    with pytest.raises(StageError) as raised:
        transform(run_context(project, project.target(None), spec), "1.1", [str(raw)])
    assert str(raised.value) == (
        "orders: transform: pipelines/orders.yml: transform.sql: column 'status' is declared in "
        "columns but not selected by the transform; select it or remove its declaration")
