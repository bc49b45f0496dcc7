"""The generated DAGs under a real scheduler: LocalExecutor, parallelism 4, several pipelines'
DAG runs at once, ending with the warehouse equal to the source.

`airflow dags test` runs one DAG in the foreground, so this starts what a deployment runs (the
API server the tasks report to, the scheduler with its LocalExecutor workers, the DAG processor)
on free loopback ports, unpauses and triggers three DAGs, and waits for their runs. Airflow 3's
LocalExecutor runs on its SQLite database here. Slow (minutes): Airflow starts several processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from framework.demo.shop import create_shop
from tests.airflow.test_dags import AIRFLOW_VENV, DAGS_FOLDER, DROPPED, json_output
from tests.conftest import copy_project, service_unavailable
from tests.e2e.helpers import assert_landing_equals_source
from tests.integration.conftest import free_port

PIPELINES = ("customers", "products", "payments")


class Deployment:
    def __init__(self, base: Path) -> None:
        self.project, self.state, self.home = copy_project(base / "project"), base / "state", \
            base / "home"
        self.state.mkdir()
        self.home.mkdir()
        api = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
        self.env.update({
            "AIRFLOW_HOME": str(self.home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(api),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "parallel-dags-test",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "FRAMEWORK_PROJECT_DIR": str(self.project), "FRAMEWORK_STATE_DIR": str(self.state),
            "FRAMEWORK_AIRFLOW_RETRIES": "0", "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", "TQDM_DISABLE": "1",
        })
        self.api = api
        self.processes: list[subprocess.Popen[bytes]] = []

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AIRFLOW_VENV / "bin" / "airflow"), *args], env=self.env,
                              cwd=self.state, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def start(self, *args: str) -> None:
        log = open(self.home / f"{args[0]}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen(
            [str(AIRFLOW_VENV / "bin" / "airflow"), *args], env=self.env, cwd=self.state,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def wait_for(self, check: object, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
            time.sleep(2)

    def runs(self, dag: str) -> list[dict[str, str]]:
        result = self.airflow("dags", "list-runs", dag, "-o", "json")
        return json_output(result) if result.returncode == 0 else []  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not (AIRFLOW_VENV / "bin" / "airflow").is_file():
        service_unavailable(f"no Airflow environment at {AIRFLOW_VENV}; create it with "
                            "`UV_PROJECT_ENVIRONMENT=.venv-airflow uv sync --extra airflow`")
    d = Deployment(tmp_path_factory.mktemp("airflow-parallel"))
    migrated = d.airflow("db", "migrate", timeout=600)
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    create_shop(f"sqlite:///{d.state / 'shop.db'}", scale=0.003, seed=5)
    try:
        for component in ("api-server", "scheduler", "dag-processor"):
            d.start(component)
        yield d
    finally:
        d.stop()


def _api_up(d: Deployment) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{d.api}/api/v2/monitor/health", timeout=5):
            return True
    except OSError:
        return False


@pytest.mark.soak  # a scheduler, an API server and real DAG runs: 15+ minutes, opt-in
@pytest.mark.timeout(2400)
def test_dags_of_several_pipelines_run_in_parallel_and_the_warehouse_equals_the_source(
        deployment: Deployment) -> None:
    d = deployment
    dags = [f"framework_{p}" for p in PIPELINES]

    def parsed() -> bool:
        listed = d.airflow("dags", "list", "-o", "json")
        return listed.returncode == 0 and set(dags) <= {x["dag_id"] for x in json_output(listed)}

    d.wait_for(parsed, "the DAG processor storing the DAGs", 600)
    d.wait_for(lambda: _api_up(d), "the API server", 300)
    for dag in dags:  # unpausing also schedules the latest cron interval: more runs at once
        assert d.airflow("dags", "unpause", dag).returncode == 0
        assert d.airflow("dags", "trigger", dag).returncode == 0

    def finished() -> bool:
        states = [r["state"] for dag in dags for r in d.runs(dag)]
        return bool(states) and all(s in ("success", "failed") for s in states)

    d.wait_for(finished, "every DAG run", 1800)
    runs = {dag: d.runs(dag) for dag in dags}
    assert all(r["state"] == "success" for rs in runs.values() for r in rs), runs
    spans = [(datetime.fromisoformat(r["start_date"]), datetime.fromisoformat(r["end_date"]))
             for rs in runs.values() for r in rs]
    overlapping = any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans)
                      for b in spans[i + 1:])
    assert overlapping, f"no two DAG runs overlapped: {spans}"
    assert_landing_equals_source(f"sqlite:///{d.state / 'shop.db'}",
                                 d.state / "warehouse.duckdb", list(PIPELINES))
