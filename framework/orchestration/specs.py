"""The pipelines an orchestrator may schedule: each file checked on its own, bad ones skipped.

`Project.load_pipelines` refuses the whole project when one file is wrong, which is right for
`framework validate` and `framework run` but would take every DAG down with one bad file. Here
each file gets the same checks as `framework validate` (schema, model, connection, SQL file,
quality suite, dbt selection, `depends_on`); a file that fails them is reported, one line per
problem, and left out. Pipelines on a `depends_on` cycle are left out too, and so is every
pipeline that shares its lake folder or landing table with another: scheduled side by side they
would load each other's batches or overwrite each other's rows, and which one is meant only a
person can say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

from framework.errors import SpecError, SpecErrors
from framework.project import Project
from framework.spec.model import PipelineSpec


@dataclass
class Pipelines:
    """Valid specs by name (in file-name order) and one line per problem of the skipped files."""

    specs: dict[str, PipelineSpec] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def valid_pipelines(project: Project) -> Pipelines:
    from framework.spec.checks import check_pipeline
    from framework.spec.loader import load_spec_document

    result = Pipelines()
    paths = project.pipeline_paths()
    known = {path.stem for path in paths}
    for path in paths:
        display = project.display(path)
        try:
            spec, doc = load_spec_document(path, display)
            errors = check_pipeline(project, doc, spec, known)
        except SpecErrors as exc:
            errors, spec = exc.errors, None
        except SpecError as exc:
            errors, spec = [exc], None
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the others
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result.problems.append(f"{display}: {type(exc).__name__}: {first}")
            result.skipped.append(path.stem)
            continue
        if errors or spec is None:
            result.problems.extend(error.render() for error in errors)
            result.skipped.append(path.stem)
            continue
        result.specs[spec.name] = spec
    _drop_cycles(project, result)
    _drop_shared_targets(project, result)
    return result


def _drop_shared_targets(project: Project, result: Pipelines) -> None:
    """Leave out every pipeline whose lake path or landing table (compared as the warehouse
    does, case-insensitively) another valid pipeline uses too; validate's lines say why."""
    from framework.spec.checks import shared_lake_paths, shared_landing_tables

    errors = [*shared_lake_paths(project, result.specs),
              *shared_landing_tables(project, result.specs)]
    if not errors:
        return
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, spec in result.specs.items():
        groups.setdefault(("lake", spec.lake.path), []).append(name)
        groups.setdefault(("table", spec.warehouse.db_schema.lower(), spec.table.lower()),
                          []).append(name)
    shared = sorted({name for names in groups.values() if len(names) > 1 for name in names})
    result.problems.extend(error.render() for error in errors)
    for name in shared:
        result.specs.pop(name)
        result.skipped.append(name)


def _drop_cycles(project: Project, result: Pipelines) -> None:
    """Leave out every pipeline on a `depends_on` cycle (scheduled on each other, they would
    trigger one another for ever)."""
    while True:
        graph = {name: [d for d in spec.depends_on if d in result.specs]
                 for name, spec in result.specs.items()}
        try:
            TopologicalSorter(graph).prepare()
            return
        except CycleError as exc:
            chain: list[str] = list(reversed(exc.args[1]))  # each depends on the next
        path = project.pipelines_dir / f"{chain[0]}.yml"
        result.problems.append(f"{project.display(path)}: depends_on forms a cycle: "
                               + " -> ".join(chain))
        for name in dict.fromkeys(chain):
            result.specs.pop(name, None)
            result.skipped.append(name)
