"""`framework init --connection NAME --all`: every table of a schema, up to a star schema.

One inspector reads every table (columns, primary key, unique constraints, foreign keys); each
table gets a pipeline (cursor or full read, with the delete handling that matches it, and
exact `columns:` types), its transform and a staging model; the foreign-key graph gives the
dimensions, facts and date dimension (`framework.onboarding.star`). Generated dbt files live in
`dbt_ecommerce/models/<connection>/`, apart from the shipped models.

Pipeline names are the tables' names, or all of them prefixed by the connection
(`northwind_orders`) when any one would clash with a pipeline or dbt model already in the
project; a re-run keeps the names the first run chose. Re-running never overwrites a file that
was edited (or not written by init): it says which it skipped and why.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from framework.errors import FrameworkError, ServiceError
from framework.onboarding import stamps
from framework.onboarding.init import (
    SourceTable,
    line_of,
    pipeline_yaml,
    read_table,
    transform_sql,
)
from framework.onboarding.star import Table, facts_and_dimensions, snake_name, star_models
from framework.project import Project


@dataclass
class Onboarding:
    """What `init --all` did: per pipeline its table, the files and the tables it skipped."""

    connection: str
    prefix: str
    tables: list[Table] = field(default_factory=list)
    files: list[stamps.Written] = field(default_factory=list)
    skipped_tables: dict[str, str] = field(default_factory=dict)  # table -> why
    notes: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)


def init_all(project: Project, connection: str, schema: str | None = None,
             include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Onboarding:
    """Introspect every table of `schema` and write (or refresh unedited) their files."""
    found = _introspect_all(project, connection, schema, include, exclude)
    if not any(_selected(t.source.table, include, exclude) for t in found.tables):
        raise FrameworkError(f"no table to onboard in source '{connection}'"
                             + (f" schema '{schema}'" if schema else "")
                             + (f" ({'; '.join(f'{t}: {w}' for t, w in found.skipped_tables.items())})"
                                if found.skipped_tables else ""))
    command = " ".join(["framework init --all --connection", connection,
                        *([f"--schema {schema}"] if schema else [])])
    header = f"-- Written by `{command}`; edit freely.\n"
    folder = models_folder(project, connection)
    found.tables = [_as_kept(project, table, found) for table in found.tables]
    texts: dict[Path, str] = {}
    for table in found.tables:
        if not _selected(table.source.table, include, exclude):
            continue  # in the star for its references and dates; its files left as they are
        texts[project.pipelines_dir / f"{table.name}.yml"] = pipeline_yaml(
            table.name, connection, table.source, command=command)
        texts[project.pipelines_dir / "sql" / f"{table.name}.sql"] = transform_sql(table.source)
    for relative, body in star_models(found.tables, connection, header).items():
        texts[folder / relative] = body
    found.facts, found.dimensions = facts_and_dimensions(found.tables)
    _write(project, texts, found)
    return found


def _as_kept(project: Project, table: Table, found: Onboarding) -> Table:
    """A table whose pipeline file a person edited keeps that file (stamps.write skips it), so
    its models follow the columns it declares, not the source's: a staging model selecting a
    column the kept pipeline never lands failed dbt's build, and every model after it."""
    import dataclasses

    path = project.pipelines_dir / f"{table.name}.yml"
    if not path.exists():
        return table
    text = path.read_text(encoding="utf-8")
    if stamps.unedited(text):
        return table
    try:
        declared = {str(c.get("name")) for c in (yaml.safe_load(text) or {}).get("columns") or []
                    if isinstance(c, dict)}
    except (yaml.YAMLError, AttributeError):
        return table
    if not declared:
        return table
    columns = [c for c in table.source.columns if c.lake_name in declared]
    left_out = [c.lake_name for c in table.source.columns if c.lake_name not in declared]
    if left_out:
        found.notes.append(f"{table.source.table}: pipelines/{table.name}.yml was edited; its "
                           f"models follow the columns it declares, without "
                           f"{', '.join(left_out)} (declare them there to model them)")
    return Table(table.name, dataclasses.replace(table.source, columns=columns))


def models_folder(project: Project, connection: str) -> Path:
    return project.dbt_dir / "models" / connection


# -- reading the source --------------------------------------------------------------------------


def _introspect_all(project: Project, connection: str, schema: str | None,
                    include: tuple[str, ...], exclude: tuple[str, ...]) -> Onboarding:
    import sqlalchemy as sa

    conn = project.connection(connection)
    missing = conn.not_set_up()
    if missing:
        raise FrameworkError(f"source '{connection}': {missing}")
    try:
        engine = conn.engine()
    except Exception as exc:  # noqa: BLE001 - a malformed URL, a missing driver: one line
        raise ServiceError(f"source '{connection}' ({conn.safe_url})", line_of(exc)) from None
    sources: list[SourceTable] = []
    skipped: dict[str, str] = {}
    try:
        inspector = sa.inspect(engine)
        names = sorted(inspector.get_table_names(schema=schema))
        children = _inheriting(engine, schema or inspector.default_schema_name)
        earlier = _onboarded(project, connection, schema)
        # A subset (--include) still builds the star over every table init onboarded from
        # this connection: the shared date dimension and the facts' references need them.
        chosen = [t for t in names if t not in children and not _excluded(t, exclude)
                  and (_selected(t, include, exclude) or t in earlier)]
        skipped.update({t: why for t, why in children.items()
                        if _selected(t, include, exclude)})
        for table in chosen:
            try:
                sources.append(read_table(engine, inspector, conn.dialect, connection, table,
                                          schema, [], tables=names))
            except FrameworkError as exc:
                reason = str(exc).replace(" (repeatable)", "")
                skipped[table] = reason.replace(
                    "name its key with --primary-key COLUMN",
                    f"onboard it alone with `framework init {table} --connection {connection} "
                    "--primary-key COLUMN`")
    except sa.exc.OperationalError as exc:
        raise ServiceError(f"source '{connection}' ({conn.safe_url})",
                           f"cannot connect: {line_of(exc)}") from None
    finally:
        engine.dispose()
    prefix = _prefix(project, connection, schema, [s.table for s in sources])
    tables, clashes = _named(prefix, sources, earlier, {p.stem for p in project.pipeline_paths()})
    found = Onboarding(connection, prefix, tables, skipped_tables=skipped, notes=clashes)
    onboarded = {s.table for s in sources}
    for source in sources:
        if not _selected(source.table, include, exclude):
            continue  # onboarded before: its notes were said then
        found.notes += [n if n.startswith(f"{source.table}") else f"{source.table}: {n}"
                        for n in source.notes if not n.startswith("no timestamp column")]
        for fk in source.foreign_keys:
            if fk.referred_table not in onboarded:
                found.notes.append(f"{source.table}: reference {', '.join(fk.columns)} -> "
                                   f"{fk.referred_table} left as a plain column "
                                   f"({fk.referred_table} is not onboarded)")
    return found


def _inheriting(engine: Any, schema: str | None) -> dict[str, str]:
    """PostgreSQL tables whose rows their parent's read already returns: partitions and
    inheriting children (`SELECT ... FROM parent` includes them). Onboarded as well, every
    row landed twice, under two tables."""
    import sqlalchemy as sa

    if engine.dialect.name != "postgresql" or schema is None:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.relname, p.relname, c.relispartition FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema "
            "AND c.relkind IN ('r', 'p')"),  # tables: a partitioned index has children too
            {"schema": schema}).all()
    return {child: (f"a partition of {parent}, whose pipeline reads its rows" if partition
                    else f"inherits from {parent}, whose pipeline reads its rows (PostgreSQL "
                         "reads a parent with its children)")
            for child, parent, partition in rows}


def _onboarded(project: Project, connection: str, schema: str | None) -> dict[str, str]:
    """The tables of this connection and schema that pipelines read already, and each one's
    pipeline name: init gives a table that name again (a hand-written file is then skipped,
    not doubled by a second pipeline reading the same table)."""
    found = {}
    for path in project.pipeline_paths():
        try:
            text = path.read_text(encoding="utf-8")
            source = (yaml.safe_load(text) or {}).get("source") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if isinstance(source, dict) and source.get("connection") == connection and source.get("schema") == schema \
                and isinstance(source.get("table"), str):
            found[source["table"]] = path.stem
    return found


def _named(prefix: str, sources: list[SourceTable], earlier: dict[str, str],
           pipelines: set[str]) -> tuple[list[Table], list[str]]:
    """A pipeline name per table: the one an earlier init gave it, else its own name, numbered
    after the first (`order_lines_2`) where two tables read alike (`OrderLines`, `order_lines`)
    or a pipeline of another table holds it. One had overwritten the other's files, never
    onboarded; a re-run pointed an existing pipeline at the other table."""
    names = {s.table: earlier[s.table] for s in sources if s.table in earlier}
    taken = set(pipelines)
    notes: list[str] = []
    for source in sources:
        if source.table in names:
            continue
        name = base = prefix + snake_name(source.table)
        number = 1
        while name in taken:
            number += 1
            name = f"{base}_{number}"
        if name != base:
            notes.append(f"{source.table}: onboarded as {name} ({base} is taken)")
        taken.add(name)
        names[source.table] = name
    return [Table(names[s.table], s) for s in sources], notes


def _selected(table: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    lowered = table.lower()
    if include and not any(fnmatch.fnmatchcase(lowered, g.lower()) for g in include):
        return False
    return not _excluded(table, exclude)


def _excluded(table: str, exclude: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(table.lower(), g.lower()) for g in exclude)


def _prefix(project: Project, connection: str, schema: str | None, tables: list[str]) -> str:
    """'' or '<connection>_': the names an earlier init chose, else a prefix for all tables as
    soon as one name would clash with the project's pipelines or dbt models."""
    prefixed = f"{snake_name(connection)}_"
    ours = models_folder(project, connection)
    others: dict[str, tuple[Any, Any, Any]] = {}
    for path in project.pipeline_paths():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            source = data.get("source") or {}
            others[path.stem] = (source.get("connection"), source.get("schema"),
                                 source.get("table"))
        except (yaml.YAMLError, AttributeError):
            others[path.stem] = (None, None, None)
    for table in tables:  # a re-run: keep the earlier choice
        if others.get(prefixed + snake_name(table)) == (connection, schema, table):
            return prefixed
        if others.get(snake_name(table)) == (connection, schema, table):
            return ""
    models = {p.stem for p in (project.dbt_dir / "models").rglob("*.sql")
              if ours not in p.parents}
    for table in tables:
        name = snake_name(table)
        if name in others or {f"stg_{name}", f"dim_{name}", f"fact_{name}"} & models:
            return prefixed
    return ""


# -- writing -------------------------------------------------------------------------------------


def _write(project: Project, texts: dict[Path, str], found: Onboarding) -> None:
    from framework.onboarding.dbt_sources import kept_if_valid

    done: list[stamps.Written] = []
    with kept_if_valid(project, lambda: stamps.take_back(done), "pipelines"):
        for path, body in texts.items():
            done.append(stamps.write(path, body))
    found.files = done
