"""Validate: the spec's Great Expectations suite on one processed batch.

Failures of `error` severity stop the batch before the warehouse (it moves to `quarantine/`);
`warn` failures are recorded and the batch goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from framework.context import RunContext
from framework.errors import StageError
from framework.spec.model import Expectation


@dataclass
class Validation:
    checked: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.errors


def validate(ctx: RunContext, processed: str) -> Validation:
    expectations = ctx.project.expectations(ctx.spec)
    if not expectations:
        return Validation()
    with _read(ctx, processed) as frame:
        return run_expectations(ctx, expectations, frame)


def run_expectations(ctx: RunContext, expectations: list[Expectation], frame: Any) -> Validation:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = (context.data_sources.add_spark if _is_spark(frame) else
              context.data_sources.add_pandas)(f"{ctx.spec.name}_source")
    asset = source.add_dataframe_asset(name=ctx.spec.name)
    batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(
        batch_parameters={"dataframe": frame})
    default = str(ctx.spec.quality.severity)
    outcome = Validation(checked=len(expectations))
    # One suite per severity: a failed result then says by itself which list it belongs to.
    for severity, found in (("error", outcome.errors), ("warn", outcome.warnings)):
        chosen = [(i, e) for i, e in enumerate(expectations) if e.severity_or(default) == severity]
        if not chosen:
            continue
        suite = gx.ExpectationSuite(name=f"{ctx.spec.name}_{severity}")
        for index, expectation in chosen:
            suite.add_expectation(_build(ctx, gx, index, expectation))
        for result in batch.validate(suite).results:
            if not result.success:
                config = result.expectation_config
                name, kwargs = (config.type, config.kwargs) if config else ("expectation", {})
                found.append(f"{name}({_args(kwargs)}) failed: {_summary(result.result)}")
    return outcome


def _build(ctx: RunContext, gx: Any, index: int, expectation: Expectation) -> Any:
    class_name = "".join(part.title() for part in expectation.name.split("_"))
    factory = getattr(gx.expectations, class_name, None)
    if factory is None:
        raise StageError(ctx.spec.name, "validate", f"quality.expectations[{index}]: "
                         f"'{expectation.name}' is not a Great Expectations expectation")
    try:
        return factory(**expectation.kwargs)
    except Exception as exc:  # pydantic validation of the expectation's arguments
        first = str(exc).strip().splitlines()
        raise StageError(ctx.spec.name, "validate", f"{expectation.name}: invalid arguments "
                         f"{expectation.kwargs}: {' '.join(first[:3])}") from None


@contextmanager
def _read(ctx: RunContext, processed: str) -> Iterator[Any]:
    """The processed batch as the engine that wrote it holds it: a Spark DataFrame for the
    spark engine (validated by Spark, never collected), else pandas."""
    if str(ctx.spec.transform.engine) == "spark":
        from framework.spark import read_parquet

        with read_parquet(ctx, [processed]) as frame:
            yield frame
        return
    import pyarrow.parquet as pq

    with ctx.lake.fs.open(processed.removeprefix("s3://"), "rb") as handle:
        table = pq.read_table(handle)
    yield table.to_pandas()


def _is_spark(frame: Any) -> bool:
    return type(frame).__module__.startswith("pyspark")


def _args(kwargs: dict[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in ("batch_id", "result_format")}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def _summary(result: dict[str, Any]) -> str:
    if "unexpected_count" in result:
        sample = result.get("partial_unexpected_list") or []
        return f"{result['unexpected_count']} unexpected value(s), e.g. {sample[:3]}"
    if "observed_value" in result:
        return f"observed {result['observed_value']}"
    return "see the run record"
