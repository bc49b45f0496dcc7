"""A full refresh that outlives its run.

`--full-refresh` has dlt drop the pipeline's cursor and raw batches, then reads the source
whole; that batch replaces the landing table. A run that stops before it did (the source read
empty and the table was kept, a kill after the read reached the lake, the batch quarantined)
leaves a record with the lake, so the refresh is finished later, by any worker:

- `{"batch": null}`: the cursor is dropped and no whole batch landed: the next run is a full
  refresh again (it reads the source whole);
- `{"batch": "<load id>"}`: that batch is the whole read: it replaces the table when it loads
  (pending, on the next run; quarantined, on `replay`).

The record goes once the whole batch is loaded, or the empty read emptied the table. Before,
the next run read on from the dropped cursor, every row again, and appended it (an append table
twice over) or merged it (rows the source had deleted stayed).
"""

from __future__ import annotations

import json

from framework.context import RunContext
from framework.lake import FULL_REFRESH

# The record's state when no whole batch landed yet.
_OWED: dict[str, str | None] = {"batch": None}


def read(ctx: RunContext) -> dict[str, str | None] | None:
    try:
        record = ctx.lake.read_json(ctx.lake.record(FULL_REFRESH, ctx.spec.name))
        return None if record is None else {"batch": record["batch"]}
    except (ValueError, KeyError, TypeError):  # torn: reading whole again is the safe side
        return dict(_OWED)


def _write(ctx: RunContext, record: dict[str, str | None] | None) -> None:
    path = ctx.lake.record(FULL_REFRESH, ctx.spec.name)
    if record is None:
        ctx.lake.remove(path)
    else:
        ctx.lake.write_text(path, json.dumps(record))
    ctx.unfinished_refresh = record


def owed(ctx: RunContext) -> bool:
    """A full refresh dropped the cursor and no whole batch of it landed yet."""
    return ctx.unfinished_refresh == _OWED


def whole_batch(ctx: RunContext, load_id: str) -> bool:
    """`load_id` is a full refresh's whole read: it replaces the table."""
    record = ctx.unfinished_refresh
    return record is not None and record["batch"] == load_id


def begin(ctx: RunContext) -> None:
    """Before dlt drops the cursor: until a whole batch lands, every run reads whole."""
    if not owed(ctx):
        _write(ctx, dict(_OWED))


def landed(ctx: RunContext, load_id: str) -> None:
    """The whole batch `load_id` is in the lake: it replaces the table when it loads."""
    _write(ctx, {"batch": load_id})


def finished(ctx: RunContext, load_id: str | None = None) -> None:
    """The whole batch `load_id` loaded (None: the empty read was applied)."""
    if owed(ctx) if load_id is None else whole_batch(ctx, load_id):
        _write(ctx, None)
