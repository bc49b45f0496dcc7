"""OpenLineage run events for each pipeline run: START, then COMPLETE or FAIL.

Off unless OpenLineage is configured the standard way: `OPENLINEAGE_URL` (HTTP),
`OPENLINEAGE_CONFIG` or an `openlineage.yml` (current folder or ~/.openlineage/), or
`OPENLINEAGE__TRANSPORT__...` variables (console, file, HTTP, Kafka...). `OPENLINEAGE_DISABLED=true`
turns it off again. Job namespace: `OPENLINEAGE_NAMESPACE` (default `framework`).

Inputs are the source table (or the query's name); outputs are the batch in the lake (raw/ and
processed/) and the landing table, with row counts and the loaded schema as facets. dbt's
models are dbt's own integration's to report (`dbt-ol`, see README). A lineage failure is a
warning in the log, never a failed run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework import logs

if TYPE_CHECKING:
    from framework.context import RunContext
    from framework.runs import RunRecord

PRODUCER = "https://github.com/framework/framework"
SCHEMES = {"postgresql": "postgres", "mariadb": "mysql"}  # SQLAlchemy backend -> OpenLineage
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
DEFAULT_SCHEMAS = {"postgres": "public"}
_runs: dict[int, str] = {}  # id(RunContext) -> OpenLineage run id
_client: list[Any] = []


def enabled() -> bool:
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OPENLINEAGE_URL"):
        return True
    if any(k.startswith("OPENLINEAGE__") for k in os.environ):
        return True
    # The client's own search; a named file that is not there is no configuration (the client
    # would fall back to printing every event on the console).
    return any(p.is_file() for p in (Path(os.environ.get("OPENLINEAGE_CONFIG") or "/nonexistent"),
                                      Path.cwd() / "openlineage.yml",
                                      Path.home() / ".openlineage" / "openlineage.yml"))


def started(ctx: RunContext, run_id: str) -> None:
    if not enabled():
        return
    with _never_fails("START"):
        _runs[id(ctx)] = str(_run_uuid())
        _emit(ctx, "START", inputs=[_source(ctx)], outputs=[])


def finished(ctx: RunContext, record: RunRecord) -> None:
    lineage_run = _runs.pop(id(ctx), None)
    if lineage_run is None:
        return
    state = "COMPLETE" if record.status == "success" else "FAIL"
    with _never_fails(state):
        _emit(ctx, state, run_uuid=lineage_run, error=record.error,
              inputs=[_source(ctx, rows=record.rows_extracted)], outputs=_outputs(ctx, record))


@contextmanager
def _never_fails(state: str) -> Iterator[None]:
    """Lineage watches the run; it never fails it (a dead endpoint is a warning)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001
        text = str(exc).strip().splitlines()
        logs.logger.warning("openlineage: %s event not sent: %s", state,
                            text[0] if text else type(exc).__name__)


def _run_uuid() -> uuid.UUID:
    from openlineage.client.uuid import generate_new_uuid

    return generate_new_uuid()


def _emit(ctx: RunContext, state: str, inputs: list[Any], outputs: list[Any],
          run_uuid: str | None = None, error: str | None = None) -> None:
    from datetime import UTC, datetime

    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run, job_type_job

    if not _client:
        _client.append(OpenLineageClient())
    run_facets: dict[str, Any] = {}
    if error:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python")
    job = Job(namespace=os.environ.get("OPENLINEAGE_NAMESPACE", "framework"),
              name=ctx.spec.name, facets={"jobType": job_type_job.JobTypeJobFacet(
                  processingType="BATCH", integration="FRAMEWORK", jobType="PIPELINE")})
    event = RunEvent(eventType=getattr(RunState, state), eventTime=datetime.now(UTC).isoformat(),
                     run=Run(runId=run_uuid or _runs[id(ctx)], facets=run_facets), job=job,
                     producer=PRODUCER, inputs=inputs, outputs=outputs)
    _client[0].emit(event)


def _source(ctx: RunContext, rows: int | None = None) -> Any:
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import input_statistics_input_dataset as stats
    from sqlalchemy.engine import make_url

    url = make_url(ctx.connection(ctx.spec.source.connection).url)
    table, schema = ctx.spec.source.table or ctx.spec.name, ctx.spec.source.db_schema
    scheme = SCHEMES.get(url.get_backend_name(), url.get_backend_name())
    # OpenLineage's dataset naming: postgres://host:port + database.schema.table,
    # mysql://host:port + database.table (a MySQL schema is its database).
    if scheme == "sqlite":
        namespace, parts = f"sqlite://{url.database}", [schema, table]
    else:
        namespace = f"{scheme}://{url.host}:{url.port or DEFAULT_PORTS.get(scheme, '')}".rstrip(":")
        parts = ([schema or url.database, table] if scheme == "mysql" else
                 [url.database, schema or DEFAULT_SCHEMAS.get(scheme), table])
    facets: dict[str, Any] = {}
    if rows is not None:
        facets["inputStatistics"] = stats.InputStatisticsInputDatasetFacet(rowCount=rows)
    return InputDataset(namespace=namespace, name=".".join(p for p in parts if p),
                        inputFacets=facets)


def _outputs(ctx: RunContext, record: RunRecord) -> list[Any]:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

    from framework.lake import PROCESSED, RAW

    schema = _schema(ctx, record)
    lake_namespace, lake_root = _lake_location(ctx)
    path = ctx.spec.lake.path
    warehouse = ctx.target.warehouse
    if warehouse.type == "snowflake":
        wh_namespace = f"snowflake://{(warehouse.account or '').lower()}"
        wh_name = f"{warehouse.database}.{ctx.spec.warehouse.db_schema}.{ctx.spec.table}".upper()
    else:
        wh_namespace = f"duckdb://{warehouse.path}"
        database = Path(warehouse.path or "warehouse").stem
        wh_name = f"{database}.{ctx.spec.warehouse.db_schema}.{ctx.spec.table}"

    def dataset(namespace: str, name: str, rows: int) -> Any:
        facets: dict[str, Any] = {"schema": schema} if schema is not None else {}
        return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets={
            "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(rowCount=rows)})

    return [dataset(lake_namespace, f"{lake_root}/{RAW}/{path}", record.rows_extracted),
            dataset(lake_namespace, f"{lake_root}/{PROCESSED}/{path}", record.rows_processed),
            dataset(wh_namespace, wh_name, record.rows_loaded)]


def _lake_location(ctx: RunContext) -> tuple[str, str]:
    url = ctx.lake.url
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return f"s3://{bucket}", prefix.strip("/")
    return "file", str(Path(url).resolve())  # OpenLineage's naming of a local file system


def _schema(ctx: RunContext, record: RunRecord) -> Any:
    """The landed columns, from the last processed batch's Parquet footer (None if none)."""
    if not record.load_ids:
        return None
    import pyarrow.parquet as pq
    from openlineage.client.facet_v2 import schema_dataset

    from framework.lake import PROCESSED

    try:
        # One file (DuckDB) or Spark's parts, which share one schema: the first says it.
        file = ctx.lake.batch_files(PROCESSED, ctx.spec.lake.path, record.load_ids[-1])[0]
        with ctx.lake.fs.open(file.removeprefix("s3://"), "rb") as handle:
            arrow = pq.read_schema(handle)
    except Exception:  # noqa: BLE001 (quarantined or gone: the event goes without a schema)
        return None
    return schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=f.name, type=str(f.type)) for f in arrow])
