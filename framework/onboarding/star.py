"""A star schema for a whole source database, from its foreign keys (`framework init --all`).

- a dimension `dim_<pipeline>` per table other tables refer to: a surrogate key (`<table>_key`,
  an md5 of the primary key, the same on DuckDB and Snowflake), every staging column, and one
  unknown member (key `'-1'`) for references that are missing or match nothing;
- a fact `fact_<pipeline>` per table that refers to another: its own key, one
  `<role>_key` per foreign key (the dimension's surrogate key, the unknown member when
  unmatched, so no fact row is ever lost), one `<column>_date_key` per date or timestamp column
  (a role of the date dimension) and its measures (numeric columns that are neither keys nor
  references);
- a date dimension `dim_<connection>_dates` over every date the facts hold, with its unknown member
  (`-1`);
- tests: surrogate keys unique and not null, facts unique on their key, every fact key found
  in its dimension (error: a model bug), every source reference found in the referred table's
  staging (warn: dirty source data, counted, never blocking).

Everything is plain dbt SQL and YAML under `models/<connection>/` that a user may edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from framework.onboarding.init import (
    SourceTable,
    flow_list,
    scalar,
    sql_column,
    staging_columns,
    yml_column,
)
from framework.spec.columns import NUMERIC, base_type

UNKNOWN_KEY = "'-1'"
UNKNOWN_DATE = "-1"
DATE_TYPES = ("date", "timestamp", "timestamptz")


@dataclass(frozen=True)
class Table:
    """One onboarded table: its pipeline name and what the source says about it."""

    name: str
    source: SourceTable

    def lake(self, column: str) -> str:
        return self.source.column(column).lake_name

    @property
    def key(self) -> list[str]:
        return [self.lake(c) for c in self.source.primary_key]

    @property
    def entity(self) -> str:
        """The name a surrogate key is called by: the table's, without the connection prefix."""
        return snake_name(self.source.table)

    @property
    def surrogate_key(self) -> str:
        """`<entity>_key`, or `<entity>_sk` when the table has a column of that name (which
        the dimension would have held twice: DuckDB renamed one `..._key_1`, silently)."""
        name = f"{self.entity}_key"
        return f"{self.entity}_sk" if name in {c.lake_name for c in self.source.columns} \
            else name


@dataclass(frozen=True)
class Reference:
    """A foreign key of a fact, resolved to the dimension it refers to."""

    role: str
    columns: list[str]  # the fact's columns (lake names)
    dimension: Table
    referred: list[str]  # the dimension's columns (lake names)


def star_models(tables: list[Table], connection: str, header: str) -> dict[str, str]:
    """Relative path (under `models/<connection>/`) -> file body, for every generated model."""
    by_table = {t.source.table: t for t in tables}
    references = {t.name: _references(t, by_table) for t in tables}
    referred = {r.dimension.name for refs in references.values() for r in refs}
    files: dict[str, str] = {}
    dates_model = f"dim_{snake_name(connection)}_dates"  # one per source: never a clash
    date_sources: list[tuple[Table, str]] = []
    for table in tables:
        files[f"staging/stg_{table.name}.sql"] = _staging_sql(table, header)
        files[f"staging/stg_{table.name}.yml"] = _staging_yml(table, references[table.name])
        if table.name in referred:
            files[f"marts/dim_{table.name}.sql"] = _dimension_sql(table, header)
            files[f"marts/dim_{table.name}.yml"] = _dimension_yml(table)
        if references[table.name]:
            dates = _date_columns(table)
            date_sources += [(table, c) for c in dates]
            files[f"marts/fact_{table.name}.sql"] = _fact_sql(
                table, references[table.name], dates, header)
            files[f"marts/fact_{table.name}.yml"] = _fact_yml(
                table, references[table.name], dates, dates_model)
    if date_sources:
        files[f"marts/{dates_model}.sql"] = _dates_sql(date_sources, header)
        files[f"marts/{dates_model}.yml"] = _dates_yml(dates_model)
    return files


def facts_and_dimensions(tables: list[Table]) -> tuple[list[str], list[str]]:
    """Pipeline names of the tables that become facts, and of those that become dimensions."""
    by_table = {t.source.table: t for t in tables}
    references = {t.name: _references(t, by_table) for t in tables}
    referred = {r.dimension.name for refs in references.values() for r in refs}
    return ([t.name for t in tables if references[t.name]],
            [t.name for t in tables if t.name in referred])


# -- the graph -----------------------------------------------------------------------------------


def _references(table: Table, by_table: dict[str, Table]) -> list[Reference]:
    """The table's foreign keys to other onboarded tables (a self-reference stays a column)."""
    found: list[Reference] = []
    roles: set[str] = set()
    for fk in table.source.foreign_keys:
        dimension = by_table.get(fk.referred_table)
        if dimension is None or dimension is table or not _has(table, fk.columns) \
                or not _has(dimension, fk.referred_columns):
            continue  # a column an edited pipeline no longer declares: a plain reference
        columns = [table.lake(c) for c in fk.columns]
        referred = [dimension.lake(c) for c in fk.referred_columns] or dimension.key
        role = _role(columns, dimension)
        while role in roles:  # two references named alike: number the later ones
            role += "_2"
        roles.add(role)
        found.append(Reference(role, columns, dimension, referred))
    return found


def _has(table: Table, columns: tuple[str, ...]) -> bool:
    names = {c.name for c in table.source.columns}
    return all(c in names for c in columns)


def _role(columns: list[str], dimension: Table) -> str:
    """`customer_id` -> `customer`; `ship_via` -> `ship_via`; several columns: the entity."""
    if len(columns) == 1:
        column = columns[0]
        for suffix in ("_id", "_key", "_code", "_no"):
            if column.endswith(suffix) and len(column) > len(suffix):
                return column[: -len(suffix)]
        return column
    return dimension.entity


def _date_columns(table: Table) -> list[str]:
    keys = set(table.key)
    return [c.lake_name for c in table.source.columns
            if c.type in DATE_TYPES and c.lake_name not in keys]


def _measures(table: Table, references: list[Reference]) -> list[str]:
    used = set(table.key) | {c for r in references for c in r.columns}
    return [c.lake_name for c in table.source.columns
            if base_type(c.type) in NUMERIC and c.lake_name not in used]


def _date_role(column: str) -> str:
    return f"{column}_key" if column.endswith("_date") else f"{column}_date_key"


def _fact_names(table: Table, references: list[Reference], dates: list[str]) -> dict[str, str]:
    """The fact's generated column names (`<role>_key` per reference, a date key per date
    column), numbered where two would read alike (`ship_date` and `ship` both give
    `ship_date_key`) or meet a column the fact keeps (its key, a measure)."""
    taken = set(table.key) | set(_measures(table, references))
    names: dict[str, str] = {}
    wanted = [(f"ref:{r.role}", f"{r.role}_key") for r in references] + \
        [(f"date:{c}", _date_role(c)) for c in dates]
    for what, name in wanted:
        unique, number = name, 1
        while unique in taken:
            number += 1
            unique = f"{name}_{number}"
        taken.add(unique)
        names[what] = unique
    return names




def snake_name(name: str) -> str:
    """A table name as a pipeline/model name: `OrderDetails` -> `order_details`."""
    import re

    snake = re.sub(r"[^a-z0-9_]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower())
    snake = snake.strip("_")
    return snake if re.match(r"^[a-z]", snake) else f"t_{snake}"


# -- SQL -----------------------------------------------------------------------------------------


def _config(name: str | None, schema: str, materialized: str) -> str:
    tags = f", tags=['{name}']" if name else ""
    return f"{{{{ config(schema='{schema}', materialized='{materialized}'{tags}) }}}}\n\n"


def surrogate(columns: list[str], alias: str = "") -> str:
    """md5 of the key columns as text: one spelling for DuckDB and Snowflake."""
    parts = [f"cast({alias}{sql_column(c)} as {{{{ dbt.type_string() }}}})" for c in columns]
    joined = " || '|' || ".join(parts)
    return f"md5({joined})"


def _staging_sql(table: Table, header: str) -> str:
    return (_config(table.name, "staging", "view") + header
            + f"-- landing.{table.name}, typed by the `columns:` of its pipeline file.\n"
            + "select\n" + staging_columns(table.source)
            + f"\nfrom {{{{ source('landing', '{table.name}') }}}}\n")


def _dimension_sql(table: Table, header: str) -> str:
    key = table.surrogate_key
    columns = list(table.source.columns)
    rows = [f"    {surrogate(table.key)} as {key}"] + [
        f"    {sql_column(c.lake_name)}" for c in columns]
    unknown = [f"    {UNKNOWN_KEY} as {key}"] + [
        f"    null as {sql_column(c.lake_name)}" for c in columns]  # staging's types: a cast
    # to init's would make the union round a decimal `columns:` widened since
    return (_config(table.name, "marts", "table") + header
            + f"-- One row per {table.source.table}, and the unknown member ({key} = "
              f"{UNKNOWN_KEY}) that facts use\n-- for a missing or unmatched reference.\n"
            + "select\n" + ",\n".join(rows)
            + f"\nfrom {{{{ ref('stg_{table.name}') }}}}\n\nunion all\n\n"
            + "select\n" + ",\n".join(unknown) + "\n")


def _fact_sql(table: Table, references: list[Reference], dates: list[str],
              header: str) -> str:
    names = _fact_names(table, references, dates)
    select = [f"    f.{sql_column(c)}" for c in table.key]
    joins = []
    for index, ref in enumerate(references, start=1):
        alias = f"d{index}"
        select.append(f"    coalesce({alias}.{ref.dimension.surrogate_key}, {UNKNOWN_KEY}) "
                      f"as {names[f'ref:{ref.role}']}")
        on = " and ".join(_meets(table, mine, ref.dimension, theirs, alias)
                          for mine, theirs in zip(ref.columns, ref.referred, strict=True))
        joins.append(f"left join {{{{ ref('dim_{ref.dimension.name}') }}}} as {alias}\n"
                     f"    on {on}")
    select += [f"    coalesce({{{{ date_key('f.{sql_column(c)}') }}}}, {UNKNOWN_DATE}) as "
               f"{names[f'date:{c}']}" for c in dates]
    select += [f"    f.{sql_column(c)}" for c in _measures(table, references)]
    return (_config(table.name, "marts", "table") + header
            + f"-- One row per {table.source.table} row: references resolved to dimension "
              "keys (the unknown\n-- member when unmatched), dates to date keys, and the "
              "measures.\n"
            + "select\n" + ",\n".join(select)
            + f"\nfrom {{{{ ref('stg_{table.name}') }}}} as f\n" + "\n".join(joins) + "\n")


def _compared(fact: Table, mine: str, dimension: Table, theirs: str) -> tuple[bool, bool]:
    """How the source compares a reference's column with its key's: whether trailing spaces
    (`pads`: PostgreSQL's char(n), a PAD SPACE collation) and case (`folds_case`: a `_ci`
    collation) are ignored, by either side's column."""
    left = next(c for c in fact.source.columns if c.lake_name == mine)
    right = next(c for c in dimension.source.columns if c.lake_name == theirs)
    return left.pads or right.pads, left.folds_case or right.folds_case


def _as_compared(column: str, spaces: bool, case: bool) -> str:
    """`column` as text the way the source compares it: only spaces trimmed (DuckDB's rtrim
    alone takes other blanks too), lower case; as text, since an edited pipeline may retype
    it."""
    text = f"cast({column} as {{{{ dbt.type_string() }}}})"
    text = f"rtrim({text}, ' ')" if spaces else text
    return f"lower({text})" if case else text


def _meets(fact: Table, mine: str, dimension: Table, theirs: str, alias: str) -> str:
    """A reference's column meeting its key's as the source compares them (a MariaDB
    reference 'eu ' meets its key 'EU'); else as they are: trimmed or folded there, a text
    key 'a' and 'a ' (or 'A') both would join, doubling fact rows. Accents count, whatever
    an `_ai` collation says."""
    left, right = f"f.{sql_column(mine)}", f"{alias}.{sql_column(theirs)}"
    spaces, case = _compared(fact, mine, dimension, theirs)
    if spaces or case:
        return f"{_as_compared(left, spaces, case)} = {_as_compared(right, spaces, case)}"
    return f"{left} = {right}"


def _dates_sql(sources: list[tuple[Table, str]], header: str) -> str:
    # distinct: a single date column has no union to de-duplicate it
    unions = "\n    union\n".join(
        f"    select distinct cast({sql_column(column)} as date) as calendar_date from "
        f"{{{{ ref('stg_{table.name}') }}}}" for table, column in sources)
    integer = "{{ dbt.type_int() }}"
    return (_config(None, "marts", "table") + header
            + "-- Every date the facts hold, one row each, and the unknown member "
              f"(date_key = {UNKNOWN_DATE}).\n"
            + f"with dates as (\n{unions}\n)\n\n"
            + "select\n    {{ date_key('calendar_date') }} as date_key,\n"
            + "    calendar_date,\n"
            + f"    cast(extract(year from calendar_date) as {integer}) as calendar_year,\n"
            + f"    cast(extract(quarter from calendar_date) as {integer}) as calendar_quarter,\n"
            + f"    cast(extract(month from calendar_date) as {integer}) as calendar_month,\n"
            + f"    cast(extract(day from calendar_date) as {integer}) as day_of_month\n"
            + "from dates\nwhere calendar_date is not null\n\nunion all\n\n"
            + f"select\n    {UNKNOWN_DATE} as date_key,\n    cast(null as date) as calendar_date,\n"
            + "".join(f"    cast(null as {integer}) as {c}{',' if c != 'day_of_month' else ''}\n"
                      for c in ("calendar_year", "calendar_quarter", "calendar_month",
                                "day_of_month")))


# -- YAML ----------------------------------------------------------------------------------------


def _yaml(models: list[dict[str, Any]]) -> str:
    import yaml

    return "version: 2\n\n" + yaml.safe_dump({"models": models}, sort_keys=False, width=100,
                                             default_flow_style=False)


def _unique(columns: list[str]) -> dict[str, Any]:
    return {"unique_combination_of_columns": {
        "arguments": {"combination_of_columns": [sql_column(c) for c in columns]}}}


def _relationship(to: str, field: str, severity: str | None = None,
                  compared: tuple[bool, bool] = (False, False)) -> dict[str, Any]:
    """dbt's relationships test, or, for a reference the source compares without trailing
    spaces or case (`_compared`), ours that compares as the source and the fact's join do."""
    test: dict[str, Any] = {"arguments": {"to": f"ref('{to}')", "field": sql_column(field)}}
    spaces, case = compared
    if spaces or case:
        test["arguments"] |= {"ignore_trailing_spaces": spaces, "ignore_case": case}
    if severity:
        test["config"] = {"severity": severity}
    return {"relationships_as_compared" if spaces or case else "relationships": test}


def _staging_yml(table: Table, references: list[Reference]) -> str:
    key = table.key
    model: dict[str, Any] = {
        "name": f"stg_{table.name}",
        "description": f"landing.{table.name}, typed. One row per {' + '.join(key)}."}
    if len(key) > 1:
        model["data_tests"] = [_unique(key)]
    tests: dict[str, list[Any]] = {}
    for name in key:
        tests.setdefault(name, []).extend(["not_null"] + (["unique"] if len(key) == 1 else []))
    for ref in references:  # dirty source data is counted, never blocking
        if len(ref.columns) == 1:
            tests.setdefault(ref.columns[0], []).append(
                _relationship(f"stg_{ref.dimension.name}", ref.referred[0], "warn",
                              _compared(table, ref.columns[0], ref.dimension,
                                        ref.referred[0])))
    columns = []
    for column in table.source.columns:
        entry: dict[str, Any] = yml_column(column.lake_name)
        if column.comment:
            entry["description"] = column.comment
        if column.lake_name in tests:
            entry["data_tests"] = tests[column.lake_name]
        columns.append(entry)
    model["columns"] = columns
    return _yaml([model])


def _dimension_yml(table: Table) -> str:
    key = table.surrogate_key
    model: dict[str, Any] = {
        "name": f"dim_{table.name}",
        "description": f"Dimension of {table.source.table}: one row per "
                       f"{' + '.join(table.key)}, plus the unknown member ({key} = '-1').",
        "data_tests": [_unique(table.key)] if len(table.key) > 1 else [],
        "columns": [{"name": key, "description": "Surrogate key (md5 of the primary key).",
                     "data_tests": ["unique", "not_null"]}]}
    if len(table.key) == 1:
        model["columns"].append({**yml_column(table.key[0]), "data_tests": ["unique"]})
    if not model["data_tests"]:
        del model["data_tests"]
    return _yaml([model])


def _fact_yml(table: Table, references: list[Reference], dates: list[str],
              dates_model: str) -> str:
    key = table.key
    names = _fact_names(table, references, dates)
    columns: list[dict[str, Any]] = []
    if len(key) == 1:
        columns.append({**yml_column(key[0]), "data_tests": ["unique", "not_null"]})
    for ref in references:
        columns.append({"name": names[f"ref:{ref.role}"],
                        "description": f"dim_{ref.dimension.name} key ('-1': unknown).",
                        "data_tests": ["not_null", _relationship(
                            f"dim_{ref.dimension.name}", ref.dimension.surrogate_key)]})
    for column in dates:
        columns.append({"name": names[f"date:{column}"],
                        "description": f"{dates_model} key of {column} (-1: unknown).",
                        "data_tests": ["not_null", _relationship(dates_model, "date_key")]})
    model: dict[str, Any] = {
        "name": f"fact_{table.name}",
        "description": f"Fact of {table.source.table}: one row per {' + '.join(key)}."}
    if len(key) > 1:
        model["data_tests"] = [_unique(key)]
    model["columns"] = columns
    return _yaml([model])


def _dates_yml(name: str) -> str:
    return _yaml([{"name": name, "description": "Dates the facts hold, one row each, and the "
                   "unknown member (date_key = -1).",
                   "columns": [{"name": "date_key", "data_tests": ["unique", "not_null"]}]}])


__all__ = ["Table", "facts_and_dimensions", "flow_list", "scalar", "snake_name", "star_models",
           "surrogate"]
