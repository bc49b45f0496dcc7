"""Incremental facts and dim_customers end equal to a full rebuild after updates, late rows and
deletes.

Landing tables hand-written on DuckDB (the dirty shop of test_unknown_members plus one clean
order that nothing touches later), a first `dbt build`, then three runs' worth of changes
written the way the framework writes them (a later `_loaded_at`), each followed by a build:
new orders with lines and payments, a changed order status, a customer and a product that
arrive late (their facts leave the unknown member), an order that arrives after its lines;
then deletes by reconcile (an order, a line, a payment, a customer, a product); then a line and
a payment deleted from orders nothing else touches. After each, every mart must be exactly what
`dbt build --full-refresh` of the same landing tables makes, and what nothing touched must not
have been rebuilt.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from tests.dbt.test_dbt_project import PROJECT_DIR
from tests.dbt.test_unknown_members import DIRTY, _sql, _statuses, landing_warehouse

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

# Two days after the first load, as one run writes them: new rows and changed ones.
LOAD_2 = "'load_2', timestamp '2024-03-12 00:00:00'"
WRITES = f"""
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
"""

# The next run: deletes by reconcile (the framework removes the landing rows): order o5, line
# o2/2, payment o2/1, customer c2 (nothing of theirs left but the dimension row), product p3
# (line o2/1).
DELETES = """
delete from landing.orders where order_id = 'o5';
delete from landing.order_items where order_id = 'o2' and order_item_id = 2;
delete from landing.payments where order_id = 'o2' and payment_sequential = 1;
delete from landing.customers where customer_id = 'c2';
delete from landing.products where product_id = 'p3';
"""

# And one more: a line and a payment deleted from orders nothing else touches.
LOST_LINES = """
delete from landing.order_items where order_id = 'o1' and order_item_id = 2;
delete from landing.payments where order_id = 'o9' and payment_sequential = 1;
"""

# And the last: orders leave customer c1 (o9 moves to c9, o6 is deleted) while c1 stays.
ORDERS_LEAVE = """
update landing.orders set customer_id = 'c9', updated_at = timestamp '2024-03-14 12:00',
    _load_id = 'load_4', _loaded_at = timestamp '2024-03-15 00:00:00' where order_id = 'o9';
delete from landing.orders where order_id = 'o6';
"""
ROUNDS = {"writes": WRITES, "deletes": DELETES, "lost lines": LOST_LINES,
          "orders leave": ORDERS_LEAVE}


def _build(tmp: Path, *extra: str, project: Path = PROJECT_DIR) -> Any:
    result = dbtRunner().invoke([
        "build", *extra, "--project-dir", str(project), "--profiles-dir", str(project),
        "--target", "local", "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs")])
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


def _full_refresh_of(db: Path, tmp: Path,
                     project: Path = PROJECT_DIR) -> dict[str, list[tuple[Any, ...]]]:
    """The marts `dbt build --full-refresh` makes of a copy of `db`'s landing tables."""
    copy = tmp / "full_refresh"
    copy.mkdir(exist_ok=True)
    _sql(db, "checkpoint")  # this process (dbt's connection) may hold writes in the WAL
    shutil.copy(db, copy / db.name)
    os.environ["DUCKDB_PATH"] = str(copy / db.name)
    try:
        _build(copy, "--full-refresh", project=project)
    finally:
        os.environ["DUCKDB_PATH"] = str(db)
    return _marts(copy / db.name)


FACTS = {
    "orders": "select order_id, customer_key, order_status, item_count, payment_count "
              "from marts.fact_orders order by 1",
    "lines": "select order_id, order_item_id, product_key, product_category, has_order "
             "from marts.fact_order_items order by 1, 2",
    "payments": "select order_id, has_order, customer_key from marts.fact_payments order by 1",
}


def _compiled(tmp: Path, model: str) -> str:
    return (tmp / "target" / "compiled" / "dbt_ecommerce" / "models" / "marts" /
            f"{model}.sql").read_text()


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Three incremental builds, one per change set; after each, the marts, a full refresh of
    the same landing tables, and which paths the build took."""
    tmp = tmp_path_factory.mktemp("dbt_incremental")
    rounds: dict[str, dict[str, Any]] = {}
    with landing_warehouse(tmp, DIRTY, UNTOUCHED) as db:
        _build(tmp)
        for name, changes in ROUNDS.items():
            # Marks on rows no change touches: an incremental build leaves them, a rebuild
            # would not (o7 and its line; c2 until it is deleted).
            _sql(db, "update marts.fact_order_items set seller_id = 'untouched' where order_id = 'o7'")
            _sql(db, "update marts.dim_customers set city = 'untouched' where customer_id = 'c2'")
            con = duckdb.connect(str(db))
            con.execute(changes)
            con.close()
            _build(tmp)
            marked = _sql(db, "select seller_id from marts.fact_order_items where order_id = 'o7' "
                              "union all select city from marts.dim_customers "
                              "where customer_id = 'c2'")
            _sql(db, "update marts.fact_order_items set seller_id = 's7' where order_id = 'o7'")
            _sql(db, "update marts.dim_customers set city = null where customer_id = 'c2'")
            rounds[name] = {
                "facts": {fact: _sql(db, sql) for fact, sql in FACTS.items()},
                "marked": marked, "incremental": _marts(db), "full": _full_refresh_of(db, tmp),
                "counted_every_order": "payment_counts" in _compiled(tmp, "fact_orders"),
                "recounted_every_customer": "changed as (" not in _compiled(tmp, "dim_customers"),
            }
        yield rounds


@pytest.mark.parametrize("changes", list(ROUNDS))
def test_incremental_build_equals_a_full_refresh_build(builds: Any, changes: str) -> None:
    built = builds[changes]
    assert built["incremental"].keys() == built["full"].keys()
    for table, rows in built["full"].items():
        assert built["incremental"][table] == rows, table


def test_incremental_build_leaves_untouched_rows(builds: Any) -> None:
    assert builds["writes"]["marked"] == [("untouched",), ("untouched",)]
    assert builds["lost lines"]["marked"] == [("untouched",)]  # c2 is gone
    assert builds["orders leave"]["marked"] == [("untouched",)]


def test_counting_every_order_or_customer_only_after_deletes(builds: Any) -> None:
    """New and changed rows rebuild only what they touch; an order deleted or moved away from a
    customer makes dim_customers recount every customer; a deleted order, line or payment
    makes fact_orders count every order's lines and payments."""
    assert [(builds[r]["counted_every_order"], builds[r]["recounted_every_customer"])
            for r in ROUNDS] == [(False, False), (True, True), (True, False), (True, True)]


def test_changes_reach_the_facts(builds: Any) -> None:
    facts = builds["deletes"]["facts"]
    assert facts["orders"] == [
        ("o1", "c1", "canceled", 2, 1),
        ("o2", "c9", "shipped", 1, 0),  # customer arrived; line 2 and the payment deleted
        ("o6", "c1", "delivered", 1, 1),
        ("o7", "c1", "delivered", 1, 1),
        ("o9", "c1", "delivered", 1, 1),  # the order arrived after its line and payment
    ]
    assert facts["lines"] == [
        ("o1", 1, "p1", "perfumery", True),
        ("o1", 2, "p9", "perfumery", True),  # product arrived
        ("o2", 1, "-1", "(missing product)", True),  # product deleted
        ("o6", 1, "p5", "pc_gamer", True),
        ("o7", 1, "p1", "perfumery", True),
        ("o9", 1, "p1", "perfumery", True),
    ]
    assert facts["payments"] == [("o1", True, "c1"), ("o6", True, "c1"), ("o7", True, "c1"),
                                 ("o9", True, "c1")]
    # one more run: o1's second line and o9's payment deleted
    assert [r for r in builds["lost lines"]["facts"]["orders"] if r[0] in ("o1", "o9")] == \
        [("o1", "c1", "canceled", 1, 1), ("o9", "c1", "delivered", 1, 0)]


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


def test_a_seed_edit_reaches_the_products_and_their_lines(tmp_path: Path) -> None:
    """The category translation seed names perfumaria otherwise: dim_products rewrites the
    products it names, fact_order_items their lines, and the marts follow, as a full refresh."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    with landing_warehouse(tmp_path, DIRTY, UNTOUCHED) as db:
        _build(tmp_path, project=project)
        seed = project / "seeds" / "product_category_name_translation.csv"
        seed.write_text(seed.read_text().replace("perfumaria,perfumery\n", "perfumaria,perfume\n"))
        _build(tmp_path, project=project)
        assert _sql(db, "select distinct product_category from marts.fact_order_items "
                        "where product_key = 'p1'") == [("perfume",)]
        incremental = _marts(db)
        assert incremental == _full_refresh_of(db, tmp_path, project)
