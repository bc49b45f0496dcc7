"""What every stage receives: the spec, the target and where run state lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from framework import logs
from framework.lake import Lake
from framework.project import Project
from framework.settings.targets import Target
from framework.spec.model import PipelineSpec

if TYPE_CHECKING:
    from framework.sources.base import SourceAdapter


@dataclass
class RunContext:
    project: Project
    target: Target
    spec: PipelineSpec
    full_refresh: bool = False
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.target.lake)

    @cached_property
    def source(self) -> SourceAdapter:
        """This pipeline's source adapter (framework/sources), bound to what its kind needs."""
        from framework.sources.registry import adapter_for

        return adapter_for(self.spec.source, connections=self.project.connection,
                           target=self.target)

    @property
    def state_dir(self) -> Path:
        """Run state of this target: dlt's pipelines folder, locks."""
        return self.project.state_dir / "targets" / self.target.name

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.spec.name}: {message}")
        logs.logger.warning(message)
