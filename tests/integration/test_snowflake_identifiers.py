"""Column names with spaces, semicolons, quotes and reserved words, loaded into Snowflake.

The Snowflake loader quotes every name it writes (`ident`): a batch whose key is `order` and
cursor `when` (reserved words), with columns `my col`, `a;b`, `x"y`, `select` and `end` (a
keyword Snowflake's reserved list leaves out, which a bare name would still hit in `CASE ...
END`; fakesnow parses with DuckDB, which reserves it), merges twice, reads back as written,
and has rows marked and removed by key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.compiled import run_context
from framework.lake import PROCESSED, Lake
from framework.spec.model import PipelineSpec
from framework.stages.load.snowflake import SnowflakeWarehouse
from tests.integration.conftest import FakesnowServer
from tests.integration.test_snowflake_loader import CONNECT_OPTIONS, Env

NAMES = ["order", "when", "my col", "a;b", 'x"y', "select", "end"]


def batch(env: Env, load_id: str, rows: list[tuple[Any, ...]]) -> str:
    schema = pa.schema([("order", pa.int64()), ("when", pa.timestamp("us")),
                        ("my col", pa.string()), ("a;b", pa.string()), ('x"y', pa.string()),
                        ("select", pa.string()), ("end", pa.string())])
    path = Lake(env.target.lake).batch_file(PROCESSED, "weird", load_id)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([dict(zip(NAMES, r)) for r in rows], schema=schema), path)
    return path


@pytest.mark.integration
def test_hostile_names_merge_and_read_back_on_snowflake(tmp_path: Path,
                                                        fakesnow_server: FakesnowServer) -> None:
    env = Env(tmp_path / "project", fakesnow_server)
    spec = PipelineSpec.model_validate({
        "name": "weird",
        "source": {"connection": "shop", "table": "weird", "primary_key": ["order"],
                   "incremental": {"cursor": "when"}},
        "lake": {"path": "weird"}})
    ctx = run_context(project=env.project, target=env.target, spec=spec)
    t1, t2 = datetime(2024, 1, 1, 10), datetime(2024, 1, 2, 10)
    first = [(1, t1, "one", "o;1", 'q"1', "DROP TABLE x;", "e1"),
             (2, t1, "two", "o;2", 'q"2', "s2", "e2")]
    changed = [(1, t2, "uno", "u;1", 'q"1', "s1", "e1'"), (3, t2, "three", "t;3", 'q"3', "s3", "e3")]
    warehouse = SnowflakeWarehouse(env.target, connect_options=CONNECT_OPTIONS)
    try:
        warehouse.load(ctx, "1704103200.1", batch(env, "1704103200.1", first))
        loaded = warehouse.load(ctx, "1704189600.2", batch(env, "1704189600.2", changed))
        rows = warehouse.query('SELECT "ORDER", "WHEN", "MY COL", "A;B", "X""Y", "SELECT", '
                               '"END" FROM landing.weird ORDER BY "ORDER"')
        keys = warehouse.keys(ctx, ["order", "when"])
        # Deletes by reconciliation match on the quoted key and mark in a quoted _deleted_at.
        marked = warehouse.apply_deletes(ctx, pa.table({"order": [2]}), "mark")
        live = warehouse.keys(ctx, ["order"])
        removed = warehouse.apply_deletes(ctx, pa.table({"order": [3]}), "remove")
        # A timestamp in the key is matched as a timestamp, not as text: Snowflake prints
        # '2024-01-02 10:00:00.000' where Python writes '2024-01-02 10:00:00'.
        by_time = run_context(project=env.project, target=env.target, spec=spec.model_copy(
            update={"source": spec.source.model_copy(update={"primary_key": ["order", "when"]})}))
        timed = warehouse.apply_deletes(by_time, pa.table({"order": [1, 1], "when": [t1, t2]}),
                                        "mark")
        left = warehouse.query('SELECT "ORDER", _deleted_at IS NULL FROM landing.weird '
                               'ORDER BY "ORDER"')
    finally:
        warehouse.close()

    assert (loaded.inserted, loaded.updated) == (1, 1)
    assert rows == [changed[0], first[1], changed[1]]
    assert sorted(keys.column(0).to_pylist()) == [1, 2, 3]
    assert (marked, removed, timed) == (1, 1, 1)
    assert sorted(live.column(0).to_pylist()) == [1, 3]
    assert left == [(1, False), (2, False)]
