"""The runner: chains the stages for each pipeline, batch by batch, and records every run.

For one pipeline a run first finishes batches already in the lake but not yet in the warehouse
(a crashed run's work, without touching the source), then extracts the new rows as one batch
and takes it through transform, validate and load. dbt builds once, after all loads.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from framework.context import RunContext
from framework.errors import FrameworkError, StageError
from framework.faults import checkpoint
from framework.lake import PROCESSED, QUARANTINE
from framework.locks import pipeline_lock
from framework.project import Project
from framework.retry import retrying
from framework.runs import RunLog, RunRecord
from framework.settings.targets import Target
from framework.spec.model import PipelineSpec
from framework.stages.load import Warehouse, warehouse_for

StageListener = Callable[[str, str], None]


def run_order(specs: dict[str, PipelineSpec]) -> list[str]:
    """Pipelines in `depends_on` order (dependencies outside the selection are ignored)."""
    graph = {name: [d for d in spec.depends_on if d in specs] for name, spec in specs.items()}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise FrameworkError(f"depends_on forms a cycle: {' -> '.join(exc.args[1])}") from None


@dataclass
class Runner:
    project: Project
    target: Target
    full_refresh: bool = False
    on_stage: StageListener = lambda pipeline, stage: None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def log(self) -> RunLog:
        return RunLog(self.project.state_dir / "runs.sqlite")

    def run(self, specs: dict[str, PipelineSpec], dbt: bool = True) -> list[RunRecord]:
        records: list[RunRecord] = []
        warehouse = warehouse_for(self.target)
        try:
            for name in run_order(specs):
                records.append(self.run_pipeline(specs[name], warehouse))
        finally:
            warehouse.close()
        if dbt:
            checkpoint("before_dbt")  # every load done, no build yet
            try:
                self.build_models(records)
            except FrameworkError:
                pass  # recorded on each pipeline's record; the marker keeps the build pending
        return records

    def context(self, spec: PipelineSpec) -> RunContext:
        return RunContext(self.project, self.target, spec, full_refresh=self.full_refresh)

    def run_pipeline(self, spec: PipelineSpec, warehouse: Warehouse) -> RunRecord:
        from framework.stages.extract import extract

        record = RunRecord(self.run_id, spec.name, self.target.name)
        ctx = self.context(spec)
        try:
            with pipeline_lock(ctx.state_dir / "locks", spec.name, self.target.name):
                with self._timed(record, spec.name, "extract"):
                    retrying(lambda: extract(ctx), on_retry=ctx.warn)
                # The new batch and any a killed run left behind, oldest first.
                for load_id, files in self.pending_batches(ctx, warehouse).items():
                    self.process_batch(ctx, warehouse, load_id, files, record)
                if spec.deletes and spec.deletes.reconcile:
                    self.reconcile_deletes(ctx, warehouse, record)
            record.status = "success" if not record.rows_quarantined else "quarantined"
        except FrameworkError as exc:
            record.status = "quarantined" if record.rows_quarantined else "failed"
            record.error = str(exc)
        except Exception as exc:  # unexpected: keep the record honest, then let it surface
            record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.warnings = ctx.warnings
            record.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.log.save(record)
        return record

    def reconcile_deletes(self, ctx: RunContext, warehouse: Warehouse, record: RunRecord) -> None:
        """Keys gone from the source leave the warehouse (removed, or marked `_deleted_at`)."""
        from framework.reconcile import apply_deletes, reconcile

        with self._timed(record, ctx.spec.name, "deletes"):
            result = reconcile(ctx, warehouse)
            gone = apply_deletes(ctx, warehouse, result)
        if gone:
            verb = "removed" if ctx.spec.deletes and ctx.spec.deletes.reconcile == "remove" else "marked"
            ctx.warn(f"{verb} {gone} row(s) whose key is gone from the source")

    def pending_batches(self, ctx: RunContext, warehouse: Warehouse) -> dict[str, list[str]]:
        """Batches in the lake that are neither loaded nor quarantined, oldest first."""
        done = warehouse.done_batches(ctx)
        return {k: v for k, v in ctx.lake.raw_batches(ctx.spec.lake.path).items() if k not in done}

    def process_batch(self, ctx: RunContext, warehouse: Warehouse, load_id: str,
                      files: list[str], record: RunRecord) -> None:
        """Transform, validate and load one batch; reconcile its counts between hops."""
        record.load_ids.append(load_id)
        rows = self.transform_batch(ctx, load_id, files, record)
        self.validate_batch(ctx, warehouse, load_id, record)
        loaded = self.load_batch(ctx, warehouse, load_id, record)
        if loaded != rows:
            raise StageError(ctx.spec.name, "reconcile", f"batch {load_id}: processed {rows}, "
                             f"loaded {loaded}")

    # One stage of one batch each: the runner chains them, an orchestrator may call them apart.

    def transform_batch(self, ctx: RunContext, load_id: str, files: list[str],
                        record: RunRecord) -> int:
        """Transform one batch and check, before anything reaches the warehouse, that it
        kept one row per extracted row."""
        from framework.stages.transform import transform

        extracted = file_rows(ctx, files)
        record.rows_extracted += extracted
        with self._timed(record, ctx.spec.name, "transform"):
            _, rows = transform(ctx, load_id, files)
        checkpoint("transform")
        if extracted != rows:
            raise StageError(ctx.spec.name, "reconcile", f"batch {load_id}: extracted "
                             f"{extracted}, processed {rows}; a transform must keep one row "
                             "per source row (filter in source.query instead)")
        return rows

    def validate_batch(self, ctx: RunContext, warehouse: Warehouse, load_id: str,
                       record: RunRecord) -> None:
        """Raise (after moving the batch to quarantine/) if an `error` expectation fails."""
        from framework.stages.validate import validate

        processed = ctx.lake.batch_file(PROCESSED, ctx.spec.lake.path, load_id)
        with self._timed(record, ctx.spec.name, "validate"):
            outcome = validate(ctx, processed)
        checkpoint("validate")
        for warning in outcome.warnings:
            ctx.warn(f"quality (warn): {warning}")
        if not outcome.passed:
            rows = file_rows(ctx, [processed])
            self._quarantine(ctx, warehouse, load_id, processed, rows)
            record.rows_quarantined += rows
            more = f" (+{len(outcome.errors) - 1} more)" if len(outcome.errors) > 1 else ""
            raise StageError(ctx.spec.name, "validate", f"batch {load_id} quarantined in "
                             f"{QUARANTINE}/{ctx.spec.lake.path}/: {outcome.errors[0]}{more}")

    def load_batch(self, ctx: RunContext, warehouse: Warehouse, load_id: str,
                   record: RunRecord) -> int:
        processed = ctx.lake.batch_file(PROCESSED, ctx.spec.lake.path, load_id)
        self._models_owed(ctx.spec)
        with self._timed(record, ctx.spec.name, "load"):
            loaded = retrying(lambda: warehouse.load(ctx, load_id, processed), on_retry=ctx.warn)
        checkpoint("after_load")
        record.rows_processed += loaded.rows
        record.rows_loaded += loaded.rows
        return loaded.rows

    def _quarantine(self, ctx: RunContext, warehouse: Warehouse, load_id: str, processed: str,
                    rows: int) -> None:
        target = ctx.lake.batch_file(QUARANTINE, ctx.spec.lake.path, load_id)
        fs = ctx.lake.fs
        fs.makedirs(target.removeprefix("s3://").rsplit("/", 1)[0], exist_ok=True)
        fs.mv(processed.removeprefix("s3://"), target.removeprefix("s3://"))
        warehouse.record_quarantine(ctx, load_id, rows)

    def build_models(self, records: list[RunRecord]) -> list[str]:
        """dbt build, once for all, of the selections owed a build.

        `load_batch` marks a pipeline's selection owed before its rows reach the warehouse; the
        marker goes only when dbt succeeds, so a run killed before or during dbt (or a failed
        build) is rebuilt by the next run even if it loads nothing new.
        """
        from framework.stages import model

        marker = self._dbt_marker
        selections = json.loads(marker.read_text()) if marker.is_file() else []
        if not selections:
            return []
        ok = {r.pipeline for r in records if r.status == "success"}
        started = time.perf_counter()
        self.on_stage("dbt", "dbt build")

        def warn(message: str) -> None:
            for record in records:
                if record.pipeline in ok:
                    record.warnings.append(message)

        try:
            built = model.build(self.project, self.target, selections, warn)
            checkpoint("dbt")
        except FrameworkError as exc:
            for record in records:
                if record.pipeline in ok:
                    record.status, record.error = "failed", str(exc)
            raise
        finally:
            for record in records:
                if record.pipeline in ok:
                    record.seconds["dbt"] = time.perf_counter() - started
                    self.log.save(record)
        marker.unlink()
        return built

    @property
    def _dbt_marker(self) -> Path:
        return self.project.state_dir / "targets" / self.target.name / "dbt_pending.json"

    def _models_owed(self, spec: PipelineSpec) -> None:
        """Before rows reach the warehouse, their models are owed a build: a run killed between
        the load and dbt (or run with --no-dbt) leaves the selection pending for the next run,
        which builds it even if it loads nothing new."""
        if not spec.dbt:
            return
        marker = self._dbt_marker
        pending = json.loads(marker.read_text()) if marker.is_file() else []
        owed = list(dict.fromkeys([*pending, *spec.dbt.select]))
        if owed != pending:
            marker.parent.mkdir(parents=True, exist_ok=True)
            partial = marker.with_suffix(".tmp")
            partial.write_text(json.dumps(owed))
            partial.replace(marker)  # whole or not at all, whenever the process dies

    @contextmanager
    def _timed(self, record: RunRecord, pipeline: str, stage: str) -> Iterator[None]:
        self.on_stage(pipeline, stage)
        started = time.perf_counter()
        try:
            yield
        finally:
            record.seconds[stage] = record.seconds.get(stage, 0.0) + time.perf_counter() - started


def file_rows(ctx: RunContext, files: list[str]) -> int:
    """Rows in Parquet files, from their footers (no data read)."""
    import pyarrow.parquet as pq

    total = 0
    for file in files:
        with ctx.lake.fs.open(file.removeprefix("s3://"), "rb") as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


def runner_for(project: Project, target_name: str | None = None, **options: object) -> Runner:
    target: Target = project.target(target_name)
    return Runner(project, target, **options)  # type: ignore[arg-type]
