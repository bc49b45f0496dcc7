"""The Spark transform engine: parity with DuckDB, errors, configuration, end to end.

One SparkSession serves the whole module (`framework.spark` keeps one per process; the
`spark` fixture starts it once and stops it at the end).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from framework import spark as sparks
from framework.compiled import run_context
from framework.compiled.sql import transform_sql
from framework.context import RunContext
from framework.demo.shop import create_shop
from framework.errors import FrameworkError, StageError
from framework.lake import PROCESSED, RAW
from framework.project import Project
from framework.settings.targets import build_target
from framework.spec.model import PiiRule, PipelineSpec
from framework.stages.transform.duckdb_engine import DuckDBEngine
from framework.stages.transform.spark_engine import SparkEngine, portable_sql
from tests.conftest import ROOT, copy_project, service_unavailable
from tests.e2e.helpers import run_json

pytestmark = pytest.mark.spark

SQL_FILES = sorted(p.name for p in (ROOT / "pipelines" / "sql").glob("*.sql"))
ITEM_COLUMNS = ("order_id, order_item_id, product_id, seller_id, shipping_limit_date, price, "
                "freight_value, updated_at")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The module's one SparkSession (the local target: local[*])."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        service_unavailable(f"pyspark is not installed ({exc}); add the 'spark' extra")
    target = build_target("local", {"lake": {"url": str(tmp_path_factory.mktemp("lake"))},
                                    "warehouse": {"path": "unused.duckdb"}})
    try:
        session = sparks.session(target)
    except FrameworkError as exc:
        service_unavailable(str(exc))
    yield session
    sparks.stop()


@dataclass
class Batch:
    ctx: RunContext
    sql: str
    files: list[str]


@pytest.fixture(scope="module")
def batches(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Batch]:
    """One raw batch per shipped SQL file, extracted by dlt from the demo shop."""
    tmp = tmp_path_factory.mktemp("shop")
    root = copy_project(tmp / "project")
    with pytest.MonkeyPatch.context() as env:
        for name in ("SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "FRAMEWORK_TARGET"):
            env.delenv(name, raising=False)
        env.setenv("FRAMEWORK_PROJECT_DIR", str(root))
        env.setenv("FRAMEWORK_STATE_DIR", str(tmp / "state"))
        (tmp / "state").mkdir()
        create_shop(f"sqlite:///{tmp / 'state' / 'shop.db'}", scale=0.005, seed=7)
        project = Project.discover()
        from framework.stages.extract import extract

        found: dict[str, Batch] = {}
        for sql_file in SQL_FILES:
            spec = _pipeline_using(project, f"sql/{sql_file}")
            ctx = run_context(project, project.target(), spec)
            load_id = extract(ctx).load_id
            assert load_id, spec.name
            found[sql_file] = Batch(ctx, project.transform_sql(spec) or "",
                                    ctx.lake.raw_batches(spec.lake.path)[load_id])
    return found


def _pipeline_using(project: Project, sql_file: str) -> PipelineSpec:
    specs = [s for s in project.load_pipelines().values() if s.transform.sql_file == sql_file]
    assert specs, f"no pipeline uses {sql_file}"
    return min(specs, key=lambda s: s.transform.engine != "duckdb")


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    # The Spark variant ships as an example so `run --all` needs no Java; onboard it here.
    shutil.copy(project_dir / "pipelines" / "examples" / "order_items_spark.yml",
                project_dir / "pipelines" / "order_items_spark.yml")
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    (tmp_path / "state").mkdir(exist_ok=True)
    create_shop(url, scale=0.005, seed=7)
    return url


def with_spec(ctx: RunContext, **transform: Any) -> RunContext:
    """`ctx` with its spec's transform changed, its SQL compiled again (no file read: the
    tests pass their SQL to the engines)."""
    spec = ctx.spec.model_copy(update={
        "name": "order_items_spark",
        "transform": ctx.spec.transform.model_copy(update=transform)})
    file = ROOT / "pipelines" / (spec.transform.sql_file or "-")
    written = file.read_text() if file.is_file() else spec.transform.sql
    return RunContext(replace(ctx.compiled, spec=spec, sql=transform_sql(spec, written)))


def both_engines(ctx: RunContext, sql: str, files: list[str], out: Path
                 ) -> tuple[pa.Table, pa.Table]:
    rows = {}
    # What compile gives each engine for this SQL and the spec's transform.pii (the tests'
    # batches are not the declared columns' shape: no projection, as the engines never had).
    compiled = transform_sql(ctx.spec.model_copy(update={"columns": []}), sql)
    for name, engine in (("duckdb", DuckDBEngine()), ("spark", SparkEngine())):
        path = out / f"{type(engine).__name__}.parquet"
        rows[type(engine).__name__] = engine.run(ctx, compiled.for_engine(name), files, str(path))
    duck = pq.read_table(out / "DuckDBEngine.parquet")
    spark_ = read_parts(out / "SparkEngine.parquet")
    assert rows["DuckDBEngine"] == rows["SparkEngine"] == duck.num_rows == spark_.num_rows
    return duck, spark_


def parts_of(output: Path) -> list[Path]:
    """The files Spark wrote for `output`: its parts `<stem>.<NNNNN>.parquet`."""
    return sorted(output.parent.glob(f"{output.stem}.[0-9][0-9][0-9][0-9][0-9].parquet"))


def read_parts(output: Path) -> pa.Table:
    parts = parts_of(output)
    assert parts and not output.exists(), list(output.parent.iterdir())
    return pa.concat_tables(pq.read_table(p) for p in parts)


def assert_same_table(duck: pa.Table, spark_: pa.Table) -> None:
    """Same column names and Arrow types (nullability flags aside), same rows in any order."""
    assert [(f.name, f.type) for f in spark_.schema] == [(f.name, f.type) for f in duck.schema]
    plain = pa.schema([pa.field(f.name, f.type) for f in duck.schema])
    keys = [(c, "ascending") for c in duck.column_names]
    assert spark_.cast(plain).sort_by(keys).equals(duck.cast(plain).sort_by(keys))


# -- parity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql_file", SQL_FILES)
def test_spark_and_duckdb_write_the_same_batch(sql_file: str, batches: dict[str, Batch],
                                               tmp_path: Path) -> None:
    batch = batches[sql_file]

    duck, spark_ = both_engines(batch.ctx, batch.sql, batch.files, tmp_path)

    assert duck.num_rows > 0
    assert_same_table(duck, spark_)
    timestamps = [f.name for f in duck.schema if pa.types.is_timestamp(f.type)]
    assert timestamps and {spark_.schema.field(n).type for n in timestamps} == {pa.timestamp("us")}


def test_pii_rules_give_identical_values(batches: dict[str, Batch], tmp_path: Path) -> None:
    batch = batches["customers.sql"]
    ctx = with_spec(batch.ctx, pii=[PiiRule(column="customer_unique_id", action="hash"),
                                    PiiRule(column="customer_zip_code_prefix", action="mask"),
                                    PiiRule(column="customer_city", action="drop")])

    duck, spark_ = both_engines(ctx, batch.sql, batch.files, tmp_path)

    assert_same_table(duck, spark_)
    assert "customer_city" not in spark_.column_names
    assert spark_.column_names.index("customer_zip_code_prefix") == 2  # kept in place
    assert all(len(v) == 64 for v in spark_["customer_unique_id"].to_pylist())
    assert all(v.endswith("***") for v in spark_["customer_zip_code_prefix"].to_pylist())


def test_pii_on_every_column_type_and_nulls(spark: Any, batches: dict[str, Batch],
                                            tmp_path: Path) -> None:
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.table({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "email": ["alice@example.com", None, "b", ""],
        "zip": ["01234", "9", None, "12"],
        "seen_at": pa.array([1_500_000_000_123_456, 1_500_000_000_000_000, None, 0],
                            pa.timestamp("us")),
        "amount": pa.array([1, 2, None, 3], pa.decimal128(12, 2)),
        "visits": pa.array([10, None, -5, 0], pa.int32()),
        "score": [1.5, 0.1, None, 2.0],
    }), raw)
    ctx = with_spec(batches["order_items.sql"].ctx, pii=[
        PiiRule(column="email", action="hash"), PiiRule(column="zip", action="mask"),
        PiiRule(column="seen_at", action="hash"), PiiRule(column="amount", action="mask"),
        PiiRule(column="visits", action="hash"), PiiRule(column="score", action="drop")])

    duck, spark_ = both_engines(ctx, "SELECT * FROM batch", [str(raw)], tmp_path)

    assert_same_table(duck, spark_)
    assert spark_.column_names == ["id", "email", "zip", "seen_at", "amount", "visits"]


def test_pii_on_hostile_column_names_is_the_same_on_both_engines(
        spark: Any, project_dir: Path, tmp_path: Path) -> None:
    """Names with quotes of either engine, spaces, semicolons and reserved words are quoted by
    each engine's rules: DuckDB's EXCLUDE/REPLACE and Spark's projection agree."""
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.table({
        "order": pa.array([1, 2, 3], pa.int64()),
        "my col": ["alice", None, "bob"],
        "a;b": ["01234", "9", None],
        'x"y': ["drop", "me", "now"],
        "a`b": ["tick", "tock", None],
        "select": ["s1", "s2", "s3"],
    }), raw)
    project = Project.discover()
    base = project.pipeline("order_items")
    ctx = with_spec(run_context(project, project.target(), base), sql_file=None, pii=[
        PiiRule(column="my col", action="hash"), PiiRule(column="a;b", action="mask"),
        PiiRule(column='x"y', action="drop"), PiiRule(column="a`b", action="hash")])
    (tmp_path / "out").mkdir()

    duck, spark_ = both_engines(ctx, "SELECT * FROM batch", [str(raw)], tmp_path / "out")

    assert_same_table(duck, spark_)
    assert spark_.column_names == ["order", "my col", "a;b", "a`b", "select"]
    assert spark_["a;b"].to_pylist() == ["01***", "9", None]
    assert spark_["select"].to_pylist() == ["s1", "s2", "s3"]


def test_duckdb_varchar_runs_on_spark_as_string() -> None:
    sql = "SELECT CAST(a AS VARCHAR), CAST(b AS varchar(5)), 'AS VARCHAR' AS `varchar` -- VARCHAR"

    assert portable_sql(sql) == ("SELECT CAST(a AS STRING), CAST(b AS varchar(5)), 'AS VARCHAR' "
                                 "AS `varchar` -- VARCHAR")


# -- errors ------------------------------------------------------------------------------------


def test_a_missing_column_is_one_line_naming_the_sql_file(batches: dict[str, Batch],
                                                           tmp_path: Path) -> None:
    batch = batches["order_items.sql"]
    ctx = with_spec(batch.ctx, sql_file="sql/x.sql")
    output = tmp_path / "processed" / "1.parquet"

    with pytest.raises(StageError) as caught:
        SparkEngine().run(ctx, "SELECT order_id, foo FROM batch", batch.files, str(output))

    assert str(caught.value) == ("order_items_spark: transform: pipelines/sql/x.sql: "
                                 "column 'foo' does not exist in the batch")
    assert all(Path(f).is_file() for f in batch.files)
    assert list(tmp_path.iterdir()) == []  # no output, not even a staging folder


@pytest.mark.parametrize(("sql", "message"), [
    ("SELEC order_id FROM batch", "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'."),
    ("SELECT CAST(order_id AS INTEGER) AS n FROM batch", "[CAST_INVALID_INPUT] The value '"),
])
def test_other_spark_errors_are_one_line(sql: str, message: str, batches: dict[str, Batch],
                                         tmp_path: Path) -> None:
    batch = batches["order_items.sql"]
    ctx = with_spec(batch.ctx, sql_file=None, sql=sql)

    with pytest.raises(StageError) as caught:
        SparkEngine().run(ctx, sql, batch.files, str(tmp_path / "out.parquet"))

    text = str(caught.value)
    assert text.startswith("order_items_spark: transform: pipelines/order_items_spark.yml: "
                           f"transform.sql: {message}")
    assert "\n" not in text and "SQLSTATE" not in text
    assert list(tmp_path.iterdir()) == []


# -- validate on Spark: counted in one aggregation, GX only for the rest ------------------------


def spark_parts_ctx(tmp_path: Path, expectations: list[dict[str, Any]]
                    ) -> tuple[RunContext, RunContext, list[str]]:
    """The unit test's batch (tests/unit/test_validate_sql.py) as two part files, and a context
    on each engine."""
    from tests.unit.test_validate_sql import ROWS, context

    duck = context(tmp_path, expectations)
    spark_ctx = RunContext(replace(duck.compiled, spec=duck.spec.model_copy(update={
        "transform": duck.spec.transform.model_copy(update={"engine": "spark"})})))
    schema = pa.schema([("order_id", pa.string()), ("item", pa.int64()), ("status", pa.string()),
                        ("price", pa.decimal128(12, 2))])
    files = []
    for index, rows in enumerate((ROWS[:2], ROWS[2:])):
        path = tmp_path / f"1.1.{index:05d}.parquet"
        pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows],
                                            schema=schema), path)
        files.append(str(path))
    return duck, spark_ctx, files


def sample(message: str) -> list[str]:
    """The values a failure message shows (`e.g. [...]`), sorted."""
    shown = eval(message.split("e.g. ")[1], {"__builtins__": {}, "Decimal": Decimal})
    return sorted(map(str, shown))


def test_spark_counts_what_duckdb_counts_in_one_job_without_gx(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework import spark_validate
    from framework.stages.validate import validate
    from tests.unit.test_validate_sql import EXPECTATIONS, counts

    duck, spark_ctx, files = spark_parts_ctx(tmp_path, EXPECTATIONS)

    def no_gx(*args: Any) -> None:
        raise AssertionError("Great Expectations ran for an expectation Spark counts itself")

    monkeypatch.setattr(spark_validate, "_collect", no_gx)
    on_spark = validate(spark_ctx, files)
    on_duckdb = validate(duck, files)

    assert on_spark.checked == on_duckdb.checked == len(EXPECTATIONS)
    assert counts(on_spark.errors) == counts(on_duckdb.errors) == [
        ("expect_column_values_to_not_be_null", 1),
        ("expect_column_values_to_be_between", 2),
        ("expect_column_values_to_be_in_set", 1),
        ("expect_compound_columns_to_be_unique", 2),
        ("expect_column_values_to_be_unique", 4),
    ]
    # Same samples, in any order (the two engines read the parts in their own order).
    assert list(map(sample, on_spark.errors)) == list(map(sample, on_duckdb.errors))


def test_spark_hands_only_the_other_expectations_to_gx_as_a_spark_dataframe(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework import spark_validate
    from framework.stages.validate import validate

    expectations = [
        {"expect_column_values_to_not_be_null": {"column": "order_id"}},
        {"expect_column_values_to_match_regex": {"column": "status", "regex": "^pa"}},
        {"expect_column_values_to_be_between": {"column": "item", "min_value": 1}},
        {"expect_table_row_count_to_be_between": {"min_value": 10}, "severity": "warn"},
    ]
    _, spark_ctx, files = spark_parts_ctx(tmp_path, expectations)
    seen: list[tuple[str, list[int]]] = []
    real = spark_validate._collect

    def spy(ctx: RunContext, chosen: Any, indexes: list[int], frame: Any, failures: Any) -> None:
        seen.append((type(frame).__module__, indexes))
        real(ctx, chosen, indexes, frame, failures)

    monkeypatch.setattr(spark_validate, "_collect", spy)
    outcome = validate(spark_ctx, files)

    # [0] is the key's `item` not-null check, there whatever is written (framework/project.py)
    assert [(module.split(".")[0], indexes) for module, indexes in seen] == [("pyspark", [2, 4])]
    assert outcome.errors == [
        ("expect_column_values_to_not_be_null(column='order_id') failed: 1 unexpected value(s), "
         "e.g. [None]"),
        ("expect_column_values_to_match_regex(column='status', regex='^pa') failed: "
         "1 unexpected value(s), e.g. ['lost']"),
    ]
    assert outcome.warnings == [
        "expect_table_row_count_to_be_between(min_value=10) failed: observed 5"]


def test_a_missing_column_names_its_expectation_on_spark(spark: Any, tmp_path: Path) -> None:
    from framework.stages.validate import validate

    _, spark_ctx, files = spark_parts_ctx(tmp_path, [
        {"expect_column_values_to_not_be_null": {"column": "order_id"}},
        {"expect_column_values_to_not_be_null": {"column": "updated_at"}}])

    with pytest.raises(StageError) as caught:
        validate(spark_ctx, files)

    text = str(caught.value)
    assert text.startswith("items: validate: expect_column_values_to_not_be_null("
                           "column='updated_at'): [UNRESOLVED_COLUMN"), text
    assert "\n" not in text


# -- end to end ----------------------------------------------------------------------------------


def landed_items(warehouse: Path, table: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return sorted(con.execute(f"SELECT {ITEM_COLUMNS} FROM landing.{table}").fetchall())
    finally:
        con.close()


def source_items(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    items = sa.Table("order_items", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*(items.c[c.strip()] for c in ITEM_COLUMNS.split(",")))).all()
    engine.dispose()
    return sorted(tuple(r) for r in rows)


@pytest.fixture
def records_per_file(spark: Any) -> Iterator[int]:
    """Spark writes at most this many rows per file (the session's setting, put back after)."""
    key = "spark.sql.files.maxRecordsPerFile"
    before = spark.conf.get(key)
    spark.conf.set(key, "100")
    yield 100
    spark.conf.set(key, before)


def test_order_items_spark_runs_end_to_end_through_the_cli(spark: Any, shop: str,
                                                           records_per_file: int,
                                                           tmp_path: Path) -> None:
    records = run_json("--pipeline", "order_items_spark", "--no-dbt")

    record = records["order_items_spark"]
    assert record["status"] == "success", record["error"]
    assert record["rows_extracted"] == record["rows_processed"] == record["rows_loaded"] > 0
    assert landed_items(tmp_path / "state" / "warehouse.duckdb", "order_items_spark") \
        == source_items(shop)
    # As many files as the data needs: here at most 100 rows each, numbered from 00000.
    processed = tmp_path / "state" / "lake" / "processed" / "order_items_spark"
    parts = sorted(p.name for p in processed.iterdir())
    assert len(parts) == -(-record["rows_loaded"] // records_per_file) > 1
    assert parts == [f"{record['load_id']}.{i:05d}.parquet" for i in range(len(parts))]
    assert sparks.active() is spark  # the module's session, not a new one


def test_a_bad_column_fails_in_one_line_and_the_batch_replays(spark: Any, shop: str,
                                                              project_dir: Path,
                                                              tmp_path: Path) -> None:
    pipeline = project_dir / "pipelines" / "order_items_spark.yml"
    pipeline.write_text(pipeline.read_text().replace("sql/order_items.sql", "sql/items_v2.sql"))
    good = (project_dir / "pipelines" / "sql" / "order_items.sql").read_text()
    sql = project_dir / "pipelines" / "sql" / "items_v2.sql"
    sql.write_text(good.replace("    seller_id,", "    seller_idd AS seller_id,"))

    failed = run_json("--pipeline", "order_items_spark", "--no-dbt")["order_items_spark"]

    assert failed["status"] == "failed"
    assert failed["error"] == ("order_items_spark: transform: pipelines/sql/items_v2.sql: "
                               "column 'seller_idd' does not exist in the batch")
    lake = tmp_path / "state" / "lake"
    assert list((lake / RAW / "order_items_spark").glob(f"{failed['load_id']}.*.parquet"))
    assert not (lake / PROCESSED / "order_items_spark").exists() or \
        not list((lake / PROCESSED / "order_items_spark").iterdir())

    sql.write_text(good)
    replayed = run_json("--pipeline", "order_items_spark", "--no-dbt")["order_items_spark"]

    assert replayed["status"] == "success", replayed["error"]
    assert replayed["load_ids"] == [failed["load_id"]]  # the batch from the lake, not the source
    assert landed_items(tmp_path / "state" / "warehouse.duckdb", "order_items_spark") \
        == source_items(shop)


# -- an S3 lake with a local master: staged through local files ---------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_unavailable(f"moto[server] is not installed ({exc})")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_an_s3_lake_in_local_mode_goes_through_local_files(
        spark: Any, s3_endpoint: str, batches: dict[str, Batch], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from framework.stages.validate import validate

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret"}
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **keys
                 ).create_bucket(Bucket="lake")
    target = build_target("s3", {
        "lake": {"url": "s3://lake/root", "endpoint_url": s3_endpoint, "region": "us-east-1",
                 "access_key_id": "testing", "secret_access_key": "testing-secret"},
        "warehouse": {"path": str(tmp_path / "w.duckdb")}})
    local = batches["order_items.sql"]
    ctx = RunContext(replace(with_spec(local.ctx, engine="spark").compiled, target=target))
    raw = []
    for file in local.files:
        url = ctx.lake.uri(RAW, "order_items_spark", os.path.basename(file))
        ctx.lake.fs.put(file, url.removeprefix("s3://"))
        raw.append(url)
    output = ctx.lake.batch_file(PROCESSED, "order_items_spark", "1.2")

    rows = SparkEngine().run(ctx, local.sql, raw, output)

    assert sparks.active() is spark  # the S3 lake did not need a session of its own
    files = ctx.lake.batch_files(PROCESSED, "order_items_spark", "1.2")
    on_s3 = []
    for file in files:
        with ctx.lake.fs.open(file.removeprefix("s3://"), "rb") as handle:
            on_s3.append(pq.read_table(handle))
    DuckDBEngine().run(local.ctx, local.sql, local.files, str(tmp_path / "duck.parquet"))
    assert rows == sum(t.num_rows for t in on_s3) > 0
    assert_same_table(pq.read_table(tmp_path / "duck.parquet"), pa.concat_tables(on_s3))
    assert ctx.lake.fs.ls("lake/root/processed/order_items_spark", detail=False) == [
        f.removeprefix("s3://") for f in files]
    assert [f.rsplit("/", 1)[1] for f in files] == [f"1.2.{i:05d}.parquet"
                                                    for i in range(len(files))]
    assert validate(ctx, files).passed


# -- configuration and Java ----------------------------------------------------------------------


def test_spark_conf_for_an_s3_lake_and_a_cluster_master() -> None:
    target = build_target("prod", {
        "lake": {"url": "s3://bucket/lake", "endpoint_url": "http://minio:9000",
                 "region": "eu-west-1", "access_key_id": "AKIA-spark-test",
                 "secret_access_key": "spark-test-secret"},
        "warehouse": {"type": "snowflake"},
        "spark": {"master": "spark://spark-master:7077",
                  "conf": {"spark.executor.memory": "4g", "spark.sql.shuffle.partitions": "64"}}})

    conf = sparks.spark_conf(target)

    assert {k: v for k, v in conf.items() if "s3" in k} == {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.s3a.impl": "org.apache.hadoop.fs.s3a.S3A",
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.access.key": "AKIA-spark-test",
        "spark.hadoop.fs.s3a.secret.key": "spark-test-secret",
    }
    assert conf["spark.master"] == "spark://spark-master:7077"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    assert conf["spark.sql.timestampType"] == "TIMESTAMP_NTZ"
    assert conf["spark.ui.showConsoleProgress"] == "false"
    assert "spark.ui.enabled" not in conf  # a cluster keeps its UI
    assert conf["spark.executor.memory"] == "4g" and conf["spark.sql.shuffle.partitions"] == "64"
    assert sparks.lake_access(target) == "s3a"
    assert sparks.session_conf(target) == conf
    assert sparks.spark_url("s3://bucket/lake/raw/x.parquet") == "s3a://bucket/lake/raw/x.parquet"


def test_spark_conf_for_the_local_target() -> None:
    s3 = build_target("dev", {"lake": {"url": "s3://bucket/lake", "access_key_id": "AKIA-local",
                                       "secret_access_key": "local-secret"},
                              "warehouse": {"path": "w.duckdb"}})
    folder = build_target("local", {"lake": {"url": "/data/lake"},
                                    "warehouse": {"path": "w.duckdb"}})

    conf = sparks.spark_conf(folder)

    assert conf["spark.master"] == "local[*]" and conf["spark.ui.enabled"] == "false"
    assert not any("s3a" in k for k in conf)
    assert sparks.lake_access(folder) == "direct" and sparks.lake_access(s3) == "staged"
    assert "spark.hadoop.fs.s3a.secret.key" in sparks.spark_conf(s3)
    assert sparks.session_conf(s3) == conf  # staged: no S3 keys in the local JVM, same session


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    script = tmp_path / "start.py"
    script.write_text(textwrap.dedent("""\
        from framework.errors import FrameworkError
        from framework.settings.targets import build_target
        from framework.spark import session

        target = build_target("local", {"lake": {"url": "/tmp"}, "warehouse": {"path": "w"}})
        try:
            session(target)
        except FrameworkError as exc:
            print(exc)
            raise SystemExit(3)
        """))
    env = {**os.environ, "PATH": str(tmp_path / "bin"), "JAVA_HOME": str(tmp_path / "nowhere")}

    done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)

    assert done.returncode == 3, done.stderr
    assert done.stdout.strip().splitlines() == [(
        f"spark: the spark engine needs Java 17 or newer, but none was found (JAVA_HOME="
        f"{tmp_path / 'nowhere'} has no bin/java); install a JDK 17+ (e.g. apt-get install "
        "openjdk-17-jre-headless) or set JAVA_HOME")]
    env.pop("JAVA_HOME")
    done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert "(no java on PATH and JAVA_HOME unset)" in done.stdout


def test_java_older_than_17_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = tmp_path / "jdk11" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk11"))

    with pytest.raises(FrameworkError) as caught:
        sparks.check_java()

    assert str(caught.value) == (f"spark: the spark engine needs Java 17 or newer, found Java 11 "
                                 f"at {java}; set JAVA_HOME to a JDK 17+")
