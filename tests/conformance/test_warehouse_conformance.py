"""One suite for every warehouse: the DuckDB warehouse, and the Snowflake loader on fakesnow.

Each test states a rule of exactly-once loading (framework/stages/load/__init__.py) and proves
it on both implementations with the same batches: a batch already loaded is a no-op, a load
retried after its COMMIT lands once, a replayed append batch replaces its own rows, an older
batch replayed never overwrites newer rows, and a quarantined batch blocks until replayed or
released.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.compiled import run_context
from framework.context import RunContext
from framework.errors import StageError
from framework.lake import PROCESSED, Lake
from framework.project import Project
from framework.retry import retrying
from framework.settings.targets import build_target
from framework.spec.model import PipelineSpec
from framework.stages.load import LOADED, QUARANTINED, RELEASED, Warehouse, warehouse_for

SCHEMA = pa.schema([("order_id", pa.string()), ("status", pa.string()),
                    ("updated_at", pa.timestamp("us"))])
L1, L2, L3 = "1709280000.1", "1709366400.25", "1709452800.3"


def at(day: int) -> datetime:
    return datetime(2024, 3, day, 10, 0, 0, 123456)


class Harness:
    """A warehouse, a local lake and pipeline specs over one landing table `landing.orders`."""

    def __init__(self, kind: str, root: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        (root / "pipelines").mkdir(parents=True)
        (root / "framework.yml").write_text("targets:\n  local:\n    lake: {url: lake}\n")
        self.project = Project(root=root, env={"FRAMEWORK_STATE_DIR": str(root / "state")})
        if kind == "duckdb":
            warehouse: dict[str, Any] = {"type": "duckdb", "path": str(root / "warehouse.duckdb")}
        else:
            server = request.getfixturevalue("fakesnow_server")
            warehouse = server.warehouse_settings(database=f"FW_{uuid.uuid4().hex[:10].upper()}",
                                                  role="loader", warehouse="load_wh")
        self.target = build_target("local", {"lake": {"url": str(root / "lake")},
                                             "warehouse": warehouse})
        self.warehouse: Warehouse = warehouse_for(self.target)

    def ctx(self, disposition: str = "merge", cursor: bool = True,
            deletes: dict[str, str] | None = None, full_refresh: bool = False) -> RunContext:
        source: dict[str, Any] = {"connection": "shop", "table": "orders",
                                  "primary_key": ["order_id"]}
        if cursor:
            source["incremental"] = {"cursor": "updated_at"}
        spec = PipelineSpec.model_validate({
            "name": "orders", "source": source, "lake": {"path": "orders"},
            "warehouse": {"schema": "landing", "write_disposition": disposition},
            **({"deletes": deletes} if deletes else {})})
        return run_context(project=self.project, target=self.target, spec=spec,
                           full_refresh=full_refresh)

    def batch(self, load_id: str, rows: list[tuple[Any, ...]]) -> str:
        """A processed batch of `rows` (order_id, status, updated_at[, is_deleted])."""
        path = Lake(self.target.lake).batch_file(PROCESSED, "orders", load_id)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        schema = SCHEMA if not rows or len(rows[0]) == 3 else \
            SCHEMA.append(pa.field("is_deleted", pa.bool_()))
        pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows],
                                            schema=schema), path)
        return path

    def load(self, ctx: RunContext, load_id: str, rows: list[tuple[Any, ...]],
             replay: bool = False) -> Any:
        return self.warehouse.load(ctx, load_id, self.batch(load_id, rows), replay=replay)

    def landed(self) -> list[tuple[Any, ...]]:
        rows = self.query("SELECT order_id, status, updated_at, _load_id FROM landing.orders")
        return sorted(tuple(r) for r in rows)

    def ledger(self) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in self.query(
            "SELECT load_id, status, row_count FROM landing._framework_batches"))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.warehouse.query(sql)  # type: ignore[attr-defined, no-any-return]

    def lose_the_next_commit_acknowledgement(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The next COMMIT is carried out, then its answer is lost as a dropped connection."""
        if self.kind == "duckdb":
            import duckdb

            from framework.stages.load.duckdb import DuckDBWarehouse as cls

            method, error = "_x", duckdb.IOException("connection reset by peer")
        else:
            import snowflake.connector

            from framework.stages.load.snowflake import SnowflakeWarehouse as cls  # type: ignore[assignment]

            method = "_sql"
            error = snowflake.connector.errors.OperationalError(msg="connection reset by peer")
        original: Callable[..., Any] = getattr(cls, method)
        lost: list[bool] = []

        def execute(wh: Any, sql: str, *args: Any) -> Any:
            result = original(wh, sql, *args)
            if sql == "COMMIT" and not lost:
                lost.append(True)
                raise error
            return result

        monkeypatch.setattr(cls, method, execute)


    def lose_the_ledger_insert(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The next ledger INSERT fails, as if the process died there."""
        if self.kind == "duckdb":
            from framework.stages.load.duckdb import DuckDBWarehouse as cls

            method = "_x"
        else:
            from framework.stages.load.snowflake import SnowflakeWarehouse as cls  # type: ignore[assignment]

            method = "_sql"
        original: Callable[..., Any] = getattr(cls, method)

        def execute(wh: Any, sql: str, *args: Any) -> Any:
            # Snowflake quotes its identifiers upper-case: match the ledger in any case.
            if sql.startswith("INSERT INTO") and "_framework_batches" in sql.lower():
                raise OSError("disk I/O error")
            return original(wh, sql, *args)

        monkeypatch.setattr(cls, method, execute)


@pytest.fixture(params=["duckdb", pytest.param("snowflake", marks=pytest.mark.integration)])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(request.param, tmp_path / "project", request)
    try:
        yield harness
    finally:
        harness.warehouse.close()


FIRST = [("o1", "created", at(1)), ("o2", "created", at(1))]
SECOND = [("o1", "shipped", at(2)), ("o3", "created", at(2))]


@pytest.mark.parametrize("column", ["_load_id", "_loaded_at", "_deleted_at"])
def test_a_batch_with_a_column_named_like_the_frameworks_own_is_refused(
        wh: Harness, column: str) -> None:
    """A source's `_load_id` hid the framework's: a merge compared the source's text as the
    load order (an update was dropped, on a success), an append replay deleted by it (rows
    tripled), and a `_deleted_at` failed every merge after the first load."""
    path = Lake(wh.target.lake).batch_file(PROCESSED, "orders", L1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"order_id": ["o1"], "status": ["created"], "updated_at": [at(1)],
                             column: ["0"]}), path)

    with pytest.raises(StageError) as refused:
        wh.warehouse.load(wh.ctx(), L1, path)

    assert str(refused.value) == (
        f"orders: load: the batch's column '{column}' is one the framework writes on every "
        "landing row (_load_id, _loaded_at, _deleted_at); rename it in source.query or the "
        f'transform (SELECT ... "{column}" AS source{column})')
    assert wh.ledger() == []


@pytest.mark.parametrize("disposition", ["merge", "append", "replace"])
def test_loading_a_batch_already_loaded_is_a_no_op(wh: Harness, disposition: str) -> None:
    ctx = wh.ctx(disposition)
    first = wh.load(ctx, L1, FIRST)
    before = wh.landed()

    again = wh.load(ctx, L1, FIRST)

    assert (first.rows, first.skipped) == (2, None)
    assert (again.rows, again.inserted, again.updated, again.skipped) == (2, 0, 0, "already loaded")
    assert wh.landed() == before
    assert wh.ledger() == [(L1, LOADED, 2)]


@pytest.mark.parametrize("disposition", ["merge", "append"])
def test_a_load_retried_after_its_commit_lands_the_batch_once(
        wh: Harness, disposition: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = wh.ctx(disposition)
    wh.load(ctx, L1, FIRST)
    batch = wh.batch(L2, SECOND)
    wh.lose_the_next_commit_acknowledgement(monkeypatch)
    retries: list[str] = []

    loaded = retrying(lambda: wh.warehouse.load(ctx, L2, batch), on_retry=retries.append,
                      sleep=lambda _: None)

    assert len(retries) == 1 and "connection reset by peer" in retries[0]
    assert (loaded.rows, loaded.skipped) == (2, "already loaded")
    expected = ([("o1", "created", at(1), L1)] if disposition == "append" else []) + [
        ("o1", "shipped", at(2), L2), ("o2", "created", at(1), L1), ("o3", "created", at(2), L2)]
    assert wh.landed() == sorted(expected)
    assert wh.ledger() == [(L1, LOADED, 2), (L2, LOADED, 2)]


def test_a_replayed_append_batch_replaces_its_own_rows(wh: Harness) -> None:
    ctx = wh.ctx("append")
    wh.load(ctx, L1, FIRST)
    wh.load(ctx, L2, SECOND)
    before = wh.landed()

    replayed = wh.load(ctx, L1, FIRST, replay=True)

    assert (replayed.rows, replayed.inserted, replayed.skipped) == (2, 2, None)
    assert wh.landed() == before and len(before) == 4
    assert wh.ledger() == [(L1, LOADED, 2), (L2, LOADED, 2)]


@pytest.mark.parametrize(("disposition", "cursor"), [
    ("merge", True), ("merge", False), ("append", True), ("replace", True), ("replace", False)])
def test_replaying_an_older_batch_never_overwrites_newer_rows(wh: Harness, disposition: str,
                                                              cursor: bool) -> None:
    ctx = wh.ctx(disposition, cursor)
    wh.load(ctx, L1, FIRST)
    wh.load(ctx, L2, SECOND)
    newest = wh.landed()

    replayed = wh.load(ctx, L1, FIRST, replay=True)

    assert wh.landed() == newest
    if disposition == "replace":
        assert replayed.skipped == f"batch {L2} replaced the table since"
        assert newest == [("o1", "shipped", at(2), L2), ("o3", "created", at(2), L2)]
    elif disposition == "merge":
        assert newest == [("o1", "shipped", at(2), L2), ("o2", "created", at(1), L1),
                          ("o3", "created", at(2), L2)]


def test_a_newer_batch_whose_row_moved_its_cursor_back_lands_it(wh: Harness) -> None:
    """The source set a row's cursor earlier (a corrected timestamp) and a read under `lag:`
    found it: the newer batch holds the row as it is now. Compared by the cursor first, the
    landing row kept its later, no longer current, version, and the run said it loaded it."""
    ctx = wh.ctx()
    wh.load(ctx, L1, [("o1", "paid", at(2)), ("o2", "created", at(1))])
    wh.load(ctx, L2, [("o1", "refunded", at(1))])

    assert wh.landed() == [("o1", "refunded", at(1), L2), ("o2", "created", at(1), L1)]


def test_a_batch_holding_a_key_twice_lands_its_latest_row(wh: Harness) -> None:
    ctx = wh.ctx()
    wh.load(ctx, L1, [("o1", "created", at(1)), ("o1", "paid", at(3)), ("o2", "created", at(1))])
    wh.load(ctx, L2, [("o2", "shipped", at(2)), ("o2", "created", at(1)), ("o3", "created", at(2))])

    assert wh.landed() == [("o1", "paid", at(3), L1), ("o2", "shipped", at(2), L2),
                           ("o3", "created", at(2), L2)]


def test_a_batch_validate_found_unique_lands_as_a_counted_one(wh: Harness) -> None:
    """`unique_keys` (validate found every key once) spares the load its own look for the latest
    row per key, and changes nothing it lands."""
    ctx = wh.ctx()
    for load_id, rows in ((L1, FIRST), (L2, SECOND)):
        wh.warehouse.load(ctx, load_id, wh.batch(load_id, rows), unique_keys=True)
    assert wh.landed() == [("o1", "shipped", at(2), L2), ("o2", "created", at(1), L1),
                           ("o3", "created", at(2), L2)]
    assert wh.ledger() == [(L1, LOADED, 2), (L2, LOADED, 2)]


def test_a_merge_without_cursor_replayed_restores_rows_lost_since_and_keeps_newer_ones(
        wh: Harness) -> None:
    ctx = wh.ctx("merge", cursor=False)
    wh.load(ctx, L1, FIRST)
    wh.load(ctx, L2, [("o1", "shipped", at(1))])  # no cursor: only the batch order says newer
    wh.query("DELETE FROM landing.orders WHERE order_id = 'o2'")

    wh.load(ctx, L1, FIRST, replay=True)

    assert wh.landed() == [("o1", "shipped", at(1), L2), ("o2", "created", at(1), L1)]


@pytest.mark.parametrize("action", ["remove", "mark"])
def test_a_key_reconcile_deleted_stays_deleted_when_an_older_batch_is_replayed(
        wh: Harness, action: str) -> None:
    """Before, the replay merged the deleted key in again (`remove`) or cleared its
    `_deleted_at` (`mark`: the row's own batch counts as new enough to update it)."""
    ctx = wh.ctx(deletes={"reconcile": action})
    wh.load(ctx, L1, FIRST)
    wh.load(ctx, L2, SECOND)

    assert wh.warehouse.apply_deletes(ctx, pa.table({"order_id": ["o2"]}), action) == 1
    wh.load(ctx, L1, FIRST, replay=True)

    live = "" if action == "remove" else " WHERE _deleted_at IS NULL"
    assert sorted(r[0] for r in wh.query(f"SELECT order_id FROM landing.orders{live}")) == \
        ["o1", "o3"]


def test_a_batch_read_before_a_delete_and_loaded_after_it_keeps_the_key_deleted(
        wh: Harness) -> None:
    """A batch left pending (its load failed) is loaded by a later run, after reconcile found
    the key gone from the source: the batch's row of it is older than the delete."""
    ctx = wh.ctx(deletes={"reconcile": "remove"})
    wh.load(ctx, L1, FIRST)
    wh.warehouse.apply_deletes(ctx, pa.table({"order_id": ["o2"]}), "remove", as_of=L2)

    wh.load(ctx, L1 + "5", [("o2", "paid", at(2))])  # read before the delete
    assert [r[0] for r in wh.query("SELECT order_id FROM landing.orders")] == ["o1"]
    wh.load(ctx, L3, [("o2", "created", at(3))])  # read after it: the source has o2 again
    assert wh.landed() == [("o1", "created", at(1), L1), ("o2", "created", at(3), L3)]


def test_a_key_a_batch_soft_deleted_stays_deleted_when_an_older_batch_is_replayed(
        wh: Harness) -> None:
    ctx = wh.ctx(deletes={"soft_delete_column": "is_deleted"})
    wh.load(ctx, L1, [(*row, False) for row in FIRST])
    wh.load(ctx, L2, [("o2", "cancelled", at(2), True), ("o3", "created", at(2), False)])

    wh.load(ctx, L1, [(*row, False) for row in FIRST], replay=True)

    assert [r[:2] for r in wh.landed()] == [("o1", "created"), ("o3", "created")]


def test_a_first_load_remembers_the_keys_it_soft_deleted(wh: Harness) -> None:
    ctx = wh.ctx(deletes={"soft_delete_column": "is_deleted"})
    wh.load(ctx, L2, [("o1", "created", at(2), False), ("o2", "cancelled", at(2), True)])

    wh.load(ctx, L1, [(*row, False) for row in FIRST])  # read before: left pending, say

    assert [r[:2] for r in wh.landed()] == [("o1", "created")]


def test_a_batch_read_before_the_source_was_found_empty_stays_out(wh: Harness) -> None:
    """A pipeline without `deletes:` whose source was found empty (--allow-mass-delete): a
    batch left pending from before must not bring the emptied rows back."""
    ctx = wh.ctx()
    wh.load(ctx, L1, FIRST)
    wh.warehouse.apply_deletes(ctx, pa.table({"order_id": ["o1", "o2"]}), "remove", as_of=L3)

    wh.load(ctx, L2, SECOND)

    assert wh.landed() == [("o3", "created", at(2), L2)]


def test_deleted_keys_follow_the_key_columns_type_and_a_table_dropped_by_hand(
        wh: Harness) -> None:
    """The keys kept their first type: after the key widened (int32 -> int64), every later
    delete failed, and so did every load once the landing table was dropped by hand."""
    ctx = wh.ctx(deletes={"reconcile": "remove"})

    def batch(load_id: str, ids: list[int], kind: pa.DataType) -> str:
        path = wh.batch(load_id, [])
        table = pa.table({"order_id": pa.array(ids, kind), "status": ["x"] * len(ids),
                          "updated_at": pa.array([at(1)] * len(ids), pa.timestamp("us"))})
        pq.write_table(table, path)
        return path

    wh.warehouse.load(ctx, L1, batch(L1, [1, 2], pa.int32()))
    wh.warehouse.apply_deletes(ctx, pa.table({"order_id": pa.array([1], pa.int32())}),
                               "remove")
    big = 2**40
    wh.warehouse.load(ctx, L2, batch(L2, [big, big + 1], pa.int64()))
    assert wh.warehouse.apply_deletes(ctx, pa.table({"order_id": [big]}), "remove") == 1
    wh.warehouse.load(ctx, L1, batch(L1, [1, 2], pa.int32()), replay=True)
    assert sorted(r[0] for r in wh.query("SELECT order_id FROM landing.orders")) == [2, big + 1]

    wh.query("DROP TABLE landing.orders")
    wh.warehouse.load(ctx, L3, batch(L3, [1, 3], pa.int64()))  # read before 1 was deleted
    assert [r[0] for r in wh.query("SELECT order_id FROM landing.orders")] == [3]
    # A full refresh reading the key narrower again, after the deletes: the kept keys stay wide
    later = "4102444800.5"
    refresh = wh.ctx("replace", deletes={"reconcile": "remove"})
    wh.warehouse.load(refresh, later, batch(later, [1, 2], pa.int32()))
    assert sorted(r[0] for r in wh.query("SELECT order_id FROM landing.orders")) == [1, 2]


def test_a_full_refresh_of_a_merge_pipeline_lands_each_live_key_once(wh: Harness) -> None:
    """Snowflake's full refresh inserted the batch as it was: a key read twice landed twice,
    and a row the source marks deleted landed live (DuckDB kept the latest live row per key)."""
    ctx = wh.ctx(deletes={"soft_delete_column": "is_deleted"})
    wh.load(ctx, L1, [(*row, False) for row in FIRST])
    refresh = wh.ctx(deletes={"soft_delete_column": "is_deleted"}, full_refresh=True)

    wh.load(refresh, L2, [("o1", "created", at(1), False), ("o1", "shipped", at(2), False),
                          ("o2", "cancelled", at(2), True), ("o3", "created", at(2), False)])
    wh.load(ctx, L1, [(*row, False) for row in FIRST], replay=True)  # older: changes nothing

    assert [r[:2] for r in wh.landed()] == [("o1", "shipped"), ("o3", "created")]


def test_a_quarantined_batch_blocks_until_replayed_or_released(wh: Harness) -> None:
    ctx = wh.ctx()
    wh.warehouse.record_quarantine(ctx, L1, 2, "amount: 1 row(s) below 0")
    wh.warehouse.record_quarantine(ctx, L2, 2, "status: unexpected 'lost'")
    assert wh.warehouse.quarantined(ctx) == {L1: "amount: 1 row(s) below 0",
                                             L2: "status: unexpected 'lost'"}

    wh.load(ctx, L1, FIRST, replay=True)  # fixed, then replayed
    released = wh.warehouse.release(ctx, L2, "released by ann@box: rows fixed in the source")

    assert released and not wh.warehouse.release(ctx, L2, "again")
    assert not wh.warehouse.release(ctx, L3, "never quarantined")
    assert wh.warehouse.quarantined(ctx) == {}
    assert wh.ledger() == [(L1, LOADED, 2), (L2, RELEASED, 2)]
    assert wh.warehouse.done_batches(ctx) == {L1, L2}
    assert [r[0] for r in wh.query("SELECT note FROM landing._framework_batches WHERE "
                                   f"load_id = '{L2}'")] == [
        "released by ann@box: rows fixed in the source"]
    assert QUARANTINED not in {r[1] for r in wh.ledger()}


def test_a_ledger_without_a_note_column_gets_one(wh: Harness) -> None:
    ctx = wh.ctx()
    wh.query("CREATE SCHEMA IF NOT EXISTS landing")
    wh.query("CREATE TABLE landing._framework_batches (pipeline VARCHAR, load_id VARCHAR, "
             "status VARCHAR, row_count BIGINT, recorded_at TIMESTAMP)")
    wh.query(f"INSERT INTO landing._framework_batches VALUES ('orders', '{L1}', 'quarantined', "
             "2, CURRENT_TIMESTAMP)")

    assert wh.warehouse.quarantined(ctx) == {L1: ""}
    wh.load(ctx, L2, SECOND)
    assert wh.ledger() == [(L1, QUARANTINED, 2), (L2, LOADED, 2)]


def test_a_quarantine_that_fails_halfway_leaves_the_ledger_row_as_it_was(
        wh: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A quarantine replaces the batch's ledger row (the runner refuses it for a loaded batch,
    the warehouse keeps it safe for any caller); dying between the delete and the insert must
    not leave the batch unrecorded (the next run would load it again as new: an append batch
    twice)."""
    ctx = wh.ctx("append")
    wh.load(ctx, L1, FIRST)
    wh.lose_the_ledger_insert(monkeypatch)

    with pytest.raises(Exception, match="disk I/O error"):
        wh.warehouse.record_quarantine(ctx, L1, 2, "stricter check")

    monkeypatch.undo()
    assert wh.ledger() == [(L1, LOADED, 2)]
    assert wh.warehouse.done_batches(ctx) == {L1}


@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_an_older_batch_replayed_after_a_full_refresh_changes_nothing(
        wh: Harness, disposition: str) -> None:
    """A full refresh replaced the table with a newer complete snapshot: an older batch
    replayed would append its rows a second time, or bring back rows deleted since."""
    import dataclasses

    ctx = wh.ctx(disposition)
    wh.load(ctx, L1, FIRST)
    wh.load(dataclasses.replace(ctx, full_refresh=True), L2, SECOND)  # o2 deleted in the source
    newest = wh.landed()

    replayed = wh.load(ctx, L1, FIRST, replay=True)

    assert replayed.skipped == f"batch {L2} replaced the table since"
    assert wh.landed() == newest == [("o1", "shipped", at(2), L2), ("o3", "created", at(2), L2)]
    assert wh.ledger() == [(L1, LOADED, 2), (L2, LOADED, 2)]


# -- what every worker shares: the run lease, run records, owed dbt models ----------------------

def _acquire(wh: Harness, worker: str, monkeypatch: pytest.MonkeyPatch, run_id: str,
             warnings: list[str] | None = None, wait: float = 0) -> Any:
    from framework.lease import acquire

    monkeypatch.setenv("FRAMEWORK_WORKER_ID", worker)
    return acquire(wh.warehouse.shared_state(), "orders", "local", run_id,
                   (warnings if warnings is not None else []).append, wait=wait, poll=0.1)


def test_a_lease_is_held_by_one_worker_and_refused_to_another(
        wh: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from framework.lease import PipelineLeased

    first = _acquire(wh, "worker-a", monkeypatch, "run1")
    lease = wh.warehouse.shared_state().lease("orders", "local")

    assert lease.token == first.token and lease.run_id == "run1"
    assert lease.holder is not None and lease.holder.startswith("worker-a")
    assert f"pid {os.getpid()}, run run1" in lease.holder
    with pytest.raises(PipelineLeased, match=r"^pipeline orders is being run by worker-a .*"
                       r"\(pid \d+, run run1\) until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
                       r"\(target 'local'\); wait for it or stop it$"):
        _acquire(wh, "worker-b", monkeypatch, "run2")


def test_a_released_lease_is_taken_without_a_warning(
        wh: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    state = wh.warehouse.shared_state()
    first = _acquire(wh, "worker-a", monkeypatch, "run1")
    state.release_lease("orders", "local", first.token)
    assert not state.lease("orders", "local").held
    warnings: list[str] = []

    second = _acquire(wh, "worker-b", monkeypatch, "run2", warnings)

    assert state.lease("orders", "local").token == second.token and warnings == []
    state.release_lease("orders", "local", first.token)  # a stale token releases nothing
    assert state.lease("orders", "local").token == second.token


def test_an_expired_lease_is_taken_over_with_a_warning_naming_the_old_holder(
        wh: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEWORK_LEASE_TTL", "1")
    first = _acquire(wh, "worker-a", monkeypatch, "run1")  # no heartbeat: a dead worker
    warnings: list[str] = []

    second = _acquire(wh, "worker-b", monkeypatch, "run2", warnings, wait=5)

    state = wh.warehouse.shared_state()
    assert state.lease("orders", "local").token == second.token != first.token
    assert len(warnings) == 2 and warnings[0].startswith("waiting for worker-a")
    assert re.fullmatch(r"took over the lease of worker-a .*\(pid \d+, run run1\): its lease "
                        r"expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", warnings[1]), warnings
    assert not state.renew_lease("orders", "local", first.token, 60)  # the old holder lost it


def test_a_first_lease_row_that_lands_late_gives_way_to_the_live_holder(
        wh: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers both find no lease row and both insert one: worker-b's lands after worker-a
    already holds the lease. Its swap must fail and leave worker-a's lease alone, now and on
    worker-b's next try (a steal would run one pipeline twice at once)."""
    from framework.lease import PipelineLeased
    from framework.stages.load.state import LEASES, Lease

    first = _acquire(wh, "worker-a", monkeypatch, "run1")
    state = wh.warehouse.shared_state()
    state._run(f"INSERT INTO {state._t(LEASES)} (pipeline, target, token) "  # b's late row
               "VALUES ('orders', 'local', '')", [])
    seen_free = Lease("orders", "local", None, None, None, None, None, None)

    took = state.swap_lease(seen_free, "b-token", "worker-b", "host-b", 1, "run2", 60)

    assert not took
    assert state.renew_lease("orders", "local", first.token, 60)  # worker-a still holds it
    assert state.lease("orders", "local").token == first.token
    with pytest.raises(PipelineLeased, match="is being run by worker-a"):
        _acquire(wh, "worker-b", monkeypatch, "run2")


def test_two_workers_settling_an_expired_race_cannot_both_hold_the_lease(wh: Harness) -> None:
    """Workers A and B raced for the first row and both died holding it (two expired rows).
    C and D both see that and both try to settle it: one of them holds the lease, not both."""
    from datetime import timedelta

    from framework.lease import takeable
    from framework.stages.load.state import LEASES, utcnow

    state = wh.warehouse.shared_state()
    expired = utcnow() - timedelta(minutes=10)
    for token in ("a-token", "b-token"):
        state._run(f"INSERT INTO {state._t(LEASES)} (pipeline, target, token, holder, "
                   "expires_at) VALUES ('orders', 'local', ?, ?, ?)", [token, token, expired])
    seen_by_c = state.lease("orders", "local")
    seen_by_d = state.lease("orders", "local")
    assert takeable(seen_by_c) == takeable(seen_by_d) == ""

    c = state.swap_lease(seen_by_c, "c-token", "worker-c", "host-c", 1, "run3", 60)
    d = state.swap_lease(seen_by_d, "d-token", "worker-d", "host-d", 2, "run4", 60)

    assert (c, d) == (True, False)
    assert state.lease("orders", "local").token == "c-token"


def test_a_heartbeat_keeps_a_lease_past_its_ttl(
        wh: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from framework.lease import PipelineLeased

    monkeypatch.setenv("FRAMEWORK_LEASE_TTL", "1")
    first = _acquire(wh, "worker-a", monkeypatch, "run1")
    first.start_heartbeat(wh.warehouse.shared_state(own_session=True))
    try:
        time.sleep(2)
        with pytest.raises(PipelineLeased):
            _acquire(wh, "worker-b", monkeypatch, "run2")
    finally:
        first.stop()
    assert first.lost is None


def test_a_run_whose_lease_was_taken_over_stops_before_loading(
        wh: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A heartbeat that could not reach the warehouse for longer than the TTL: another worker
    took the lease over, so this run must not load (an append pipeline would double)."""
    import threading
    import time

    from framework.errors import FrameworkError
    from framework.lease import leased, still_held

    monkeypatch.setenv("FRAMEWORK_LEASE_TTL", "1")
    monkeypatch.setenv("FRAMEWORK_WORKER_ID", "worker-a")
    with leased(wh.warehouse, "orders", "local", "run1", lambda _: None) as mine:
        still_held("orders")  # held: no error
        mine.stop()  # the heartbeat cannot reach the warehouse ...
        time.sleep(1.2)  # ... past the TTL
        _acquire(wh, "worker-b", monkeypatch, "run2", [])  # another worker takes over
        mine._stop = threading.Event()  # the warehouse answers again: the next beat sees it
        mine.start_heartbeat(wh.warehouse.shared_state(own_session=True))
        deadline = time.monotonic() + 5
        while mine.lost is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(FrameworkError, match=r"^pipeline orders: the lease was taken over "
                           r"by worker-b .*this run stopped before loading"):
            still_held("orders")
    still_held("orders")  # outside the lease: nothing to check


def test_run_records_and_owed_models_are_shared(wh: Harness) -> None:
    state = wh.warehouse.shared_state()
    older = {"run_id": "r1", "pipeline": "orders", "target": "local", "worker": "a",
             "started_at": "2026-12-01T10:00:00+00:00", "status": "running"}
    state.save_runs([older])
    state.save_runs([{**older, "status": "success", "finished_at": "x"},
                     {**older, "run_id": "r2", "worker": "b",
                      "started_at": "2026-12-01T11:00:00+00:00", "status": "failed"}])

    assert [(r["run_id"], r["worker"], r["status"]) for r in state.runs()] == [
        ("r2", "b", "failed"), ("r1", "a", "success")]
    assert [r["run_id"] for r in state.runs("orders", limit=1)] == ["r2"]

    state.owe("local", {"stg_orders+": "t1", "stg_customers+": "t2"})
    snapshot = state.owed("local")
    state.owe("local", {"stg_orders+": "t3"})  # marked again while a build ran
    state.settle("local", snapshot)
    assert state.owed("local") == {"stg_orders+": "t3"} and state.owed("prod") == {}
