"""The Python API: whole runs, or one stage of one batch at a time.

Orchestrators (the Airflow DAG factory) call the stage functions and pass load ids between
tasks, so a failed task retries its own stage alone. Every call takes the pipeline lock and
leaves a run record, exactly like `framework run`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from framework import logs
from framework.compiled import compile_pipeline, compile_project
from framework.context import RunContext
from framework.errors import FrameworkError, StageError
from framework.lease import leased
from framework.locks import pipeline_lock
from framework.project import Project
from framework.runner import Runner, file_rows, processed_files, runner_for
from framework.runs import RunRecord
from framework.shared_runs import shared_state, try_sync
from framework.stages.load import Warehouse, warehouse_for


@dataclass
class _Session:
    runner: Runner
    ctx: RunContext
    warehouse: Warehouse
    record: RunRecord


@contextmanager
def _session(pipeline: str, stage: str, target: str | None, project_dir: str | Path | None,
             run_id: str | None) -> Iterator[_Session]:
    project = Project.discover(Path(project_dir) if project_dir else None)
    runner = runner_for(project, target)
    if run_id:
        runner.run_id = run_id
    spec = project.pipeline(pipeline)
    ctx = runner.context(compile_pipeline(project, runner.target, spec))
    record = RunRecord(f"{runner.run_id}-{stage}", spec.name, runner.target.name,
                       fingerprint=ctx.compiled.fingerprint)
    warehouse = warehouse_for(runner.target)
    # On this task's records until `end` (after warehouse_for: a missing extra leaves none set).
    fields = logs.begin(spec.name, runner.target.name, runner.run_id)
    refused = False
    try:
        with pipeline_lock(ctx.state_dir / "locks", spec.name, runner.target.name), \
                leased(warehouse, spec.name, runner.target.name, runner.run_id, ctx.warn):
            yield _Session(runner, ctx, warehouse, record)
        if record.status == "running":  # a body may set its own (`released`)
            record.status = "success"
    except _Refused:
        refused = True
        raise
    except Exception as exc:
        record.status = "failed"
        record.error = str(exc) if isinstance(exc, FrameworkError) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if not refused:  # a mistyped batch id did nothing: not the pipeline's last run
            record.warnings = ctx.warnings
            record.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            runner.log.save(record)
            try_sync(runner.log, warehouse.shared_state())  # every worker's tasks in `history`
        warehouse.close()
        logs.end(fields)


class _Refused(StageError):
    """An operation refused before it did anything (no such batch)."""


def run(pipelines: list[str] | None = None, *, target: str | None = None,
        full_refresh: bool = False, dbt: bool = True, allow_mass_delete: bool = False,
        project_dir: str | Path | None = None, threads: int = 1) -> list[RunRecord]:
    """Run the named pipelines (all when None) in `depends_on` order, `threads` at once, then
    dbt; a pipeline whose upstream did not succeed is skipped."""
    project = Project.discover(Path(project_dir) if project_dir else None)
    runner = runner_for(project, target, full_refresh=full_refresh, threads=threads,
                        allow_mass_delete=allow_mass_delete)
    compiled = compile_project(project, runner.target, project.load_pipelines(pipelines))
    return runner.run(compiled, dbt=dbt)


def extract(pipeline: str, *, target: str | None = None, project_dir: str | Path | None = None,
            run_id: str | None = None) -> list[str]:
    """Extract new rows as one batch; return every batch waiting to be processed, oldest first.

    Batches a crashed run left in the lake come first, so nothing extracted is ever skipped.
    """
    from framework.stages.extract import extract as extract_stage

    with _session(pipeline, "extract", target, project_dir, run_id) as s:
        s.runner.before_extract(s.ctx, s.warehouse)  # as `framework run` does
        extracted = extract_stage(s.ctx)  # also lands a package a killed run left behind
        s.runner.empty_source(s.ctx, s.warehouse, extracted)  # as `framework run` does
        pending = list(s.runner.pending_batches(s.ctx, s.warehouse))
        # refused source records are in quarantine/ already (framework/stages/extract.py)
        s.record.rows_extracted = extracted.rows + extracted.rejected
        s.record.rows_quarantined += extracted.rejected
        s.record.load_ids = pending
        return pending


def transform(pipeline: str, load_ids: list[str], *, target: str | None = None,
              project_dir: str | Path | None = None, run_id: str | None = None) -> list[str]:
    with _session(pipeline, "transform", target, project_dir, run_id) as s:
        batches = s.ctx.lake.raw_batches(s.ctx.spec.lake.path)
        for load_id in load_ids:
            if load_id not in batches:
                raise StageError(pipeline, "transform", f"batch {load_id} is not in the lake")
            s.record.load_ids.append(load_id)
            s.record.rows_processed += s.runner.transform_batch(
                s.ctx, load_id, batches[load_id], s.record, s.warehouse)
        return load_ids


def validate(pipeline: str, load_ids: list[str], *, target: str | None = None,
             project_dir: str | Path | None = None, run_id: str | None = None) -> list[str]:
    with _session(pipeline, "validate", target, project_dir, run_id) as s:
        for load_id in load_ids:
            s.record.load_ids.append(load_id)
            s.runner.validate_batch(s.ctx, s.warehouse, load_id, s.record)
        return load_ids


def load(pipeline: str, load_ids: list[str], *, target: str | None = None,
         project_dir: str | Path | None = None, run_id: str | None = None) -> int:
    """Load processed batches; skip any the warehouse ledger already holds (a retried task).
    Refused while the pipeline has a quarantined batch, like a run."""
    with _session(pipeline, "load", target, project_dir, run_id) as s:
        # A batch quarantined after these were extracted (the validate task) blocks them too.
        s.runner.check_not_blocked(s.ctx, s.warehouse)
        done = s.warehouse.done_batches(s.ctx)
        for load_id in load_ids:
            if load_id in done:
                continue
            s.record.load_ids.append(load_id)
            expected = file_rows(s.ctx, processed_files(s.ctx, load_id))
            loaded = s.runner.load_batch(s.ctx, s.warehouse, load_id, s.record)
            if loaded != expected:
                raise StageError(pipeline, "reconcile", f"batch {load_id}: processed "
                                 f"{expected}, loaded {loaded}")
        return s.record.rows_loaded


def build_models(pipelines: list[str] | None = None, *, target: str | None = None,
                 project_dir: str | Path | None = None) -> list[str]:
    """dbt build of the named pipelines' selections; they are no longer owed a build after
    (unless a load marked them again while it ran)."""
    from framework.owed import OwedModels
    from framework.stages import model

    project = Project.discover(Path(project_dir) if project_dir else None)
    specs = project.load_pipelines(pipelines)
    selections = list(dict.fromkeys(s for spec in specs.values() if spec.dbt
                                    for s in spec.dbt.select))
    if not selections:
        return []
    runner = runner_for(project, target)
    with runner.dbt_turn(), logs.fields(target=runner.target.name, run_id=runner.run_id):
        owed = OwedModels(runner.dbt_marker)
        snapshot = {k: v for k, v in owed.snapshot().items() if k in selections}
        with shared_state(runner.target) as (state, _):  # other workers' marks too
            shared = {k: v for k, v in (state.owed(runner.target.name) if state else {}).items()
                      if k in selections}
        built = model.build(project, runner.target, selections)
        owed.settle(snapshot)
        if shared:
            with shared_state(runner.target) as (state, why):
                if state is None:
                    raise FrameworkError(f"dbt built, but the warehouse still says its models "
                                         f"are owed (they will build again): {why}")
                state.settle(runner.target.name, shared)
    return built


def replay(pipeline: str, load_id: str, *, target: str | None = None,
           project_dir: str | Path | None = None) -> RunRecord:
    """Transform, validate and load a batch already in the lake, without touching the source.

    Safe for a batch already loaded: an append batch replaces its own rows, and an older batch
    never overwrites newer rows. A quarantined batch that now passes validation is loaded and
    no longer blocks its pipeline.
    """
    with _session(pipeline, "replay", target, project_dir, None) as s:
        files = s.ctx.lake.raw_batches(s.ctx.spec.lake.path).get(load_id)
        if not files:
            raise _Refused(pipeline, "replay", f"batch {load_id} is not in the lake "
                             f"(raw/{s.ctx.spec.lake.path}/)")
        from framework.quarantine import forget_released

        try:
            s.runner.process_batch(s.ctx, s.warehouse, load_id, files, s.record, replay=True)
        finally:  # loaded, or quarantined again: the local copy follows the ledger
            s.runner.log.hold(s.ctx.spec.name, s.runner.target.name,
                              s.warehouse.quarantined(s.ctx))
        forget_released(s.ctx, load_id)  # loaded now: a window re-read reads its rows again
        return s.record


def release(pipeline: str, load_id: str, reason: str, *, target: str | None = None,
            project_dir: str | Path | None = None) -> RunRecord:
    """Let a quarantined batch go on purpose: its rows stay out of the warehouse, and the
    pipeline runs again. The ledger and the run log record who released it, and why."""
    from framework.quarantine import release_note, remember_released

    if not reason.strip():
        raise FrameworkError("release: say why with --reason TEXT (it is recorded)")
    with _session(pipeline, "release", target, project_dir, None) as s:
        held = s.warehouse.quarantined(s.ctx)
        if load_id not in held:
            which = ", ".join(held) or "none"
            raise _Refused(pipeline, "release", f"batch {load_id} is not quarantined "
                             f"(quarantined batches: {which})")
        note = release_note(reason.strip())
        s.warehouse.release(s.ctx, load_id, note)
        remember_released(s.ctx, load_id)  # a look-back window leaves its rows out
        del held[load_id]
        s.runner.log.hold(s.ctx.spec.name, s.runner.target.name, held)
        s.record.load_ids.append(load_id)
        s.record.status = "released"
        s.ctx.warn(f"batch {load_id} {note}")
        return s.record
