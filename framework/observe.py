"""The runner's hooks for watchers: the structured log (framework/logs.py) and OpenLineage run
events (framework/lineage.py). One call per event keeps the runner's own code about running."""

from __future__ import annotations

from contextvars import Token
from typing import TYPE_CHECKING, Any

from framework import logs

if TYPE_CHECKING:
    from framework.context import RunContext
    from framework.runs import RunRecord


def pipeline_started(ctx: RunContext, run_id: str) -> Token[dict[str, str | None]]:
    from framework import lineage

    token = logs.begin(ctx.spec.name, ctx.target.name, run_id)
    lineage.started(ctx, run_id)
    return token


def pipeline_finished(token: Token[dict[str, str | None]], ctx: RunContext,
                      record: RunRecord) -> None:
    from framework import lineage

    summary: dict[str, Any] = record.summary()
    try:
        lineage.finished(ctx, record)
        logs.finished(summary)
    finally:
        logs.end(token)


def batch(load_id: str) -> None:
    logs.bind(load_id=load_id)


def warning(message: str) -> None:
    logs.logger.warning(message)


stage = logs.stage  # `with observe.stage("load"):` a stage's start, end and seconds
