"""A quarantined batch blocks its pipeline until it is replayed after a fix, or released.

dlt's cursor has already moved past a quarantined batch, so loading later batches would leave a
silent gap: its rows would never arrive. The warehouse ledger holds the truth (status
`quarantined`); the run log keeps a local copy so that `list` and `history` show the blocked
state without a warehouse connection. A release is recorded with who released it and why,
and, with the lake, which batches were released: a look-back window reads their rows again on
every run, and the extract leaves out those unchanged since (framework/sources/sql/cursor.py).
"""

from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.context import RunContext


class PipelineBlocked(FrameworkError):
    """The pipeline has a quarantined batch: nothing newer may reach the warehouse."""


def blocked_message(pipeline: str, held: dict[str, str]) -> str:
    """One line: which batch blocks the pipeline, why, and the two ways out."""
    load_id, reason = next(iter(held.items()))
    more = f" (+{len(held) - 1} more quarantined batch(es))" if len(held) > 1 else ""
    why = f": {reason}" if reason else ""
    return (f"{pipeline}: blocked by quarantined batch {load_id}{why}{more}; nothing newer "
            f"loads until it is fixed and replayed (framework replay --pipeline {pipeline} "
            f"--load-id {load_id}) or released (framework release --pipeline {pipeline} "
            f"--load-id {load_id} --reason TEXT)")


def release_note(reason: str) -> str:
    """Who released a batch, from where, when and why (kept in the ledger and the run log)."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"released by {_user()}@{socket.gethostname()} at {when}: {reason}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid {os.getuid()}"


def released_batches(ctx: RunContext) -> list[str]:
    """The pipeline's batches released so far (the lake's record; none when torn: their rows
    are then read again, and quarantined again, never lost)."""
    from framework.lake import RELEASED

    try:
        record = ctx.lake.read_json(ctx.lake.record(RELEASED, ctx.spec.name))
        return [str(load) for load in record["loads"]] if record else []
    except (ValueError, KeyError, TypeError):
        return []


def remember_released(ctx: RunContext, load_id: str) -> None:
    _write_released(ctx, {*released_batches(ctx), load_id})


def forget_released(ctx: RunContext, load_id: str) -> None:
    """A released batch replayed into the warehouse: its rows are no longer kept out."""
    released = set(released_batches(ctx))
    if load_id in released:
        _write_released(ctx, released - {load_id})


def _write_released(ctx: RunContext, loads: set[str]) -> None:
    import json

    from framework.lake import RELEASED

    ctx.lake.write_text(ctx.lake.record(RELEASED, ctx.spec.name),
                        json.dumps({"loads": sorted(loads)}))
