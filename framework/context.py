"""What every stage receives: the compiled pipeline (spec, target, SQL, expectations, ...) and
this run's options. Stages take what they need from it; they never see the project."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from framework import logs
from framework.compiled import CompiledPipeline
from framework.lake import RECONCILED, Lake
from framework.settings.connections import Connection
from framework.settings.targets import Target
from framework.spec.model import PipelineSpec

# Sorts after every load id (`1795658744.7682724`).
AFTER_EVERY_BATCH = "~"

if TYPE_CHECKING:
    from framework.sources.base import SourceAdapter


@dataclass
class RunContext:
    compiled: CompiledPipeline
    full_refresh: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def spec(self) -> PipelineSpec:
        return self.compiled.spec

    @property
    def target(self) -> Target:
        return self.compiled.target

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.target.lake)

    @cached_property
    def source(self) -> SourceAdapter:
        """This pipeline's source adapter (framework/sources), bound to what its kind needs."""
        from framework.sources.registry import adapter_for

        return adapter_for(self.spec.source, connections=self.compiled.connection_for,
                           target=self.target, env=self.compiled.env, root=self.compiled.root)

    @cached_property
    def reconciled(self) -> tuple[str | None, frozenset[str]]:
        """As of when `reconcile` last deleted or marked rows (a load id: the newest of its
        batches, its read of the source and the last read the local state named; every read up
        to it came before the delete), None before any, and the batches the warehouse did not
        hold then (quarantined or released: no delete touched their rows). Its record with the
        lake, read once a run (framework/sources/sql/cursor.py).
        A torn record reads as after every batch: the boundary's rows are then read again, the
        safe side."""
        try:
            record = self.lake.read_json(self.lake.record(RECONCILED, self.spec.name))
            if record is None:
                return None, frozenset()
            return str(record["through"]), frozenset(map(str, record.get("unloaded", ())))
        except (ValueError, KeyError, TypeError, AttributeError):
            return AFTER_EVERY_BATCH, frozenset()

    @cached_property
    def unfinished_refresh(self) -> dict[str, str | None] | None:
        """The lake's record of a full refresh not finished yet, read once a run and kept
        current by framework/full_refresh.py; None when there is none."""
        from framework.full_refresh import read

        return read(self)

    def connection(self, name: str) -> Connection:
        """The pipeline's named connection, resolved at compile time."""
        return self.compiled.connection_for(name)

    @property
    def state_dir(self) -> Path:
        """Run state of this target: dlt's pipelines folder, locks."""
        return self.compiled.state_dir

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.spec.name}: {message}")
        logs.logger.warning(message)
