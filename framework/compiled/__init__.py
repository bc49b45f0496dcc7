"""Compile, then execute: the project and a target become frozen compiled pipelines.

A `CompiledPipeline` holds everything a run needs of one pipeline, resolved once: the spec,
its connection, the transform's final SQL per engine, the expectations, the lake URIs, the
warehouse identifiers, the dbt selection, and a fingerprint of all of it (secrets excluded).
`framework plan`, `framework run`, the stage API and the Airflow DAG factory consume the same
objects; stages receive what they need from it, never the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.compiled.fingerprint import fingerprint_of
from framework.compiled.sql import TransformSql, transform_sql
from framework.errors import FrameworkError
from framework.lake import PROCESSED, QUARANTINE, RAW
from framework.settings.connections import Connection
from framework.settings.targets import Target
from framework.spec.model import Expectation, PipelineSpec

if TYPE_CHECKING:
    from framework.context import RunContext
    from framework.project import Project

__all__ = ["CompiledPipeline", "LakeUris", "TransformSql", "WarehouseIds", "compile_pipeline",
           "compile_project", "run_context"]


@dataclass(frozen=True)
class LakeUris:
    """The pipeline's three lake folders (`s3://...` or an absolute local path)."""

    raw: str
    processed: str
    quarantine: str


@dataclass(frozen=True)
class WarehouseIds:
    """The landing table as the target's warehouse names it: plain, and quoted for its SQL."""

    schema: str
    table: str
    quoted_schema: str
    quoted_table: str  # schema-qualified

    @property
    def shown(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class CompiledPipeline:
    spec: PipelineSpec
    target: Target = field(repr=False)
    state_dir: Path = field(repr=False)  # the target's run state: dlt's pipelines, locks
    connection_name: str | None
    # Resolved from `sources/<name>.yml` (a URL with its password: never shown, never hashed);
    # None with `connection_error` when it could not be (a missing variable): the run of this
    # pipeline fails with that line, the others go on.
    connection: Connection | None = field(repr=False, compare=False)
    connection_error: str | None = field(repr=False, compare=False)
    sql: TransformSql
    expectations: tuple[Expectation, ...]
    lake: LakeUris
    warehouse: WarehouseIds
    dbt_select: tuple[str, ...]
    fingerprint: str
    # What a source adapter binds at run time, never compiled in (the variables hold secrets):
    # the project's variables (`.env` over the process) and its folder.
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    root: Path = field(default=Path("."), repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def short_fingerprint(self) -> str:
        return self.fingerprint[:8]

    def connection_for(self, name: str) -> Connection:
        """The named connection, as the source adapters ask for it."""
        if name != self.connection_name:
            raise FrameworkError(f"pipeline '{self.name}' was compiled with connection "
                                 f"'{self.connection_name}', not '{name}'")
        if self.connection is None:
            raise FrameworkError(self.connection_error or f"unknown connection '{name}'")
        return self.connection

    def canonical(self) -> dict[str, Any]:
        """What the fingerprint covers: everything compiled but the target's secrets and the
        connection's URL (it may hold a password)."""
        return canonical(self.spec, self.connection, self.connection_name, self.sql,
                         self.expectations, self.lake, self.warehouse, self.dbt_select)


def compile_project(project: Project, target: Target,
                    specs: Mapping[str, PipelineSpec] | None = None
                    ) -> dict[str, CompiledPipeline]:
    """Every pipeline of the project (or of `specs`, already loaded) compiled for `target`."""
    chosen = project.load_pipelines() if specs is None else specs
    return {name: compile_pipeline(project, target, spec) for name, spec in chosen.items()}


def compile_pipeline(project: Project, target: Target, spec: PipelineSpec) -> CompiledPipeline:
    """One pipeline compiled for `target`; the project's files are read here, and only here."""
    from framework.lake import Lake

    name = getattr(spec.source, "connection", None)
    connection, error = None, None
    if name is not None:
        try:
            connection = project.connection(name)
        except FrameworkError as exc:
            error = str(exc)
    sql = transform_sql(spec, project.transform_sql(spec))
    expectations = tuple(project.expectations(spec))
    lake = Lake(target.lake)
    uris = LakeUris(*(lake.uri(zone, spec.lake.path) for zone in (RAW, PROCESSED, QUARANTINE)))
    ids = warehouse_ids(target, spec.warehouse.db_schema, spec.table)
    select = tuple(spec.dbt.select) if spec.dbt else ()
    digest = fingerprint_of(canonical(spec, connection, name, sql, expectations, uris, ids,
                                      select))
    return CompiledPipeline(spec=spec, target=target,
                            state_dir=project.state_dir / "targets" / target.name,
                            connection_name=name, connection=connection,
                            connection_error=error, sql=sql, expectations=expectations,
                            lake=uris, warehouse=ids, dbt_select=select, fingerprint=digest,
                            env=project.variables, root=project.root)


def run_context(project: Project, target: Target, spec: PipelineSpec,
                full_refresh: bool = False) -> RunContext:
    """A stage's context for `spec`, compiled on the spot (scripts, tests; runs use a Runner)."""
    from framework.context import RunContext

    return RunContext(compile_pipeline(project, target, spec), full_refresh=full_refresh)


def warehouse_ids(target: Target, schema: str, table: str) -> WarehouseIds:
    """Quoted as the target's warehouse stores names: DuckDB as written, Snowflake in upper
    case (what an unquoted name means there)."""
    if target.warehouse.type == "snowflake":
        from framework.stages.load.snowflake import ident
    else:
        from framework.stages.load import quote as ident
    return WarehouseIds(schema, table, ident(schema), f"{ident(schema)}.{ident(table)}")


def canonical(spec: PipelineSpec, connection: Connection | None, connection_name: str | None,
              sql: TransformSql, expectations: tuple[Expectation, ...], lake: LakeUris,
              warehouse: WarehouseIds, dbt_select: tuple[str, ...]) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "spec": spec.model_dump(mode="json", by_alias=True),
        # the connection by name and kind: its URL (host, password) is the target's business
        "connection": None if connection_name is None else {
            "name": connection_name,
            "dialect": connection.dialect if connection else None,
            "backend": str(connection.backend) if connection else None},
        "sql": asdict(sql),
        "expectations": [e.model_dump(mode="json") for e in expectations],
        "lake": asdict(lake),
        "warehouse": asdict(warehouse),
        "dbt_select": list(dbt_select),
    }
