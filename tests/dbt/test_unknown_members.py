"""Dirty data in the dbt project: facts keep every row, missing dimension rows map to the
unknown member, orphans warn (with counts in mart_orphans) and never fail the build, and a
dimension row that arrives one run later is attached to its facts by the next build.

Landing tables hand-written on DuckDB (the same DDL as test_dbt_project), `dbt build` in
process, twice: orders first, their customer one run later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.dbt.test_dbt_project import LANDING_DDL, PROJECT_DIR

LOAD = "'load_1', timestamp '2024-03-10 00:00:00'"

# o1: a clean order (c1, p1). o2: its customer c9 is not loaded yet. o5: no items.
# Lines: (o1,2) sells p9, a product with no row; (o9,1) belongs to order o9, which has no row.
# Payment (o9,1) has no order either. p3's category is blank, p5's is not in the translation
# seed, c1's zip code lost its leading zero, c2's state is a tab, a no-break space and a space.
DIRTY = f"""
insert into landing.customers values
    ('c1', 'u1', '1310', 'sao paulo', 'SP', timestamp '2024-01-01 10:00', {LOAD}),
    ('c2', 'u2', '20040', '', chr(9) || chr(160) || ' ', timestamp '2024-01-01 10:00', {LOAD});
insert into landing.products values
    ('p1', 'perfumaria', 40, 300, 2, 500, 20, 10, 15, timestamp '2024-01-01 00:00', {LOAD}),
    ('p3', '  ', null, null, null, null, null, null, null, timestamp '2024-01-01 00:00', {LOAD}),
    ('p5', 'pc_gamer', 40, 300, 2, 500, 20, 10, 15, timestamp '2024-01-01 00:00', {LOAD});
insert into landing.orders values
    ('o1', 'c1', 'delivered', timestamp '2024-02-01 09:15', timestamp '2024-02-01 10:00',
        timestamp '2024-02-02 12:00', timestamp '2024-02-05 16:30', timestamp '2024-02-10 00:00',
        timestamp '2024-02-05 16:30', {LOAD}),
    ('o2', 'c9', 'shipped', timestamp '2024-02-03 20:00', timestamp '2024-02-03 20:30',
        timestamp '2024-02-05 08:00', null, timestamp '2024-02-15 00:00',
        timestamp '2024-02-05 08:00', {LOAD}),
    ('o5', 'c2', 'approved', timestamp '2024-02-04 20:00', timestamp '2024-02-04 20:30',
        null, null, timestamp '2024-02-20 00:00', timestamp '2024-02-04 20:30', {LOAD});
insert into landing.order_items values
    ('o1', 1, 'p1', 's1', timestamp '2024-02-03 00:00', 100.00, 10.00, timestamp '2024-02-01 09:15', {LOAD}),
    ('o1', 2, 'p9', 's1', timestamp '2024-02-03 00:00',  50.00,  5.00, timestamp '2024-02-01 09:15', {LOAD}),
    ('o2', 1, 'p3', 's2', timestamp '2024-02-05 00:00',  30.00,  3.00, timestamp '2024-02-03 20:00', {LOAD}),
    ('o2', 2, 'p5', 's2', timestamp '2024-02-05 00:00',  20.00,  2.00, timestamp '2024-02-03 20:00', {LOAD}),
    ('o9', 1, 'p1', 's1', timestamp '2024-02-07 00:00', 800.00, 80.00, timestamp '2024-02-06 20:00', {LOAD});
insert into landing.payments values
    ('o1', 1, 'credit_card', 3, 165.00, timestamp '2024-02-01 10:00', {LOAD}),
    ('o2', 1, 'boleto', 1, 55.00, timestamp '2024-02-03 20:30', {LOAD}),
    ('o9', 1, 'voucher', 1, 880.00, timestamp '2024-02-06 20:30', {LOAD});
"""


def _build(tmp: Path, *extra: str) -> Any:
    from dbt.cli.main import dbtRunner

    return dbtRunner().invoke([
        "build", *extra, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target", "local", "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"),
    ])


def _statuses(result: Any) -> dict[str, str]:
    return {r.node.unique_id: str(getattr(r.status, "value", r.status))
            for r in result.result.results}


def _sql(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@contextmanager
def landing_warehouse(tmp: Path, *statements: str) -> Iterator[Path]:
    """A DuckDB warehouse in `tmp` whose landing tables hold `statements`' rows, as dbt's
    `local` target (DUCKDB_PATH) while the block runs."""
    db = tmp / "warehouse.duckdb"
    con = duckdb.connect(str(db))
    con.execute(LANDING_DDL)
    for statement in statements:
        con.execute(statement)
    con.close()
    saved = os.environ.get("DUCKDB_PATH")
    os.environ["DUCKDB_PATH"] = str(db)
    try:
        yield db
    finally:
        if saved is None:
            os.environ.pop("DUCKDB_PATH", None)
        else:
            os.environ["DUCKDB_PATH"] = saved


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("dbt_dirty")
    with landing_warehouse(tmp, DIRTY) as db:
        first = _build(tmp)
        before = {
            "orders": _sql(db, "select order_id, customer_id, customer_key from marts.fact_orders "
                               "order by order_id"),
            "orphans": _sql(db, "select relationship, orphan_rows, orphan_amount "
                                "from marts.mart_orphans order by relationship_order"),
            "states": _sql(db, "select customer_state, sum(orders) from marts.mart_revenue_by_state "
                               "group by 1 order by 1"),
        }
        # one run later the customer of o2 arrives
        con = duckdb.connect(str(db))
        con.execute("insert into landing.customers values ('c9', 'u9', '30130', 'belo horizonte', "
                    "'MG', timestamp '2024-03-11 10:00', 'load_2', timestamp '2024-03-11 11:00')")
        con.close()
        second = _build(tmp)
        yield {"db": db, "tmp": tmp, "first": first, "second": second, "before": before}


def test_orphans_warn_and_the_build_succeeds(dirty: Any) -> None:
    assert dirty["first"].success, dirty["first"].exception
    statuses = _statuses(dirty["first"])
    warned = sorted(uid.split(".")[2] for uid, status in statuses.items() if status == "warn")
    assert warned == [
        "relationships_fact_order_items_customer_id__customer_id__ref_dim_customers_",
        "relationships_fact_order_items_order_id__order_id__ref_fact_orders_",
        "relationships_fact_order_items_product_id__product_id__ref_dim_products_",
        "relationships_fact_orders_customer_id__customer_id__ref_dim_customers_",
        "relationships_fact_payments_customer_id__customer_id__ref_dim_customers_",
        "relationships_fact_payments_order_id__order_id__ref_fact_orders_",
        "relationships_mart_top_products_product_id__product_id__ref_dim_products_",
    ]
    assert not [uid for uid, status in statuses.items() if status in ("error", "fail", "skipped")]
    failures = {r.node.unique_id.split(".")[2]: r.failures for r in dirty["first"].result.results}
    assert failures["relationships_fact_order_items_order_id__order_id__ref_fact_orders_"] == 1
    assert failures["relationships_fact_order_items_product_id__product_id__ref_dim_products_"] == 1


def test_only_relationships_on_source_keys_warn(dirty: Any) -> None:
    """Severity by kind: relationships on the source's keys warn; every other test (the
    `*_key` columns' relationships, keys, the revenue test) blocks the build."""
    manifest = json.loads((dirty["tmp"] / "target" / "manifest.json").read_text())
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    for test in tests:
        meta = test.get("test_metadata") or {}
        column = test.get("column_name") or ""
        on_source_key = (meta.get("name") == "relationships" and not column.endswith("_key"))
        assert test["config"]["severity"].lower() == ("warn" if on_source_key else "error"), \
            test["name"]
    assert any(t["name"] == "assert_fact_orders_revenue_matches_items" for t in tests)


def test_facts_keep_every_row_and_point_at_unknown_members(dirty: Any) -> None:
    db = dirty["db"]
    assert dirty["before"]["orders"] == [("o1", "c1", "c1"), ("o2", "c9", "-1"), ("o5", "c2", "c2")]
    rows = _sql(db, "select order_id, order_item_id, product_id, product_key, product_category, "
                    "has_order, customer_key from marts.fact_order_items order by 1, 2")
    assert rows == [
        ("o1", 1, "p1", "p1", "perfumery", True, "c1"),
        ("o1", 2, "p9", "-1", "(missing product)", True, "c1"),  # product row missing
        ("o2", 1, "p3", "p3", "(no category)", True, "c9"),       # row exists, category blank
        ("o2", 2, "p5", "p5", "pc_gamer", True, "c9"),            # not in the translation seed
        ("o9", 1, "p1", "p1", "perfumery", False, "-1"),          # order row missing
    ]
    (revenue,), = _sql(db, "select sum(price) from marts.fact_order_items")
    (source,), = _sql(db, "select sum(price) from landing.order_items")
    assert revenue == source == Decimal("1000.00")
    assert _sql(db, "select order_id, has_order, customer_key from marts.fact_payments order by 1") \
        == [("o1", True, "c1"), ("o2", True, "c9"), ("o9", False, "-1")]
    assert _sql(db, "select zip_code_prefix, city, state from marts.dim_customers "
                    "where customer_id in ('c1', 'c2') order by customer_id") \
        == [("01310", "sao paulo", "SP"), ("20040", None, None)]


def test_orphans_are_counted_with_their_share_of_money(dirty: Any) -> None:
    assert dirty["before"]["orphans"] == [
        ("order_items.order_id -> orders.order_id", 1, Decimal("800.00")),
        ("order_items.product_id -> products.product_id", 1, Decimal("50.00")),
        ("orders.customer_id -> customers.customer_id", 1, Decimal("50.00")),
        ("payments.order_id -> orders.order_id", 1, Decimal("880.00")),
    ]
    (share,), = _sql(dirty["db"], "select orphan_share from marts.mart_orphans "
                                  "where relationship_order = 1")
    assert share == pytest.approx(0.8)


def test_a_late_customer_is_attached_by_the_next_build(dirty: Any) -> None:
    assert dirty["second"].success, dirty["second"].exception
    db = dirty["db"]
    assert _sql(db, "select order_id, customer_key from marts.fact_orders order by 1") \
        == [("o1", "c1"), ("o2", "c9"), ("o5", "c2")]
    assert _sql(db, "select orphan_rows from marts.mart_orphans where relationship_order = 3") \
        == [(0,)]
    # the unknown member stays, with no order left on it
    assert _sql(db, "select order_count from marts.dim_customers where customer_id = '-1'") == [(0,)]
    # before: o2 sat on the missing customer; now it is in MG
    assert ("(missing customer)", Decimal(1)) in dirty["before"]["states"]
    states = dict(_sql(db, "select customer_state, sum(orders) from marts.mart_revenue_by_state "
                           "group by 1"))
    assert "(missing customer)" not in states and states["MG"] == 1
    assert states["(no state)"] == 1  # c2 exists, its state is blank


def test_average_order_value_counts_only_orders_with_items(dirty: Any) -> None:
    # sales of February: o1 (150.00 of items), o2 (50.00), o5 (no items yet)
    rows = _sql(dirty["db"], "select orders, orders_with_items, revenue, average_order_value "
                             "from marts.mart_revenue_monthly")
    assert rows == [(3, 2, Decimal("200.00"), Decimal("100.00"))]
