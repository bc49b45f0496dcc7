"""`run --all --threads N`: independent pipelines at once, `depends_on` respected, one dbt build;
a pipeline whose upstream fails is skipped with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from framework.demo.shop import TABLES, create_shop
from tests.e2e.helpers import assert_landing_equals_source, assert_marts_match_source, cli, execute


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.003, seed=11)
    return url


def json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_run_all_with_four_threads_lands_every_table_and_builds_the_marts_once(
        shop: str, tmp_path: Path) -> None:
    result = cli("--log-format", "json", "run", "--all", "--threads", "4", "--json")

    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout[result.stdout.index("["):])
    assert {r["pipeline"]: r["status"] for r in records} == {t: "success" for t in TABLES}
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert_landing_equals_source(shop, warehouse, TABLES)
    assert_marts_match_source(shop, warehouse)
    log = json_lines(result.stderr)
    assert [line["message"] for line in log if line["stage"] == "dbt"
            and line["message"].startswith("dbt started")] == ["dbt started"]
    # each thread's records carry its own pipeline (a context per thread, not one global)
    said = [line for line in log if line["message"].startswith("pipeline ")]
    assert said and all(line["pipeline"] == line["message"].split()[1] for line in said)
    assert all(line["pipeline"] for line in log if line["stage"] in ("extract", "load"))
    # customers and products depend on nothing: they ran at the same time
    spans = {name: [line["time"] for line in said if line["pipeline"] == name]
             for name in ("customers", "products")}
    (c_start, c_end), (p_start, p_end) = spans["customers"], spans["products"]
    assert c_start < p_end and p_start < c_end
    # and a dependent started only after its upstream finished
    # (by the order the records were written: two can share a millisecond)
    started = {line["pipeline"]: i for i, line in enumerate(said) if line["message"].endswith(
        " started")}
    finished = {line["pipeline"]: i for i, line in enumerate(said) if not line["message"].endswith(
        " started")}
    assert finished["orders"] < started["order_items"] and finished["orders"] < started["payments"]


@pytest.mark.parametrize("threads", ["1", "4"])
def test_a_failing_upstream_skips_its_dependents_with_the_reason_and_the_rest_succeeds(
        shop: str, threads: str) -> None:
    execute(shop, "DROP TABLE orders")  # orders fails at extract; items and payments need it

    result = cli("run", "--all", "--no-dbt", "--threads", threads)

    assert result.exit_code == 1
    runs = {r["pipeline"]: r for r in json.loads(cli("history", "--json").stdout)}
    assert {name: r["status"] for name, r in runs.items()} == {
        "customers": "success", "products": "success", "orders": "failed",
        "order_items": "skipped", "payments": "skipped"}
    assert runs["order_items"]["error"] == runs["payments"]["error"] == "upstream orders failed"
    assert runs["order_items"]["rows_extracted"] == 0 and runs["order_items"]["seconds"] == {}
    lines = result.output.splitlines()
    assert "skipped: order_items: upstream orders failed" in lines
    assert "skipped: payments: upstream orders failed" in lines
    assert any(line.split()[:2] == ["order_items", "skipped"] for line in lines)  # run table


def test_a_skipped_pipeline_skips_its_own_dependents_and_json_says_why(shop: str) -> None:
    execute(shop, "DROP TABLE customers")  # customers -> orders -> (order_items, payments)

    result = cli("run", "--all", "--no-dbt", "--threads", "3", "--json")

    assert result.exit_code == 1
    records = json.loads(result.stdout[result.stdout.index("["):])
    assert {r["pipeline"]: (r["status"], r["stages_status"]) for r in records} == {
        "customers": ("failed", "failed"), "products": ("success", "loaded"),
        "orders": ("skipped", "skipped"), "order_items": ("skipped", "skipped"),
        "payments": ("skipped", "skipped")}
    reasons = {r["pipeline"]: r["error"] for r in records}
    assert reasons["orders"] == "upstream customers failed"
    assert reasons["payments"] == "upstream orders skipped"
    assert reasons["order_items"] == "upstream orders skipped"


@pytest.mark.parametrize("threads", ["1", "2"])
def test_an_unexpected_error_fails_its_pipeline_and_the_run_goes_on(
        shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: str) -> None:
    # A bug in one pipeline's path (injected: the error is one no stage explains) must not
    # cost the other pipelines their run, nor the dbt build of what they loaded.
    import framework.stages.transform as transform_stage

    real = transform_stage.transform

    def buggy(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        if ctx.spec.name == "order_items":
            raise ZeroDivisionError("division by zero")
        return real(ctx, *args, **kwargs)

    monkeypatch.setattr(transform_stage, "transform", buggy)

    result = cli("run", "--all", "--threads", threads, "--json")

    assert result.exit_code == 1
    records = {r["pipeline"]: r for r in json.loads(result.stdout[result.stdout.index("["):])}
    assert {name: r["status"] for name, r in records.items()} == {
        "customers": "success", "products": "success", "orders": "success",
        "order_items": "failed", "payments": "success"}
    assert records["order_items"]["error"] == (
        "order_items: ZeroDivisionError: division by zero (unexpected; run with --debug for the "
        "traceback)")
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert_landing_equals_source(shop, warehouse, [t for t in TABLES if t != "order_items"])
    assert records["orders"]["models_status"] == "built"

    # --debug stops the run on it, traceback and all; the batch waits in the lake, and the
    # next run (the bug gone) lands it: nothing lost, nothing twice
    with pytest.raises(ZeroDivisionError):
        cli("--debug", "run", "--pipeline", "order_items", "--no-dbt")
    monkeypatch.setattr(transform_stage, "transform", real)
    assert cli("run", "--pipeline", "order_items", "--no-dbt").exit_code == 0
    assert_landing_equals_source(shop, warehouse, ["order_items"])


def test_the_heavy_modules_are_imported_before_the_pipeline_threads_start(
        tmp_path: Path) -> None:
    """Two threads importing pandas (through dlt and pyarrow) for the first time at once could
    see it half made: on a worker that had never run, `--threads 2` failed pipelines with
    "partially initialized module 'pandas' has no attribute 'DataFrame'"."""
    import subprocess
    import sys

    script = tmp_path / "first_thread.py"
    script.write_text("""\
import sys
from graphlib import TopologicalSorter
from framework import parallel

seen = []
order = TopologicalSorter({"a": [], "b": []})
order.prepare()
ready = list(order.get_ready())

def run_one(spec, warehouse):
    seen.append([name for name in ("pyarrow", "pandas", "dlt") if name not in sys.modules])
    return None

class Handle:
    def for_thread(self):
        return self
    def close(self):
        pass

def startable():
    global ready
    start, ready = ready, []
    return start

def settle(name, record):
    order.done(name)

parallel._run_threaded({"a": None, "b": None}, Handle(), 2, run_one, startable, settle, order)
print(seen)
""")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            check=False, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[[], []]"  # nothing left to import in the threads
