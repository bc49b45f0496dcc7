"""The DAG factory in a real Airflow 3, driven through subprocesses from its own environment.

Airflow must not be installed in the main environment (dlt would take it up as a config provider),
so it lives in `.venv-airflow` (`UV_PROJECT_ENVIRONMENT=.venv-airflow uv sync --extra airflow`).
Without it these tests skip on a laptop and fail in CI. One AIRFLOW_HOME (SQLite) and one copy of
the project serve the whole module: Airflow is slow to start.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.demo.shop import create_shop, simulate_activity
from tests.airflow.inspect_dags import MARKER
from tests.airflow.webhook import Receiver
from tests.conftest import ROOT, copy_project, service_unavailable
from tests.e2e.helpers import assert_landing_equals_source

AIRFLOW_VENV = Path(os.environ.get("FRAMEWORK_AIRFLOW_VENV") or ROOT / ".venv-airflow")
DAGS_FOLDER = ROOT / "airflow" / "dags"
INSPECT = Path(__file__).with_name("inspect_dags.py")
STAGES = {"extract": ["transform"], "transform": ["validate"], "validate": ["load"],
          "load": ["dbt"], "dbt": []}
DROPPED = ("AIRFLOW", "FRAMEWORK_", "SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "VIRTUAL_ENV")


@dataclass
class Airflow:
    project: Path
    state: Path
    env: dict[str, str]

    @property
    def shop_url(self) -> str:
        return f"sqlite:///{self.state / 'shop.db'}"

    def run(self, *command: str | Path, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(c) for c in command], check=False, env={**self.env, **env},
                              cwd=self.state, capture_output=True, text=True, timeout=timeout)

    def airflow(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(AIRFLOW_VENV / "bin" / "airflow", *args, timeout=timeout, **env)

    def framework(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI of the main environment (the one the tests run in)."""
        return self.run(Path(sys.executable).with_name("framework"), *args)

    def dags(self) -> tuple[dict[str, Any], str]:
        """What a DagBag parse of the DAG folder finds, and everything it logged."""
        result = self.run(AIRFLOW_VENV / "bin" / "python", INSPECT, DAGS_FOLDER, timeout=120)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        line = next(ln for ln in result.stdout.splitlines() if ln.startswith(MARKER))
        return json.loads(line.removeprefix(MARKER)), output

    def pipeline_files(self) -> list[str]:
        return sorted(p.stem for p in (self.project / "pipelines").glob("*.yml"))

    @contextmanager
    def extra_pipeline(self, name: str, **replace: str) -> Iterator[Path]:
        """A copy of customers.yml as `<name>.yml` (own name and lake path), removed afterwards."""
        text = (self.project / "pipelines" / "customers.yml").read_text()
        text = text.replace("name: customers", f"name: {name}")
        text = text.replace("  path: customers", f"  path: {name}")
        for old, new in replace.items():
            assert old in text, old
            text = text.replace(old, new)
        path = self.project / "pipelines" / f"{name}.yml"
        path.write_text(text)
        try:
            yield path
        finally:
            path.unlink()


def json_output(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document an `airflow ... -o json` command printed among its log lines."""
    for line in result.stdout.splitlines():
        if line.startswith(("[", "{")):
            return json.loads(line)
    raise AssertionError(f"no JSON in the output:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    if not (AIRFLOW_VENV / "bin" / "airflow").is_file():
        service_unavailable(f"no Airflow environment at {AIRFLOW_VENV}; create it with "
                            "`UV_PROJECT_ENVIRONMENT=.venv-airflow uv sync --extra airflow`")
    base = tmp_path_factory.mktemp("airflow")
    project, state, home = copy_project(base / "project"), base / "state", base / "home"
    state.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "FRAMEWORK_PROJECT_DIR": str(project),
        "FRAMEWORK_STATE_DIR": str(state),
        "FRAMEWORK_AIRFLOW_RETRIES": "0",  # a failure fails at once, no retry delay
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "TQDM_DISABLE": "1",
    })
    handle = Airflow(project, state, env)
    migrated = handle.airflow("db", "migrate", timeout=180)
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    create_shop(handle.shop_url, scale=0.005)
    return handle


def test_the_dag_folder_parses_to_one_dag_per_pipeline_file(airflow: Airflow) -> None:
    errors = airflow.airflow("dags", "list-import-errors", "--local", "-o", "json")
    listed = airflow.airflow("dags", "list", "--local", "-o", "json", "--columns", "dag_id,owner")

    assert errors.returncode == 0 and json_output(errors) == []
    expected = {f"framework_{name}" for name in airflow.pipeline_files()}
    assert {d["dag_id"] for d in json_output(listed)} == expected

    dags, _ = airflow.dags()
    assert dags["import_errors"] == {}
    assert set(dags["dags"]) == expected
    customers, orders = dags["dags"]["framework_customers"], dags["dags"]["framework_orders"]
    assert customers["tasks"] == STAGES
    assert customers["owners"] == ["data-platform"] and customers["retries"] == [0]
    assert customers["timetable"] == "CronTriggerTimetable" and customers["cron"] == "0 * * * *"
    assert customers["outlets"] == {"load": ["framework.customers"]}
    assert customers["max_active_runs"] == 1 and customers["catchup"] is False
    assert "core" in customers["tags"] and "framework" in customers["tags"]
    # depends_on: [customers] -> its own cron, or'ed with customers' load asset
    assert orders["timetable"] == "AssetOrTimeSchedule" and orders["cron"] == "*/15 * * * *"
    assert orders["upstream_assets"] == ["framework.customers"]


def test_dags_test_runs_every_stage_of_customers_into_the_warehouse(airflow: Airflow) -> None:
    # customers' dbt selection (stg_customers+) reaches tests and marts over the other staging
    # models, so the warehouse is built first, as a running deployment has it; the DAG run then
    # takes the shop's later changes (moved customers, new customers with new orders).
    duckdb_pipelines = [n for n in airflow.pipeline_files() if yaml.safe_load(
        (airflow.project / "pipelines" / f"{n}.yml").read_text())
        .get("transform", {}).get("engine", "duckdb") == "duckdb"]
    first = airflow.framework("run", *(a for n in duckdb_pipelines for a in ("--pipeline", n)))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    simulate_activity(airflow.shop_url, seed=11, customer_moves=12, new_orders=6)

    result = airflow.airflow("dags", "test", "framework_customers")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    for stage in STAGES:
        assert f"[DAG TEST] end task task_id={stage}" in output
    warehouse = airflow.state / "warehouse.duckdb"
    assert_landing_equals_source(airflow.shop_url, warehouse, ["customers"])
    with sqlite3.connect(airflow.state / "runs.sqlite") as con:
        rows = con.execute("SELECT run_id, status, record FROM runs WHERE pipeline = 'customers' "
                           "AND run_id LIKE 'manual__%'").fetchall()
    records = {run_id.rsplit("-", 1)[1]: (status, json.loads(record))
               for run_id, status, record in rows}
    assert {stage: status for stage, (status, _) in records.items()} == {
        "extract": "success", "transform": "success", "validate": "success", "load": "success"}
    assert records["load"][1]["rows_loaded"] == records["extract"][1]["rows_extracted"] > 0


def test_a_new_pipeline_file_adds_a_dag_without_python(airflow: Airflow) -> None:
    with airflow.extra_pipeline("customers_copy"):
        dags, _ = airflow.dags()

    assert dags["import_errors"] == {}
    assert set(dags["dags"]) == {f"framework_{n}" for n in airflow.pipeline_files()} | {
        "framework_customers_copy"}
    assert dags["dags"]["framework_customers_copy"]["tasks"] == STAGES
    assert dags["dags"]["framework_customers_copy"]["outlets"] == {
        "load": ["framework.customers_copy"]}


def test_an_invalid_schedule_fails_validate_and_leaves_the_other_dags(airflow: Airflow) -> None:
    bad = 'schedule: "61 * * * *"'
    with airflow.extra_pipeline("customers_bad", **{'schedule: "0 * * * *"': bad}):
        validate = airflow.framework("validate")
        dags, log = airflow.dags()

    line = ("pipelines/customers_bad.yml:6:11: schedule: '61 * * * *' is not a valid cron "
            "expression: the minute field '61' is not valid (0-59, '*', lists, ranges, steps)")
    assert validate.returncode == 1
    assert line in validate.stdout + validate.stderr
    assert dags["import_errors"] == {}
    assert set(dags["dags"]) == {f"framework_{n}" for n in airflow.pipeline_files()}
    assert line in log and "no DAG for pipeline(s) customers_bad" in log


def test_a_failed_task_posts_to_the_alert_webhook(airflow: Airflow) -> None:
    receiver = Receiver()
    try:
        with airflow.extra_pipeline("customers_alert"):
            result = airflow.airflow(
                "dags", "test", "framework_customers_alert",
                SHOP_DB_URL=f"sqlite:///{airflow.state}/missing/folder/shop.db",
                FRAMEWORK_ALERT_WEBHOOK_URL=receiver.url)
    finally:
        receiver.close()

    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert len(receiver.bodies) == 1, output[-5000:]
    body = receiver.bodies[0]
    assert {k: body[k] for k in ("dag", "task", "pipeline")} == {
        "dag": "framework_customers_alert", "task": "extract", "pipeline": "customers_alert"}
    assert body["run_id"].startswith("manual__") and body["error"]
    assert body["text"].startswith("Pipeline customers_alert failed: task "
                                   "framework_customers_alert.extract")
