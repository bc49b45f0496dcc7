"""`framework init`: a new table's pipeline, written from what its source database says about it.

The source table is read with SQLAlchemy's inspector (columns, types, nullability, primary key,
unique constraints, comments); its cursor is a column named like `updated_at`, or else the
timestamp column holding the latest value. From that, init writes:

- `pipelines/<name>.yml`: the pipeline, with a `columns:` declaration (types, not null, unique,
  enum values) that drives the checks, the dbt source tests and the landing table's types;
- `pipelines/sql/<name>.sql`: the DuckDB transform, typing (and trimming text) per column;
- `dbt_ecommerce/models/staging/stg_<name>.sql` and `.yml`: the staging model and its tests;
- `dbt_ecommerce/models/sources.yml`, regenerated with the new landing table.

It never overwrites a file: if any of them exists it stops before writing anything. If the new
pipeline does not validate, everything written is taken back.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError, ServiceError
from framework.project import Project
from framework.spec.columns import (
    UNBOUNDED_DECIMAL,
    base_type,
    decimal_parts,
    dlt_column_name,
    framework_column_clash,
    from_sqlalchemy,
    lake_name_collisions,
)
from framework.spec.messages import did_you_mean
from framework.spec.model import NAME_PATTERN, lake_column_problem

CURSOR_NAMES = ("updated_at", "modified_at", "last_modified", "last_modified_at", "last_updated",
                "last_updated_at", "updated_on", "modified_on", "update_time", "updated_time",
                "modified_time", "changed_at", "last_changed", "last_update", "date_modified",
                "date_updated", "updated", "modified")
SCHEMA_LINE = "# yaml-language-server: $schema=../pipeline.schema.json"
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
# Casts that hold every value exactly on DuckDB and Snowflake alike: `double` is 64-bit on both
# (dbt.type_float() is a 32-bit FLOAT on DuckDB), `timestamp with time zone` is TIMESTAMPTZ on
# DuckDB and TIMESTAMP_TZ on Snowflake, `binary` is BLOB on DuckDB.
_DBT_TYPES = {"string": "{{ dbt.type_string() }}", "integer": "{{ dbt.type_int() }}",
              "bigint": "{{ dbt.type_bigint() }}", "double": "double",
              "boolean": "{{ dbt.type_boolean() }}", "date": "date",
              "timestamp": "{{ dbt.type_timestamp() }}",
              "timestamptz": "timestamp with time zone", "binary": "binary"}
# The look-back `init` writes for a timestamp cursor.
LATE_COMMIT_WINDOW = "10m"
SOFT_DELETE_NAMES = ("deleted_at", "deleted_on", "deleted_date", "deleted_time", "is_deleted",
                     "deleted", "removed_at", "is_removed", "deletion_date")
_SQL_KEYWORDS = frozenset({"all", "and", "as", "between", "by", "case", "cast", "check", "column",
                           "constraint", "create", "date", "default", "desc", "distinct", "else",
                           "end", "except", "false", "for", "from", "group", "having", "in",
                           "inner", "interval", "into", "is", "join", "like", "limit", "not",
                           "null", "offset", "on", "or", "order", "primary", "references",
                           "select", "table", "then", "time", "timestamp", "to", "true", "union",
                           "unique", "user", "using", "when", "where", "window", "with",
                           # DuckDB's other reserved words, and `at` (AT TIME ZONE)
                           "analyse", "analyze", "any", "array", "asc", "asymmetric", "at",
                           "both", "collate", "deferrable", "describe", "do", "fetch", "foreign",
                           "initially", "intersect", "lambda", "lateral", "leading", "only",
                           "pivot", "pivot_longer", "pivot_wider", "placing", "qualify",
                           "returning", "show", "some", "summarize", "symmetric", "trailing",
                           "unpivot", "variadic"})


@dataclass(frozen=True)
class SourceColumn:
    name: str  # as the source spells it
    lake_name: str  # as dlt writes it to the lake (snake_case)
    type: str  # portable
    nullable: bool
    unique: bool = False
    values: tuple[str, ...] = ()
    comment: str = ""
    # Trailing spaces do not count when the source compares it (PostgreSQL's char(n), MySQL's
    # PAD SPACE collations): a reference 'EU ' meets its key 'EU' there.
    pads: bool = False
    # Nor does case (MySQL's and MariaDB's `_ci` collations, their defaults): 'eu' meets 'EU'.
    folds_case: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key: `columns` of this table refer to `referred_columns` of `referred_table`."""

    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]
    referred_schema: str | None = None


@dataclass
class SourceTable:
    """What the source database says about one table."""

    dialect: str
    table: str
    schema: str | None
    columns: list[SourceColumn]
    primary_key: list[str]
    cursor: str | None
    comment: str = ""
    notes: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    soft_delete: str | None = None
    cursor_nulls: bool = False  # the cursor holds NULLs: on_null: include

    def column(self, name: str) -> SourceColumn:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Onboarded:
    name: str
    written: list[Path]
    source: SourceTable


def init_pipeline(project: Project, table: str, connection: str, schema: str | None = None,
                  name: str | None = None, primary_key: tuple[str, ...] = ()) -> Onboarded:
    """Write the new pipeline's files (never over an existing one); return what was written."""
    from framework.onboarding.dbt_sources import kept_if_valid, sources_path

    pipeline = name or _default_name(table)
    if not re.match(NAME_PATTERN, pipeline):
        raise FrameworkError(f"'{pipeline}' is not a valid pipeline name (lower-case letters, "
                             "digits and '_', starting with a letter); pass --name")
    files = _paths(project, pipeline)
    _refuse_existing(project, pipeline, files)
    source = introspect(project, connection, table, schema, list(primary_key))
    texts = {
        files["pipeline"]: pipeline_yaml(pipeline, connection, source),
        files["sql"]: transform_sql(source),
        files["model"]: staging_sql(pipeline, source),
        files["model_yml"]: staging_yaml(pipeline, source),
    }
    written: list[Path] = []

    def undo() -> None:
        for path in written:
            path.unlink(missing_ok=True)

    try:
        with kept_if_valid(project, undo, "pipeline"):
            for path, text in texts.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("x", encoding="utf-8") as handle:  # "x": never over a file
                    handle.write(text)
                written.append(path)
    except FileExistsError as exc:
        raise FrameworkError(f"{project.display(Path(exc.filename))} already exists; framework "
                             "init never overwrites a file") from None
    return Onboarded(pipeline, [*written, sources_path(project.dbt_dir)], source)


def _default_name(table: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", table.lower()).strip("_")


def _paths(project: Project, name: str) -> dict[str, Path]:
    staging = project.dbt_dir / "models" / "staging"
    return {"pipeline": project.pipelines_dir / f"{name}.yml",
            "sql": project.pipelines_dir / "sql" / f"{name}.sql",
            "model": staging / f"stg_{name}.sql",
            "model_yml": staging / f"stg_{name}.yml"}


def _refuse_existing(project: Project, name: str, files: dict[str, Path]) -> None:
    from framework.spec.checks import dbt_index

    for path in files.values():
        if path.exists():
            raise FrameworkError(f"{project.display(path)} already exists; framework init never "
                                 "overwrites a file (remove it, or pass another --name)")
    dbt_index.cache_clear()
    if f"stg_{name}" in dbt_index(project.dbt_dir).nodes:
        raise FrameworkError(f"a dbt model named stg_{name} already exists in "
                             f"{project.dbt_dir.name}/; pass another --name")


# -- introspection -------------------------------------------------------------------------------


def introspect(project: Project, connection: str, table: str, schema: str | None,
               primary_key: list[str]) -> SourceTable:
    import sqlalchemy as sa

    conn = project.connection(connection)
    try:
        engine = conn.engine()
    except Exception as exc:  # noqa: BLE001 - a malformed URL, a missing driver: one line
        raise ServiceError(f"source '{connection}' ({conn.safe_url})", line_of(exc)) from None
    try:
        inspector = sa.inspect(engine)
        return read_table(engine, inspector, conn.dialect, connection, table, schema,
                           primary_key)
    except sa.exc.OperationalError as exc:
        raise ServiceError(f"source '{connection}' ({conn.safe_url})",
                           f"cannot connect: {line_of(exc)}") from None
    finally:
        engine.dispose()


def read_table(engine: Any, inspector: Any, dialect: str, connection: str, table: str,
               schema: str | None, primary_key: list[str],
               tables: list[str] | None = None) -> SourceTable:
    """One table as the inspector describes it (`tables`: the schema's tables, if known)."""
    import sqlalchemy as sa

    from framework.sources.sql.as_text import holds_zero_dates
    from framework.sources.sql.domains import base_types

    if tables is None:
        tables = inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
    if table not in tables:
        where = f" schema '{schema}' of" if schema else ""
        raise FrameworkError(f"no table '{table}' in{where} source '{connection}'"
                             f"{did_you_mean(table, tables)}")
    uniques = {tuple(u["column_names"]) for u in _safe(inspector.get_unique_constraints,
                                                       table, schema=schema) or []}
    # A UNIQUE INDEX is no constraint to the catalog, yet as good a key (not a partial one,
    # whose WHERE leaves other rows free, nor one over expressions).
    uniques |= {tuple(i["column_names"]) for i in _safe(inspector.get_indexes, table,
                                                        schema=schema) or []
                if i.get("unique") and None not in i["column_names"]
                and not (i.get("dialect_options") or {}).get("postgresql_where")}
    columns = []
    unbounded = []
    reflected = inspector.get_columns(table, schema=schema)
    types = base_types(engine, reflected)  # a domain as its base type, as the extract reads it
    collations = _collations(engine, table, schema) if dialect in ("mysql", "mariadb") else {}
    padded = {name for name, collation in collations.items()
              if "nopad" not in collation and "_0900_" not in collation}
    if dialect == "postgresql":  # char(n); SQLite compares 'a ' and 'a' apart
        padded = {c["name"] for c in reflected if isinstance(types[c["name"]], sa.CHAR)}
    folded = {name for name, collation in collations.items() if collation.endswith("_ci")}
    for col in reflected:
        sql_type = types[col["name"]]
        if from_sqlalchemy(sql_type, dialect) == UNBOUNDED_DECIMAL and \
                getattr(sql_type, "precision", None) is None:
            unbounded.append(col["name"])
        values = tuple(getattr(sql_type, "enums", None) or ())
        columns.append(SourceColumn(
            name=col["name"], lake_name=dlt_column_name(col["name"]),
            type=from_sqlalchemy(sql_type, dialect),
            # a zero date lands as NULL (as_text.zero_dates_as_null), even in a NOT NULL column
            nullable=bool(col.get("nullable", True)) or holds_zero_dates(dialect, sql_type),
            unique=(col["name"],) in uniques, values=values,
            comment=(col.get("comment") or "").strip(), pads=col["name"] in padded,
            folds_case=col["name"] in folded))
    names = [c.name for c in columns]
    problem = framework_column_clash(names) or lake_name_collisions(names)
    if problem:  # the pipeline init would write could not land it
        raise FrameworkError(f"table '{table}': {problem}; a pipeline of your own can")
    key = primary_key or list((_safe(inspector.get_pk_constraint, table, schema=schema) or {})
                              .get("constrained_columns") or [])
    if not key:
        single = sorted((u for u in uniques if len(u) == 1), key=lambda u: names.index(u[0]))
        key = list(single[0]) if single else []
    if not key:
        raise FrameworkError(f"table '{table}' has no primary key or unique column to merge on; "
                             "name its key with --primary-key COLUMN (repeatable)")
    for column in key:
        if column not in names:
            raise FrameworkError(f"--primary-key: '{column}' is not a column of '{table}'"
                                 f"{did_you_mean(column, names)}")
    found = SourceTable(dialect, table, schema, columns, key, None,
                        comment=(_safe(inspector.get_table_comment, table, schema=schema) or {})
                        .get("text") or "")
    found.cursor = _cursor(engine, found, types)
    found.soft_delete = _soft_delete(found) if found.cursor else None
    for fk in _safe(inspector.get_foreign_keys, table, schema=schema) or []:
        if fk.get("referred_table") and fk.get("constrained_columns"):
            found.foreign_keys.append(ForeignKey(
                tuple(fk["constrained_columns"]), fk["referred_table"],
                tuple(fk.get("referred_columns") or ()), fk.get("referred_schema")))
    for name in unbounded:
        found.notes.append(f"{table}.{name}: a numeric with no precision lands as "
                           f"{UNBOUNDED_DECIMAL}; declare its type in columns: if values need "
                           "more digits")
    # The spec's own rule (a difference of case alone is fine: both warehouses match it)
    named = [(name, "primary key") for name in key]
    for name, role in [*named, *([(found.cursor, "cursor")] if found.cursor else [])]:
        problem = lake_column_problem(name, role)
        if problem:
            raise FrameworkError(f"table '{table}': {problem}")
    return found


def _collations(engine: Any, table: str, schema: str | None) -> dict[str, str]:
    """A MySQL or MariaDB table's text columns and their collations, lower case. Trailing
    spaces count only under MariaDB's `_nopad_` ones and MySQL's `_0900_` ones (NO PAD), case
    only under those not ending `_ci`."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE "
            "TABLE_SCHEMA = coalesce(:schema, DATABASE()) AND TABLE_NAME = :table AND "
            "COLLATION_NAME IS NOT NULL"), {"schema": schema, "table": table}).all()
    return {name: collation.lower() for name, collation in rows}


def _cursor(engine: Any, table: SourceTable, types: dict[str, Any]) -> str | None:
    """A column named like `updated_at`, else the timestamp column with the latest value. One
    that holds NULLs reads them on every run (`on_null: include`): under init's `on_null:
    fail` they stopped the first run."""
    candidates = [c for c in table.columns  # a cursor the lake keeps matchable (`UpdatedAt` not)
                  if c.type in ("timestamp", "timestamptz") and c.name not in table.primary_key
                  and c.name.lower() not in SOFT_DELETE_NAMES  # NULL but for deleted rows
                  and lake_column_problem(c.name, "cursor") is None]
    if not candidates:
        table.notes.append("no timestamp column to use as a cursor: every run reads the whole "
                           "table (set source.incremental.cursor to change that)")
        return None
    by_name = {c.name.lower(): c.name for c in candidates}
    # One named like updated_at (even NULL until a row's first update: another column would
    # miss the updates) is the cursor whatever its values; so is the only one when always set
    # (no query: a whole table's scan, on every table of a large schema).
    chosen = next((by_name[name] for name in CURSOR_NAMES if name in by_name), None)
    if chosen is None and len(candidates) == 1 and not candidates[0].nullable:
        chosen = candidates[0].name
    if chosen is not None and not table.column(chosen).nullable:
        return chosen  # no query
    facts = _cursor_facts(engine, table, candidates, types)
    if chosen is None:  # the latest: an earlier one (created, always set) would miss updates
        # Not one holding dates to come: an open end (valid_to, 9999-12-31 or infinity) is no
        # time of change, and a cursor past every change would read none of them.
        soon = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
        ahead = {c.name for c in candidates
                 if facts[c.name][0] is not None and _naive_utc(facts[c.name][0]) >= soon}
        left = [c for c in candidates if c.name not in ahead]
        dated = [(_naive_utc(facts[c.name][0]), index) for index, c in enumerate(left)
                 if facts[c.name][0] is not None]
        if ahead:
            table.notes.append(f"cursor: not {', '.join(sorted(ahead))}, which "
                               f"{'holds' if len(ahead) == 1 else 'hold'} dates to come (an "
                               "open end is no time of change)")
        if not left:
            table.notes.append("no timestamp column holds times of change: every run reads "
                               "the whole table (set source.incremental.cursor to change that)")
            return None
        # none dated (an empty table): the last, as the only one would be
        chosen = left[max(dated)[1]].name if dated else left[-1].name
        if len(candidates) > 1:
            table.notes.append(f"cursor: '{chosen}' holds the latest timestamp (no column is "
                               "named like updated_at); check it is set on every insert and "
                               "update")
    if facts[chosen][1]:
        table.cursor_nulls = True
        table.notes.append(f"cursor: '{chosen}' is NULL in {facts[chosen][1]} row(s): "
                           "on_null: include reads them on every run (and sends on those that "
                           "changed since the last read); a column always set, or "
                           "COALESCE(updated_at, created_at) in source.query, reads only changes")
    return chosen


def _cursor_facts(engine: Any, table: SourceTable, candidates: list[SourceColumn],
                  types: dict[str, Any]) -> dict[str, tuple[Any, int]]:
    """Each candidate's latest value and number of NULLs (MySQL's zero dates among them), in
    one query, as the extract reads them (PostgreSQL's infinity as year 9999's last instant).
    `types`: `read_table`'s, a domain as its base type: no second reflection of the table."""
    import sqlalchemy as sa

    from framework.sources.sql.as_text import dates_as_read, selected_otherwise

    relation = sa.table(table.table, *(sa.column(c.name, types[c.name]) for c in candidates),
                        schema=table.schema)
    parts = []
    for c in candidates:
        column: Any = relation.c[c.name]
        as_read = dates_as_read(engine.dialect.name, types[c.name])
        if selected_otherwise(as_read):  # as the extract reads them
            column = as_read.column_expression(column)
        parts += [sa.func.max(column), sa.func.count() - sa.func.count(column)]
    with engine.connect() as conn:
        row = conn.execute(sa.select(*parts)).one()
    return {c.name: (row[2 * i], int(row[2 * i + 1] or 0)) for i, c in enumerate(candidates)}


def _naive_utc(value: Any) -> Any:
    """Timestamps with and without a time zone compared on one scale."""
    import datetime as dt

    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _soft_delete(table: SourceTable) -> str | None:
    """A column that marks deleted rows (deleted_at, is_deleted, ...), for a cursor pipeline:
    it reads changed rows only, so a delete is seen only when the row says so."""
    by_name = {c.name.lower(): c for c in table.columns}
    for name in SOFT_DELETE_NAMES:
        column = by_name.get(name)
        if column is not None and column.type in ("timestamp", "timestamptz", "date", "boolean",
                                                  "integer", "bigint") \
                and lake_column_problem(column.name, "soft-delete") is None:
            return column.name
    table.notes.append(f"{table.table}: rows deleted at the source stay in the warehouse (the "
                       "cursor reads changed rows only and no column marks deleted rows); add "
                       "`deletes: {reconcile: remove}` to compare every key after each run")
    return None


def _safe(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Inspector calls some dialects do not implement (SQLite has no table comments)."""
    try:
        return method(*args, **kwargs)
    except NotImplementedError:
        return None


def line_of(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


# -- the files -----------------------------------------------------------------------------------


def pipeline_yaml(name: str, connection: str, source: SourceTable,
                  dbt_select: list[str] | None = None, command: str | None = None) -> str:
    where = f"{source.schema}.{source.table}" if source.schema else source.table
    description = source.comment or f"{where} from the {connection} connection."
    written_by = command or f"framework init {source.table} --connection {connection}"
    lines = [SCHEMA_LINE, f"# Written by `{written_by}`; edit freely.",
             f"name: {name}", f"description: {scalar(description)}", "owner: data-platform",
             f"tags: [{name}]", "source:", f"  connection: {scalar(connection)}",
             f"  table: {scalar(source.table)}"]
    if source.schema:
        lines.append(f"  schema: {scalar(source.schema)}")
    lines.append(f"  primary_key: {flow_list(source.primary_key)}")
    if source.cursor:
        on_null = "include" if source.cursor_nulls else "fail"
        lines += ["  incremental:", f"    cursor: {scalar(source.cursor)}",
                  f"    on_null: {on_null}"]
        if source.column(source.cursor).type in ("timestamp", "timestamptz"):
            # A writer's now() is its transaction's start: a row committed after a run read
            # past that time was skipped for good. Re-read rows merge on the key.
            lines += ["    # Rows committed late (a transaction open while a run read past their",
                      "    # time) are read again within this window; a longer transaction needs",
                      "    # a longer one.", f"    lag: {LATE_COMMIT_WINDOW}"]
    lines += ["lake:", f"  path: {name}",
              "transform:", "  engine: duckdb", f"  sql_file: sql/{name}.sql",
              "quality:", "  severity: error",
              "  # Not null, unique and accepted values come from `columns:` below; add other",
              "  # Great Expectations checks here (expectations: or suite:).",
              "warehouse:", "  schema: landing", "  write_disposition: merge",
              "  contract: evolve"]
    if not source.cursor:  # every run reads every key: the keys gone are known exactly
        lines += ["# A full read each run: keys gone from the source leave the warehouse.",
                  "deletes: {reconcile: remove}"]
    elif source.soft_delete:
        lines += [f"# Rows whose {source.soft_delete} is set are deleted rows.",
                  f"deletes: {{soft_delete_column: {scalar(source.soft_delete)}}}"]
    else:
        lines += ["# The cursor reads changed rows only, so source deletes are not seen; add",
                  "# `deletes: {reconcile: remove}` to compare every key after each run."]
    lines += ["dbt:", f"  select: {flow_list(dbt_select or [f'stg_{name}+'])}", "columns:"]
    for column in source.columns:
        lines.append(f"  - {_column_entry(column, source)}")
    return "\n".join(lines) + "\n"


def _column_entry(column: SourceColumn, source: SourceTable) -> str:
    key = column.name in source.primary_key
    parts = [f"name: {column.lake_name}", f"type: {scalar(column.type)}"]
    if key or not column.nullable:
        parts.append("nullable: false")
    if (key and len(source.primary_key) == 1) or (column.unique and not key):
        parts.append("unique: true")
    if column.values:
        parts.append(f"accepted_values: {flow_list(list(column.values))}")
    description = column.comment or ("Primary key." if key and len(source.primary_key) == 1
                                     else "Part of the primary key." if key else "")
    if description:
        parts.append(f"description: {scalar(description)}")
    return "{" + ", ".join(parts) + "}"


def transform_sql(source: SourceTable) -> str:
    lines = []
    referring = {c for fk in source.foreign_keys for c in fk.columns}
    for column in source.columns:
        name = ident(column.lake_name)
        value = name
        # Keys and unique columns as written: trimmed, 'a@x.com' and 'a@x.com ' (two rows
        # under a source UNIQUE) would be one value twice, and quarantine the batch. So are
        # the columns referring to them (trimmed, a char(6) 'EU' no longer met its padded
        # key 'EU    ', and every fact row went to the unknown member), and an enum's
        # values: its labels, accepted_values below, may have spaces at either end.
        if column.type == "string" and column.name not in source.primary_key \
                and column.name not in referring and not column.unique and not column.values:
            value = f"trim(CAST({value} AS VARCHAR))"
        lines.append(f"    {value} AS {name}")
    # No casts: `columns:` types the result. A cast here kept init's type after the
    # declaration changed (decimal(38,9) rounded what decimal(38,20) then declared).
    return (f"-- Written by `framework init` from {source.dialect} table {source.table}: "
            "trimming, one output\n-- row per input row. The declared `columns:` type the "
            "result.\nSELECT\n" + ",\n".join(lines) + "\nFROM batch\n")


def loaded_at_column(source: SourceTable) -> str:
    """The staging model's name for the time the framework last wrote the row: `loaded_at`,
    unless the source has a column of that name (two `loaded_at`s: DuckDB renamed the second
    `loaded_at_1`, and the models read the source's)."""
    taken = {c.lake_name for c in source.columns}
    return "loaded_at" if "loaded_at" not in taken else "framework_loaded_at"


def staging_columns(source: SourceTable) -> str:
    """A staging model's select list: the landing columns as they are, and the time the
    framework wrote each row. No casts: the pipeline's `columns:` types landing, and a cast
    here kept init's type after the declaration changed (decimal(10,2) rounded what
    decimal(12,4) then declared)."""
    lines = [f"    {sql_column(c.lake_name)}" for c in source.columns]
    lines.append("    cast(_loaded_at as {{ dbt.type_timestamp() }}) as "
                 f"{loaded_at_column(source)}")
    return ",\n".join(lines)


def staging_sql(name: str, source: SourceTable) -> str:
    return (f"{{{{ config(tags=['{name}']) }}}}\n\n"
            f"-- Written by `framework init`: landing.{name}, typed by the `columns:` of\n"
            f"-- pipelines/{name}.yml. Rename and derive here; the landing source itself is "
            "generated from\n-- that file (framework dbt-sources).\n"
            "select\n" + staging_columns(source) +
            f"\nfrom {{{{ source('landing', '{name}') }}}}\n")


def staging_yaml(name: str, source: SourceTable) -> str:
    key = [source.column(k).lake_name for k in source.primary_key]
    description = f"landing.{name}, typed. One row per {' + '.join(key)}."
    lines = ["version: 2", "",
             "# Written by `framework init`; edit freely.", "models:",
             f"  - name: stg_{name}", f"    description: {scalar(description)}"]
    if len(key) > 1:
        combination = flow_list([sql_column(k) for k in key])
        lines += ["    data_tests:", "      - unique_combination_of_columns:",
                  "          arguments:", f"            combination_of_columns: {combination}"]
    lines.append("    columns:")
    for column in source.columns:
        entry = yml_column(column.lake_name)
        lines.append(f"      - name: {entry['name']}")
        if entry.get("quote"):
            lines.append("        quote: true")
        if column.comment:
            lines.append(f"        description: {scalar(column.comment)}")
        if column.lake_name in key:
            tests = ["not_null", "unique"] if len(key) == 1 else ["not_null"]
            lines.append(f"        data_tests: [{', '.join(tests)}]")
    lines += [f"      - name: {loaded_at_column(source)}",
              "        description: Time the framework last wrote the row (landing _loaded_at)."]
    return "\n".join(lines) + "\n"


def dbt_type(portable: str) -> str:
    if base_type(portable) == "decimal":
        return "decimal({}, {})".format(*decimal_parts(portable))
    return _DBT_TYPES[portable]


@lru_cache(maxsize=1)
def sql_keywords() -> frozenset[str]:
    """Words a bare column name must not be in the transform's SQL: ours (Spark's too), and
    those DuckDB reserves or reads as a type or function (`left`, `similar`, `binary`, ...)."""
    import duckdb

    rows = duckdb.execute("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category "
                          "IN ('reserved', 'type_function')").fetchall()
    return _SQL_KEYWORDS | {str(r[0]).lower() for r in rows}


def ident(name: str) -> str:
    if _PLAIN.match(name) and name not in sql_keywords():
        return name
    return '"' + name.replace('"', '""') + '"'


def sql_column(name: str) -> str:
    """A landing column in generated dbt SQL: as it is, or, for a word DuckDB or Snowflake
    reserves (`order`, `group`), quoted upper-case: Snowflake keeps the landing column
    upper-case and DuckDB matches a quoted name whatever its case, so one spelling serves
    both (bare, `cast(order as ...)` failed to parse)."""
    return f'"{name.upper()}"' if name in _dbt_keywords() else name


def yml_column(name: str) -> dict[str, Any]:
    """A column entry of a dbt YAML file, quoted as `sql_column` spells it."""
    return {"name": name.upper(), "quote": True} if name in _dbt_keywords() else {"name": name}


def _dbt_keywords() -> frozenset[str]:
    return sql_keywords() | SNOWFLAKE_RESERVED


# Snowflake's reserved words (its documentation's list), beside DuckDB's.
SNOWFLAKE_RESERVED = frozenset({
    "account", "all", "alter", "and", "any", "as", "between", "by", "case", "cast", "check",
    "column", "connect", "connection", "constraint", "create", "cross", "current",
    "current_date", "current_time", "current_timestamp", "current_user", "database", "delete",
    "distinct", "drop", "else", "exists", "false", "following", "for", "from", "full", "grant",
    "group", "gscluster", "having", "ilike", "in", "increment", "inner", "insert", "intersect",
    "into", "is", "issue", "join", "lateral", "left", "like", "localtime", "localtimestamp",
    "minus", "natural", "not", "null", "of", "on", "or", "order", "organization", "qualify",
    "regexp", "revoke", "right", "rlike", "row", "rows", "sample", "schema", "select", "set",
    "some", "start", "table", "tablesample", "then", "to", "trigger", "true", "try_cast",
    "union", "unique", "update", "using", "values", "view", "when", "whenever", "where",
    "with"})


def scalar(value: Any) -> str:
    """A YAML scalar: plain when that reads back as the same string, else double-quoted."""
    import yaml

    if isinstance(value, str):
        plain = re.match(r"^[A-Za-z_][\w .()/'+-]*$", value) and not value.endswith(" ") \
            and ": " not in value and " #" not in value
        if plain and yaml.safe_load(value) == value:
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value)


def flow_list(values: list[Any]) -> str:
    return "[" + ", ".join(scalar(v) for v in values) + "]"
