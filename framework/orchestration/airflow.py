"""Airflow DAG factory: one DAG per pipeline file, one task per stage.

    framework_<pipeline>:  extract >> transform >> validate >> load >> dbt

Each task calls one `framework.api` stage function and hands the batch load ids to the next
through XCom, so a failed task retries its own stage alone (the api takes the pipeline lock and
records every call, like `framework run`). The `dbt` task exists when the spec has a `dbt`
selection.

Scheduling: the spec's `schedule` (cron, in UTC, or an Airflow preset). Each `load` task updates
the asset `framework.<pipeline>`; a pipeline with `depends_on` also runs when all its upstream
pipelines have loaded since its last run (Airflow assets), so its models are rebuilt on fresh
upstream data; without a `schedule` it runs on those asset updates alone.

Parsing never imports dlt, Great Expectations or dbt (the stages import them when they run),
and a pipeline file that fails `framework validate` is logged and skipped, so one bad file does
not take the other DAGs down. Settings come from the environment (see docs/airflow.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from framework.extras import require

require("airflow.sdk", "the Airflow DAG factory")  # one line naming the extra, not a traceback

from airflow.sdk import (
    DAG,
    Asset,
    AssetAll,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    get_current_context,
    task,
)

from framework.compiled import CompiledPipeline, compile_pipeline
from framework.errors import FrameworkError
from framework.orchestration.alerts import failure_callback
from framework.orchestration.specs import valid_pipelines
from framework.project import Project
from framework.spec.model import PipelineSpec

DAG_PREFIX = "framework_"
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_RETRIES = 2
RETRY_DELAY = timedelta(minutes=2)
RETRIES_ENV = "FRAMEWORK_AIRFLOW_RETRIES"
POOL_ENV = "FRAMEWORK_AIRFLOW_POOL"
DBT_POOL_ENV = "FRAMEWORK_AIRFLOW_DBT_POOL"
NOT_RECURRING = ("@once", "@continuous")

log = logging.getLogger(__name__)


def dag_id(pipeline: str) -> str:
    return f"{DAG_PREFIX}{pipeline}"


def landing_asset(pipeline: str) -> Asset:
    """Updated by the pipeline's `load` task; downstream pipelines are scheduled on it."""
    return Asset(name=f"framework.{pipeline}", uri=f"framework://pipelines/{pipeline}")


def schedule_for(spec: PipelineSpec) -> Any:
    """The spec's schedule, or'ed with "all upstream pipelines loaded" when it has depends_on."""
    timetable = _timetable(spec.schedule)
    if not spec.depends_on or spec.schedule in NOT_RECURRING:
        return timetable
    upstream = AssetAll(*(landing_asset(name) for name in spec.depends_on))
    return upstream if timetable is None else AssetOrTimeSchedule(timetable=timetable,
                                                                  assets=upstream)


def _timetable(schedule: str | None) -> Any:
    if schedule is None or schedule in NOT_RECURRING:
        return schedule
    return CronTriggerTimetable(schedule, timezone="UTC")


def build_dags(project_dir: str | Path | None = None) -> list[DAG]:
    """A DAG for every valid pipeline file of the project (`FRAMEWORK_PROJECT_DIR` wins)."""
    chosen = os.environ.get("FRAMEWORK_PROJECT_DIR") or project_dir  # the DAG file's is a fallback
    project = Project.discover(Path(chosen) if chosen else None)
    pipelines = valid_pipelines(project)
    for problem in pipelines.problems:
        log.error("%s", problem)
    if pipelines.skipped:
        log.error("no DAG for pipeline(s) %s: fix the problems above (`framework validate` "
                  "lists them)", ", ".join(pipelines.skipped))
    try:
        target = project.target(_target())
    except FrameworkError as exc:  # every task would fail the same way: say it once, loudly
        log.error("no DAGs: %s", exc)
        return []
    dags: list[DAG] = []
    for spec in pipelines.specs.values():
        try:  # compiled like `framework run` compiles it; the tasks run this version
            dags.append(build_dag(compile_pipeline(project, target, spec), project.root))
        except Exception:  # one pipeline's DAG must not hide the others
            log.exception("no DAG for pipeline %s", spec.name)
    return dags


def build_dag(pipeline: CompiledPipeline, project_dir: Path) -> DAG:
    spec = pipeline.spec
    name, where = spec.name, str(project_dir)
    default_args: dict[str, Any] = {"owner": spec.owner, "retries": _retries(spec),
                                    "retry_delay": RETRY_DELAY}
    callback = failure_callback(name)
    if callback is not None:
        default_args["on_failure_callback"] = callback
    pool = os.environ.get(POOL_ENV, "").strip()
    if pool:
        default_args["pool"] = pool
    dbt_pool = os.environ.get(DBT_POOL_ENV, "").strip() or pool or None

    with DAG(
        dag_id(name),
        schedule=schedule_for(spec),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,  # the framework's lock would refuse a second run anyway
        default_args=default_args,
        tags=["framework", *spec.tags],
        description=spec.description or None,
        doc_md=_doc(pipeline),
    ) as dag:

        # `framework.api` is imported when a task runs, not when the file is parsed: it brings
        # dlt, Great Expectations and dbt, far too slow for the DAG processor.
        def extract() -> list[str]:
            from framework import api

            return api.extract(name, **_stage_args(where))

        def transform(load_ids: list[str]) -> list[str]:
            from framework import api

            return api.transform(name, load_ids, **_stage_args(where))

        def validate(load_ids: list[str]) -> list[str]:
            from framework import api

            return api.validate(name, load_ids, **_stage_args(where))

        def load(load_ids: list[str]) -> int:
            from framework import api

            rows = api.load(name, load_ids, **_stage_args(where))
            extra: dict[str, Any] = {"load_ids": load_ids, "rows_loaded": rows}
            get_current_context()["outlet_events"][landing_asset(name)].extra = extra
            return rows

        def dbt() -> list[str]:
            from framework import api

            return api.build_models([name], target=_target(), project_dir=where)

        load_ids = _task(validate)(_task(transform)(_task(extract)()))
        loaded = _task(load, outlets=[landing_asset(name)])(load_ids)
        if spec.dbt:
            loaded >> _task(dbt, pool=dbt_pool)()
    return dag


def _task(func: Callable[..., Any], **options: Any) -> Any:
    """TaskFlow's `@task`, named after the stage (typed loosely: tasks take XComArgs)."""
    return task(task_id=func.__name__, **options)(func)


def _target() -> str | None:
    return os.environ.get("FRAMEWORK_TARGET") or None


def _stage_args(project_dir: str) -> dict[str, Any]:
    """The run's records are named after the Airflow run: `<run_id>-<stage>`."""
    return {"target": _target(), "project_dir": project_dir,
            "run_id": str(get_current_context()["run_id"])}


def _retries(spec: PipelineSpec) -> int:
    own = getattr(spec, "retries", None)  # a spec key, if the spec model grows one
    if isinstance(own, int):
        return own
    raw = os.environ.get(RETRIES_ENV, "").strip()
    try:
        return int(raw) if raw else DEFAULT_RETRIES
    except ValueError:
        log.error("%s=%r is not a whole number; using %d", RETRIES_ENV, raw, DEFAULT_RETRIES)
        return DEFAULT_RETRIES


def _doc(pipeline: CompiledPipeline) -> str:
    from framework.sources.registry import describe

    spec = pipeline.spec
    lines = [f"### {spec.name}", "", spec.description, "",
             f"- file: `pipelines/{spec.name}.yml`",
             f"- source: `{describe(spec.source)}`, "
             + f"cursor `{spec.reads}`",
             f"- landing table: `{pipeline.warehouse.shown}`",
             f"- schedule: `{spec.schedule or 'none'}` (UTC)",
             f"- version: `{pipeline.short_fingerprint}` (`framework plan` and `history` show it)"]
    if spec.depends_on:
        lines.append("- also runs after: " + ", ".join(f"`{dag_id(d)}`" for d in spec.depends_on))
    if pipeline.dbt_select:
        lines.append("- dbt: `" + " ".join(pipeline.dbt_select) + "`")
    return "\n".join(lines)
