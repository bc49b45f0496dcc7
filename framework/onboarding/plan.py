"""`framework plan`: what a run would do, found without doing any of it.

A plan is the compiled pipeline (`framework.compiled`, the very object a run executes: its
fingerprint says which version of the pipeline files it is) plus a state diff found with the
runner's own functions. For each pipeline: where its cursor stands (dlt's local state, read,
never written), how many source rows a run would read (none when the source adapter's own
"anything new?", the one `run` asks, says nothing is new; else its count, such as the rows at
or after the cursor), which batches wait in the lake (extracted, not loaded), which
columns would be new to the landing table and what its contract does with them, and the dbt
models the run would build. Nothing is extracted, loaded or built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.compiled import CompiledPipeline
from framework.context import RunContext
from framework.project import Project
from framework.settings.targets import Target
from framework.spec.columns import FRAMEWORK_COLUMNS, dlt_column_name, kept, matches_warehouse
from framework.stages.dlt_state import STATE_FILE, StateOnly, lake_state, local_state

if TYPE_CHECKING:
    from framework.runner import Runner
    from framework.spec.model import PipelineSpec



@dataclass
class NewColumn:
    column: str
    action: str


@dataclass
class PipelinePlan:
    pipeline: str
    source: str
    cursor: str | None
    cursor_value: str | None
    reads: str  # how a run finds new rows: the cursor, the kind's own way, or "(full refresh)"
    state: str  # "local", "lake" (none here, the lake's), "missing", "full refresh", "by kind"
    rows_waiting: int | None
    rows_label: str
    pending_batches: list[str]
    landing_table: str
    landing_exists: bool
    new_columns: list[NewColumn] = field(default_factory=list)
    type_differences: list[dict[str, str]] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    dbt_select: list[str] = field(default_factory=list)
    dbt_models: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    blocked_by: dict[str, str] = field(default_factory=dict)  # quarantined load id -> reason
    # The compiled pipeline's fingerprint, and that of the pipeline that loaded the last batch
    # (None: nothing loaded yet, or loaded before fingerprints were kept).
    fingerprint: str = ""
    last_loaded_fingerprint: str | None = None

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def plan(project: Project, pipelines: Mapping[str, CompiledPipeline], target: Target,
         dbt: bool = True) -> list[PipelinePlan]:
    """Plan the compiled `pipelines` (`compile_project`) on `target`, as `Runner.run` would run
    them: the same objects, the same functions for the state."""
    from framework.runner import Runner, run_order

    runner = Runner(project, target)
    specs = runner.adopt(pipelines)  # what a run does with them, so its contexts are the same
    plans = []
    warehouse = _open_warehouse(target)
    try:
        for name in run_order(specs):
            plans.append(_plan_one(runner, runner.context(pipelines[name]), warehouse))
    finally:
        warehouse.close()
        _dispose_engines()
    if dbt:
        from framework.onboarding.dbt_select import resolve

        wanted = {p.pipeline: p.dbt_select for p in plans if p.dbt_select}
        try:
            models = resolve(project, target, wanted)
        except Exception as exc:  # noqa: BLE001 - dbt missing or not parsing: said, plan goes on
            first = str(exc).strip().splitlines()
            for item in plans:
                if item.dbt_select:
                    item.notes.append(f"dbt models not resolved: {first[0] if first else exc}")
        else:
            for item in plans:
                item.dbt_models = models.get(item.pipeline, [] if item.dbt_select else None)
    return plans


def _state(spec: PipelineSpec) -> str:
    """"full refresh" for a source read whole every run, "by kind" for one that finds its new
    rows its own way (files), "" until the cursor's state is read."""
    if spec.cursor:
        return ""
    return "full refresh" if spec.reads == "(full refresh)" else "by kind"


def _plan_one(runner: Runner, ctx: RunContext, warehouse: Any) -> PipelinePlan:
    spec = ctx.spec
    table = ctx.compiled.warehouse.shown
    found = PipelinePlan(
        pipeline=spec.name,
        source=ctx.source.describe(),
        cursor=spec.cursor, reads=spec.reads, cursor_value=None, state=_state(spec),
        rows_waiting=None, rows_label="", pending_batches=[], landing_table=table,
        landing_exists=False, dbt_select=list(ctx.compiled.dbt_select),
        fingerprint=ctx.compiled.fingerprint)
    last_value, state = _cursor_state(ctx, found, runner.project)
    if warehouse is not None:  # as a run settles them before its read
        from framework.sources.sql.cursor import settle_replayed

        settle_replayed(ctx, lambda: set(warehouse.fingerprints(ctx)))
    source_columns = _source(ctx, found, last_value, state)
    _changed_since_load(ctx, found, warehouse)
    found.pending_batches = list(runner.pending_batches(ctx, warehouse))
    found.blocked_by = warehouse.quarantined(ctx) if warehouse is not None else {}
    if found.blocked_by:  # a run would stop before extracting: say so first
        from framework.quarantine import blocked_message

        found.notes.append(blocked_message(spec.name, found.blocked_by))
    landing = warehouse.columns(ctx) if warehouse is not None else {}
    found.landing_exists = bool(landing)
    _columns(ctx, found, source_columns, landing)
    found.stages = _stages(ctx, found)
    return found


def _changed_since_load(ctx: RunContext, found: PipelinePlan, warehouse: Any) -> None:
    """The fingerprint of the last loaded batch, from the ledger; a note when it differs."""
    loaded = warehouse.fingerprints(ctx) if warehouse is not None else {}
    if not loaded:
        return
    found.last_loaded_fingerprint = list(loaded.values())[-1]
    last = found.last_loaded_fingerprint
    if not last:  # loaded by a version that kept no fingerprint: nothing to compare
        found.notes.append(f"the last batch was loaded before versions were recorded (this "
                           f"one is {found.fingerprint[:8]})")
    elif last != found.fingerprint:
        found.notes.append(f"pipeline file changed since the last load (version "
                           f"{found.fingerprint[:8]}, last batch loaded by {last[:8]})")


# -- cursor and source ---------------------------------------------------------------------------


def _cursor_state(ctx: RunContext, found: PipelinePlan, project: Project) -> tuple[Any, Any]:
    """dlt's last cursor value and its whole state, from the local state; None without one."""
    if not ctx.spec.cursor:
        return None, None
    from framework.sources.sql.precheck import stored_cursor

    folder = ctx.state_dir / "dlt"
    state: Any
    if not (folder / ctx.spec.name / STATE_FILE).is_file():
        state = lake_state(ctx.lake, ctx.spec.name)  # what the run restores (a fresh worker)
        found.state = "missing" if state is None else "lake"
        found.notes.append(f"no local dlt state in {project.display(folder / ctx.spec.name)}: a run "
                           + ("starts from the beginning" if state is None else
                              "restores the lake's, shown here"))
        if state is None:
            return None, None
    else:
        state = local_state(folder / ctx.spec.name / STATE_FILE)
        if state is None:  # not plain JSON: dlt reads its own file
            import dlt

            from framework.dlt_settings import apply_defaults

            apply_defaults()
            state = dlt.attach(pipeline_name=ctx.spec.name, pipelines_dir=str(folder)).state
        found.state = "local"
    cursor = stored_cursor(state, ctx.spec)
    if cursor is None:
        found.notes.append("the local dlt state holds no cursor value yet")
        return None, state
    value = cursor["last_value"]
    from datetime import datetime

    # a date's isoformat takes no `sep`: plan on a date cursor failed with a TypeError
    found.cursor_value = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    return value, state


def _dispose_engines() -> None:
    while _DUCKDB:
        _DUCKDB.pop().close()


def _source(ctx: RunContext, found: PipelinePlan, last_value: Any,
            state: Any) -> dict[str, str] | None:
    """The rows a run would read, by the run's own "anything new?" (framework/sources), so
    `plan` and `run` cannot disagree; return the source's columns (lake name -> portable
    type), or None when the source cannot be read."""
    source = ctx.source
    missing = source.not_set_up()
    if missing:  # reading would create an empty database file
        found.notes.append(f"source '{source.name}': {missing}")
        return None
    try:
        extraction = source.open(ctx)
        try:
            if state is not None and extraction.nothing_new(StateOnly(state)):
                found.rows_waiting, found.rows_label = 0, "(nothing new since the last run)"
            else:
                found.rows_waiting, found.rows_label = extraction.count_waiting(last_value)
            types = dict(extraction.types)
        finally:
            extraction.close()
    except Exception as exc:  # noqa: BLE001 - an unreachable source is part of the plan
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        found.notes.append(f"source '{source.describe()}' not read: "
                           f"{text[0] if text else type(exc).__name__}")
        return None
    return {dlt_column_name(name): kind for name, kind in types.items()}


# -- columns -------------------------------------------------------------------------------------


def _columns(ctx: RunContext, found: PipelinePlan, source: dict[str, str] | None,
             landing: dict[str, str]) -> None:
    spec = ctx.spec
    if not landing:
        found.notes.append(f"{found.landing_table} does not exist yet: the first load creates "
                           "it" + (" with the declared column types" if spec.columns else ""))
        return
    known = {c.lower() for c in landing}
    output = _transform_output(ctx, source) if source is not None else None
    contract = str(spec.warehouse.contract)
    candidates = [c for c in (source or {}) if c.lower() not in known]
    candidates += [c for c in output or [] if c.lower() not in known and c not in candidates]
    sql = ctx.compiled.sql.duckdb
    for column in candidates:
        if column in FRAMEWORK_COLUMNS:
            continue
        if output is not None and column not in output:
            if re.search(rf"\b{re.escape(column)}\b", sql, re.IGNORECASE):
                continue  # read by the transform under another name (a rename, a derivation)
            action = "ignored: the transform does not select it"
        else:
            action = {"evolve": f"added to {found.landing_table} (contract: evolve)",
                      "freeze": "stops the load (contract: freeze)",
                      "discard": "left out of the warehouse (contract: discard)"}[contract]
            if output is None:
                action += ", if the transform selects it"
        found.new_columns.append(NewColumn(column, action))
    types = {c.lower(): t for c, t in landing.items()}
    for declared in kept(spec):
        have = types.get(declared.name.lower())
        if have is not None and not matches_warehouse(declared.type, have):
            found.type_differences.append({"column": declared.name, "declared": declared.type,
                                           "warehouse": have})
    if found.type_differences:
        found.notes.append("declared types differ from the landing table's: the load writes "
                           "into the existing columns (" + ", ".join(
                               f"{d['column']}: {d['declared']} vs {d['warehouse']}"
                               for d in found.type_differences) + ")")


def _transform_output(ctx: RunContext, source: dict[str, str]) -> list[str] | None:
    """The transform's output columns, from DuckDB over an empty batch shaped like the source;
    None when the SQL does not run on DuckDB (Spark-only functions)."""
    import duckdb

    from framework.spec.columns import sql_type

    columns = ", ".join(f'CAST(NULL AS {sql_type(kind)}) AS "{name}"'
                        for name, kind in source.items())
    con = _duckdb().cursor()  # one in-memory database for the plan, a cursor per pipeline
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE batch AS SELECT {columns} LIMIT 0")
        description = con.execute(f"SELECT * FROM ({ctx.compiled.sql.duckdb}) "
                                  "AS planned LIMIT 0").description
        return [d[0] for d in description or []]
    except duckdb.Error:
        return None
    finally:
        con.close()


_DUCKDB: list[Any] = []


def _duckdb() -> Any:
    from framework.stages.load.duckdb import connect

    if not _DUCKDB:
        _DUCKDB.append(connect())
    return _DUCKDB[0]


def _stages(ctx: RunContext, found: PipelinePlan) -> list[str]:
    spec = ctx.spec
    expectations = len(ctx.compiled.expectations)
    waiting = "?" if found.rows_waiting is None else str(found.rows_waiting)
    blocked = (f"blocked: quarantined batch {', '.join(found.blocked_by)}; nothing runs until "
               "it is replayed or released")
    stages = [blocked] if found.blocked_by else []
    stages.append(f"extract: {waiting} row(s) {found.rows_label}".rstrip())
    if found.pending_batches:
        stages.append(f"finish {len(found.pending_batches)} batch(es) already in the lake")
    stages += [f"transform: {spec.transform.engine}"
               + (f", {len(kept(spec))} declared column(s) cast" if spec.columns else ""),
               f"validate: {expectations} expectation(s), severity {spec.quality.severity}",
               f"load: {spec.warehouse.write_disposition} into {found.landing_table}"]
    if spec.dbt:
        stages.append(f"dbt build --select {' '.join(spec.dbt.select)}")
    return stages


# -- the warehouse, read only --------------------------------------------------------------------


class _Warehouse:
    """What the plan reads from the warehouse: the ledger and a landing table's columns."""

    def __init__(self, target: Target) -> None:
        self.inner: Any = None
        path = target.warehouse.path
        if target.warehouse.type != "duckdb" or (path and Path(path).is_file()):
            from framework.stages.load import warehouse_for

            self.inner = warehouse_for(target)

    def done_batches(self, ctx: RunContext) -> set[str]:
        return self.inner.done_batches(ctx) if self.inner is not None else set()

    def quarantined(self, ctx: RunContext) -> dict[str, str]:
        return self.inner.quarantined(ctx) if self.inner is not None else {}

    def fingerprints(self, ctx: RunContext) -> dict[str, str | None]:
        return self.inner.fingerprints(ctx) if self.inner is not None else {}

    def columns(self, ctx: RunContext) -> dict[str, str]:
        if self.inner is None:
            return {}
        schema, table = ctx.compiled.warehouse.schema, ctx.compiled.warehouse.table
        rows = self.inner.query(
            "SELECT column_name, data_type, numeric_precision, numeric_scale FROM "
            f"information_schema.columns WHERE lower(table_schema) = '{schema.lower()}' AND "
            f"lower(table_name) = '{table.lower()}' ORDER BY ordinal_position")
        return {str(r[0]).lower() if str(r[0]).isupper() else str(r[0]): _spelled(*r[1:])
                for r in rows}

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


def _spelled(data_type: object, precision: object, scale: object) -> str:
    """A column's type as declared: Snowflake's information schema says NUMBER and gives the
    precision and scale apart (NUMBER(38,0) is a bigint, NUMBER(38,10) a decimal(38,10))."""
    spelled = str(data_type)
    if spelled.upper() in ("NUMBER", "NUMERIC", "DECIMAL") and precision is not None:
        return f"{spelled}({precision},{scale or 0})"
    return spelled


def _open_warehouse(target: Target) -> _Warehouse:
    return _Warehouse(target)
