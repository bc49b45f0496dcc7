"""`framework doctor`: can this target reach every part it needs? One line per part."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from framework.lake import Lake
from framework.project import Project
from framework.settings.envvars import redact
from framework.settings.targets import Target
from framework.stages.model import dbt_environment

if TYPE_CHECKING:
    from framework.sources.base import SourceAdapter


@dataclass(frozen=True)
class Check:
    part: str
    ok: bool
    detail: str
    skipped: bool = False  # a connection never set up (the demo shop before `framework demo`)


def run_checks(project: Project, target: Target) -> Iterator[Check]:
    from framework.sources.registry import adapter_for

    specs = project.load_pipelines()
    # one check per source the pipelines share (a connection, a folder, an API)
    sources: dict[str, SourceAdapter] = {}
    for spec in specs.values():
        source = adapter_for(spec.source, connections=project.connection, target=target,
                             env=project.variables, root=project.root)
        sources.setdefault(getattr(source, "check_name", source.name), source)
    for name in sorted(sources):
        source = sources[name]
        try:
            missing = source.not_set_up()
        except Exception:  # noqa: BLE001 - the probe below says why, in one line
            missing = None
        if missing:  # connecting would create an empty database file
            yield Check(f"source {name}", True, f"not set up: {missing}", skipped=True)
            continue
        yield _check(f"source {name}", source.check)
    yield _check(f"lake {target.lake.url}", lambda: _lake(target))
    yield _check(f"warehouse {target.warehouse.type}", lambda: _warehouse(target))
    if any(s.dbt for s in specs.values()):
        yield _check(f"dbt target {target.dbt_target_name}", lambda: _dbt(project, target))
    if any(s.transform.engine == "spark" for s in specs.values()):
        yield _check(f"spark {target.spark.master}", _spark)


def _check(part: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(part, True, probe())
    except Exception as exc:  # noqa: BLE001 - any failure is the part's answer, in one line
        from framework.extras import missing_extra

        text = str(missing_extra(exc, part) or exc).strip().splitlines()
        return Check(part, False, redact(text[0] if text else type(exc).__name__))


def _lake(target: Target) -> str:
    lake = Lake(target.lake)
    probe = lake.path("_framework_doctor")
    lake.fs.pipe(probe, b"ok")
    lake.fs.rm(probe)
    return "readable and writable"


def _warehouse(target: Target) -> str:
    from framework.stages.load import warehouse_for

    warehouse_for(target).close()
    return target.warehouse.path or target.warehouse.account or "connected"


def _dbt(project: Project, target: Target) -> str:
    import os

    if target.warehouse.type == "snowflake":
        from framework.stages.load.snowflake import missing_settings

        problem = missing_settings(target.warehouse)  # dbt would only say "[ERROR]"
        if problem:
            raise RuntimeError(problem)
    work = project.state_dir / "dbt" / target.name
    result = subprocess.run(
        [sys.executable, "-m", "dbt.cli.main", "debug", "--project-dir", str(project.dbt_dir),
         "--profiles-dir", str(project.dbt_dir), "--target", target.dbt_target_name,
         "--log-path", str(work / "logs"), "--no-use-colors"],
        env={**os.environ, **dbt_environment(target)}, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(_dbt_reason(result.stdout))
    return "profile and connection ok"


def _dbt_reason(output: str) -> str:
    """The reason in `dbt debug`'s output: the line after "N check(s) failed:" (the bare
    `Connection test: [ERROR]` says nothing), else the first error line."""
    lines = [line.strip() for line in output.splitlines()]
    for i, line in enumerate(lines):
        if "check failed" in line or "checks failed" in line:
            reason = next((later for later in lines[i + 1:] if later), "")
            if reason:
                return reason
    errors = [line for line in lines if "ERROR" in line or "Error" in line]
    return errors[0] if errors else "dbt debug failed"


def _spark() -> str:
    from framework.spark import check_java, java_executable, java_version

    check_java()  # raises, in one line, when Java is missing or too old
    java = java_executable()
    return f"Java {java_version(java) if java else '?'} at {java}"
