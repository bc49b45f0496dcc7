"""A dbt build that fails for a model bug: the run says which test, on which model and column,
with how many failing rows, in full; only the pipelines whose models hold the failure (or
were skipped for it) are `models failed`; `framework report` names that failure as the reason the marts are missing.

The warehouse is hand-made (the dbt test's landing data) with a duplicate order key in
landing.orders: no merge can write that, so `unique` on stg_orders.order_id is a bug to fix,
not dirt to model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from framework.project import Project
from framework.runner import runner_for
from framework.runs import RunRecord
from framework.stages import model
from framework.stages.dbt_results import readable_test_name
from tests.conftest import copy_project
from tests.dbt.test_dbt_project import LANDING_DATA, LANDING_DDL

SELECTIONS = {"customers": ["stg_customers+"], "products": ["stg_products+"],
              "orders": ["stg_orders+"], "categories": ["stg_products", "dim_products"]}


def _env(mp: pytest.MonkeyPatch, root: Path, state: Path) -> None:
    for name in ("SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "FRAMEWORK_TARGET"):
        mp.delenv(name, raising=False)
    mp.setenv("FRAMEWORK_PROJECT_DIR", str(root))
    mp.setenv("FRAMEWORK_STATE_DIR", str(state))


@pytest.fixture(scope="module")
def broken_project(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("broken_build")
    root, state = copy_project(tmp / "project"), tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(state / "warehouse.duckdb"))
    con.execute(LANDING_DDL.replace("order_id varchar primary key", "order_id varchar"))
    con.execute(LANDING_DATA)
    con.execute("insert into landing.orders select * from landing.orders where order_id = 'o1'")
    con.close()
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, root, state)
        project = Project.discover(root)
        runner = runner_for(project)
        records = [RunRecord(runner.run_id, name, "local", status="success",
                             stages_status="loaded") for name in SELECTIONS]
        runner._selections = SELECTIONS
        result = model.run_build(project, runner.target,
                                 [s for selection in SELECTIONS.values() for s in selection])
        runner._report_build(records, set(SELECTIONS), result)
    return result, {r.pipeline: r for r in records}, root, state


@pytest.fixture
def broken(broken_project: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    _env(monkeypatch, broken_project[2], broken_project[3])
    return broken_project[:2]


def test_a_model_bug_fails_the_build_with_every_failure_named(broken: Any) -> None:
    result, _ = broken
    assert result.status == "failed"
    names = {f.name: f for f in result.failures}
    unique = names["unique: stg_orders.order_id"]
    assert (unique.kind, unique.model, unique.column, unique.failures) == \
        ("test", "stg_orders", "order_id", 1)
    assert re.search(r"^\d+ blocking failure\(s\): test unique: stg_orders\.order_id: fail, "
                     r"1 failing row\(s\)", result.error)
    assert all(f.line() in result.error for f in result.failures)  # all of them, not three


def test_only_the_pipelines_whose_models_fail_are_models_failed(broken: Any) -> None:
    _, records = broken
    assert records["orders"].status == "models failed"
    assert records["orders"].stages_status == "loaded"  # its own stages were fine
    assert "unique: stg_orders.order_id" in (records["orders"].error or "")
    # dbt skipped what reads stg_orders (dim_customers, fact_order_items, the marts): those
    # pipelines' models were not built either, so they are not `built`
    assert "dim_customers" in result_skipped(records) and "dim_products" not in \
        result_skipped(records)
    for name in ("customers", "products"):
        assert (records[name].status, records[name].stages_status,
                records[name].models_status) == ("models failed", "loaded", "failed")
    # a selection that reads nothing failed or skipped is built
    assert (records["categories"].status, records["categories"].models_status) == \
        ("success", "built")
    assert records["customers"].dbt == records["orders"].dbt  # one shared entry


def result_skipped(records: dict[str, RunRecord]) -> list[str]:
    return list((records["orders"].dbt or {})["skipped"])


def test_report_names_the_failed_build_as_the_reason_a_mart_is_missing(broken: Any) -> None:
    from tests.e2e.helpers import cli

    result = cli("report")
    assert result.exit_code == 1
    line = " ".join(result.output.split())
    assert "the warehouse has no marts." in line
    assert "the last dbt build failed: " in line and "unique: stg_orders.order_id" in line
    assert "build the marts with `framework run --all` first" not in line


def test_readable_test_names() -> None:
    node = {"test_metadata": {"name": "relationships", "kwargs": {
        "column_name": "customer_id", "to": "ref('dim_customers')", "field": "customer_id"}},
        "attached_node": "model.dbt_ecommerce.fact_orders", "column_name": "customer_id"}
    assert readable_test_name(node, "test.x.y.990af5a19b") == \
        "relationships: fact_orders.customer_id -> dim_customers.customer_id"
    node = {"test_metadata": {"name": "unique_combination_of_columns", "kwargs": {
        "combination_of_columns": ["order_id", "payment_sequential"]}},
        "attached_node": "model.dbt_ecommerce.fact_payments"}
    assert readable_test_name(node, "test.x.y") == \
        "unique_combination_of_columns: fact_payments(order_id, payment_sequential)"
    assert readable_test_name({"name": "assert_fact_orders_revenue_matches_items"}, "t.x.y") \
        == "assert_fact_orders_revenue_matches_items"


def test_a_build_that_cannot_start_fails_the_pipelines_it_was_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warehouse cannot be opened when the build starts (here a file that is not DuckDB's):
    no dbt ran, yet the run's build failed, and the records say so rather than `success`."""
    from framework.errors import StageError
    from framework.owed import OwedModels

    root, state = copy_project(tmp_path / "project"), tmp_path / "state"
    state.mkdir(parents=True)
    (state / "warehouse.duckdb").write_text("not a database\n")
    _env(monkeypatch, root, state)
    runner = runner_for(Project.discover(root))
    OwedModels(runner.dbt_marker).owe(["stg_orders+"])
    runner._selections = {"orders": ["stg_orders+"]}
    record = RunRecord(runner.run_id, "orders", "local", status="success",
                       stages_status="loaded")
    with pytest.raises(StageError):
        runner.build_models([record])
    assert (record.status, record.stages_status, record.models_status) == \
        ("models failed", "loaded", "failed")
    assert "warehouse" in (record.error or "") and record.dbt is not None
    assert record.dbt["status"] == "failed"
    assert OwedModels(runner.dbt_marker).snapshot()  # still owed: the next run builds it


def test_a_build_dbt_cannot_compile_says_why(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A model naming a source nobody declared stops dbt before any node runs: dbt prints
    nothing at `--log-level none`, and the run said only 'dbt exited with status 2'."""
    root, state = copy_project(tmp_path / "project"), tmp_path / "state"
    state.mkdir()
    (root / "dbt_ecommerce" / "models" / "staging" / "stg_ghost.sql").write_text(
        "select * from {{ source('landing', 'ghost') }}\n")
    _env(monkeypatch, root, state)
    project = Project.discover(root)

    result = model.run_build(project, runner_for(project).target, ["stg_orders"])

    assert result.status == "failed"
    assert re.match(r"dbt: Compilation Error .*depends on a source named 'landing\.ghost' "
                    r"which was not found \(log: .*dbt\.log\)$", result.error or ""), result.error
