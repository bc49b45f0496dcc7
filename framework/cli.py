"""The `framework` command line: validate, list, run, demo, history, schema.

One error handler for every command: a short red line and exit status 1; the traceback only
with `--debug`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from framework.errors import FrameworkError, SpecErrors
from framework.settings.envvars import redact

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

target_option = click.option(
    "--target", "-t", default=None, envvar="FRAMEWORK_TARGET",
    help="Target from framework.yml (default: local, or FRAMEWORK_TARGET).")


def handle_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecErrors as exc:
            for error in exc.errors:
                console.print(f"[red]{escape(redact(error.render()))}[/red]", soft_wrap=True)
            sys.exit(1)
        except FrameworkError as exc:
            console.print(f"[red]error:[/red] {escape(redact(str(exc)))}", soft_wrap=True)
            sys.exit(1)
        except Exception as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            console.print(f"[red]error:[/red] {type(exc).__name__}: {escape(redact(first))} "
                          "(run with --debug for the traceback)", soft_wrap=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="framework")
def main(debug: bool) -> None:
    """Declarative ingestion: one YAML file per table, from the shop database to the marts."""
    quiet_libraries()


def quiet_libraries() -> None:
    """Our own progress display replaces the libraries' bars and chatter."""
    import warnings

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")


def _project() -> Any:
    from framework.project import Project

    return Project.discover()


@main.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "github"]), default="text",
              show_default=True,
              help="`github`: also print each problem as a GitHub Actions annotation "
                   "(::error file=...,line=...,col=...::key: message).")
@handle_errors
def validate(files: tuple[Path, ...], output_format: str) -> None:
    """Check pipeline files against pipeline.schema.json and the project.

    The whole project is always validated (a suite or SQL file can break an unchanged
    pipeline). A named file outside pipelines/ is validated too, wherever it is, against the
    project: a check that cannot see the file must not say it is valid.
    """
    from framework.errors import SpecError
    from framework.spec.checks import check_file

    project = _project()
    started = time.perf_counter()
    for name in files:
        if not name.exists() and not name.is_symlink():
            raise FrameworkError(f"{name}: no such file")
    in_project = {p.parent.resolve() / p.name for p in project.pipeline_paths()}
    elsewhere = [f for f in files if f.parent.resolve() / f.name not in in_project]
    errors: list[SpecError] = []
    specs: dict[str, Any] = {}
    try:
        specs = project.load_pipelines()  # every problem, one line each
    except SpecErrors as exc:
        errors.extend(exc.errors)
    for path in elsewhere:
        errors.extend(check_file(project, path, str(path)))
    if errors:
        if output_format == "github":
            from framework.cli_onboarding import github_annotation

            for error in errors:
                message = f"{error.key}: {error.message}" if error.key else error.message
                out.print(github_annotation(error.path, error.line, error.col, redact(message)),
                          markup=False, highlight=False, soft_wrap=True)
        raise SpecErrors(errors)
    count = len(set(files)) if files else len(specs)
    out.print(f"[green]ok[/green] {count} pipeline file(s) valid "
              f"({time.perf_counter() - started:.2f}s)")


@main.command("list")
@target_option
@handle_errors
def list_pipelines(target: str | None) -> None:
    """The pipelines, their source, cursor, last run and state."""
    from framework.runs import RunLog

    project = _project()
    specs = project.load_pipelines()
    log = RunLog(project.state_dir / "runs.sqlite")
    name = project.target_name(target)
    table = Table("pipeline", "source", "cursor", "landing table", "last run", "status", "rows loaded")
    for spec in specs.values():
        last = log.last(spec.name, name) or {}
        table.add_row(spec.name, f"{spec.source.connection}.{spec.source.table or '(query)'}",
                      spec.cursor or "(full refresh)",
                      f"{spec.warehouse.db_schema}.{spec.table}",
                      (last.get("started_at") or "never")[:19], last.get("status", "-"),
                      str(last.get("rows_loaded", "-")))
    out.print(table)


@main.command()
@click.option("--pipeline", "-p", "pipelines", multiple=True, help="Pipeline to run (repeatable).")
@click.option("--all", "run_all", is_flag=True, help="Run every pipeline in depends_on order.")
@click.option("--full-refresh", is_flag=True, help="Re-extract everything and rebuild the tables.")
@click.option("--no-dbt", is_flag=True, help="Stop after the warehouse load.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@target_option
@handle_errors
def run(pipelines: tuple[str, ...], run_all: bool, full_refresh: bool, no_dbt: bool,
        as_json: bool, target: str | None) -> None:
    """Run pipelines: extract, transform, validate, load, then dbt."""
    if not pipelines and not run_all:
        raise FrameworkError("name pipelines with --pipeline NAME or run them all with --all")
    project = _project()
    specs = project.load_pipelines(None if run_all else list(pipelines))
    records = _execute(project, specs, target, full_refresh, not no_dbt, quiet=as_json)
    if as_json:
        out.print_json(json.dumps([_summary(r) for r in records]))
    else:
        _print_records(records)
    if any(r.status != "success" for r in records):
        sys.exit(1)


def _execute(project: Any, specs: dict[str, Any], target: str | None, full_refresh: bool,
             dbt: bool, quiet: bool = False) -> list[Any]:
    from framework.runner import runner_for

    with console.status("starting", spinner="dots") as status:
        def on_stage(pipeline: str, stage: str) -> None:
            if not quiet:
                status.update(f"[bold]{pipeline}[/bold]: {stage}")

        runner = runner_for(project, target, full_refresh=full_refresh, on_stage=on_stage)
        try:
            return runner.run(specs, dbt=dbt)
        finally:
            status.stop()


def _summary(record: Any) -> dict[str, Any]:
    data = record.summary()
    keys = ("pipeline", "target", "status", "load_id", "load_ids", "rows_extracted",
            "rows_processed", "rows_quarantined", "rows_loaded", "seconds", "warnings", "error",
            "run_id")
    return {k: data[k] for k in keys}


def _print_records(records: list[Any]) -> None:
    table = Table("pipeline", "status", "load id", "extracted", "quarantined", "loaded", "seconds")
    for r in records:
        colour = {"success": "green", "failed": "red"}.get(r.status, "yellow")
        table.add_row(r.pipeline, f"[{colour}]{r.status}[/{colour}]", r.load_id or "-",
                      str(r.rows_extracted), str(r.rows_quarantined), str(r.rows_loaded),
                      f"{sum(r.seconds.values()):.1f}")
    out.print(table)
    for r in records:
        for warning in r.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(redact(warning))}", soft_wrap=True)
        if r.error:
            console.print(f"[red]error:[/red] {escape(redact(r.error))}", soft_wrap=True)


@main.command()
@click.option("--pipeline", "-p", required=True, help="Pipeline whose batch to replay.")
@click.option("--load-id", required=True, help="Load id of a batch in the lake (see history).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@target_option
@handle_errors
def replay(pipeline: str, load_id: str, as_json: bool, target: str | None) -> None:
    """Re-run transform, validate and load for a batch already in the lake (no source read)."""
    from framework import api

    record = api.replay(pipeline, load_id, target=target)
    if as_json:
        out.print_json(json.dumps([_summary(record)]))
    else:
        _print_records([record])


@main.command()
@click.option("--scale", default=0.01, show_default=True, type=float,
              help="Shop size: 1 is about the Olist data set (~100k orders).")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--simulate", is_flag=True, help="Add later activity to an existing demo shop first.")
@handle_errors
def demo(scale: float, seed: int, simulate: bool) -> None:
    """Create the demo shop if missing, run every pipeline and dbt, summarise the marts."""
    from framework.demo import shop

    project = _project()
    url = project.connection("shop").url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        console.print(f"creating the demo shop (scale {scale}, seed {seed}) ...")
        stats = shop.create_shop(url, scale=scale, seed=seed)
        console.print(f"  {stats.orders} orders, {stats.order_items} items, "
                      f"{stats.customers} customers, {stats.products} products")
    elif simulate:
        shop.simulate_activity(url, seed=seed + int(time.time()) % 1000)
    specs = project.load_pipelines()
    records = _execute(project, specs, None, False, True)
    _print_records(records)
    if any(r.status != "success" for r in records):
        sys.exit(1)
    from framework.marts import marts_summary

    marts_summary(project.target(None), out)
    from framework.report import render_report

    out.print(f"\ndashboard: {render_report(project)}  (framework report --open)")


@main.command()
@click.option("--pipeline", "-p", default=None)
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def history(pipeline: str | None, limit: int, as_json: bool) -> None:
    """Past runs with their counts, durations and errors."""
    from framework.runs import RunLog

    runs = RunLog(_project().state_dir / "runs.sqlite").history(pipeline, limit)
    if as_json:
        out.print_json(json.dumps(runs))
        return
    table = Table("started", "pipeline", "target", "status", "extracted", "loaded", "seconds", "error")
    for r in runs:
        table.add_row(r["started_at"][:19], r["pipeline"], r["target"], r["status"],
                      str(r["rows_extracted"]), str(r["rows_loaded"]),
                      f"{sum(r['seconds'].values()):.1f}", (r.get("error") or "")[:80])
    out.print(table)


@main.command()
@click.option("--pipeline", "-p", "pipelines", multiple=True, help="Pipeline (repeatable).")
@click.option("--all", "run_all", is_flag=True, help="Every pipeline.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@target_option
@handle_errors
def reconcile(pipelines: tuple[str, ...], run_all: bool, as_json: bool, target: str | None) -> None:
    """Compare keys, versions and a checksum between the source and the warehouse."""
    from framework.context import RunContext
    from framework.reconcile import reconcile as compare
    from framework.stages.load import warehouse_for

    if not pipelines and not run_all:
        raise FrameworkError("name pipelines with --pipeline NAME or use --all")
    project = _project()
    specs = project.load_pipelines(None if run_all else list(pipelines))
    resolved = project.target(target)
    warehouse = warehouse_for(resolved)
    try:
        results = [compare(RunContext(project, resolved, spec), warehouse) for spec in specs.values()]
    finally:
        warehouse.close()
    if as_json:
        out.print_json(json.dumps([r.summary() for r in results]))
    else:
        table = Table("pipeline", "source rows", "warehouse rows", "missing", "extra", "stale",
                      "checksum", "result")
        for r in results:
            same = r.source_checksum == r.warehouse_checksum
            table.add_row(r.pipeline, str(r.source_rows), str(r.warehouse_rows), str(r.missing),
                          str(r.extra), str(r.stale), "equal" if same else "differs",
                          "[green]equal[/green]" if r.equal else "[red]differs[/red]")
        out.print(table)
    if not all(r.equal for r in results):
        sys.exit(1)


@main.command()
@target_option
@handle_errors
def doctor(target: str | None) -> None:
    """Check the target's connections: source, lake, warehouse, dbt (one line per part)."""
    from framework.doctor import run_checks

    project = _project()
    failed = 0
    for check in run_checks(project, project.target(target)):
        mark = "[green]ok  [/green]" if check.ok else "[red]FAIL[/red]"
        failed += not check.ok
        out.print(f"{mark} {escape(check.part)}: {escape(check.detail)}", soft_wrap=True)
    if failed:
        sys.exit(1)


@main.command()
@click.option("--check", is_flag=True, help="Fail if pipeline.schema.json is out of date.")
@handle_errors
def schema(check: bool) -> None:
    """Write pipeline.schema.json from the spec models (the one source of truth)."""
    from framework.spec.schema import SCHEMA_FILE, render_schema

    path = _project().root / SCHEMA_FILE
    text = render_schema()
    if check:
        if not path.is_file() or path.read_text() != text:
            raise FrameworkError(f"{SCHEMA_FILE} is out of date; run `framework schema`")
        out.print(f"{SCHEMA_FILE} is up to date")
        return
    path.write_text(text)
    out.print(f"wrote {SCHEMA_FILE}")


from framework.cli_report import report_command  # `framework report`

main.add_command(report_command)

from framework.cli_onboarding import commands as onboarding_commands  # init, plan, dbt-sources

for onboarding_command in onboarding_commands:
    main.add_command(onboarding_command)

if __name__ == "__main__":
    main()
