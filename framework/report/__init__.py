"""`framework report`: a static HTML dashboard of the reporting marts, readable offline.

`render_report` reads the marts of a target's warehouse (data), draws them (page, svg) and
writes `index.html`; `powerbi.write_pbids` writes a Power BI connection file for Snowflake.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from framework.project import Project
from framework.report.data import load_report_data, marts_reader
from framework.report.page import PageInfo, render_page
from framework.settings.targets import Target

__all__ = ["default_output", "render_report"]


def default_output(project: Project) -> Path:
    return project.state_dir / "report"


def render_report(project: Project, target_name: str | None = None,
                  output: Path | None = None) -> Path:
    """Write the dashboard of the target's marts to `output/index.html`; return its path."""
    target = project.target(target_name)
    runs = project.state_dir / "runs.sqlite"
    with marts_reader(target) as reader:
        data = load_report_data(reader, runs, target.name, why_marts_missing(project, target))
    info = PageInfo(target.name, _warehouse_name(target), dt.datetime.now(dt.UTC))
    html = render_page(data, info)
    folder = (output or default_output(project)).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.html"
    partial = path.with_name(".index.html.partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)  # a browser never sees half a page
    return path


def why_marts_missing(project: Project, target: Target) -> str | None:
    """The real reason marts are missing, from the run log: the last dbt build failed (and
    how), models wait for a landing table, or rows were loaded without a build."""
    from framework.runs import RunLog

    path = project.state_dir / "runs.sqlite"
    if not path.is_file():
        return None
    runs = [r for r in RunLog(path).history(None, 200) if r.get("target") == target.name]
    build = next((r["dbt"] for r in runs if r.get("dbt")), None)
    owed = (project.state_dir / "targets" / target.name / "dbt_pending.json").is_file()
    if build and build.get("status") != "success":
        return f"the last dbt build failed: {build.get('error')}"
    if build and build.get("waiting"):
        return (f"models reading {', '.join(build['waiting'])} wait until those tables are "
                "loaded (run their pipelines)")
    if owed:
        return ("rows were loaded without building the models (a run with --no-dbt, or one "
                "stopped before dbt): run `framework run --all`")
    if runs and not build:
        return "no run has built the marts yet (every run so far had nothing to build)"
    return None


def _warehouse_name(target: Target) -> str:
    wh = target.warehouse
    if wh.type == "snowflake":
        return f"Snowflake {wh.account}, database {wh.database}"
    return f"DuckDB {Path(wh.path or '').name}"
