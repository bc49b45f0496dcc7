"""The Spark pipeline on a real standalone cluster: a master and two workers on loopback
(`tests/spark/cluster.py`), `SPARK_MASTER=spark://127.0.0.1:PORT`, executors writing the batch's
parts in parallel; the warehouse ends equal to the source and to the DuckDB pipeline's table."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from framework import spark as sparks
from framework.demo.shop import create_shop
from tests.conftest import service_unavailable
from tests.e2e.helpers import run_json
from tests.spark.cluster import Cluster, standalone_cluster
from tests.spark.test_spark_engine import ITEM_COLUMNS, source_items

pytestmark = pytest.mark.spark
ROWS_PER_FILE = 100


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        import pyspark  # noqa: F401

        from framework.errors import FrameworkError

        sparks.check_java()
    except (ImportError, FrameworkError) as exc:
        service_unavailable(f"no Spark here: {exc}")
    sparks.stop()  # a local session another module left would otherwise be reused
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as running:
        yield running
        sparks.stop()  # the driver leaves before its cluster does


@pytest.fixture
def cluster_project(project_dir: Path, tmp_path: Path, cluster: Cluster,
                    monkeypatch: pytest.MonkeyPatch) -> str:
    shutil.copy(project_dir / "pipelines" / "examples" / "order_items_spark.yml",
                project_dir / "pipelines" / "order_items_spark.yml")
    settings = project_dir / "framework.yml"
    config = yaml.safe_load(settings.read_text())
    # One core and a small heap per executor (2 cores on the machine); at most ROWS_PER_FILE
    # rows per file, so the batch is several parts written by both executors.
    config["targets"]["local"]["spark"]["conf"] = {
        "spark.executor.memory": "512m", "spark.executor.cores": "1", "spark.cores.max": "2",
        "spark.sql.files.maxRecordsPerFile": str(ROWS_PER_FILE)}
    settings.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("SPARK_MASTER", cluster.master_url)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")  # the driver, where executors reach it
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    (tmp_path / "state").mkdir(exist_ok=True)
    create_shop(url, scale=0.005, seed=7)
    return url


def landed(warehouse: Path, table: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return sorted(con.execute(f"SELECT {ITEM_COLUMNS} FROM landing.{table}").fetchall())
    finally:
        con.close()


def test_the_spark_pipeline_runs_on_a_standalone_cluster_as_duckdb_does(
        cluster: Cluster, cluster_project: str, tmp_path: Path) -> None:
    records = run_json("--pipeline", "order_items_spark", "--pipeline", "order_items", "--no-dbt")

    on_spark, on_duckdb = records["order_items_spark"], records["order_items"]
    assert on_spark["status"] == on_duckdb["status"] == "success", records
    assert on_spark["rows_extracted"] == on_spark["rows_processed"] == on_spark["rows_loaded"] \
        == on_duckdb["rows_loaded"] > ROWS_PER_FILE
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert landed(warehouse, "order_items_spark") == landed(warehouse, "order_items") \
        == source_items(cluster_project)
    # The batch is as many parts as the data needs, numbered in order.
    processed = tmp_path / "state" / "lake" / "processed" / "order_items_spark"
    parts = sorted(p.name for p in processed.iterdir())
    assert parts == [f"{on_spark['load_id']}.{i:05d}.parquet" for i in range(len(parts))]
    assert len(parts) >= -(-on_spark["rows_loaded"] // ROWS_PER_FILE)
    # It ran on the cluster: the session's master, two executors (one per worker) besides the
    # driver, and the master lists the application.
    session = sparks.active()
    assert session is not None and session.sparkContext.master == cluster.master_url
    executors = session.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
    assert executors == 3, executors
    state = cluster.state()
    assert [a["name"] for a in state["activeapps"]] == ["framework"], state  # type: ignore[index]
