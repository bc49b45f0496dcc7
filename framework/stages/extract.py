"""Extract: one dlt load of the new rows into the lake's `raw/` zone as Parquet.

dlt owns the cursor state and the load package. The state is kept with the lake: every run
first restores it from there (`sync_destination`), so a worker without the local state folder
resumes where the last run stopped. Cursor comparisons and the rows at the boundary are ours
(framework/stages/cursor.py): exact on any spelling of a value, and as cheap for a million rows
at one cursor value as for a million values.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from framework.context import RunContext
from framework.errors import ServiceError, StageError
from framework.extras import missing_extra
from framework.faults import checkpoint
from framework.lake import RAW
from framework.settings.connections import Connection
from framework.stages.cursor import BoundaryFilter, lag_in_cursor_units, query_adapter

DLT_DATASET = RAW
# The spec's `on_null` in dlt's words.
NULL_POLICY: dict[str, Literal["raise", "include", "exclude"]] = {
    "fail": "raise", "include": "include", "exclude": "exclude"}
CHUNK_ROWS = 100_000
# dlt backends that yield Python rows or pandas frames, not Arrow tables.
ROW_BACKENDS = ("sqlalchemy", "pandas")
_NEW_LAKE = threading.Lock()


@dataclass(frozen=True)
class Extracted:
    load_id: str | None
    rows: int


def extract(ctx: RunContext) -> Extracted:
    """Extract the rows past the cursor; `load_id` is None when there were none."""
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    # zstd Parquet: same CPU as dlt's default, 40% smaller raw files (benchmarks/profile.md).
    os.environ.setdefault("DATA_WRITER__COMPRESSION", "zstd")
    # Once a package is in the lake, dlt's local copy of its files is dead weight (the whole
    # batch again, per run, in the state folder); its state and load records stay.
    os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    spec = ctx.spec
    connection = ctx.project.connection(spec.source.connection)
    ctx.lake.check()
    pipeline = dlt.pipeline(
        pipeline_name=spec.name,
        pipelines_dir=str(ctx.state_dir / "dlt"),
        destination=_destination(ctx),
        dataset_name=DLT_DATASET,
    )
    try:
        resource, reflected, boundary = _resource(ctx, connection)
    except StageError:
        raise
    except Exception as exc:  # reflection: a dead server, a wrong password, a missing table
        raise _explain(ctx, connection, exc) from None
    columns = source_columns(reflected)
    if not ctx.full_refresh:
        check_drift(ctx, _known_columns(ctx), columns)
    try:
        if pipeline.has_pending_data:  # a package a killed run extracted but did not land
            pipeline.normalize()
            with _new_lake_turn(ctx):
                pipeline.load()
        # The cursor kept with the lake: newer than ours when another worker ran last, the only
        # one when this machine has no state folder.
        _forget_unfinished_states(ctx)
        with _new_lake_turn(ctx):
            pipeline.sync_destination()
        checkpoint("extract")
        if _nothing_new(ctx, pipeline, reflected, connection):
            _remember_columns(ctx, columns)
            return Extracted(None, 0)
        pipeline.extract(resource, loader_file_format="parquet",
                         refresh="drop_resources" if ctx.full_refresh else None)
        checkpoint("after_extract")
        normalized = pipeline.normalize()
        rows = int(normalized.row_counts.get(spec.lake.path, 0)) if normalized else 0
        with _new_lake_turn(ctx):
            info = pipeline.load()
        checkpoint("after_lake_write")
        _remember_columns(ctx, columns)
    except PipelineStepFailed as exc:
        raise _explain(ctx, connection, exc) from None
    finally:
        if boundary is not None:
            boundary.close()
        # Arrow's allocator keeps freed batches for reuse (~90 MB at 10M rows); the stages
        # after this one run in DuckDB, which would otherwise stack its memory on top.
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    load_id = info.loads_ids[-1] if rows and info.loads_ids else None
    return Extracted(load_id, rows)


@contextmanager
def _new_lake_turn(ctx: RunContext) -> Iterator[None]:
    """dlt makes the lake's `raw/` dataset (the folder, then its `init` file) on the first load
    there, without `exist_ok`: two threads' first loads at once (`run --threads N` on an empty
    lake) would both make it and one fail. Until `init` exists, dlt's steps that may make it
    take turns in this process."""
    if ctx.lake.fs.exists(ctx.lake.path(RAW, "init")):
        yield
        return
    with _NEW_LAKE:
        yield


def _forget_unfinished_states(ctx: RunContext) -> None:
    """Remove this pipeline's state files in the lake whose load never completed.

    dlt writes a load's state file before the load's completion record, and restores the
    newest state file whatever became of its load. A run killed in between (its local package
    lost with its machine) would leave a cursor past rows no completed batch holds.
    """
    folder = ctx.lake.path(RAW, "_dlt_pipeline_state")
    if not ctx.lake.fs.exists(folder):
        return
    completed = ctx.lake.completed_loads()
    prefix = f"{ctx.spec.name}__"
    for path in ctx.lake.fs.ls(folder, detail=False):
        name = str(path).rsplit("/", 1)[-1]
        parts = name.split("__")
        if name.startswith(prefix) and len(parts) == 3 and parts[1] not in completed:
            ctx.warn(f"ignored the cursor state of load {parts[1]}, which never completed")
            ctx.lake.fs.rm(str(path))


def _nothing_new(ctx: RunContext, pipeline: Any, reflected: Any, connection: Connection) -> bool:
    """The cursor pre-check (framework/stages/precheck.py); a failure of its own only means
    dlt runs and reports the fault in its words."""
    from framework.stages.precheck import nothing_new

    try:
        return nothing_new(ctx, pipeline, reflected, connection)
    except Exception:  # noqa: BLE001
        return False


def _destination(ctx: RunContext) -> Any:
    import dlt

    lake = ctx.lake
    credentials: dict[str, Any] | None = None
    if lake.target.is_s3:
        credentials = {
            "aws_access_key_id": lake.target.access_key_id,
            "aws_secret_access_key": lake.target.secret_access_key.get_secret_value()
            if lake.target.secret_access_key else None,
            "endpoint_url": lake.target.endpoint_url,
            "region_name": lake.target.region,
        }
        credentials = {k: v for k, v in credentials.items() if v}
    return dlt.destinations.filesystem(bucket_url=lake.url, credentials=credentials)


def _resource(ctx: RunContext, connection: Connection) -> tuple[Any, Any, BoundaryFilter | None]:
    import dlt
    import sqlalchemy as sa
    from dlt.sources.sql_database import sql_table

    spec = ctx.spec
    source = spec.source
    metadata = sa.MetaData(schema=source.db_schema)
    table = source.table or spec.name
    wrap = None
    engine = sa.create_engine(connection.url)
    try:
        if source.query is not None:
            _query_table(engine, source.query, table, metadata)
            wrap = _wrap_query(source.query)
        else:
            sa.Table(table, metadata, autoload_with=engine)
    finally:
        engine.dispose()
    reflected = metadata.tables[_key(metadata, table)]
    _check_columns(ctx, reflected)
    incremental = boundary = None
    adapter = wrap
    backend = _backend(connection)
    if source.incremental:
        inc = source.incremental
        lag = lag_in_cursor_units(ctx, reflected.c[inc.cursor].type)
        arrow = backend not in ROW_BACKENDS
        incremental = dlt.sources.incremental(
            inc.cursor,
            initial_value=_initial(inc.initial_value),
            lag=lag,
            on_cursor_value_missing=NULL_POLICY[inc.on_null],
            # `>=` the last maximum with dlt's hashing of every boundary row off: its cost and
            # state grew with the rows sharing that value. BoundaryFilter drops the re-read
            # rows the lake already holds instead. Backends that yield Python rows or pandas
            # frames keep dlt's hashing of the whole row.
            primary_key=() if arrow else tuple(c.name for c in reflected.c),
            range_start="closed",
        )
        adapter = query_adapter(ctx, connection.dialect, wrap)
        # A look-back window re-reads rows below the boundary too: merge absorbs them (lag
        # with append is refused by validation), so only the boundary entry is kept.
        boundary = BoundaryFilter(ctx, table, dedup=not lag) if arrow else None
    resource = sql_table(
        credentials=connection.url,
        table=table,
        metadata=metadata,
        incremental=incremental,
        chunk_size=CHUNK_ROWS,
        backend=backend,  # type: ignore[arg-type]  # ours are registered names
        reflection_level="minimal" if source.query is not None else "full",
        query_adapter_callback=adapter,
        write_disposition="append",
    )
    resource.apply_hints(table_name=spec.lake.path)
    if boundary is not None:
        resource.add_map(boundary)
    return resource, reflected, boundary


def source_columns(table: Any) -> dict[str, str]:
    """The source's columns and their declared types, as the database states them."""
    out = {}
    for column in table.c:
        try:
            out[column.name] = str(column.type)
        except Exception:  # a type SQLAlchemy cannot render (or a query's untyped column)
            out[column.name] = type(column.type).__name__
    return out


def _columns_file(ctx: RunContext) -> str:
    # Kept with the lake, like dlt's own state, so another machine compares with the same past.
    return ctx.lake.path(RAW, "_framework_columns", f"{ctx.spec.name}.json")


def _known_columns(ctx: RunContext) -> dict[str, str]:
    import json

    path = _columns_file(ctx)
    if not ctx.lake.fs.exists(path):
        return {}
    with ctx.lake.fs.open(path, "r") as handle:
        return dict(json.load(handle))


def _remember_columns(ctx: RunContext, columns: dict[str, str]) -> None:
    import json

    path = _columns_file(ctx)
    ctx.lake.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with ctx.lake.fs.open(path, "w") as handle:
        json.dump(columns, handle, indent=1)


def check_drift(ctx: RunContext, known: dict[str, str], now: dict[str, str]) -> None:
    """Name every change in the source's columns since the last extract, before extracting.

    A new, dropped or retyped (widened) column is a warning under `evolve` and flows on; under
    `freeze` it stops the run before anything is written. Never a silent change.
    """
    if not known:
        return
    added = [c for c in now if c not in known]
    dropped = [c for c in known if c not in now]
    retyped = [f"{c} ({known[c]} -> {now[c]})" for c in now if c in known and now[c] != known[c]]
    changes = [f"new column(s) {', '.join(added)}"] * bool(added) + \
        [f"dropped column(s) {', '.join(dropped)}"] * bool(dropped) + \
        [f"changed type(s) {', '.join(retyped)}"] * bool(retyped)
    if not changes:
        return
    message = "source schema changed: " + "; ".join(changes)
    if ctx.spec.warehouse.contract == "freeze":
        raise StageError(ctx.spec.name, "extract", f"{message}; warehouse.contract is 'freeze', "
                         "nothing was extracted (set 'evolve' to let the change through)")
    ctx.warn(message)


def _key(metadata: Any, table: str | None) -> str:
    return f"{metadata.schema}.{table}" if metadata.schema else str(table)


def _check_columns(ctx: RunContext, table: Any) -> None:
    """Name a misspelt cursor or key before dlt does, with the pipeline file and a suggestion."""
    from framework.spec.loader import did_you_mean

    columns = [c.name for c in table.c]
    wanted = [("source.primary_key", c) for c in ctx.spec.source.primary_key]
    if ctx.spec.cursor:
        wanted.append(("source.incremental.cursor", ctx.spec.cursor))
    for key, column in wanted:
        if column not in columns:
            raise StageError(ctx.spec.name, "extract", f"pipelines/{ctx.spec.name}.yml: {key}: "
                             f"'{column}' is not a column of the source"
                             f"{did_you_mean(column, columns)}")


def _backend(connection: Connection) -> str:
    """`auto`: the fastest Arrow reader for the dialect (framework/stages/readers.py)."""
    if connection.backend != "auto":
        return str(connection.backend)
    from framework.stages.readers import reader_for

    return reader_for(connection.dialect)


def _initial(value: str | int | None) -> Any:
    """An ISO text initial value becomes a UTC datetime, as dlt compares cursor values."""
    if isinstance(value, str):
        from dlt.common.time import ensure_pendulum_datetime

        try:
            return ensure_pendulum_datetime(value)
        except Exception:  # not a timestamp: a text cursor starts from the text itself
            return value
    return value


def _query_table(engine: Any, query: str, name: str, metadata: Any) -> None:
    """Describe a query's columns as a table, so dlt can treat the query like one."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        columns = list(conn.execute(sa.text(f"SELECT * FROM ({query}) AS q WHERE 1 = 0")).keys())
    sa.Table(name, metadata, *(sa.Column(c) for c in columns))


def _wrap_query(query: str) -> Any:
    def adapt(select: Any, table: Any, *_: Any) -> Any:
        """dlt's SELECT over the stand-in table, re-pointed at the query as a subquery."""
        import sqlalchemy as sa
        from sqlalchemy.sql.visitors import replacement_traverse

        subquery = sa.text(query).columns(*(sa.column(c.name) for c in table.c)).subquery("q")

        def swap(element: Any, **_: Any) -> Any:
            if element is table:
                return subquery
            if isinstance(element, sa.Column) and element.table is table:
                return subquery.c[element.name]
            return None

        return replacement_traverse(select, {}, swap)

    return adapt


def _explain(ctx: RunContext, connection: Connection, exc: Exception) -> Exception:
    """Turn dlt's nested exception into one line naming the service or the spec key."""
    missing = missing_extra(exc, f"source '{connection.name}' ({connection.dialect})")
    if missing is not None:  # the database's driver is an extra (postgres, mysql)
        return missing
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            break
        cause = nxt
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    name = type(cause).__name__
    if "OperationalError" in name or "connect" in text.lower() and "refused" in text.lower():
        return ServiceError(f"source '{connection.name}' ({connection.safe_url})",
                            f"cannot connect: {text}")
    if "NoSuchTableError" in name:
        return StageError(ctx.spec.name, "extract",
                          f"table '{text}' does not exist in source '{connection.name}'")
    if "CursorPathMissing" in name or "Cursor column" in text:
        return StageError(ctx.spec.name, "extract", f"source.incremental.cursor: "
                          f"'{ctx.spec.cursor}' is not a column of the source")
    if "ValueNone" in name or "None" in text and "cursor" in text.lower():
        return StageError(ctx.spec.name, "extract", f"rows with a NULL '{ctx.spec.cursor}'; set "
                          "source.incremental.on_null to include or exclude them")
    return StageError(ctx.spec.name, "extract", f"{name}: {text}")
