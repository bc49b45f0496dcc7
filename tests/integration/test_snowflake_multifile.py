"""The Snowflake loader takes a batch made of several files (Spark's parts) as one batch: every
part is copied into the staging table, the rows and the ledger row land in one transaction."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.lake import PROCESSED, Lake, part_file
from framework.stages.load.snowflake import SnowflakeWarehouse
from tests.integration.conftest import FakesnowServer
from tests.integration.test_snowflake_loader import (
    CONNECT_OPTIONS,
    FIRST,
    SCHEMA,
    Env,
    as_row,
    landed,
    order,
)

LOAD_ID = "1709280000.7"
PARTS = [FIRST[:2], [], [FIRST[2], order("o4", "shipped", "7.00", FIRST[2]["updated_at"])]]


def write_parts(env: Env) -> list[str]:
    single = Lake(env.target.lake).batch_file(PROCESSED, "shop_orders", LOAD_ID)
    Path(single).parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, records in enumerate(PARTS):
        path = part_file(single, index)
        pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), path)
        paths.append(path)
    return paths


@pytest.mark.integration
@pytest.mark.parametrize("stage", ["internal", "external"])
def test_a_batch_in_parts_loads_every_part_once(stage: str, tmp_path: Path,
                                                fakesnow_server: FakesnowServer) -> None:
    options = ({} if stage == "internal" else
               {"stage_url": f"file://{tmp_path}/project/lake", "storage_integration": "lake_int"})
    env = Env(tmp_path / "project", fakesnow_server, **options)
    wh = SnowflakeWarehouse(env.target, connect_options=CONNECT_OPTIONS)
    try:
        paths = write_parts(env)
        loaded = wh.load(env.ctx(), LOAD_ID, paths)
        again = wh.load(env.ctx(), LOAD_ID, paths)  # a retried load: nothing written
        replayed = wh.load(env.ctx(), LOAD_ID, paths, replay=True)  # merged, not doubled

        expected = sorted(as_row(r) for part in PARTS for r in part)
        assert (loaded.rows, loaded.inserted) == (4, 4)
        assert (again.rows, again.skipped) == (4, "already loaded")
        assert (replayed.rows, replayed.inserted, replayed.updated) == (4, 0, 4)
        assert landed(wh) == expected
        assert wh.done_batches(env.ctx()) == {LOAD_ID}
        assert all(Path(p).is_file() for p in paths)  # the lake's parts stay where they are
    finally:
        wh.close()
