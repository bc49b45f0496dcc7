"""The Snowflake loader against fakesnow's server, through the real (unpatched) connector.

fakesnow emulates Snowflake on DuckDB; what it cannot run (MERGE inside BEGIN ... COMMIT,
temporary tables named with a schema) the loader avoids, so the SQL tested here is the SQL
sent to Snowflake.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.compiled import run_context
from framework.context import RunContext
from framework.errors import ServiceError, StageError
from framework.lake import PROCESSED, Lake
from framework.project import Project
from framework.settings.targets import build_target
from framework.spec.model import PipelineSpec
from framework.stages.load import LOADED, QUARANTINED
from framework.stages.load.snowflake import (
    SnowflakeWarehouse,
    not_widenable,
    snowflake_type,
    type_changed,
)
from tests.integration.conftest import FakesnowServer, S3Server, free_port

SCHEMA = pa.schema([
    ("order_id", pa.string()),
    ("customer_id", pa.string()),
    ("order_status", pa.string()),
    ("amount", pa.decimal128(12, 2)),
    ("item_count", pa.int64()),
    ("order_purchase_timestamp", pa.timestamp("us")),
    ("order_estimated_delivery_date", pa.date32()),
    ("updated_at", pa.timestamp("us")),
])
COLUMNS = ", ".join(SCHEMA.names)
T0 = datetime(2024, 3, 1, 10, 15, 30, 123456)
# Queries fail within seconds instead of retrying for minutes if the emulator breaks.
CONNECT_OPTIONS = {"network_timeout": 20, "login_timeout": 20}


def order(order_id: str, status: str, amount: str, updated: datetime, **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": f"c-{order_id}", "order_status": status,
            "amount": Decimal(amount), "item_count": 2, "order_purchase_timestamp": T0,
            "order_estimated_delivery_date": date(2024, 3, 9), "updated_at": updated, **extra}


def as_row(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record[c] for c in SCHEMA.names)


FIRST = [
    order("o1", "created", "10.50", datetime(2024, 3, 1, 10, 0, 0, 1)),
    order("o2", "created", "99.99", datetime(2024, 3, 1, 11, 0, 0, 999999)),
    order("o3", "approved", "0.01", datetime(2024, 3, 1, 12, 0, 0, 500000)),
]


class Env:
    """One pipeline's RunContext over a fakesnow database of its own and a local lake."""

    def __init__(self, root: Path, server: FakesnowServer, lake: dict[str, Any] | None = None,
                 **warehouse: Any) -> None:
        self.root, self.server = root, server
        self.database = f"FW_{uuid.uuid4().hex[:10].upper()}"
        self.lake_dir = root / "lake"
        (root / "sources").mkdir(parents=True, exist_ok=True)
        (root / "pipelines").mkdir(exist_ok=True)
        (root / "framework.yml").write_text("targets:\n  prod:\n    lake: {url: lake}\n")
        self.project = Project(root=root, env={"FRAMEWORK_STATE_DIR": str(root / "state")})
        self.target = build_target("prod", {
            "lake": lake or {"url": str(self.lake_dir)},
            "warehouse": server.warehouse_settings(database=self.database, role="loader",
                                                   warehouse="load_wh", **warehouse)})

    def ctx(self, contract: str = "evolve", disposition: str = "merge",
            deletes: dict[str, Any] | None = None) -> RunContext:
        spec = PipelineSpec.model_validate({
            "name": "orders",
            "source": {"connection": "shop", "table": "orders", "primary_key": ["order_id"],
                       "incremental": {"cursor": "updated_at"}},
            "lake": {"path": "shop_orders"},
            "warehouse": {"schema": "landing", "contract": contract,
                          "write_disposition": disposition},
            **({"deletes": deletes} if deletes else {})})
        return run_context(project=self.project, target=self.target, spec=spec)

    def batch(self, load_id: str, records: list[dict[str, Any]],
              extra: Sequence[tuple[str, pa.DataType]] = (),
              types: Mapping[str, pa.DataType] | None = None) -> str:
        """A processed batch file in the lake, written as the transform writes it; `types`
        gives some of SCHEMA's columns another type (a widened decimal, say)."""
        fields = [pa.field(f.name, (types or {}).get(f.name, f.type)) for f in SCHEMA]
        schema = pa.schema([*fields, *(pa.field(n, t) for n, t in extra)])
        lake = Lake(self.target.lake)
        path = lake.batch_file(PROCESSED, "shop_orders", load_id)
        table = pa.Table.from_pylist(records, schema=schema)
        if path.startswith("s3://"):
            with lake.fs.open(path.removeprefix("s3://"), "wb") as handle:
                pq.write_table(table, handle)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
        return path


@pytest.fixture
def env(tmp_path: Path, fakesnow_server: FakesnowServer) -> Env:
    return Env(tmp_path / "project", fakesnow_server)


@pytest.fixture
def warehouse(env: Env) -> Iterator[SnowflakeWarehouse]:
    wh = SnowflakeWarehouse(env.target, connect_options=CONNECT_OPTIONS)
    try:
        yield wh
    finally:
        wh.close()


def landed(wh: SnowflakeWarehouse, columns: str = COLUMNS) -> list[tuple[Any, ...]]:
    return wh.query(f"SELECT {columns} FROM landing.orders ORDER BY order_id")


@pytest.mark.integration
def test_batches_merge_on_the_key_and_the_newest_version_wins(env: Env, warehouse: SnowflakeWarehouse) -> None:
    ctx = env.ctx()
    assert warehouse.done_batches(ctx) == set()
    assert warehouse.count(ctx) == 0

    first = warehouse.load(ctx, "1709280000.1", env.batch("1709280000.1", FIRST))

    assert (first.rows, first.inserted, first.updated, first.new_columns) == (3, 3, 0, [])
    assert landed(warehouse) == [as_row(r) for r in FIRST]  # microseconds, decimals, dates kept
    # Created unquoted: upper-case names that dbt's unquoted `landing.orders` resolves.
    assert warehouse.query("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                           "'LANDING' ORDER BY table_name") == [("ORDERS",), ("_FRAMEWORK_BATCHES",)]
    types = dict(warehouse.query("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema = 'LANDING' AND table_name = 'ORDERS'"))
    assert types["UPDATED_AT"] == types["_LOADED_AT"] == "TIMESTAMP_NTZ"  # naive stays naive
    assert (types["AMOUNT"], types["ORDER_ESTIMATED_DELIVERY_DATE"]) == ("NUMBER", "DATE")
    assert warehouse.query("SELECT numeric_precision, numeric_scale FROM information_schema.columns "
                           "WHERE table_name = 'ORDERS' AND column_name = 'AMOUNT'") == [(12, 2)]

    o2_new = order("o2", "shipped", "89.99", datetime(2024, 3, 2, 9, 0, 0, 42))
    o2_between = order("o2", "approved", "99.99", datetime(2024, 3, 1, 23, 0, 0, 7))
    # The source set o3's cursor back (a clock behind the others'): the newer batch holds it
    # as it is now, and wins.
    o3_moved_back = order("o3", "canceled", "0.01", datetime(2024, 3, 1, 11, 59, 59, 999999))
    o4 = order("o4", "created", "1234567890.12", datetime(2024, 3, 2, 9, 30, 0, 5))
    second = warehouse.load(ctx, "1709366400.2",
                            env.batch("1709366400.2", [o2_between, o2_new, o3_moved_back, o4]))

    assert (second.rows, second.inserted, second.updated) == (4, 1, 2)
    assert landed(warehouse) == [as_row(r) for r in (FIRST[0], o2_new, o3_moved_back, o4)]
    assert warehouse.query("SELECT count(*), count(DISTINCT order_id) FROM landing.orders") == [(4, 4)]
    assert warehouse.query("SELECT order_id, _load_id FROM landing.orders ORDER BY order_id") == [
        ("o1", "1709280000.1"), ("o2", "1709366400.2"), ("o3", "1709366400.2"), ("o4", "1709366400.2")]

    # An older batch replayed never overwrites newer versions.
    replay = warehouse.load(ctx, "1709280000.1", env.batch("1709280000.1", FIRST), replay=True)
    assert replay.inserted == 0
    assert landed(warehouse) == [as_row(r) for r in (FIRST[0], o2_new, o3_moved_back, o4)]

    assert warehouse.done_batches(ctx) == {"1709280000.1", "1709366400.2"}
    assert warehouse.query("SELECT load_id, status, row_count FROM landing._framework_batches "
                           "ORDER BY load_id") == [("1709280000.1", LOADED, 3),
                                                   ("1709366400.2", LOADED, 4)]
    assert warehouse.count(ctx) == 4
    # Nothing left behind: the staging table is dropped and the staged file purged.
    assert warehouse.query("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name = '_STAGE_ORDERS'") == [(0,)]
    assert warehouse.query("LIST @landing._framework_stage") == []


def test_the_first_and_last_instants_land_as_they_are(env: Env, warehouse: SnowflakeWarehouse
                                                      ) -> None:
    """PostgreSQL's -infinity and infinity reach the lake as year 1's first instant and year
    9999's last (as_text.infinity_clamped): Snowflake keeps them, to the microsecond."""
    ends = [order("o1", "created", "1.00", datetime(2024, 3, 1),
                  order_purchase_timestamp=datetime(1, 1, 1),
                  order_estimated_delivery_date=date(1, 1, 1)),
            order("o2", "created", "2.00", datetime(2024, 3, 1),
                  order_purchase_timestamp=datetime(9999, 12, 31, 23, 59, 59, 999999),
                  order_estimated_delivery_date=date(9999, 12, 31))]

    warehouse.load(env.ctx(), "1709280000.1", env.batch("1709280000.1", ends))

    assert landed(warehouse) == [as_row(r) for r in ends]


@pytest.mark.integration
def test_the_column_contract_freezes_evolves_or_discards(env: Env, warehouse: SnowflakeWarehouse) -> None:
    warehouse.load(env.ctx(), "1709280000.1", env.batch("1709280000.1", FIRST))
    before = landed(warehouse, "*")
    coupon = order("o5", "created", "5.00", datetime(2024, 3, 3, 8, 0, 0, 123), coupon_code="SPRING")
    batch = env.batch("1709366400.2", [coupon], extra=[("coupon_code", pa.string())])

    with pytest.raises(StageError) as frozen:
        warehouse.load(env.ctx(contract="freeze"), "1709366400.2", batch)

    assert "coupon_code" in str(frozen.value) and "freeze" in str(frozen.value)
    assert "\n" not in str(frozen.value)
    assert landed(warehouse, "*") == before  # no column, no row, no ledger entry
    assert warehouse.done_batches(env.ctx()) == {"1709280000.1"}

    ctx = env.ctx(contract="evolve")
    evolved = warehouse.load(ctx, "1709366400.2", batch)

    assert (evolved.rows, evolved.inserted, evolved.new_columns) == (1, 1, ["coupon_code"])
    assert any("coupon_code" in w for w in ctx.warnings)
    assert warehouse.query("SELECT order_id, coupon_code FROM landing.orders ORDER BY order_id") == [
        ("o1", None), ("o2", None), ("o3", None), ("o5", "SPRING")]

    note = order("o6", "created", "6.00", datetime(2024, 3, 4), coupon_code=None, gift_note="hi")
    discarded = warehouse.load(env.ctx(contract="discard"), "1709452800.3", env.batch(
        "1709452800.3", [note], extra=[("coupon_code", pa.string()), ("gift_note", pa.string())]))

    assert (discarded.rows, discarded.new_columns) == (1, ["gift_note"])
    assert warehouse.query("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                           "'ORDERS' AND column_name = 'GIFT_NOTE'") == [(0,)]
    assert warehouse.count(env.ctx()) == 5


def column_types(wh: SnowflakeWarehouse) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in wh.query("DESCRIBE TABLE landing.orders")}


WIDE = {"amount": pa.decimal128(18, 2)}


@pytest.mark.integration
def test_load_widens_a_decimal_column_under_evolve(env: Env, warehouse: SnowflakeWarehouse) -> None:
    warehouse.load(env.ctx(), "1709280000.1", env.batch("1709280000.1", FIRST))
    big = order("o4", "created", "1234567890123456.78", datetime(2024, 3, 2, 9, 0, 0, 1))
    o1 = order("o1", "shipped", "10.55", datetime(2024, 3, 2, 9, 0, 0, 2))
    ctx = env.ctx(contract="evolve")

    loaded = warehouse.load(ctx, "1709366400.2", env.batch("1709366400.2", [o1, big], types=WIDE))

    assert (loaded.rows, loaded.inserted, loaded.updated, loaded.new_columns) == (2, 1, 1, [])
    assert ctx.warnings == [("orders: changed column type(s) amount (NUMBER(12,2) -> "
                             "NUMBER(18,2)) in landing.orders")]
    assert column_types(warehouse)["AMOUNT"] == "NUMBER(18,2)"
    assert warehouse.query("SELECT order_id, amount FROM landing.orders ORDER BY order_id") == [
        ("o1", Decimal("10.55")), ("o2", Decimal("99.99")), ("o3", Decimal("0.01")),
        ("o4", Decimal("1234567890123456.78"))]
    # The next batch of the same type is no change: no second warning, no ALTER.
    again = env.ctx(contract="freeze")
    warehouse.load(again, "1709452800.3", env.batch("1709452800.3", [big], types=WIDE))
    assert again.warnings == []


@pytest.mark.integration
def test_load_widens_narrow_varchar_and_integer_columns_of_a_table_made_by_hand(
        env: Env, warehouse: SnowflakeWarehouse) -> None:
    warehouse.query("CREATE SCHEMA IF NOT EXISTS landing")
    warehouse.query("CREATE TABLE landing.orders (order_id VARCHAR(20), customer_id VARCHAR(50), "
                    "order_status VARCHAR, amount NUMBER(12,2), item_count NUMBER(9,0), "
                    "order_purchase_timestamp TIMESTAMP_NTZ(6), "
                    "order_estimated_delivery_date DATE, updated_at TIMESTAMP_NTZ(6), "
                    "_load_id VARCHAR, _loaded_at TIMESTAMP_NTZ(6))")
    long_id = order("o1", "created", "1.00", T0, customer_id="c" * 200, item_count=10**12)
    ctx = env.ctx(contract="evolve")

    loaded = warehouse.load(ctx, "1709280000.1", env.batch("1709280000.1", [long_id]))

    assert loaded.inserted == 1
    assert ctx.warnings == [("orders: changed column type(s) order_id (VARCHAR(20) -> "
                             "VARCHAR(16777216)), customer_id (VARCHAR(50) -> VARCHAR(16777216)), "
                             "item_count (NUMBER(9,0) -> NUMBER(38,0)) in landing.orders")]
    types = column_types(warehouse)
    assert (types["ORDER_ID"], types["CUSTOMER_ID"], types["ITEM_COUNT"]) == (
        "VARCHAR(16777216)", "VARCHAR(16777216)", "NUMBER(38,0)")
    assert warehouse.query("SELECT customer_id, item_count FROM landing.orders") == [
        ("c" * 200, 10**12)]


@pytest.mark.integration
def test_load_stops_on_a_changed_column_type_under_freeze_and_ignores_it_under_discard(
        env: Env, warehouse: SnowflakeWarehouse) -> None:
    warehouse.load(env.ctx(), "1709280000.1", env.batch("1709280000.1", FIRST))
    before = landed(warehouse, "*")
    o5 = order("o5", "created", "5.25", datetime(2024, 3, 3, 8, 0, 0, 123))
    batch = env.batch("1709366400.2", [o5], types=WIDE)

    with pytest.raises(StageError) as frozen:
        warehouse.load(env.ctx(contract="freeze"), "1709366400.2", batch)

    assert str(frozen.value) == ("orders: load: changed column type(s) amount (NUMBER(12,2) -> "
                                 "NUMBER(18,2)) in landing.orders; warehouse.contract is 'freeze'")
    assert landed(warehouse, "*") == before
    assert column_types(warehouse)["AMOUNT"] == "NUMBER(12,2)"
    assert warehouse.done_batches(env.ctx()) == {"1709280000.1"}

    discard = env.ctx(contract="discard")
    loaded = warehouse.load(discard, "1709366400.2", batch)

    assert (loaded.inserted, discard.warnings) == (1, [])
    assert column_types(warehouse)["AMOUNT"] == "NUMBER(12,2)"  # the table stays as it is
    assert warehouse.query("SELECT amount FROM landing.orders WHERE order_id = 'o5'") == [
        (Decimal("5.25"),)]


@pytest.mark.integration
@pytest.mark.parametrize(("first", "second", "why"), [
    (pa.decimal128(12, 2), pa.decimal128(18, 4), "Snowflake cannot change a NUMBER's scale in place"),
    (pa.decimal128(12, 2), pa.float64(), "Snowflake cannot change a column to another type in place"),
])
def test_load_refuses_a_type_change_alter_column_cannot_widen_under_evolve(
        env: Env, warehouse: SnowflakeWarehouse, first: pa.DataType, second: pa.DataType,
        why: str) -> None:
    warehouse.load(env.ctx(), "1709280000.1",
                   env.batch("1709280000.1", FIRST, types={"amount": first}))
    before = (landed(warehouse, "*"), column_types(warehouse))
    o5 = order("o5", "created", "5.25", datetime(2024, 3, 3, 8, 0, 0, 123))
    records = [{**o5, "amount": float(o5["amount"]) if pa.types.is_floating(second) else o5["amount"]}]

    with pytest.raises(StageError) as refused:
        warehouse.load(env.ctx(contract="evolve"), "1709366400.2",
                       env.batch("1709366400.2", records, types={"amount": second}))

    old, new = snowflake_type(first), snowflake_type(second)
    assert str(refused.value) == (f"orders: load: cannot change column type(s) amount ({old} -> "
                                  f"{new}: {why}) in landing.orders; alter the table by hand")
    assert (landed(warehouse, "*"), column_types(warehouse)) == before
    assert warehouse.done_batches(env.ctx()) == {"1709280000.1"}


@pytest.mark.integration
def test_load_takes_a_narrower_batch_into_the_wider_column_as_it_is(
        env: Env, warehouse: SnowflakeWarehouse) -> None:
    warehouse.load(env.ctx(), "1709280000.1",
                   env.batch("1709280000.1", FIRST, types={"amount": pa.decimal128(18, 2)}))
    o5 = order("o5", "created", "5.25", datetime(2024, 3, 3, 8, 0, 0, 123))
    ctx = env.ctx(contract="freeze")  # a change would stop the load

    loaded = warehouse.load(ctx, "1709366400.2", env.batch("1709366400.2", [o5]))

    assert (loaded.inserted, ctx.warnings) == (1, [])
    assert column_types(warehouse)["AMOUNT"] == "NUMBER(18,2)"
    assert landed(warehouse)[-1] == as_row(o5)


@pytest.mark.integration
def test_load_does_not_report_equivalent_type_spellings_as_changes(
        env: Env, warehouse: SnowflakeWarehouse) -> None:
    warehouse.query("CREATE SCHEMA IF NOT EXISTS landing")
    warehouse.query("CREATE TABLE landing.orders (order_id STRING, customer_id TEXT, "
                    "order_status VARCHAR(16777216), amount DECIMAL(12,2), item_count INTEGER, "
                    "order_purchase_timestamp TIMESTAMP_NTZ, "
                    "order_estimated_delivery_date DATE, updated_at DATETIME, "
                    "_load_id VARCHAR, _loaded_at TIMESTAMP_NTZ(6))")
    ctx = env.ctx(contract="freeze")  # any change would stop the load

    loaded = warehouse.load(ctx, "1709280000.1", env.batch("1709280000.1", FIRST))

    assert (loaded.inserted, ctx.warnings) == (3, [])
    assert landed(warehouse) == [as_row(r) for r in FIRST]


@pytest.mark.parametrize(("old", "new"), [
    ("NUMBER(38,0)", "INTEGER"), ("INT", "BIGINT"), ("NUMBER", "NUMBER(38,0)"),
    ("DECIMAL(12,2)", "NUMBER(12,2)"), ("NUMBER(10)", "NUMBER(10,0)"),
    ("VARCHAR", "VARCHAR(16777216)"), ("STRING", "TEXT"), ("varchar(50)", "VARCHAR(50)"),
    ("TIMESTAMP_NTZ(9)", "TIMESTAMP_NTZ"), ("DATETIME", "TIMESTAMP_NTZ(9)"),
    ("TIMESTAMP_NTZ(9)", "TIMESTAMP_NTZ(6)"),  # a narrower batch loads exactly
    ("NUMBER(18,2)", "NUMBER(12,2)"), ("NUMBER(18,4)", "NUMBER(12,2)"),
    ("VARCHAR(200)", "VARCHAR(50)"),
    ("TIMESTAMP_TZ", "TIMESTAMP WITH TIME ZONE"), ("DOUBLE", "FLOAT"), ("TIME(9)", "TIME"),
    ("BINARY(8388608)", "BINARY"), ("BOOLEAN", "BOOLEAN"),
])
def test_type_changed_is_false_for_spellings_of_one_type_and_narrower_batches(old: str, new: str) -> None:
    assert not type_changed(old, new)


@pytest.mark.parametrize(("old", "new", "why"), [
    ("NUMBER(12,2)", "NUMBER(18,2)", None),
    ("NUMBER(9,0)", "INTEGER", None),
    ("VARCHAR(50)", "VARCHAR(200)", None),
    ("VARCHAR(50)", "VARCHAR", None),
    ("BINARY(16)", "BINARY", None),
    ("NUMBER(12,4)", "NUMBER(18,2)", "Snowflake cannot change a NUMBER's scale in place"),
    ("NUMBER(12,2)", "NUMBER(18,4)", "Snowflake cannot change a NUMBER's scale in place"),
    ("NUMBER(38,0)", "VARCHAR", "Snowflake cannot change a column to another type in place"),
    ("TIMESTAMP_NTZ", "TIMESTAMP_TZ", "Snowflake cannot change a column to another type in place"),
    ("TIMESTAMP_NTZ(6)", "TIMESTAMP_NTZ(9)",
     "Snowflake cannot change a TIMESTAMP_NTZ's precision in place"),
])
def test_not_widenable_names_what_alter_column_cannot_do(old: str, new: str,
                                                          why: str | None) -> None:
    assert type_changed(old, new)
    assert not_widenable(old, new) == why


@pytest.mark.integration
def test_append_and_replace_dispositions_and_quarantine(env: Env, warehouse: SnowflakeWarehouse) -> None:
    append = env.ctx(disposition="append")
    warehouse.load(append, "1709280000.1", env.batch("1709280000.1", FIRST))
    again = warehouse.load(append, "1709366400.2", env.batch("1709366400.2", FIRST[:2]))
    assert (again.rows, again.inserted, warehouse.count(append)) == (2, 2, 5)

    replace = env.ctx(disposition="replace")
    replaced = warehouse.load(replace, "1709452800.3", env.batch("1709452800.3", FIRST[2:]))
    assert (replaced.rows, replaced.inserted) == (1, 1)
    assert landed(warehouse) == [as_row(FIRST[2])]

    warehouse.record_quarantine(replace, "1709539200.4", 7)
    warehouse.record_quarantine(replace, "1709539200.4", 7)  # recorded once, however often
    assert warehouse.done_batches(replace) == {"1709280000.1", "1709366400.2", "1709452800.3",
                                               "1709539200.4"}
    assert warehouse.query("SELECT status, row_count FROM landing._framework_batches "
                           "WHERE load_id = '1709539200.4'") == [(QUARANTINED, 7)]


@pytest.mark.integration
def test_a_reserved_word_column_is_quoted_upper_case(env: Env, warehouse: SnowflakeWarehouse) -> None:
    records = [{**r, "group": "vip"} for r in FIRST]
    loaded = warehouse.load(env.ctx(), "1709280000.1",
                            env.batch("1709280000.1", records, extra=[("group", pa.string())]))
    assert loaded.inserted == 3
    assert warehouse.query('SELECT DISTINCT "GROUP" FROM landing.orders') == [("vip",)]


@pytest.mark.integration
def test_a_failure_inside_the_transaction_leaves_neither_rows_nor_ledger_row(
        env: Env, warehouse: SnowflakeWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    import snowflake.connector

    ctx = env.ctx()
    warehouse.load(ctx, "1709280000.1", env.batch("1709280000.1", FIRST))
    before = landed(warehouse, "*")
    changed = [order("o1", "shipped", "1.00", datetime(2024, 3, 5)), order("o9", "created", "9.00",
                                                                          datetime(2024, 3, 5))]
    batch = env.batch("1709366400.2", changed)

    def crash(*args: Any) -> None:  # after the rows were written, before the ledger row
        raise snowflake.connector.errors.OperationalError(msg="connection lost\nmid-load")

    monkeypatch.setattr(SnowflakeWarehouse, "_record", crash)
    with pytest.raises(StageError, match="orders: load: connection lost mid-load"):
        warehouse.load(ctx, "1709366400.2", batch)
    monkeypatch.undo()

    assert landed(warehouse, "*") == before
    assert warehouse.done_batches(ctx) == {"1709280000.1"}
    retried = warehouse.load(ctx, "1709366400.2", batch)  # the next run loads it once
    assert (retried.inserted, retried.updated, warehouse.count(ctx)) == (1, 1, 4)


@pytest.mark.integration
def test_a_lake_on_s3_is_downloaded_and_put_to_the_internal_stage(
        tmp_path: Path, fakesnow_server: FakesnowServer, moto_s3: S3Server) -> None:
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    moto_s3.create_bucket(bucket)
    env = Env(tmp_path / "project", fakesnow_server, lake=moto_s3.lake_settings(f"s3://{bucket}/lake"))
    wh = SnowflakeWarehouse(env.target, connect_options=CONNECT_OPTIONS)
    try:
        path = env.batch("1709280000.1", FIRST)
        assert path.startswith("s3://")
        loaded = wh.load(env.ctx(), "1709280000.1", path)
        assert (loaded.rows, loaded.inserted) == (3, 3)
        assert landed(wh) == [as_row(r) for r in FIRST]
    finally:
        wh.close()


@pytest.mark.integration
def test_key_pair_auth_connects_and_a_bad_passphrase_is_not_echoed(
        tmp_path: Path, fakesnow_server: FakesnowServer) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"K3y-Pa55phrase"))
    key_path = tmp_path / "rsa_key.p8"
    key_path.write_bytes(pem)
    settings = fakesnow_server.warehouse_settings(database="KEYPAIR", password=None,
                                                  private_key_path=str(key_path))

    def target(passphrase: str) -> Any:
        return build_target("prod", {"lake": {"url": str(tmp_path / "lake")}, "warehouse": {
            **{k: v for k, v in settings.items() if v is not None},
            "private_key_passphrase": passphrase}})

    wh = SnowflakeWarehouse(target("K3y-Pa55phrase"), connect_options=CONNECT_OPTIONS)
    try:
        assert wh.query("SELECT 1") == [(1,)]
    finally:
        wh.close()
    with pytest.raises(ServiceError) as error:
        SnowflakeWarehouse(target("Wr0ng-Pa55phrase"), connect_options=CONNECT_OPTIONS)
    assert "Pa55phrase" not in str(error.value) and "\n" not in str(error.value)


@pytest.mark.integration
def test_an_external_stage_copies_from_the_lake_without_put(tmp_path: Path,
                                                             fakesnow_server: FakesnowServer) -> None:
    """`stage_url` set: COPY INTO ... FROM @stage/<path under the lake> FILES = (...).

    Production points it at `s3://bucket/lake`; fakesnow reads `file://` stage URLs the same way.
    """
    env = Env(tmp_path / "project", fakesnow_server, stage_url=f"file://{tmp_path}/project/lake",
              storage_integration="lake_int")
    wh = SnowflakeWarehouse(env.target, connect_options=CONNECT_OPTIONS)
    try:
        path = env.batch("1709280000.1", FIRST)
        loaded = wh.load(env.ctx(), "1709280000.1", path)
        assert (loaded.rows, loaded.inserted) == (3, 3)
        assert landed(wh) == [as_row(r) for r in FIRST]
        assert Path(path).is_file()  # the lake's file stays where it is
        stages = wh.query("SHOW STAGES IN SCHEMA landing")
        assert any(str(r[1]).upper().startswith("_FRAMEWORK_LAKE_") for r in stages), stages
    finally:
        wh.close()


def test_an_unreachable_warehouse_is_a_one_line_service_error_without_the_password(
        tmp_path: Path) -> None:
    target = build_target("prod", {"lake": {"url": str(tmp_path / "lake")}, "warehouse": {
        "type": "snowflake", "account": "fakesnow", "user": "loader", "password": "S3cr3t-Pa55",
        "database": "ANALYTICS", "host": "127.0.0.1", "port": free_port(), "protocol": "http"}})

    with pytest.raises(ServiceError) as error:
        SnowflakeWarehouse(target, connect_options={"login_timeout": 10})

    message = str(error.value)
    assert message.startswith("warehouse snowflake (account fakesnow"), message
    assert "S3cr3t-Pa55" not in message and "\n" not in message


def test_a_target_without_database_names_the_missing_setting(tmp_path: Path) -> None:
    target = build_target("prod", {"lake": {"url": str(tmp_path)}, "warehouse": {
        "type": "snowflake", "account": "xy12345", "user": "loader", "password": "S3cr3t-Pa55"}})
    with pytest.raises(ServiceError, match="SNOWFLAKE_DATABASE"):
        SnowflakeWarehouse(target)


@pytest.mark.parametrize(("arrow", "expected"), [
    (pa.string(), "VARCHAR"), (pa.large_string(), "VARCHAR"), (pa.int32(), "NUMBER(38,0)"),
    (pa.int64(), "NUMBER(38,0)"), (pa.decimal128(12, 2), "NUMBER(12,2)"), (pa.float64(), "FLOAT"),
    (pa.bool_(), "BOOLEAN"), (pa.timestamp("us"), "TIMESTAMP_NTZ(6)"),
    (pa.timestamp("us", tz="UTC"), "TIMESTAMP_TZ(6)"), (pa.date32(), "DATE"),
    (pa.dictionary(pa.int32(), pa.string()), "VARCHAR"),
])
def test_arrow_types_map_to_snowflake_types(arrow: pa.DataType, expected: str) -> None:
    assert snowflake_type(arrow) == expected


def _keyed_env(tmp_path: Path, server: FakesnowServer) -> Env:
    """An external stage over the lake, with the lake's AWS keys and no storage integration."""
    return Env(tmp_path / "project", server, lake={
        "url": str(tmp_path / "project" / "lake"), "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "Lake-S3cret-Key"}, stage_url=f"file://{tmp_path}/project/lake")


@pytest.mark.integration
def test_inline_aws_keys_are_refused_for_the_external_stage_without_an_opt_in(
        tmp_path: Path, fakesnow_server: FakesnowServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.stages.load.snowflake import INLINE_OPT_IN

    monkeypatch.delenv(INLINE_OPT_IN, raising=False)
    env = _keyed_env(tmp_path, fakesnow_server)
    wh = SnowflakeWarehouse(env.target, connect_options=CONNECT_OPTIONS)
    try:
        with pytest.raises(StageError) as error:
            wh.load(env.ctx(), "1709280000.1", env.batch("1709280000.1", FIRST))
        assert str(error.value) == (
            "orders: load: the external stage over stage_url (SNOWFLAKE_STAGE_URL) needs a "
            "storage integration (SNOWFLAKE_STORAGE_INTEGRATION); the lake's AWS keys are not "
            "written into CREATE STAGE, since Snowflake would store the secret key in the stage "
            "and its query history (set FRAMEWORK_SNOWFLAKE_INLINE_CREDENTIALS=yes to accept that)")
        stages = wh.query("SHOW STAGES IN SCHEMA landing")
        assert not any(str(r[1]).upper().startswith("_FRAMEWORK_LAKE_") for r in stages), stages
        assert wh.done_batches(env.ctx()) == set()
    finally:
        wh.close()


@pytest.mark.integration
def test_inline_aws_keys_opted_in_are_said_once(
        tmp_path: Path, fakesnow_server: FakesnowServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.stages.load.snowflake import INLINE_OPT_IN

    monkeypatch.setenv(INLINE_OPT_IN, "yes")
    env = _keyed_env(tmp_path, fakesnow_server)
    ctx = env.ctx()
    wh = SnowflakeWarehouse(env.target, connect_options=CONNECT_OPTIONS)
    try:
        wh.load(ctx, "1709280000.1", env.batch("1709280000.1", FIRST))
        wh.load(ctx, "1709366400.2", env.batch("1709366400.2", FIRST[:1]))
    finally:
        wh.close()
    stored = [w for w in ctx.warnings if "Snowflake stores it in the stage and its query history"
              in w]
    said = ("orders: FRAMEWORK_SNOWFLAKE_INLINE_CREDENTIALS=yes: the lake's AWS secret key is "
            "written into CREATE STAGE, and Snowflake stores it in the stage and its query "
            "history; prefer a storage integration (SNOWFLAKE_STORAGE_INTEGRATION)")
    assert stored == [said]
    assert "Lake-S3cret-Key" not in " ".join(ctx.warnings)


@pytest.mark.integration
def test_discard_stops_a_batch_the_kept_type_would_round_and_loads_one_it_holds(
        env: Env, warehouse: SnowflakeWarehouse) -> None:
    """'discard' keeps NUMBER(12,2); a batch widened to (18,4) whose 5.2555 it would round to
    5.26 stops, naming the value; one whose values all fit loads as it is."""
    warehouse.load(env.ctx(), "1709280000.1", env.batch("1709280000.1", FIRST))
    finer = {"amount": pa.decimal128(18, 4)}
    o5 = order("o5", "created", "5.2555", datetime(2024, 3, 3, 8, 0, 0, 123))

    with pytest.raises(StageError) as refused:
        warehouse.load(env.ctx(contract="discard"), "1709366400.2",
                       env.batch("1709366400.2", [o5], types=finer))
    fits = warehouse.load(env.ctx(contract="discard"), "1709452800.3", env.batch(
        "1709452800.3", [{**o5, "amount": Decimal("5.2500")}], types=finer))

    assert str(refused.value) == (
        "orders: load: column amount changed type in the source (NUMBER(12,2) -> "
        "NUMBER(18,4)); the NUMBER(12,2) of landing.orders would change the batch's value "
        "'5.2555': warehouse.contract is 'discard', which keeps the table's types (Snowflake "
        "cannot change a NUMBER's scale in place: alter the table by hand)")
    assert (fits.rows, fits.inserted) == (1, 1)
    assert warehouse.query("SELECT amount FROM landing.orders WHERE order_id = 'o5'") == [
        (Decimal("5.25"),)]


@pytest.mark.integration
def test_a_marking_pipelines_table_has_its_deleted_at_column_from_the_first_load(
        env: Env, warehouse: SnowflakeWarehouse) -> None:
    """Models read `_deleted_at`: it came with the first mark only."""
    warehouse.load(env.ctx(deletes={"reconcile": "mark"}), "1709280000.1",
                   env.batch("1709280000.1", FIRST))

    assert "_DELETED_AT" in column_types(warehouse)
    assert warehouse.query("SELECT count(*) FROM landing.orders WHERE _deleted_at IS NULL") == [
        (len(FIRST),)]
