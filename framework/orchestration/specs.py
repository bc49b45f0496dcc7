"""The pipelines an orchestrator may schedule: each file checked on its own, bad ones skipped.

`Project.load_pipelines` refuses the whole project when one file is wrong, which is right for
`framework validate` and `framework run` but would take every DAG down with one bad file. Here
each file gets the same checks as `framework validate` (schema, model, connection, SQL file,
quality suite, dbt selection, `depends_on`); a file that fails them is reported, one line per
problem, and left out. Pipelines on a `depends_on` cycle are left out too.
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
    return result


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
