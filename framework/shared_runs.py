"""Run records every worker sees: the warehouse's `_framework_runs`, fed from the local log.

Each worker saves its records in its local RunLog first (so a run whose warehouse is down is
still recorded), then pushes the versions the warehouse lacks whenever it holds a connection.
`history` and `list` read the warehouse's records of every worker, with this machine's records
that never reached it; when the warehouse cannot be reached they show the local log alone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from framework import logs
from framework.project import Project
from framework.runs import RunLog
from framework.settings.targets import Target
from framework.stages.load.state import SharedState

# One push at a time in a process: `--threads` workers would otherwise read each other's
# records half-way and write an older version over a newer one.
_SYNCING = threading.Lock()


def sync(log: RunLog, state: SharedState) -> int:
    """Push the local records the warehouse lacks; how many went."""
    with _SYNCING:
        pending = log.unsynced()
        if pending:
            state.save_runs(json.loads(p) for p in pending)
            log.mark_synced(pending)
        return len(pending)


def try_sync(log: RunLog, state: SharedState) -> None:
    """`sync`, or a warning: the records stay local until a later run reaches the warehouse."""
    try:
        sync(log, state)
    except Exception as exc:  # noqa: BLE001 - a dead warehouse must not hide the run's outcome
        logs.logger.warning(f"run records kept locally, not in the warehouse: {exc}")


@contextmanager
def shared_state(target: Target, wait: float | None = None) -> Iterator[tuple[SharedState | None,
                                                                             str | None]]:
    """The target warehouse's shared state, or None and why it cannot be reached (a DuckDB
    file another run holds longer than `wait` seconds, a Snowflake account that is down)."""
    from framework.stages.load import warehouse_for

    try:
        warehouse = warehouse_for(target, wait=wait)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: local only
        yield None, " ".join(str(exc).split())
        return
    try:
        yield warehouse.shared_state(), None
    finally:
        warehouse.close()


def history(log: RunLog, state: SharedState | None, pipeline: str | None = None,
            limit: int = 20) -> list[dict[str, Any]]:
    """Newest first: the warehouse's records, with this machine's that it lacks or has an
    older version of."""
    local = log.history(pipeline, limit)
    if state is None:
        return local
    shown = {(r["run_id"], r["pipeline"]): r for r in state.runs(pipeline, limit)}
    synced = log.synced_keys((r["run_id"], r["pipeline"]) for r in local)
    for record in local:
        key = (record["run_id"], record["pipeline"])
        if key not in shown or key not in synced:
            shown[key] = record
    return sorted(shown.values(), key=lambda r: r["started_at"], reverse=True)[:limit]


# `history` and `list` wait this long for a DuckDB file another run holds, then show local runs.
READ_WAIT = 2.0

Reader = Callable[[str | None, int], list[dict[str, Any]]]


@contextmanager
def reading(log: RunLog, project: Project, target: str | None,
            local_only: Callable[[str], None]) -> Iterator[Reader]:
    """A reader of every worker's records on the target (pipeline, limit -> records); of this
    machine's alone, after `local_only(why)`, when the warehouse cannot be reached."""
    try:
        resolved = project.target(target)
    except Exception as exc:  # noqa: BLE001 - a target not set up: the local log still answers
        local_only(str(exc))
        yield log.history
        return
    with shared_state(resolved, wait=READ_WAIT) as (state, why):
        if state is None:
            local_only(why or "")
            yield log.history
            return
        said: list[bool] = []

        def read(pipeline: str | None, limit: int) -> list[dict[str, Any]]:
            try:
                return history(log, state, pipeline, limit)
            except Exception as exc:  # noqa: BLE001
                if not said:
                    local_only(str(exc))
                    said.append(True)
                return log.history(pipeline, limit)

        yield read


def every_workers_history(log: RunLog, project: Project, target: str | None,
                          pipeline: str | None, limit: int,
                          local_only: Callable[[str], None]) -> list[dict[str, Any]]:
    """`history`: the newest `limit` runs of every worker (of one pipeline, or all)."""
    with reading(log, project, target, local_only) as read:
        return read(pipeline, limit)


def last_runs(log: RunLog, project: Project, target: str | None, pipelines: list[str],
              local_only: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """`list`: each pipeline's last run on the target, by any worker."""
    name = project.target_name(target)
    found: dict[str, dict[str, Any]] = {}
    with reading(log, project, target, local_only) as read:
        for pipeline in pipelines:
            mine = [r for r in read(pipeline, 50) if r["target"] == name]
            if mine:
                found[pipeline] = mine[0]
    return found
