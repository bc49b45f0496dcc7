"""The pipelines of one run, `threads` at a time, in `depends_on` order (`run --threads N`).

A pipeline starts once every upstream it names (within the run's selection) has finished. One
whose upstream did not succeed (failed, quarantined, blocked, or skipped itself) never starts:
it gets a `skipped` run record whose error names the upstreams, so nothing downstream loads on
top of a table that missed its batch. With one thread the pipelines run in the calling thread,
one after the other, as they always did.

Each worker thread gets its own warehouse handle (`Warehouse.for_thread`: a DuckDB cursor, a
Snowflake connection) and a copy of the caller's logging context, so every log record names
its own pipeline. Records come back in `depends_on` order whatever order they finished in.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from framework import logs
from framework.errors import FrameworkError
from framework.runs import RunRecord
from framework.spec.model import PipelineSpec
from framework.stages.load import Warehouse

if TYPE_CHECKING:
    from framework.runner import Runner

RunOne = Callable[[PipelineSpec, Warehouse], RunRecord]


def upstreams(specs: dict[str, PipelineSpec]) -> dict[str, list[str]]:
    """Each pipeline's `depends_on` within the selection (others are not this run's to wait for)."""
    return {name: [d for d in spec.depends_on if d in specs] for name, spec in specs.items()}


def skip_reason(upstream: list[str], records: dict[str, RunRecord]) -> str | None:
    """Why a pipeline must not run (`upstream orders failed`), or None when every upstream
    succeeded."""
    bad = [f"{name} {records[name].status}" for name in upstream
           if records[name].status != "success"]
    return f"upstream {', '.join(bad)}" if bad else None


def run_pipelines(runner: Runner, specs: dict[str, PipelineSpec], warehouse: Warehouse,
                  threads: int = 1) -> list[RunRecord]:
    graph = upstreams(specs)
    order = TopologicalSorter(graph)
    try:
        order.prepare()
    except CycleError as exc:
        raise FrameworkError(f"depends_on forms a cycle: {' -> '.join(exc.args[1])}") from None
    records: dict[str, RunRecord] = {}

    def settle(name: str, record: RunRecord) -> None:
        records[name] = record
        order.done(name)
        runner.on_done(record)

    def startable() -> list[str]:
        """Ready pipelines to start; the ready ones an upstream let down are settled skipped
        (which may make their own dependents ready: hence the loop)."""
        start: list[str] = []
        while ready := order.get_ready():
            for name in ready:
                reason = skip_reason(graph[name], records)
                if reason is None:
                    start.append(name)
                else:
                    settle(name, skipped_record(runner, name, reason))
        return start

    if threads <= 1:
        while order.is_active():
            for name in startable():
                settle(name, runner.run_pipeline(specs[name], warehouse))
    else:
        _run_threaded(specs, warehouse, threads, runner.run_pipeline, startable, settle, order)
    position = {name: i for i, name in enumerate(TopologicalSorter(graph).static_order())}
    return sorted(records.values(), key=lambda r: position[r.pipeline])


# What a pipeline imports on first use, heavy and shared by every pipeline.
FIRST_USE_IMPORTS = ("pyarrow", "pyarrow.compute", "pyarrow.parquet", "pandas", "dlt",
                     "dlt.extract", "dlt.sources.sql_database", "duckdb")


def import_before_threads() -> None:
    """Import, in this thread, what the pipelines import on first use: two threads importing
    one of them for the first time at once could see it half made (`partially initialized
    module 'pandas' has no attribute 'DataFrame'`), failing pipelines of a worker that had
    never run them."""
    import importlib

    for name in FIRST_USE_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:  # an extra not installed: its pipelines say so themselves
            continue


def _run_threaded(specs: dict[str, PipelineSpec], warehouse: Warehouse, threads: int,
                  run_one: RunOne, startable: Callable[[], list[str]],
                  settle: Callable[[str, RunRecord], None],
                  order: TopologicalSorter[str]) -> None:
    own = threading.local()
    handles: list[Warehouse] = []
    guard = threading.Lock()

    def handle() -> Warehouse:
        """This worker thread's warehouse handle, opened on its first pipeline."""
        mine: Warehouse | None = getattr(own, "warehouse", None)
        if mine is None:
            mine = own.warehouse = warehouse.for_thread()
            with guard:
                handles.append(mine)
        return mine

    def work(name: str) -> RunRecord:
        return run_one(specs[name], handle())

    import_before_threads()
    running: dict[Future[RunRecord], str] = {}
    failure: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pipeline")
    try:
        while order.is_active():
            if failure is None:
                for name in startable():
                    # the caller's log fields (target, run id) go with the pipeline
                    context = contextvars.copy_context()
                    running[pool.submit(context.run, work, name)] = name
            if not running:
                break  # an unexpected error stopped new starts and the rest has finished
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    settle(name, future.result())
                except Exception as exc:  # noqa: BLE001 - unexpected, its record saved: stop starting
                    failure = failure or exc
    finally:
        # Ctrl-C: the queued pipelines never start; the running ones finish their batch
        pool.shutdown(wait=True, cancel_futures=True)
        for opened in handles:
            opened.close()
    if failure is not None:
        raise failure


def skipped_record(runner: Runner, pipeline: str, reason: str) -> RunRecord:
    """The saved record of a pipeline that did not start because of its upstreams."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record = RunRecord(runner.run_id, pipeline, runner.target.name, status="skipped",
                       error=reason, stages_status="skipped", finished_at=now)
    with logs.fields(pipeline=pipeline):
        logs.logger.warning("pipeline %s skipped: %s", pipeline, reason)
    runner.log.save(record)
    return record
