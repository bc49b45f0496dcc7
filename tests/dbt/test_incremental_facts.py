"""Incremental facts end equal to a full rebuild after updates, late rows and deletes.

Landing tables hand-written on DuckDB (the dirty shop of test_unknown_members plus one clean
order that nothing touches later), a first `dbt build`, then one run's worth of changes written
the way the framework writes them (a later `_loaded_at`): new orders with lines and payments, a
changed order status, a customer and a product that arrive late (their facts leave the unknown
member), an order that arrives after its lines, and deletes by reconcile (an order, a line, a
payment, a customer, a product). The incremental build must leave every mart exactly as
`dbt build --full-refresh` of the same landing tables does, and must not rebuild what nothing
touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from tests.dbt.test_dbt_project import PROJECT_DIR
from tests.dbt.test_unknown_members import DIRTY, _sql, _statuses, landing_warehouse
from tests.dbt.test_unknown_members import _build as build

# o7: a clean order of c1 (line p1, one payment) that no later change touches.
LOAD_0 = "'load_0', timestamp '2024-03-01 00:00:00'"
UNTOUCHED = f"""
insert into landing.orders values
    ('o7', 'c1', 'delivered', timestamp '2024-01-20 09:00', timestamp '2024-01-20 10:00',
        timestamp '2024-01-21 12:00', timestamp '2024-01-25 16:30', timestamp '2024-01-30 00:00',
        timestamp '2024-01-25 16:30', {LOAD_0});
insert into landing.order_items values
    ('o7', 1, 'p1', 's7', timestamp '2024-01-22 00:00', 70.00, 7.00, timestamp '2024-01-20 09:00', {LOAD_0});
insert into landing.payments values
    ('o7', 1, 'credit_card', 1, 77.00, timestamp '2024-01-20 10:00', {LOAD_0});
"""

# Two days after the first load, as one run writes them.
LOAD_2 = "'load_2', timestamp '2024-03-12 00:00:00'"
CHANGES = f"""
-- late dimension rows: c9 (customer of o2), p9 (product of line o1/2)
insert into landing.customers values
    ('c9', 'u9', '30130', 'belo horizonte', 'MG', timestamp '2024-03-11 10:00', {LOAD_2});
insert into landing.products values
    ('p9', 'perfumaria', 40, 300, 2, 500, 20, 10, 15, timestamp '2024-03-11 10:00', {LOAD_2});
-- o1 changes status (a merge pipeline rewrites the row)
update landing.orders set order_status = 'canceled', updated_at = timestamp '2024-03-11 12:00',
    _load_id = 'load_2', _loaded_at = timestamp '2024-03-12 00:00:00' where order_id = 'o1';
-- o9 arrives after its line and payment; o6 is new, with a line and a payment
insert into landing.orders values
    ('o9', 'c1', 'delivered', timestamp '2024-02-06 20:00', timestamp '2024-02-06 20:30',
        timestamp '2024-02-07 12:00', timestamp '2024-02-09 16:30', timestamp '2024-02-20 00:00',
        timestamp '2024-03-11 09:00', {LOAD_2}),
    ('o6', 'c1', 'delivered', timestamp '2024-03-11 08:00', timestamp '2024-03-11 08:30',
        null, null, timestamp '2024-03-20 00:00', timestamp '2024-03-11 08:30', {LOAD_2});
insert into landing.order_items values
    ('o6', 1, 'p5', 's1', timestamp '2024-03-12 00:00', 25.00, 2.50, timestamp '2024-03-11 08:00', {LOAD_2});
insert into landing.payments values
    ('o6', 1, 'boleto', 1, 27.50, timestamp '2024-03-11 08:30', {LOAD_2});
-- deletes (reconcile removes the landing rows): order o5, line o2/2, payment o2/1,
-- customer c2 (nothing of theirs left but the dimension row), product p3 (line o2/1)
delete from landing.orders where order_id = 'o5';
delete from landing.order_items where order_id = 'o2' and order_item_id = 2;
delete from landing.payments where order_id = 'o2' and payment_sequential = 1;
delete from landing.customers where customer_id = 'c2';
delete from landing.products where product_id = 'p3';
"""


def _build(tmp: Path, *extra: str) -> Any:
    result = build(tmp, *extra)
    assert result.success, result.exception
    return result


def _marts(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every mart's rows, but `built_at`: the start of the build that wrote a row differs
    between two builds by definition."""
    tables = [t for (t,) in _sql(db, "select table_name from information_schema.tables "
                                     "where table_schema = 'marts' order by 1")]
    stamped = {t for (t,) in _sql(db, "select table_name from information_schema.columns "
                                      "where table_schema = 'marts' and column_name = 'built_at'")}
    return {t: _sql(db, f"select * {'exclude (built_at)' if t in stamped else ''} "
                        f"from marts.{t} order by all") for t in tables}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("dbt_incremental")
    with landing_warehouse(tmp, DIRTY, UNTOUCHED) as db:
        _build(tmp)
        # A mark on a row no change touches: an incremental build leaves it, a rebuild would not.
        _sql(db, "update marts.fact_order_items set seller_id = 'untouched' where order_id = 'o7'")
        con = duckdb.connect(str(db))
        con.execute(CHANGES)
        con.close()
        _build(tmp)
        marked = _sql(db, "select seller_id from marts.fact_order_items where order_id = 'o7'")
        _sql(db, "update marts.fact_order_items set seller_id = 's7' where order_id = 'o7'")
        incremental = _marts(db)
        _build(tmp, "--full-refresh")
        yield {"db": db, "marked": marked, "incremental": incremental, "full": _marts(db)}


def test_incremental_build_equals_a_full_refresh_build(builds: Any) -> None:
    assert builds["incremental"].keys() == builds["full"].keys()
    for table, rows in builds["full"].items():
        assert builds["incremental"][table] == rows, table


def test_incremental_build_leaves_untouched_fact_rows(builds: Any) -> None:
    assert builds["marked"] == [("untouched",)]


def test_changes_reach_the_facts(builds: Any) -> None:
    db = builds["db"]
    assert _sql(db, "select order_id, customer_key, order_status, item_count, payment_count "
                    "from marts.fact_orders order by 1") == [
        ("o1", "c1", "canceled", 2, 1),
        ("o2", "c9", "shipped", 1, 0),  # customer arrived; line 2 and the payment deleted
        ("o6", "c1", "delivered", 1, 1),
        ("o7", "c1", "delivered", 1, 1),
        ("o9", "c1", "delivered", 1, 1),  # the order arrived after its line and payment
    ]
    assert _sql(db, "select order_id, order_item_id, product_key, product_category, has_order "
                    "from marts.fact_order_items order by 1, 2") == [
        ("o1", 1, "p1", "perfumery", True),
        ("o1", 2, "p9", "perfumery", True),  # product arrived
        ("o2", 1, "-1", "(missing product)", True),  # product deleted
        ("o6", 1, "p5", "pc_gamer", True),
        ("o7", 1, "p1", "perfumery", True),
        ("o9", 1, "p1", "perfumery", True),
    ]
    assert _sql(db, "select order_id, has_order, customer_key from marts.fact_payments "
                    "order by 1") == [("o1", True, "c1"), ("o6", True, "c1"),
                                      ("o7", True, "c1"), ("o9", True, "c1")]


def test_a_builds_fact_tests_read_the_rows_it_wrote(tmp_path: Path) -> None:
    """`dbt build` tests the facts' newest rows (macros/last_build_rows.sql): a duplicate key
    among them fails the build; one among rows an earlier build wrote is not read again, while
    `dbt test` reads the whole table and finds it."""
    def unique_fact_orders_order_id(*args: str) -> str:
        result = dbtRunner().invoke([
            *args, "--select", "fact_orders", "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROJECT_DIR), "--target", "local",
            "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")])
        return next(status for uid, status in _statuses(result).items()
                    if uid.split(".")[2] == "unique_fact_orders_order_id")

    with landing_warehouse(tmp_path, DIRTY, UNTOUCHED) as db:
        _build(tmp_path)
        # a first build writes every row, with one stamp: its tests read them all
        assert _sql(db, "select count(distinct built_at) from marts.fact_orders") == [(1,)]
        # o7 twice among the newest build's rows (what a join fanning out would write)
        _sql(db, "insert into marts.fact_orders select * from marts.fact_orders where order_id = 'o7'")
        assert unique_fact_orders_order_id("build") == "fail"
        # the same duplicate among the rows of an earlier build
        _sql(db, "update marts.fact_orders set built_at = built_at - interval 1 day "
                 "where order_id = 'o7'")
        assert unique_fact_orders_order_id("build") == "pass"
        assert unique_fact_orders_order_id("test") == "fail"
