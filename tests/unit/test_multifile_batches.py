"""A processed batch made of several files (Spark's parts `<load_id>.<NNNNN>.parquet`) is
validated, loaded, reconciled and quarantined whole, like DuckDB's single `<load_id>.parquet`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.compiled import run_context
from framework.errors import StageError
from framework.lake import PROCESSED, QUARANTINE, RAW, Lake, part_file
from framework.project import Project
from framework.runner import Runner
from framework.runs import RunRecord
from framework.settings.targets import build_target
from framework.spec.model import PipelineSpec
from framework.stages.load.duckdb import DuckDBWarehouse

SCHEMA = pa.schema([("order_id", pa.string()), ("status", pa.string())])
LOAD_ID = "1709280000.25"
UNIQUE_ID = {"expect_column_values_to_be_unique": {"column": "order_id"}}
NOT_NULL = {"expect_column_values_to_not_be_null": {"column": "status"}}


class Env:
    def __init__(self, root: Path, expectations: list[dict[str, Any]]) -> None:
        (root / "pipelines").mkdir(parents=True)
        self.project = Project(root=root, env={"FRAMEWORK_STATE_DIR": str(root / "state")})
        self.target = build_target("local", {
            "lake": {"url": str(root / "lake")},
            "warehouse": {"type": "duckdb", "path": str(root / "warehouse.duckdb")}})
        self.lake = Lake(self.target.lake)
        self.ctx = run_context(project=self.project, target=self.target,
                              spec=PipelineSpec.model_validate({
                                  "name": "orders",
                                  "source": {"connection": "shop", "table": "orders",
                                             "primary_key": ["order_id"]},
                                  "lake": {"path": "orders"},
                                  "quality": {"expectations": expectations},
                                  "warehouse": {"schema": "landing"}}))

    def parts(self, load_id: str, *parts: list[tuple[str, str | None]]) -> list[str]:
        """The batch as Spark writes it: one Parquet file per part."""
        single = self.lake.batch_file(PROCESSED, "orders", load_id)
        Path(single).parent.mkdir(parents=True, exist_ok=True)
        written = []
        for index, rows in enumerate(parts):
            path = part_file(single, index)
            pq.write_table(pa.Table.from_pylist([dict(zip(SCHEMA.names, r)) for r in rows],
                                                schema=SCHEMA), path)
            written.append(path)
        return written


def landed(warehouse: DuckDBWarehouse) -> list[tuple[Any, ...]]:
    return sorted(warehouse.query("SELECT order_id, status FROM landing.orders"))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path, [UNIQUE_ID, NOT_NULL])


@pytest.fixture
def warehouse(env: Env) -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(env.target)
    try:
        yield wh
    finally:
        wh.close()


def record() -> RunRecord:
    return RunRecord(run_id="r1", pipeline="orders", target="local")


def test_batch_files_are_the_single_file_or_the_parts_of_that_batch_only(env: Env) -> None:
    folder = Path(env.lake.path(PROCESSED, "orders"))
    folder.mkdir(parents=True)
    for name in ("1.2.00000.parquet", "1.2.00001.parquet", "1.20.parquet", "11.2.parquet",
                 "1.2.abc.parquet", "1.2.00001.parquet.tmp", "1.3.parquet"):
        (folder / name).write_bytes(b"x")
    (folder / "_spark-1.2-0f0f").mkdir()  # a transform's staging folder is not the batch
    (folder / "_spark-1.2-0f0f" / "part-00000.parquet").write_bytes(b"x")

    assert [Path(f).name for f in env.lake.batch_files(PROCESSED, "orders", "1.2")] == [
        "1.2.00000.parquet", "1.2.00001.parquet"]
    assert [Path(f).name for f in env.lake.batch_files(PROCESSED, "orders", "1.3")] == [
        "1.3.parquet"]
    assert env.lake.batch_files(PROCESSED, "orders", "1.4") == []
    assert env.lake.batch_files(QUARANTINE, "orders", "1.2") == []
    assert part_file("/lake/processed/orders/1.2.parquet", 7) == \
        "/lake/processed/orders/1.2.00007.parquet"


def test_a_batch_in_parts_is_validated_and_loaded_whole(env: Env,
                                                        warehouse: DuckDBWarehouse) -> None:
    env.parts(LOAD_ID, [("o1", "paid"), ("o2", "paid")], [("o3", "lost")], [])
    runner, run = Runner(env.project, env.target), record()

    runner.validate_batch(env.ctx, warehouse, LOAD_ID, run)
    loaded = runner.load_batch(env.ctx, warehouse, LOAD_ID, run)

    assert loaded == run.rows_loaded == 3
    assert landed(warehouse) == [("o1", "paid"), ("o2", "paid"), ("o3", "lost")]
    assert warehouse.done_batches(env.ctx) == {LOAD_ID}


def test_a_key_repeated_in_two_parts_quarantines_every_part(env: Env,
                                                            warehouse: DuckDBWarehouse) -> None:
    parts = env.parts(LOAD_ID, [("o1", "paid"), ("o2", "paid")], [("o2", "lost")])
    runner, run = Runner(env.project, env.target), record()

    with pytest.raises(StageError) as caught:
        runner.validate_batch(env.ctx, warehouse, LOAD_ID, run)

    assert str(caught.value) == (
        f"orders: validate: batch {LOAD_ID} quarantined in quarantine/orders/: "
        "expect_column_values_to_be_unique(column='order_id') failed: 2 unexpected value(s), "
        "e.g. ['o2']; the pipeline is blocked until the batch is fixed and replayed, or released")
    assert env.lake.batch_files(PROCESSED, "orders", LOAD_ID) == []
    assert [Path(f).name for f in env.lake.batch_files(QUARANTINE, "orders", LOAD_ID)] == [
        Path(p).name for p in parts]
    assert run.rows_quarantined == 3
    assert warehouse.done_batches(env.ctx) == {LOAD_ID}  # quarantined: never loaded
    assert not warehouse.exists("landing", "orders")


def test_a_batch_the_transform_never_wrote_is_one_line(env: Env,
                                                       warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(StageError) as caught:
        Runner(env.project, env.target).load_batch(env.ctx, warehouse, LOAD_ID, record())

    assert str(caught.value) == (f"orders: load: batch {LOAD_ID} has no file in "
                                 "processed/orders/: transform it first")


def test_a_transform_replaces_every_earlier_part_of_its_batch(env: Env,
                                                              warehouse: DuckDBWarehouse) -> None:
    from framework.stages.transform import transform

    env.parts(LOAD_ID, [("o1", "paid")], [("o2", "paid")], [("o9", "stale")])  # a Spark run
    raw = Path(env.lake.path(RAW, "orders", f"{LOAD_ID}.abc.parquet"))
    raw.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"order_id": "o1", "status": "paid"}], schema=SCHEMA), raw)

    output, rows = transform(env.ctx, LOAD_ID, [str(raw)])  # a replay on DuckDB

    assert rows == 1
    assert env.lake.batch_files(PROCESSED, "orders", LOAD_ID) == [output]
    assert Runner(env.project, env.target).load_batch(env.ctx, warehouse, LOAD_ID, record()) == 1
    assert landed(warehouse) == [("o1", "paid")]
