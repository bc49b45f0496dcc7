"""The runner: chains the stages for each pipeline, batch by batch, and records every run.

For one pipeline a run first finishes batches already in the lake but not yet in the warehouse
(a crashed run's work, without touching the source), then extracts the new rows as one batch
and takes it through transform, validate and load. dbt builds once, after all loads.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework import full_refresh, logs, observe
from framework.compiled import CompiledPipeline, compile_pipeline
from framework.context import RunContext
from framework.errors import FrameworkError, StageError, chain
from framework.extras import missing_extra
from framework.faults import checkpoint
from framework.lake import (
    PROCESSED,
    QUARANTINE,
    RAW,
    damaged,
    first_unreadable,
    footer_unreadable,
    unreadable,
)
from framework.lease import RunLease, leased, still_held
from framework.locks import pipeline_lock, waiting_lock, warehouse_lock, warehouse_wait
from framework.owed import ChangedSeeds, OwedModels
from framework.project import Project
from framework.quarantine import PipelineBlocked, blocked_message
from framework.retry import retrying
from framework.runs import RunLog, RunRecord
from framework.settings.targets import Target
from framework.shared_runs import shared_state, try_sync
from framework.spec.model import PipelineSpec
from framework.stages import dlt_state
from framework.stages.load import Warehouse, warehouse_for

if TYPE_CHECKING:
    from framework.stages.extract import Extracted
    from framework.stages.validate import Validation

StageListener = Callable[[str, str], None]


def run_order(specs: dict[str, PipelineSpec]) -> list[str]:
    """Pipelines in `depends_on` order (dependencies outside the selection are ignored)."""
    graph = {name: [d for d in spec.depends_on if d in specs] for name, spec in specs.items()}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise FrameworkError(f"depends_on forms a cycle: {' -> '.join(exc.args[1])}") from None


# Transform errors that a batch's values cause, not its SQL (DuckDB's, Spark's error classes).
_DATA_ERROR = re.compile(r"\b(Conversion|Out of Range|Invalid Input) Error\b|CAST_INVALID_INPUT|"
                         r"CAST_OVERFLOW|NUMERIC_VALUE_OUT_OF_RANGE|DIVIDE_BY_ZERO")
# The transform's SQL itself is wrong: its batch's files need not be read again to look for damage.
_SQL_MISTAKE = re.compile(r"\b(Parser|Binder|Catalog) Error\b|AnalysisException|PARSE_SYNTAX_ERROR|"
                          r"UNRESOLVED_")
# A worker whose clock is behind the newest batch by at most this waits it out (NTP keeps
# clocks far closer); further behind, it refuses to extract.
CLOCK_WAIT_SECONDS = 5.0


@dataclass
class Runner:
    project: Project
    target: Target
    full_refresh: bool = False
    allow_mass_delete: bool = False  # reconcile deletes past deletes.max_fraction go ahead
    on_stage: StageListener = lambda pipeline, stage: None
    on_done: Callable[[RunRecord], None] = lambda record: None  # a pipeline ran or was skipped
    threads: int = 1  # pipelines at once (framework/parallel.py)
    # An unexpected error (a bug, a library's error nobody explained) fails its pipeline and
    # the run goes on with the others; `--debug` stops the run on it instead, with its traceback.
    stop_on_unexpected: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    # the run's one dbt build (None until it ran); every record of the run points at it
    dbt_build: Any = field(default=None, init=False)
    _selections: dict[str, list[str]] = field(default_factory=dict, init=False)
    # Each pipeline compiled once for the target; given ones (`run(compiled)`, a plan's) are used
    # as they are.
    _compiled: dict[str, CompiledPipeline] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def log(self) -> RunLog:
        return RunLog(self.project.state_dir / "runs.sqlite")

    def run(self, pipelines: Mapping[str, PipelineSpec | CompiledPipeline],
            dbt: bool = True) -> list[RunRecord]:
        """Run specs, or pipelines compiled already (`compile_project`): the run uses them."""
        from framework.parallel import run_pipelines

        specs = self.adopt(pipelines)
        self._selections = {name: list(spec.dbt.select) for name, spec in specs.items()
                            if spec.dbt}
        self.log  # noqa: B018 - opened here, before the threads: one log, one connection
        try:
            warehouse = warehouse_for(self.target)
        except FrameworkError as exc:  # unreachable: every pipeline still gets its record
            return [self.failed_record(name, str(exc)) for name in run_order(specs)]
        try:
            try:
                records = run_pipelines(self, specs, warehouse, self.threads)
            finally:
                warehouse.close()
            self._dbt_and_share(records, dbt)
        finally:
            self.log.close()  # its write-ahead log checkpointed, not left to the collector
        return records

    def _dbt_and_share(self, records: list[RunRecord], dbt: bool) -> None:
        if dbt:
            checkpoint("before_dbt")  # every load done, no build yet
            try:
                with self.dbt_turn():
                    self.build_models(records)
            except FrameworkError as exc:
                # A failed build is on each record already; one that never started (its lock
                # timed out) must say so too. Either way the marker keeps the models owed.
                if self.dbt_build is None:
                    for record in records:
                        record.warnings.append(f"dbt build not run: {exc}; its models stay "
                                               "owed to the next run")
                        self.log.save(record)
        # The records' last versions (the build's outcome) for every worker to see; a short
        # wait: a record left local goes with this machine's next run.
        with shared_state(self.target, wait=min(warehouse_wait(), 30)) as (state, _):
            if state is not None:
                try_sync(self.log, state)

    def failed_record(self, pipeline: str, error: str) -> RunRecord:
        """The record of a pipeline that could not start (saved, like every run's)."""
        record = RunRecord(self.run_id, pipeline, self.target.name, status="failed", error=error,
                           stages_status="failed")
        record.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.log.save(record)
        return record

    def adopt(self, pipelines: Mapping[str, PipelineSpec | CompiledPipeline]
              ) -> dict[str, PipelineSpec]:
        """The specs of `pipelines`; the compiled ones are kept for `context` to use."""
        specs: dict[str, PipelineSpec] = {}
        for name, pipeline in pipelines.items():
            if isinstance(pipeline, CompiledPipeline):
                if pipeline.target.name != self.target.name:
                    raise FrameworkError(f"pipeline '{name}' was compiled for target "
                                         f"'{pipeline.target.name}', not '{self.target.name}'")
                self._compiled[name] = pipeline
                specs[name] = pipeline.spec
            else:
                specs[name] = pipeline
        return specs

    def compiled(self, spec: PipelineSpec) -> CompiledPipeline:
        """The spec compiled for this runner's target: once, or the one it was given."""
        known = self._compiled.get(spec.name)
        if known is None or known.spec is not spec:
            known = self._compiled[spec.name] = compile_pipeline(self.project, self.target, spec)
        return known

    def context(self, pipeline: PipelineSpec | CompiledPipeline) -> RunContext:
        if not isinstance(pipeline, CompiledPipeline):
            pipeline = self.compiled(pipeline)
        return RunContext(pipeline, full_refresh=self.full_refresh)

    def run_pipeline(self, spec: PipelineSpec, warehouse: Warehouse) -> RunRecord:
        from framework.stages.extract import extract

        record = RunRecord(self.run_id, spec.name, self.target.name)
        ctx = self.context(spec)
        record.fingerprint = ctx.compiled.fingerprint
        watched = observe.pipeline_started(ctx, self.run_id)  # structured log, OpenLineage
        refused = 0
        try:
            missing = ctx.source.not_set_up()
            if missing:  # reading would create an empty database file
                raise FrameworkError(f"source '{ctx.source.name}': not set up, {missing}")
            with pipeline_lock(ctx.state_dir / "locks", spec.name, self.target.name), \
                    leased(warehouse, spec.name, self.target.name, self.run_id, ctx.warn) as lease:
                self._started(record, lease, warehouse)
                self.before_extract(ctx, warehouse)
                with self._timed(record, spec.name, "extract"):
                    extracted = retrying(lambda: extract(ctx), on_retry=ctx.warn)
                # Records the source refused are in quarantine/ already: extracted, never
                # processed, so the hops still add up (extracted = processed + quarantined).
                refused = extracted.rejected
                record.rows_extracted += refused
                record.rows_quarantined += refused
                self.empty_source(ctx, warehouse, extracted)
                # The new batch and any a killed run left behind, oldest first.
                for load_id, files in self.pending_batches(ctx, warehouse).items():
                    self.process_batch(ctx, warehouse, load_id, files, record)
                if spec.deletes and spec.deletes.reconcile:
                    self.reconcile_deletes(ctx, warehouse, record)
            # refused records alone do not block: the rest of the batch loaded
            held = record.rows_quarantined - refused
            record.status = "success" if not held else "quarantined"
            record.stages_status = "loaded" if not held else "quarantined"
        except PipelineBlocked as exc:
            record.status, record.error = "blocked", str(exc)
            record.stages_status = "blocked"
        except FrameworkError as exc:
            # refused records alone held nothing back: a batch in quarantine did
            record.status = "quarantined" if record.rows_quarantined - refused else "failed"
            record.stages_status = record.status
            record.error = str(exc)
        except Exception as exc:  # this pipeline fails, its record says why
            record.status, record.stages_status = "failed", "failed"
            extra = missing_extra(exc, f"pipeline '{spec.name}'")
            driver = _missing_module(exc)
            if extra is not None:  # an optional part not installed: say how to add it
                record.error = str(extra)
            elif driver is not None:  # a source's database driver, say (oracle://)
                record.error = (f"{spec.name}: the Python module '{driver}' is not installed "
                                "(a driver the source's URL needs: install it into the "
                                "framework's environment)")
            else:  # unexpected
                record.error = (f"{spec.name}: {type(exc).__name__}: {exc} (unexpected; run "
                                "with --debug for the traceback)")
                logs.logger.error("pipeline %s failed unexpectedly", spec.name, exc_info=True)
                if self.stop_on_unexpected:
                    raise
        finally:
            record.warnings = ctx.warnings
            record.finished_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self.log.save(record)
            try_sync(self.log, warehouse.shared_state())
            observe.pipeline_finished(watched, ctx, record)
        return record

    def _started(self, record: RunRecord, lease: RunLease, warehouse: Warehouse) -> None:
        """Every worker sees the run from its start; a run a dead worker left `running` (its
        lease just taken over) is recorded failed, naming the worker that took over."""
        self.log.save(record)
        state = warehouse.shared_state()
        dead = lease.took_over
        if dead is not None and dead.run_id:
            gone = [{**r, "status": "failed", "stages_status": "failed",
                     "error": f"{dead.holder} stopped mid-run; {record.worker} (run "
                              f"{record.run_id}) took over its lease"}
                    for r in state.runs(record.pipeline, 5, run_id=dead.run_id)
                    if r["status"] == "running"]
            state.save_runs(gone)
        try_sync(self.log, state)

    def check_not_blocked(self, ctx: RunContext, warehouse: Warehouse) -> None:
        """Refuse to extract or load while a quarantined batch waits (the ledger says so)."""
        held = warehouse.quarantined(ctx)
        self.log.hold(ctx.spec.name, self.target.name, held)
        if held:
            raise PipelineBlocked(blocked_message(ctx.spec.name, held))

    @staticmethod
    def check_clock(ctx: RunContext, warehouse: Warehouse) -> None:
        """A load id is the extracting machine's clock, and the merge keeps the newer batch's
        row by it: a worker whose clock is behind the last batch's (another worker's) would
        land a newer read as an older batch, which loses to it, silently and for good. So it
        would to a delete another worker recorded by its clock (a key back in the source)."""
        batch, delete = warehouse.latest_batch(ctx), warehouse.latest_delete(ctx)
        try:
            newest, deleted = float(batch or 0), float(delete or 0)
        except ValueError:  # a load id that is not a time (written by hand): nothing to say
            return
        latest = f"batch {batch}"
        if deleted > newest:
            newest, latest = deleted, f"a delete at {delete}"
        behind = newest - time.time()
        if 0 < behind <= CLOCK_WAIT_SECONDS:  # clocks a little apart: wait the gap out
            time.sleep(behind + 0.01)
            behind = newest - time.time()
        if behind > 0:
            raise FrameworkError(
                f"{ctx.spec.name}: this machine's clock is {behind:.1f} s behind {latest} "
                "in the warehouse (loaded by another worker, or before the clock was set "
                "back): a batch extracted now would count as the older one and lose to it; "
                "set the clock right (NTP) and run again, nothing was extracted")

    def finish_full_refresh(self, ctx: RunContext, warehouse: Warehouse) -> None:
        """A full refresh an earlier run began left no whole batch (the source read empty, a
        kill): its cursor is gone, so this run is a full refresh too (framework/full_refresh.py).
        A record naming a batch loaded or released since (a kill after the load's COMMIT) is
        forgotten."""
        record = ctx.unfinished_refresh
        if record is None or ctx.full_refresh:
            return
        batch = record["batch"]
        if batch is None:
            ctx.full_refresh = True
            ctx.warn("an earlier --full-refresh did not finish: this run reads the source whole, "
                     "and its batch replaces the table")
        elif batch in warehouse.done_batches(ctx) and batch not in warehouse.quarantined(ctx):
            full_refresh.finished(ctx, batch)

    def before_extract(self, ctx: RunContext, warehouse: Warehouse) -> None:
        """What every extract checks and settles first, in `run` and in an orchestrator's
        extract stage alike."""
        from framework.sources.sql.cursor import settle_replayed

        self.check_not_blocked(ctx, warehouse)  # a quarantined batch waits
        self.finish_full_refresh(ctx, warehouse)  # one an earlier run began
        self.check_clock(ctx, warehouse)  # one clock per batch, across workers
        self.check_lake_not_behind(ctx, warehouse)  # a worker without its state folder
        settle_replayed(ctx, lambda: set(warehouse.fingerprints(ctx)))

    @staticmethod
    def check_lake_not_behind(ctx: RunContext, warehouse: Warehouse) -> None:
        """An append pipeline reads on from the cursor dlt keeps with the lake (a worker with
        no state folder takes it from there): a lake older than the warehouse (restored from a
        copy) would have every row loaded since the copy read and appended again."""
        spec = ctx.spec
        if spec.warehouse.write_disposition != "append" or not spec.cursor or ctx.full_refresh:
            return
        loaded = warehouse.latest_batch(ctx)
        raw = ctx.lake.raw_batches(spec.lake.path)
        if loaded is None or loaded in raw or (raw and max(raw) > loaded):
            return
        # Raw files pruned by hand or by a lifecycle rule, the cursor state kept: not behind.
        completed = ctx.lake.completed_loads()
        states = [load for load, _ in dlt_state.stored_states(ctx.lake, spec.name)
                  if load in completed]
        if states and max(states) >= loaded:
            return
        raise FrameworkError(
            f"{spec.name}: the warehouse loaded batch {loaded}, which the lake "
            f"({ctx.lake.uri(RAW, spec.lake.path)}) does not hold: the lake is older than the "
            "warehouse, and the rows loaded since would be read and appended again. Restore "
            "the lake's files, or run with --full-refresh (the table is loaded again whole); "
            "nothing was extracted")

    def reconcile_deletes(self, ctx: RunContext, warehouse: Warehouse, record: RunRecord) -> None:
        """Keys gone from the source leave the warehouse (removed, or marked `_deleted_at`)."""
        from framework.reconcile import apply_deletes, reconcile

        with self._timed(record, ctx.spec.name, "deletes"):
            result = reconcile(ctx, warehouse)
            # Rows leaving the warehouse change the models as rows reaching it do: owed a
            # build before and after (a run that only deleted built nothing, the marts kept
            # the deleted rows until the pipeline next loaded one).
            applies = bool(result.extra and ctx.spec.deletes and ctx.spec.deletes.reconcile)
            with self._owing_models(ctx.spec, warehouse) if applies else nullcontext():
                gone = apply_deletes(ctx, warehouse, result, self.allow_mass_delete)
        if gone:
            verb = "removed" if ctx.spec.deletes and ctx.spec.deletes.reconcile == "remove" else "marked"
            ctx.warn(f"{verb} {gone} row(s) whose key is gone from the source")

    @staticmethod
    def _reads_whole(ctx: RunContext) -> bool:
        """The extract read the whole source (a full refresh of any source, a SQL table
        replaced on every run): no batch then means an empty source, not nothing new."""
        return ctx.full_refresh or (getattr(ctx.source, "kind", None) == "sql"
                                    and ctx.spec.warehouse.write_disposition == "replace"
                                    and ctx.spec.source.incremental is None)

    def empty_source(self, ctx: RunContext, warehouse: Warehouse, extracted: Extracted) -> None:
        """A whole read that found no row (none refused either): the table the batch would
        have replaced is emptied too, but only with --allow-mass-delete (a wrong schema,
        missing rights or a reload in progress read empty as well). Before, its rows stayed,
        and the run said success. Anything else read is left alone."""
        if extracted.load_id is not None or extracted.rejected or not self._reads_whole(ctx):
            return
        spec = ctx.spec
        keys = warehouse.keys(ctx, list(spec.source.primary_key))  # the live rows; None: no table
        rows = 0 if keys is None else keys.num_rows
        if not rows:
            full_refresh.finished(ctx)
            return
        table = f"{spec.warehouse.db_schema}.{spec.table}"
        if not self.allow_mass_delete:
            unfinished = (" (the full refresh is not finished: the next run reads the source "
                          "whole again)") if full_refresh.owed(ctx) else ""
            raise StageError(spec.name, "load", f"the source returned no rows, so {table} keeps "
                             f"its {rows} row(s); check that the source read is complete, or "
                             f"run with --allow-mass-delete to empty it{unfinished}")
        action = str(spec.deletes.reconcile) if spec.deletes and spec.deletes.reconcile \
            else "remove"
        with self._owing_models(spec, warehouse):
            gone = warehouse.apply_deletes(ctx, keys, action)
        full_refresh.finished(ctx)
        verb = "marked deleted" if action == "mark" else "removed"
        ctx.warn(f"the source returned no rows: {verb} the {gone} row(s) of {table}")

    def pending_batches(self, ctx: RunContext, warehouse: Warehouse) -> dict[str, list[str]]:
        """Batches in the lake that are neither loaded nor quarantined, oldest first."""
        done = warehouse.done_batches(ctx)
        return {k: v for k, v in ctx.lake.raw_batches(ctx.spec.lake.path).items() if k not in done}

    def process_batch(self, ctx: RunContext, warehouse: Warehouse, load_id: str,
                      files: list[str], record: RunRecord, replay: bool = False) -> None:
        """Transform, validate and load one batch; reconcile its counts between hops."""
        record.load_ids.append(load_id)
        observe.batch(load_id)
        rows = self.transform_batch(ctx, load_id, files, record, warehouse)
        validation = self.validate_batch(ctx, warehouse, load_id, record)
        loaded = self.load_batch(ctx, warehouse, load_id, record, replay=replay,
                                 unique_keys=validation.unique_keys)
        if replay and load_id not in warehouse.quarantined(ctx):  # loaded now (not skipped):
            # a copy left in quarantine/ would still look held back
            ctx.lake.remove_batch(QUARANTINE, ctx.spec.lake.path, load_id)
        if loaded != rows:
            raise StageError(ctx.spec.name, "reconcile", f"batch {load_id}: processed {rows}, "
                             f"loaded {loaded}")

    # One stage of one batch each: the runner chains them, an orchestrator may call them apart.

    def transform_batch(self, ctx: RunContext, load_id: str, files: list[str],
                        record: RunRecord, warehouse: Warehouse | None = None) -> int:
        """Transform one batch and check, before anything reaches the warehouse, that it
        kept one row per extracted row."""
        from framework.stages.transform import transform

        try:
            extracted = file_rows(ctx, files)
        except (ValueError, OSError) as exc:
            if not footer_unreadable(exc):
                raise
            raise StageError(ctx.spec.name, "transform",
                             damaged(ctx.lake, ctx.spec.lake.path, load_id, str(exc))) from None
        record.rows_extracted += extracted
        try:
            with self._timed(record, ctx.spec.name, "transform"):
                _, rows = transform(ctx, load_id, files)
        except StageError as exc:
            reason = str(exc).removeprefix(f"{exc.pipeline}: {exc.stage}: ")
            if unreadable(files, str(exc)):  # not the batch's data: quarantined, then released,
                # its rows were lost for good (the cursor is past them)
                reason = re.sub(r"^pipelines/[^:]+(: transform\.sql)?: ", "", reason)  # not the SQL
                raise StageError(ctx.spec.name, "transform", damaged(
                    ctx.lake, ctx.spec.lake.path, load_id, reason)) from None
            found = None if _SQL_MISTAKE.search(reason) else first_unreadable(ctx.lake, files)
            if found is not None:  # damage the reader named no file for (a page's header)
                raise StageError(ctx.spec.name, "transform", damaged(
                    ctx.lake, ctx.spec.lake.path, load_id, found[1])) from None
            if warehouse is None or not _DATA_ERROR.search(str(exc)):
                raise  # the SQL itself (a typo, a missing column): fixed, the run goes on
            # A value the SQL cannot take (NaN cast to a decimal, an overflow): the batch's
            # data, as a failed expectation is. Quarantined, `release` and `replay` apply; a
            # failed batch was retried first on every run, blocking the pipeline for good.
            self._quarantine(ctx, warehouse, load_id, extracted, reason, "transform")
            record.rows_quarantined += extracted
            raise StageError(ctx.spec.name, "transform", f"batch {load_id} quarantined: "
                             f"{reason}; the pipeline is blocked until the batch is replayed "
                             "(after fixing the transform's SQL), or released") from None
        checkpoint("transform")
        if extracted != rows:
            raise StageError(ctx.spec.name, "reconcile", f"batch {load_id}: extracted "
                             f"{extracted}, processed {rows}; a transform must keep one row "
                             "per source row (filter in source.query instead)")
        return rows

    def validate_batch(self, ctx: RunContext, warehouse: Warehouse, load_id: str,
                       record: RunRecord) -> Validation:
        """Raise (after moving the batch to quarantine/) if an `error` expectation fails."""
        from framework.stages.validate import validate

        processed = processed_files(ctx, load_id, "validate")
        with self._timed(record, ctx.spec.name, "validate"):
            outcome = validate(ctx, processed)
        checkpoint("validate")
        for warning in outcome.warnings:
            ctx.warn(f"quality (warn): {warning}")
        if not outcome.passed:
            rows = file_rows(ctx, processed)
            more = f" (+{len(outcome.errors) - 1} more)" if len(outcome.errors) > 1 else ""
            reason = f"{outcome.errors[0]}{more}"
            self._quarantine(ctx, warehouse, load_id, rows, reason, "validate")
            record.rows_quarantined += rows
            raise StageError(ctx.spec.name, "validate", f"batch {load_id} quarantined in "
                             f"{QUARANTINE}/{ctx.spec.lake.path}/: {reason}; the pipeline is "
                             "blocked until the batch is fixed and replayed, or released")
        return outcome

    def load_batch(self, ctx: RunContext, warehouse: Warehouse, load_id: str,
                   record: RunRecord, replay: bool = False, unique_keys: bool = False) -> int:
        processed = processed_files(ctx, load_id)
        still_held(ctx.spec.name)  # a run whose lease another worker took over writes nothing
        with self._owing_models(ctx.spec, warehouse), \
                self._timed(record, ctx.spec.name, "load"):
            # A retry after a COMMIT whose acknowledgement was lost finds the batch in the
            # ledger and writes nothing (the ledger is checked inside the load's transaction).
            loaded = retrying(lambda: warehouse.load(ctx, load_id, processed, replay=replay,
                                                      unique_keys=unique_keys),
                              on_retry=ctx.warn)
        checkpoint("after_load")
        full_refresh.finished(ctx, load_id)
        if loaded.skipped and replay:
            ctx.warn(f"batch {load_id}: nothing loaded, {loaded.skipped}")
        record.rows_processed += loaded.rows
        record.rows_loaded += loaded.rows
        return loaded.rows

    def _quarantine(self, ctx: RunContext, warehouse: Warehouse, load_id: str, rows: int,
                    reason: str, stage: str) -> None:
        if load_id in warehouse.fingerprints(ctx):  # a replay of a loaded batch: its rows are
            # in the warehouse, so it is not quarantined (`release` would say they stay out)
            failed = "validation" if stage == "validate" else "its transform"
            raise StageError(ctx.spec.name, stage, f"batch {load_id} is loaded, and fails "
                             f"{failed} now: {reason}; it stays loaded as it was (the "
                             "warehouse and its ledger unchanged)")
        ctx.lake.move_batch(load_id, ctx.spec.lake.path, PROCESSED, QUARANTINE)
        warehouse.record_quarantine(ctx, load_id, rows,
                                    reason if stage == "validate" else f"{stage}: {reason}")
        self.log.hold(ctx.spec.name, self.target.name, warehouse.quarantined(ctx))

    def build_models(self, records: list[RunRecord]) -> list[str]:
        """dbt build, once for all, of the selections owed a build.

        `load_batch` marks a pipeline's selection owed before its rows reach the warehouse; the
        marker goes only when dbt succeeds, so a run killed before or during dbt (or a failed
        build) is rebuilt by the next run even if it loads nothing new.
        """
        from framework.stages import model

        owed = OwedModels(self.dbt_marker)
        snapshot = owed.snapshot()  # the caller holds dbt_turn(): no other build runs
        # ... and what any worker's loads left owed in the warehouse (none if it is down)
        with shared_state(self.target) as (state, _):
            shared = state.owed(self.target.name) if state is not None else {}
        seeds = ChangedSeeds(self.project.dbt_dir / "seeds",
                             self.project.state_dir / "dbt" / self.target.name / "seeds.json")
        selections = list(dict.fromkeys([*snapshot, *shared, *seeds.owed()]))
        if not selections:
            return []
        ok = {r.pipeline for r in records if r.status == "success"}
        self.on_stage("dbt", "dbt build")

        def warn(message: str) -> None:
            observe.warning(message)
            for record in records:
                if record.pipeline in ok:
                    record.warnings.append(message)

        with observe.stage("dbt"):
            try:
                result = model.run_build(self.project, self.target, selections, warn,
                                         self.full_refresh)
            except FrameworkError as exc:  # before dbt ran (adapter missing, warehouse
                # unreachable): still this run's build that failed, said on its records
                result = model.DbtBuild(list(selections), status="failed", error=str(exc))
        self.dbt_build = result
        self._report_build(records, ok, result)
        if result.status != "success":
            raise StageError("dbt", "build", result.error or "dbt build failed")
        checkpoint("dbt")
        seeds.remember()
        owed.settle(snapshot)  # selections marked again meanwhile stay owed
        if shared:
            with shared_state(self.target) as (state, why):
                if state is None:
                    raise StageError("dbt", "build", f"built, but the warehouse still says its "
                                     f"models are owed (they will build again): {why}")
                state.settle(self.target.name, shared)
        return result.built

    def _report_build(self, records: list[RunRecord], ok: set[str], result: Any) -> None:
        """The shared build, once per run: its entry goes on every record of the run (the same
        object, not a cost of each pipeline); a pipeline whose own stages succeeded is `models
        failed` only when a blocking failure sits in the models its selection builds (or skipped
        one of them)."""
        from framework.stages.dbt_results import selected_models

        entry = result.summary()
        # a model skipped for a failure upstream of it was not built either: the pipelines
        # whose selection holds it are `models failed` too (their marts are stale)
        failing = {name for f in result.failures for name in (f.node, f.model) if name} | \
            set(result.skipped)
        mine: dict[str, bool] = {}  # pipeline -> a blocking failure sits in its models
        for record in records:
            selection = self._selections.get(record.pipeline, [])
            if record.pipeline in ok and selection:
                models = selected_models(result.target_dir, selection) if failing else set()
                mine[record.pipeline] = (models is None or bool(failing & models)) if failing \
                    else result.status != "success"
        if result.status != "success" and not any(mine.values()):
            # the failure sits outside every selection of this run (a source test, models
            # owed by an earlier run): it is still this run's build that failed
            mine = {name: True for name in ok}
        for record in records:
            record.dbt = entry
            if record.pipeline in mine:
                record.models_status = "failed" if mine[record.pipeline] else "built"
                if mine[record.pipeline]:
                    record.status, record.error = "models failed", result.error
            self.log.save(record)

    @contextmanager
    def dbt_turn(self) -> Iterator[None]:
        """One dbt build at a time per target on this machine (builds share the target folder
        and, on DuckDB, the warehouse file, which the build holds until it ends)."""
        lock = self.project.state_dir / "targets" / self.target.name / "locks" / "dbt.lock"
        with waiting_lock(lock, f"dbt build on target '{self.target.name}'", warehouse_wait()), \
                warehouse_lock(self.target):
            yield

    @property
    def dbt_marker(self) -> Path:
        return self.project.state_dir / "targets" / self.target.name / "dbt_pending.json"

    @contextmanager
    def _owing_models(self, spec: PipelineSpec, warehouse: Warehouse) -> Iterator[None]:
        """Around a change to the pipeline's landing table (a load, reconciled deletes): its
        models owed a build before the change, and again after it (a build that started
        before the COMMIT missed it)."""
        self._models_owed(spec, warehouse)
        yield
        self._models_owed(spec, warehouse)

    def _models_owed(self, spec: PipelineSpec, warehouse: Warehouse) -> None:
        """Before rows reach the warehouse, their models are owed a build: a run killed between
        the load and dbt (or run with --no-dbt) leaves the selection pending for the next run,
        which builds it even if it loads nothing new. Marked locally and in the warehouse, so
        a worker that lost its disk (or another worker) still builds them."""
        if spec.dbt:
            marks = OwedModels(self.dbt_marker).owe(spec.dbt.select)
            try:
                warehouse.shared_state().owe(self.target.name, marks)
            except Exception as exc:  # noqa: BLE001 - before the load: nothing reaches it unowed
                raise StageError(spec.name, "load", "could not mark its dbt models owed in the "
                                 f"warehouse: {' '.join(str(exc).split())}") from None

    @contextmanager
    def _timed(self, record: RunRecord, pipeline: str, stage: str) -> Iterator[None]:
        self.on_stage(pipeline, stage)
        started = time.perf_counter()
        try:
            with observe.stage(stage):
                yield
        finally:
            record.seconds[stage] = record.seconds.get(stage, 0.0) + time.perf_counter() - started


def processed_files(ctx: RunContext, load_id: str, stage: str = "load") -> list[str]:
    """The processed batch's files (one, or Spark's parts); one line if the transform never
    wrote it."""
    files = ctx.lake.batch_files(PROCESSED, ctx.spec.lake.path, load_id)
    if not files:
        raise StageError(ctx.spec.name, stage, f"batch {load_id} has no file in "
                         f"{PROCESSED}/{ctx.spec.lake.path}/: transform it first")
    return files


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


def _missing_module(exc: BaseException) -> str | None:
    """The module a ModuleNotFoundError in the exception's chain names, if any."""
    return next((cause.name for cause in chain(exc)
                 if isinstance(cause, ModuleNotFoundError) and cause.name), None)
