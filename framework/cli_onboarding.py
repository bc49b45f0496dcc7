"""`framework init`, `framework plan` and `framework dbt-sources`.

`framework.cli` registers these commands at its end. Nothing here imports `framework.cli` at
import time (its error handler and consoles are fetched per call), so the two modules load in
either order.
"""

from __future__ import annotations

import json
from typing import Any

import click

TARGET_HELP = "Target from framework.yml (default: local, or FRAMEWORK_TARGET)."


def _handled(func: Any, *args: Any) -> Any:
    from framework.cli import handle_errors

    return handle_errors(func)(*args)


def _project() -> Any:
    from framework.project import Project

    return Project.discover()


# -- init ----------------------------------------------------------------------------------------


@click.command("init")
@click.argument("table", required=False)
@click.option("--connection", "-c", default=None,
              help="Source connection (sources/<name>.yml) that holds the table(s).")
@click.option("--files", "files", default=None, metavar="DIR_OR_S3_GLOB",
              help="Onboard files instead: one `kind: files` pipeline per file pattern under "
              "a folder or S3 prefix (e.g. 'data/olist/*.csv'), columns sampled from them.")
@click.option("--all", "every", is_flag=True,
              help="Every table of the schema, with a star schema from its foreign keys "
              "(dbt_ecommerce/models/<connection>/).")
@click.option("--schema", default=None, help="Database schema of the table(s), when not the "
              "connection's default.")
@click.option("--include", multiple=True, metavar="GLOB",
              help="With --all: only tables matching the glob (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="With --all: leave out tables matching the glob (repeatable).")
@click.option("--name", default=None, help="Pipeline name, when not the table's name.")
@click.option("--primary-key", "primary_key", multiple=True,
              help="Key column (repeatable), for a table without a primary key constraint.")
def init_command(table: str | None, connection: str | None, files: str | None, every: bool,
                 schema: str | None, include: tuple[str, ...], exclude: tuple[str, ...],
                 name: str | None, primary_key: tuple[str, ...]) -> None:
    """Onboard a source table (or --all of them): write its pipeline file, SQL, columns and
    dbt models.

    One table: never overwrites a file (if any exists, nothing is written). --all: re-running
    refreshes the files it wrote that nobody edited and names the ones it leaves alone.
    """
    if files is not None:
        if table or connection or every or schema or include or exclude or name or primary_key:
            _handled(_refuse, "--files onboards files alone: give no TABLE, --connection, "
                     "--all, --schema, --include, --exclude, --name or --primary-key")
        _handled(_init_files, files)
        return
    if connection is None:
        _handled(_refuse, "give --connection (the source holding the table), or --files")
    if every:
        if table or name or primary_key:
            _handled(_refuse, "--all onboards every table: give no TABLE, --name or "
                     "--primary-key (onboard such a table alone)")
        _handled(_init_all, connection, schema, include, exclude)
        return
    if not table:
        _handled(_refuse, "name a TABLE, or onboard every table with --all")
    if include or exclude:
        _handled(_refuse, "--include and --exclude go with --all")
    _handled(_init, table, connection, schema, name, primary_key)


def _refuse(message: str) -> None:
    from framework.errors import FrameworkError

    raise FrameworkError(message)


def _init_all(connection: str, schema: str | None, include: tuple[str, ...],
              exclude: tuple[str, ...]) -> None:
    from rich.markup import escape

    from framework.cli import console, out
    from framework.onboarding.init_all import init_all

    project = _project()
    done = init_all(project, connection, schema, include, exclude)
    for table in done.tables:
        source = table.source
        read = f"cursor {source.cursor}" if source.cursor else "full read, deletes reconciled"
        if source.cursor and source.soft_delete:
            read += f", deletes by {source.soft_delete}"
        out.print(f"[green]onboarded[/green] {escape(source.table)} as pipeline "
                  f"[bold]{table.name}[/bold]: {len(source.columns)} column(s), key "
                  f"{', '.join(source.primary_key)}, {escape(read)}", soft_wrap=True)
    for table_name, why in done.skipped_tables.items():
        console.print(f"[yellow]skipped table[/yellow] {escape(table_name)}: {escape(why)}",
                      soft_wrap=True)
    counts: dict[str, int] = {}
    for item in done.files:
        counts[item.action] = counts.get(item.action, 0) + 1
        if item.action == "skipped":
            console.print(f"[yellow]skipped[/yellow] {project.display(item.path)}: "
                          f"{item.reason}", soft_wrap=True)
        elif item.action in ("wrote", "updated"):
            out.print(f"  {item.action} {project.display(item.path)}", soft_wrap=True)
    out.print(f"star schema: {len(done.facts)} fact(s) ({', '.join(done.facts) or '-'}), "
              f"{len(done.dimensions)} dimension(s) ({', '.join(done.dimensions) or '-'}) in "
              f"dbt_ecommerce/models/{connection}/", soft_wrap=True)
    out.print("files: " + ", ".join(f"{n} {a}" for a, n in counts.items()), soft_wrap=True)
    for note in done.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    names = " ".join(f"-p {t.name}" for t in done.tables)
    out.print(f"next: framework validate && framework run {names}", soft_wrap=True)


def _init_files(where: str) -> None:
    from rich.markup import escape

    from framework.cli import console, out
    from framework.onboarding.init_files import init_files

    project = _project()
    for done in init_files(project, where):
        pattern = done.pattern
        key = ", ".join(pattern.primary_key) or "none found (TODO)"
        out.print(f"[green]onboarded[/green] {escape(pattern.glob)} ({len(pattern.files)} "
                  f"file(s)) as pipeline [bold]{pattern.name}[/bold]: "
                  f"{len(pattern.columns)} column(s), key {escape(key)}", soft_wrap=True)
        out.print(f"  wrote {project.display(done.path)}", soft_wrap=True)
        for problem in done.problems:
            console.print(f"[yellow]to fix:[/yellow] {escape(problem)}", soft_wrap=True)
    out.print("next: framework validate && framework run -p NAME", soft_wrap=True)


def _init(table: str, connection: str, schema: str | None, name: str | None,
          primary_key: tuple[str, ...]) -> None:
    from rich.markup import escape

    from framework.cli import console, out
    from framework.onboarding.init import init_pipeline

    project = _project()
    done = init_pipeline(project, table, connection, schema, name, primary_key)
    source = done.source
    cursor = f"cursor {source.cursor}" if source.cursor else "full refresh (no cursor)"
    out.print(f"[green]onboarded[/green] {escape(source.table)} as pipeline "
              f"[bold]{done.name}[/bold]: "
              f"{len(source.columns)} column(s), key {', '.join(source.primary_key)}, {cursor}",
              soft_wrap=True)
    for path in done.written:
        out.print(f"  wrote {project.display(path)}", soft_wrap=True)
    for note in source.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    out.print(f"next: framework validate && framework plan --pipeline {done.name} && "
              f"framework run --pipeline {done.name}", soft_wrap=True)


# -- plan ----------------------------------------------------------------------------------------


@click.command("plan")
@click.option("--pipeline", "-p", "pipelines", multiple=True,
              help="Pipeline to plan (repeatable); every pipeline when omitted.")
@click.option("--no-dbt", is_flag=True, help="Do not resolve the dbt models (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable plan.")
@click.option("--target", "-t", default=None, envvar="FRAMEWORK_TARGET", help=TARGET_HELP)
def plan_command(pipelines: tuple[str, ...], no_dbt: bool, as_json: bool,
                 target: str | None) -> None:
    """What a run would do, without doing it: cursor, waiting rows and batches, new columns,
    dbt models."""
    _handled(_plan, pipelines, no_dbt, as_json, target)


def _plan(pipelines: tuple[str, ...], no_dbt: bool, as_json: bool, target: str | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from framework.cli import console, out
    from framework.compiled import compile_project
    from framework.onboarding.plan import plan
    from framework.settings.envvars import redact

    project = _project()
    specs = project.load_pipelines(list(pipelines) or None)
    if not pipelines:
        specs = project.ready(specs, lambda line: console.print(
            f"[yellow]{escape(line)}[/yellow]", soft_wrap=True))
    chosen = project.target(target)
    plans = plan(project, compile_project(project, chosen, specs), chosen, dbt=not no_dbt)
    if as_json:
        out.print_json(json.dumps([p.summary() for p in plans], default=str))
        return
    table = Table("pipeline", "cursor", "rows waiting", "lake batches", "new columns",
                  "dbt models")
    table.columns[0].no_wrap = True
    for p in plans:
        models = "-" if p.dbt_models is None else str(len(p.dbt_models))
        table.add_row(escape(p.pipeline), escape(p.reads),
                      "?" if p.rows_waiting is None else str(p.rows_waiting),
                      str(len(p.pending_batches)), str(len(p.new_columns)), models)
    out.print(table)
    for p in plans:
        lines: list[str]
        if p.state == "full refresh":
            lines = ["no cursor: every run reads the whole source"]
        elif p.state == "by kind":
            lines = [f"no cursor: a run reads {p.reads.strip('()')}"]
        elif p.state == "missing":
            lines = [f"cursor {p.cursor}: no local state"]
        else:
            lines = [f"cursor {p.cursor} = {p.cursor_value or '(no value yet)'}"]
        lines += [f"{p.rows_waiting if p.rows_waiting is not None else '?'} row(s) "
                  f"{p.rows_label}".rstrip()]
        lines += [f"batch in the lake, not loaded: {b}" for b in p.pending_batches]
        lines += [f"new column {c.column}: {c.action}" for c in p.new_columns]
        if p.dbt_select:
            models_text = ("not resolved (--no-dbt)" if no_dbt else "not resolved") \
                if p.dbt_models is None else ", ".join(p.dbt_models) or "no model"
            lines.append(f"dbt --select {' '.join(p.dbt_select)}: {models_text}")
        lines += [f"[yellow]note:[/yellow] {escape(redact(n))}" for n in p.notes]
        out.print(f"[bold]{escape(p.pipeline)}[/bold]  version {p.fingerprint[:8]}")
        for line in lines:
            out.print(f"  {line if line.startswith('[yellow]') else escape(line)}",
                      soft_wrap=True)
    built = sorted({m for p in plans for m in p.dbt_models or []})
    if len(plans) > 1 and built:
        out.print(f"dbt would build {len(built)} model(s) (if every pipeline loads rows): "
                  + ", ".join(built), soft_wrap=True)


# -- dbt-sources ---------------------------------------------------------------------------------


@click.command("dbt-sources")
@click.option("--check", is_flag=True,
              help="Fail if dbt_ecommerce/models/sources.yml is out of date.")
def dbt_sources_command(check: bool) -> None:
    """Write dbt's landing source (models/sources.yml) from the pipelines' columns."""
    _handled(_dbt_sources, check)


def _dbt_sources(check: bool) -> None:
    from framework.cli import out
    from framework.errors import FrameworkError
    from framework.onboarding.dbt_sources import render_sources, sources_path

    project = _project()
    text = render_sources(project.load_pipelines().values())
    path = sources_path(project.dbt_dir)
    shown = project.display(path)
    if check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            raise FrameworkError(f"{shown} is out of date; run `framework dbt-sources`")
        out.print(f"{shown} is up to date")
        return
    path.write_text(text, encoding="utf-8")
    out.print(f"wrote {shown}")


def github_annotation(path: str, line: int, col: int, message: str) -> str:
    """One GitHub Actions error annotation (workflow command), escaped as GitHub requires."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    return f"::error file={prop(path)},line={line},col={col}::{data(message)}"


commands = (init_command, plan_command, dbt_sources_command)
