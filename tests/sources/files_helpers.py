"""Run a `files` pipeline's extraction straight through dlt into a lake, without the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from framework.compiled import run_context
from framework.context import RunContext
from framework.project import Project
from framework.spec.model import PipelineSpec


def files_spec(name: str, source: dict[str, Any], columns: list[dict[str, Any]],
               **more: Any) -> PipelineSpec:
    return PipelineSpec.model_validate({
        "name": name, "source": {"kind": "files", **source}, "lake": {"path": name},
        "columns": columns, **more})


def context(project_root: Path, spec: PipelineSpec) -> RunContext:
    project = Project(project_root, {"FRAMEWORK_STATE_DIR": str(project_root / ".framework")})
    return run_context(project, project.target(), spec)


def extract_once(ctx: RunContext) -> tuple[str | None, Any]:
    """One extract as the generic stage does it: restore state, ask nothing_new, run the
    resource as one dlt load. Returns (load id or None, the extraction)."""
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    from framework.stages.extract import _destination

    extraction = ctx.source.open(ctx)
    pipeline = dlt.pipeline(pipeline_name=ctx.spec.name,
                            pipelines_dir=str(ctx.state_dir / "dlt"),
                            destination=_destination(ctx), dataset_name="raw")
    pipeline.sync_destination()
    try:
        if extraction.nothing_new(pipeline):
            return None, extraction
        try:
            pipeline.extract(extraction.resource, loader_file_format="parquet")
            normalized = pipeline.normalize()
            info = pipeline.load()
        except PipelineStepFailed as exc:
            raise extraction.explain(exc) from None
        rows = int(normalized.row_counts.get(ctx.spec.lake.path, 0)) if normalized else 0
    finally:
        extraction.close()
    return (info.loads_ids[-1] if rows and info.loads_ids else None), extraction


def raw_batch(ctx: RunContext, load_id: str) -> pa.Table:
    """The rows of one raw batch in the lake."""
    fs = ctx.lake.fs
    folder = ctx.lake.path("raw", ctx.spec.lake.path)
    files = sorted(p for p in fs.ls(folder, detail=False) if Path(str(p)).name.startswith(load_id))
    return pa.concat_tables([pq.read_table(str(p), filesystem=fs) for p in files])


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)
