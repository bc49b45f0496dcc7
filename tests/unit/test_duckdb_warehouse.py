"""The DuckDB warehouse loader on batches written as the transform writes them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.compiled import run_context
from framework.lake import PROCESSED, Lake
from framework.project import Project
from framework.settings.targets import build_target
from framework.spec.model import PipelineSpec
from framework.stages.load.duckdb import DuckDBWarehouse, fits

SCHEMA = pa.schema([("order_id", pa.string()), ("status", pa.string()),
                    ("updated_at", pa.timestamp("us"))])


def at(hour: int) -> datetime:
    return datetime(2024, 3, 1, hour, 0, 0, 123456)


class Env:
    def __init__(self, root: Path) -> None:
        (root / "pipelines").mkdir(parents=True)
        (root / "framework.yml").write_text("targets:\n  local:\n    lake: {url: lake}\n")
        self.project = Project(root=root, env={"FRAMEWORK_STATE_DIR": str(root / "state")})
        self.target = build_target("local", {
            "lake": {"url": str(root / "lake")},
            "warehouse": {"type": "duckdb", "path": str(root / "warehouse.duckdb")}})
        self.ctx = run_context(project=self.project, target=self.target, spec=PipelineSpec.model_validate({
            "name": "orders",
            "source": {"connection": "shop", "table": "orders", "primary_key": ["order_id"],
                       "incremental": {"cursor": "updated_at"}},
            "lake": {"path": "shop_orders"},
            "warehouse": {"schema": "landing"}}))

    def batch(self, load_id: str, rows: list[tuple[Any, ...]]) -> str:
        path = Lake(self.target.lake).batch_file(PROCESSED, "shop_orders", load_id)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist([dict(zip(SCHEMA.names, r)) for r in rows],
                                            schema=SCHEMA), path)
        return path


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.fixture
def warehouse(env: Env) -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(env.target)
    try:
        yield wh
    finally:
        wh.close()


def landed(wh: DuckDBWarehouse) -> list[tuple[Any, ...]]:
    return wh.query("SELECT order_id, status, updated_at FROM landing.orders ORDER BY order_id")


def test_a_first_batch_with_unique_keys_lands_as_it_is(env: Env, warehouse: DuckDBWarehouse) -> None:
    rows = [("o1", "created", at(1)), ("o2", "created", at(2)), ("o3", None, None)]

    loaded = warehouse.load(env.ctx, "1.1", env.batch("1.1", rows))

    assert (loaded.rows, loaded.inserted, loaded.updated) == (3, 3, 0)
    assert landed(warehouse) == rows


def test_a_key_twice_in_a_batch_keeps_its_latest_version_on_first_load_and_on_merge(
        env: Env, warehouse: DuckDBWarehouse) -> None:
    first = warehouse.load(env.ctx, "1.1", env.batch("1.1", [
        ("o1", "created", at(1)), ("o1", "shipped", at(3)), ("o1", "approved", at(2)),
        ("o2", "created", at(1))]))

    assert (first.rows, first.inserted) == (4, 2)
    assert landed(warehouse) == [("o1", "shipped", at(3)), ("o2", "created", at(1))]

    second = warehouse.load(env.ctx, "2.1", env.batch("2.1", [
        ("o2", "approved", at(4)), ("o2", "delivered", at(6)), ("o2", "shipped", at(5)),
        ("o3", "created", at(4))]))

    assert (second.rows, second.inserted, second.updated) == (4, 1, 1)
    assert landed(warehouse) == [("o1", "shipped", at(3)), ("o2", "delivered", at(6)),
                                 ("o3", "created", at(4))]


@pytest.mark.parametrize(("batch", "column", "expected"), [
    ("DECIMAL(12,2)", "DECIMAL(12,2)", True), ("DECIMAL(12,2)", "DECIMAL(18,4)", True),
    ("DECIMAL(18,2)", "DECIMAL(12,2)", False), ("DECIMAL(12,4)", "DECIMAL(12,2)", False),
    ("DECIMAL(14,4)", "DECIMAL(12,2)", False), ("INTEGER", "BIGINT", True),
    ("BIGINT", "INTEGER", False), ("VARCHAR", "VARCHAR", True), ("DOUBLE", "DECIMAL(18,2)", False),
    ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", False),
])
def test_fits_says_which_batch_types_load_exactly_into_a_column(batch: str, column: str,
                                                                 expected: bool) -> None:
    assert fits(batch, column) is expected


def test_a_narrower_batch_loads_into_the_wider_column_as_it_is(env: Env,
                                                              warehouse: DuckDBWarehouse) -> None:
    warehouse.load(env.ctx, "1.1", env.batch("1.1", [("o1", "created", at(1))]))
    warehouse.query("ALTER TABLE landing.orders ALTER COLUMN status SET DATA TYPE VARCHAR")
    warehouse.query("ALTER TABLE landing.orders ADD COLUMN amount DECIMAL(18,4)")
    path = Lake(env.target.lake).batch_file(PROCESSED, "shop_orders", "2.1")
    pq.write_table(pa.table({"order_id": ["o2"], "status": ["paid"],
                             "updated_at": pa.array([at(2)], pa.timestamp("us")),
                             "amount": pa.array([Decimal("12.34")], pa.decimal128(12, 2))}), path)
    spec = env.ctx.spec
    frozen = run_context(project=env.project, target=env.target, spec=spec.model_copy(update={
        "warehouse": spec.warehouse.model_copy(update={"contract": "freeze"})}))

    warehouse.load(frozen, "2.1", path)

    assert frozen.warnings == []
    assert dict(warehouse.query("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 'orders'"))["amount"] == "DECIMAL(18,4)"
    assert warehouse.query("SELECT amount FROM landing.orders WHERE order_id = 'o2'") == [
        (Decimal("12.3400"),)]


def test_the_ledger_gains_a_fingerprint_column_and_keeps_its_rows(env: Env) -> None:
    import duckdb

    con = duckdb.connect(str(env.target.warehouse.path))  # a ledger from before fingerprints
    con.execute("CREATE SCHEMA landing")
    con.execute("CREATE TABLE landing._framework_batches (pipeline VARCHAR, load_id VARCHAR, "
                "status VARCHAR, row_count BIGINT, recorded_at TIMESTAMP, note VARCHAR, "
                "PRIMARY KEY (pipeline, load_id))")
    con.execute("INSERT INTO landing._framework_batches VALUES ('orders', '1.1', 'loaded', 1, "
                "now()::TIMESTAMP, '')")
    con.close()
    wh = DuckDBWarehouse(env.target)
    try:
        assert wh.done_batches(env.ctx) == {"1.1"}
        wh.load(env.ctx, "2.1", env.batch("2.1", [("o1", "created", at(1))]))

        assert wh.fingerprints(env.ctx) == {"1.1": None, "2.1": env.ctx.compiled.fingerprint}
    finally:
        wh.close()


def test_no_duckdb_connection_prints_a_progress_bar(env: Env, warehouse: DuckDBWarehouse) -> None:
    """DuckDB prints a progress bar on stdout for a query past two seconds (a first load of 2M
    rows): `run --json`'s output stopped being JSON. Every connection of the framework's, and
    the cursors other threads get, has it off."""
    from framework.stages.load.duckdb import scratch_connection

    scratch = scratch_connection(env.project.state_dir)
    twin = warehouse.for_thread()
    try:
        settings = [con.execute("SELECT current_setting('enable_progress_bar')").fetchone()
                    for con in (warehouse.con, twin.con, scratch)]
    finally:
        twin.close()
        scratch.close()
    assert settings == [(False,)] * 3
