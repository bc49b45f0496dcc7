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

from framework import logs
from framework.errors import FrameworkError, SpecErrors
from framework.extras import missing_extra
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
                _error(redact(error.render()), prefix=False)
            sys.exit(1)
        except FrameworkError as exc:
            _error(redact(str(exc)))
            sys.exit(1)
        except Exception as exc:
            if _debug():
                raise
            missing = missing_extra(exc)  # an optional part not installed: say how to add it
            if missing is not None:
                _error(str(missing))
                sys.exit(1)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _error(f"{type(exc).__name__}: {redact(first)} (run with --debug for the traceback)")
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _debug() -> bool:
    """`--debug` was given: tracebacks are shown, and an unexpected error stops the run."""
    return bool(click.get_current_context().find_root().params.get("debug"))


def _error(text: str, prefix: bool = True) -> None:
    """One line: red on the console, or a JSON log record under --log-format json."""
    if logs.is_json():
        logs.logger.error(text)
    elif prefix:
        console.print(f"[red]error:[/red] {escape(text)}", soft_wrap=True)
    else:
        console.print(f"[red]{escape(text)}[/red]", soft_wrap=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--log-format", type=click.Choice(logs.FORMATS), default="console",
              envvar=logs.ENV_VAR, show_default=True,
              help="json: the engine's log as one JSON object per line on stderr (pipeline, "
                   f"target, load_id, stage on every line), no console decoration; or {logs.ENV_VAR}.")
@click.version_option(package_name="framework")
def main(debug: bool, log_format: str) -> None:
    """Declarative ingestion: one YAML file per table, from the shop database to the marts."""
    quiet_libraries()
    logs.configure(log_format)


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
    """The pipelines, their source, cursor, last run (by any worker) and state."""
    from framework.runs import RunLog
    from framework.shared_runs import last_runs

    project = _project()
    specs = project.load_pipelines()
    log = RunLog(project.state_dir / "runs.sqlite")
    from framework.sources.registry import describe
    from framework.tables import pipelines_table

    name = project.known_target(target)  # `-t nope` would list this worker's runs as nope's
    held = log.held(name)
    lasts = last_runs(log, project, target, list(specs), _local_only)
    rows = []
    for spec in specs.values():
        last = lasts.get(spec.name) or {}
        rows.append({"name": spec.name,
                     "source": describe(spec.source),
                     "cursor": spec.reads,
                     "landing": f"{spec.warehouse.db_schema}.{spec.table}",
                     "started_at": last.get("started_at"), "status": "blocked" if spec.name in held
                     else last.get("status", "-"),
                     "rows_loaded": str(last.get("rows_loaded", "-"))})
    out.print(pipelines_table(rows, out.width))
    _print_blocked({n: b for n, b in held.items() if n in specs})


def _print_blocked(held: dict[str, dict[str, str]]) -> None:
    """One line per blocked pipeline: the batch, the reason and the ways out."""
    from framework.quarantine import blocked_message

    for pipeline, batches in held.items():
        console.print(f"[red]blocked:[/red] {escape(redact(blocked_message(pipeline, batches)))}",
                      soft_wrap=True)


@main.command()
@click.option("--pipeline", "-p", "pipelines", multiple=True, help="Pipeline to run (repeatable).")
@click.option("--all", "run_all", is_flag=True, help="Run every pipeline in depends_on order.")
@click.option("--full-refresh", is_flag=True, help="Re-extract everything and rebuild the tables.")
@click.option("--no-dbt", is_flag=True, help="Stop after the warehouse load.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Apply reconcile deletes even past the pipeline's deletes.max_fraction, "
                   "and let a whole read that finds the source empty empty its table.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="Pipelines run at once; a pipeline waits for its depends_on and is skipped "
                   "when one of them does not succeed.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@target_option
@handle_errors
def run(pipelines: tuple[str, ...], run_all: bool, full_refresh: bool, no_dbt: bool,
        allow_mass_delete: bool, threads: int, as_json: bool, target: str | None) -> None:
    """Run pipelines: extract, transform, validate, load, then dbt."""
    if not pipelines and not run_all:
        raise FrameworkError("name pipelines with --pipeline NAME or run them all with --all")
    if pipelines and run_all:  # it ran them all, dbt included
        raise FrameworkError("give --pipeline NAME or --all, not both")
    try:
        project = _project()
        specs = project.load_pipelines(None if run_all else list(pipelines))
        if run_all:
            specs = project.ready(specs, _skip_line)
        records = _execute(project, specs, target, full_refresh, not no_dbt, quiet=as_json,
                           allow_mass_delete=allow_mass_delete, threads=threads)
    except Exception as exc:
        if as_json:  # a scheduler reading stdout gets a record whatever went wrong
            error = redact(str(exc) if isinstance(exc, FrameworkError) else
                           f"{type(exc).__name__}: {exc}")
            out.print_json(json.dumps([_failed(name, error, target)
                                       for name in (pipelines or (None,))]))
        raise
    if as_json:
        out.print_json(json.dumps([_summary(r) for r in records]))
    else:
        _print_records(records)
    if any(r.status != "success" for r in records):
        sys.exit(1)


def _skip_line(message: str) -> None:
    console.print(f"[yellow]{escape(message)}[/yellow]", soft_wrap=True)


def _execute(project: Any, specs: dict[str, Any], target: str | None, full_refresh: bool,
             dbt: bool, quiet: bool = False, allow_mass_delete: bool = False,
             threads: int = 1) -> list[Any]:
    from framework.compiled import compile_project
    from framework.progress import Progress
    from framework.runner import run_order, runner_for

    options: dict[str, Any] = {"full_refresh": full_refresh, "threads": threads,
                               "allow_mass_delete": allow_mass_delete,
                               "stop_on_unexpected": _debug()}
    if logs.is_json() or quiet:  # JSON lines, or --json on stdout: no progress lines
        runner = runner_for(project, target, **options)
        with logs.fields(target=runner.target.name, run_id=runner.run_id):  # dbt's records too
            return runner.run(compile_project(project, runner.target, specs), dbt=dbt)
    progress = Progress(console, run_order(specs))
    runner = runner_for(project, target, on_stage=progress.stage, on_done=progress.done,
                        **options)
    with progress.shown(), logs.fields(target=runner.target.name, run_id=runner.run_id):
        return runner.run(compile_project(project, runner.target, specs), dbt=dbt)


def _summary(record: Any) -> dict[str, Any]:
    data = record.summary()
    keys = ("pipeline", "target", "status", "load_id", "load_ids", "rows_extracted",
            "rows_processed", "rows_quarantined", "rows_loaded", "seconds", "warnings", "error",
            "run_id", "stages_status", "models_status", "dbt", "fingerprint", "worker")
    return {k: data[k] for k in keys}


def _failed(pipeline: str | None, error: str, target: str | None) -> dict[str, Any]:
    """A `--json` record for a run that stopped before its pipelines ran (`pipeline` is None
    for `--all`)."""
    from framework.runs import worker_id

    return {"pipeline": pipeline, "target": target or os.environ.get("FRAMEWORK_TARGET"),
            "status": "failed", "load_id": None, "load_ids": [], "rows_extracted": 0,
            "rows_processed": 0, "rows_quarantined": 0, "rows_loaded": 0, "seconds": {},
            "warnings": [], "error": error, "run_id": None, "stages_status": "failed",
            "models_status": None, "dbt": None, "fingerprint": None,
            "worker": worker_id()}  # the keys of every other record


def _print_records(records: list[Any]) -> None:
    """One row per pipeline (its own stages' seconds), one row for the run's shared dbt build,
    then warnings and errors; the build's failures, warnings and orphans once, in full."""
    if logs.is_json():  # each outcome, warning and error was already a JSON line of the log
        return
    from framework.tables import runs_table

    out.print(runs_table(records, out.width))
    said: set[str] = set()
    for r in records:
        for warning in r.warnings:
            if warning in said:  # the shared build's warnings sit on each of its records
                continue
            said.add(warning)
            console.print(f"[yellow]warning:[/yellow] {escape(redact(warning))}", soft_wrap=True)
        if r.status == "skipped":  # not an error of its own: the upstream's is printed
            console.print(f"[yellow]skipped:[/yellow] {escape(r.pipeline)}: "
                          f"{escape(redact(r.error or ''))}", soft_wrap=True)
        elif r.error and r.status != "models failed":  # the build's error is printed once below
            console.print(f"[red]error:[/red] {escape(redact(r.error))}", soft_wrap=True)
    build = next((r.dbt for r in records if r.dbt), None)
    if build:
        print_build(build)


def print_build(build: dict[str, Any]) -> None:
    """The shared dbt build: orphans with their share of money, warning tests, and every
    blocking failure on its own line."""
    for orphans in build.get("orphans") or []:
        console.print(f"[yellow]{escape(orphans['line'])}[/yellow]", soft_wrap=True)
    warned = build.get("warnings") or []
    if warned:
        console.print(f"[yellow]dbt:[/yellow] {len(warned)} test(s) warn (they never fail the "
                      "run):", soft_wrap=True)
        for issue in warned:
            console.print(f"  {escape(_issue_line(issue))}", soft_wrap=True)
    failures = build.get("failures") or []
    if build.get("status") != "success":
        console.print(f"[red]error:[/red] dbt build failed ({len(failures)} blocking "
                      "failure(s); the pipelines that load those models are `models failed`)"
                      + ("" if failures else f": {escape(redact(build.get('error') or ''))}"),
                      soft_wrap=True)
        for issue in failures:
            console.print(f"  [red]{escape(redact(_issue_line(issue)))}[/red]", soft_wrap=True)


def _issue_line(issue: dict[str, Any]) -> str:
    from framework.stages.dbt_results import NodeIssue

    return NodeIssue(**issue).line()


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
@click.option("--pipeline", "-p", required=True, help="Pipeline whose quarantined batch to release.")
@click.option("--load-id", required=True, help="Load id of the quarantined batch (see list).")
@click.option("--reason", required=True, help="Why its rows may stay out (recorded with your "
              "user and host).")
@target_option
@handle_errors
def release(pipeline: str, load_id: str, reason: str, target: str | None) -> None:
    """Let a quarantined batch go on purpose: its rows stay out, the pipeline runs again."""
    from framework import api

    record = api.release(pipeline, load_id, reason, target=target)
    for warning in record.warnings:
        out.print(escape(redact(warning)), soft_wrap=True)


@main.command()
@click.option("--scale", default=0.01, show_default=True, type=float,
              help="Shop size: 1 is about the Olist data set (~100k orders).")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--simulate", is_flag=True, help="Add later activity to an existing demo shop first.")
@click.option("--dirty", is_flag=True,
              help="Create the shop as real exports look: orphans in every relationship, "
                   "customers arriving a run late, NULL and empty categories, zip codes without "
                   "their leading zero, minute-precision timestamps, blank rows.")
@click.option("--source", "source_kind", type=click.Choice(["sql", "csv"]), default="sql",
              show_default=True,
              help="`csv`: write the shop as Olist's CSV files and run the pipelines of "
                   "pipelines/examples/olist_csv/ (the same landing tables) instead.")
@handle_errors
def demo(scale: float, seed: int, simulate: bool, dirty: bool, source_kind: str) -> None:
    """Create the demo shop if missing, run every pipeline and dbt, summarise the marts."""
    from framework.demo import shop

    project = _project()
    url = project.connection("shop").url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        kind = "dirty demo shop" if dirty else "demo shop"
        console.print(f"creating the {kind} (scale {scale}, seed {seed}) ...")
        stats = shop.create_shop(url, scale=scale, seed=seed, dirty=dirty)
        console.print(f"  {stats.orders} orders, {stats.order_items} items, "
                      f"{stats.customers} customers, {stats.products} products")
        if stats.dirt:
            d = stats.dirt
            console.print(f"  dirt: {d.orders_without_customer} orders without a customer, "
                          f"{d.items_without_order} items and {d.payments_without_order} "
                          f"payments without an order, {d.items_without_product} items without "
                          f"a product, {d.late_customers} customers arriving on the next run, "
                          f"{d.blank_rows} blank rows")
    else:
        arrived = shop.arrive_late(url)
        if arrived:
            console.print(f"{arrived} customers held back by the dirty shop arrive now")
        if simulate:
            shop.simulate_activity(url, seed=seed + int(time.time()) % 1000)
    if source_kind == "csv":
        from framework.demo.csv_files import csv_location, olist_csv_specs, write_csv_shop

        folder = csv_location(project)
        written = write_csv_shop(url, folder, project.dbt_dir / "seeds" /
                                 "product_category_name_translation.csv")
        console.print(f"wrote {len(written)} CSV files ({sum(written.values())} rows) to "
                      f"{folder}")
        specs = olist_csv_specs(project)
    else:
        specs = project.load_pipelines()
    records = _execute(project, specs, None, False, True)
    _print_records(records)
    if any(r.status != "success" for r in records):
        sys.exit(1)
    from framework.marts import marts_summary

    marts_summary(project.target(None), out)
    from framework.report import render_report

    out.print(f"\ndashboard: {render_report(project)}  (framework report --open)", soft_wrap=True)


def _local_only(why: str) -> None:
    console.print(f"[yellow]warehouse not reached ({escape(redact(why))}): showing this "
                  "machine's runs only[/yellow]", soft_wrap=True)


@main.command()
@click.option("--pipeline", "-p", default=None)
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@target_option
@handle_errors
def history(pipeline: str | None, limit: int, as_json: bool, target: str | None) -> None:
    """Past runs of every worker (from the warehouse) with their counts, durations and errors."""
    from framework.runs import RunLog
    from framework.shared_runs import every_workers_history

    project = _project()
    project.known_target(target)
    log = RunLog(project.state_dir / "runs.sqlite")
    runs = every_workers_history(log, project, target, pipeline, limit, _local_only)
    if as_json:
        out.print_json(json.dumps(runs))
        return
    from framework.tables import history_table

    # A release has no error; its note (who, when, why) is what the line is about.
    shown: list[dict[str, Any]] = []
    builds: set[str] = set()
    for r in runs:
        shown.append({**r, "error": r.get("error") or (
            r["warnings"][0] if r["status"] == "released" and r.get("warnings") else "")})
        build = r.get("dbt")
        if build and r["run_id"] not in builds:  # the run's shared build, once per run
            builds.add(r["run_id"])
            note = "; ".join(o["line"] for o in build.get("orphans") or []) or \
                (build.get("error") or "")
            shown.append({"started_at": r["started_at"], "pipeline": "(dbt)",
                          "target": r["target"],
                          "status": "success" if build["status"] == "success"
                          else "models failed",
                          "rows_extracted": "-", "rows_loaded": f"{build['models_built']} models",
                          "seconds": {"dbt": build["seconds"]}, "error": note})
    out.print(history_table(shown, out.width))
    held = log.held()
    _print_blocked({n: b for n, b in held.items() if pipeline in (None, n)})


@main.command()
@click.option("--pipeline", "-p", "pipelines", multiple=True, help="Pipeline (repeatable).")
@click.option("--all", "run_all", is_flag=True, help="Every pipeline.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@target_option
@handle_errors
def reconcile(pipelines: tuple[str, ...], run_all: bool, as_json: bool, target: str | None) -> None:
    """Compare keys, versions and a checksum between the source and the warehouse."""
    from framework.compiled import compile_pipeline
    from framework.context import RunContext
    from framework.reconcile import reconcile as compare
    from framework.stages.load import warehouse_for

    if not pipelines and not run_all:
        raise FrameworkError("name pipelines with --pipeline NAME or use --all")
    if pipelines and run_all:
        raise FrameworkError("give --pipeline NAME or --all, not both")
    project = _project()
    specs = project.load_pipelines(None if run_all else list(pipelines))
    if run_all:
        specs = project.ready(specs, _skip_line)
        for name, spec in list(specs.items()):
            if not type(spec.source).reads_keys:  # files, an API: no listing of current keys
                _skip_line(f"skipped {name}: a {spec.source.kind} source cannot list its "
                           "current keys to compare")
                del specs[name]
    resolved = project.target(target)
    warehouse = warehouse_for(resolved)
    results, failed = [], {}
    try:
        for name, spec in specs.items():
            try:
                results.append(compare(RunContext(compile_pipeline(project, resolved, spec)),
                                       warehouse))
            except FrameworkError as exc:  # one pipeline's source or table: the others go on
                if len(specs) == 1:
                    raise
                failed[name] = redact(str(exc))
                _error(f"{name}: {failed[name]}")
    finally:
        warehouse.close()
    if as_json:
        out.print_json(json.dumps([r.summary() for r in results] +
                                  [{"pipeline": n, "error": e} for n, e in failed.items()]))
    else:
        table = Table("pipeline", "source rows", "warehouse rows", "missing", "extra", "stale",
                      "duplicates", "checksum", "result")
        for r in results:
            same = r.source_checksum == r.warehouse_checksum
            table.add_row(r.pipeline, str(r.source_rows), str(r.warehouse_rows), str(r.missing),
                          str(r.extra), str(r.stale), str(r.duplicates),
                          "equal" if same else "differs",
                          "[green]equal[/green]" if r.equal else "[red]differs[/red]")
        out.print(table)
        for line in (line for r in results for line in r.differences()):
            out.print(escape(line), soft_wrap=True)
    if failed or not all(r.equal for r in results):
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
        mark = "[yellow]skip[/yellow]" if check.skipped else \
            "[green]ok  [/green]" if check.ok else "[red]FAIL[/red]"
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


@main.command("new")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--example", type=click.Choice(["shop"]), default=None,
              help="Also write the shop example: its pipelines, quality suites and dbt models "
                   "(then `framework demo` runs there).")
@handle_errors
def new(directory: Path, example: str | None) -> None:
    """Start a project of your own in DIRECTORY (new or empty)."""
    from framework.scaffold import new_project

    files = new_project(directory, example)
    out.print(f"wrote {len(files)} files in {directory}", soft_wrap=True)
    step = "framework demo" if example else "framework init TABLE --connection main"
    out.print(f"next: cd {directory} && {step}", soft_wrap=True)


from framework.cli_report import report_command  # `framework report`

main.add_command(report_command)

from framework.cli_onboarding import commands as onboarding_commands  # init, plan, dbt-sources

for onboarding_command in onboarding_commands:
    main.add_command(onboarding_command)

if __name__ == "__main__":
    main()
