"""Compile, then execute: `plan` and `run` use one compiled object, and the ledger says which
version of a pipeline loaded each batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from framework.compiled import CompiledPipeline, compile_project
from framework.demo.shop import create_shop
from framework.project import Project
from tests.e2e.helpers import cli, run_json


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.005, seed=7)
    return url


def ledger(tmp_path: Path) -> list[tuple[str, str, str | None]]:
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT pipeline, load_id, fingerprint FROM "
                           "landing._framework_batches ORDER BY pipeline, load_id").fetchall()
    finally:
        con.close()


def plan_json(*args: str) -> dict[str, dict[str, Any]]:
    import json

    result = cli("plan", "--json", "--no-dbt", *args)
    return {p["pipeline"]: p for p in json.loads(result.stdout[result.stdout.index("["):])}


def test_a_demo_run_records_the_fingerprint_with_each_batch(shop: str, project_dir: Path,
                                                            tmp_path: Path) -> None:
    project = Project.discover(project_dir)
    compiled = compile_project(project, project.target())

    records = run_json("--all", "--no-dbt")

    rows = ledger(tmp_path)
    assert {p for p, _, _ in rows} == set(compiled)
    for pipeline, load_id, fingerprint in rows:
        assert fingerprint == compiled[pipeline].fingerprint, (pipeline, load_id)
        assert records[pipeline]["fingerprint"] == fingerprint
        assert load_id in records[pipeline]["load_ids"]
    history = cli("history", "--pipeline", "orders")
    assert compiled["orders"].fingerprint[:8] in history.stdout
    assert all(p["fingerprint"] == compiled[name].fingerprint
               and p["last_loaded_fingerprint"] == compiled[name].fingerprint
               and not any("changed since the last load" in n for n in p["notes"])
               for name, p in plan_json().items())

    sql = project_dir / "pipelines" / "sql" / "orders.sql"
    sql.write_text(sql.read_text() + "\n-- a comment is a change of the file\n")
    plans = plan_json()

    orders = plans["orders"]
    assert orders["fingerprint"] != compiled["orders"].fingerprint
    assert orders["last_loaded_fingerprint"] == compiled["orders"].fingerprint
    assert [n for n in orders["notes"] if "changed" in n] == [
        (f"pipeline file changed since the last load (version {orders['fingerprint'][:8]}, "
        f"last batch loaded by {compiled['orders'].fingerprint[:8]})")]
    assert not any("changed" in n for name, p in plans.items() if name != "orders"
                   for n in p["notes"])
    text = cli("plan", "--no-dbt", "--pipeline", "orders").stdout
    assert f"orders  version {orders['fingerprint'][:8]}" in text
    assert "pipeline file changed since the last load" in " ".join(text.split())

    # batches an older version loaded kept no fingerprint: that is no change of the file
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    con.execute("UPDATE landing._framework_batches SET fingerprint = NULL "
                "WHERE pipeline = 'payments'")
    con.close()
    notes = plan_json("--pipeline", "payments")["payments"]["notes"]
    assert not any("changed" in n for n in notes)
    assert any("loaded before versions were recorded" in n for n in notes), notes


def test_plan_and_run_use_the_same_compiled_object(shop: str, project_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import framework.compiled
    import framework.runner
    from framework.onboarding.plan import plan
    from framework.runner import Runner

    project = Project.discover(project_dir)
    target = project.target()
    compiled = compile_project(project, target, project.load_pipelines(["customers"]))

    def no_second_compile(*args: Any) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(framework.compiled, "compile_pipeline", no_second_compile)
    monkeypatch.setattr(framework.runner, "compile_pipeline", no_second_compile)
    used: list[CompiledPipeline] = []
    context = Runner.context

    def spying(self: Runner, pipeline: Any) -> Any:
        ctx = context(self, pipeline)
        used.append(ctx.compiled)
        return ctx

    monkeypatch.setattr(Runner, "context", spying)

    plans = plan(project, compiled, target, dbt=False)
    records = Runner(project, target).run(compiled, dbt=False)

    assert len(used) == 2 and all(c is compiled["customers"] for c in used)
    assert plans[0].fingerprint == records[0].fingerprint == compiled["customers"].fingerprint
    assert records[0].status == "success" and records[0].rows_loaded > 0
