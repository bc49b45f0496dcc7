"""Checks of a pipeline file against the rest of the project (the schema cannot see files)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from framework.errors import FrameworkError, SpecError
from framework.spec.messages import did_you_mean
from framework.spec.model import PipelineSpec, expectation_problem
from framework.spec.yaml_guard import check_structure, read_text
from framework.spec.yaml_source import YamlDocument, parse_yaml

if TYPE_CHECKING:
    from framework.project import Project

SUITE_KEYS = ("description", "expectations")
DBT_MAX_VALUES = 500_000


def check_pipeline(project: Project, doc: YamlDocument, spec: PipelineSpec,
                   pipelines: set[str]) -> list[SpecError]:
    errors: list[SpecError] = []
    connections = project.connection_names()
    connection = getattr(spec.source, "connection", None)  # kinds that read a named connection
    if connection is not None and connection not in connections:
        hint = did_you_mean(connection, connections) or (
            f" (defined: {', '.join(connections)})" if connections else "")
        errors.append(doc.error(("source", "connection"), f"unknown connection '{connection}': "
                                f"no sources/{connection}.yml{hint}", of_value=True))
    if spec.transform.sql_file:
        errors.extend(_check_sql_file(project, doc, spec.transform.sql_file))
    if spec.quality.suite:
        errors.extend(_check_suite(project, doc, spec.quality.suite))
    for index, dependency in enumerate(spec.depends_on):
        if dependency == spec.name:
            errors.append(doc.error(("depends_on", index), f"a pipeline cannot depend on "
                                    f"itself; remove '{dependency}'", of_value=True))
        elif dependency not in pipelines:
            errors.append(doc.error(("depends_on", index), f"unknown pipeline '{dependency}': "
                                    f"no pipelines/{dependency}.yml"
                                    f"{did_you_mean(dependency, pipelines - {spec.name})}",
                                    of_value=True))
    if spec.cursor and spec.cursor in spec.source.primary_key:
        cursor = spec.cursor
        errors.append(doc.error(("source", "incremental", "cursor"), f"'{cursor}' is also in "
                                "source.primary_key; a row's key must not change when the row "
                                "does, so pick another cursor (e.g. updated_at) or key",
                                of_value=True))
    if spec.dbt:
        errors.extend(_check_dbt(project, doc, spec.dbt.select))
    return errors


def check_file(project: Project, path: Path, shown: str) -> list[SpecError]:
    """Every problem of one pipeline file, wherever it is, checked against the project (its
    connections, suites, dbt models, and pipelines for `depends_on`); SQL files are looked
    up in pipelines/ as for any pipeline."""
    from framework.errors import SpecErrors
    from framework.spec.loader import load_spec_document

    try:
        spec, doc = load_spec_document(path, shown)
    except SpecErrors as exc:
        return list(exc.errors)
    except SpecError as exc:
        return [exc]
    return check_pipeline(project, doc, spec, {p.stem for p in project.pipeline_paths()})


def shared_lake_paths(project: Project, specs: dict[str, PipelineSpec]) -> list[SpecError]:
    """Two pipelines in one lake folder would load each other's batches."""
    owner: dict[str, str] = {}
    errors: list[SpecError] = []
    for name, spec in sorted(specs.items()):
        first = owner.setdefault(spec.lake.path, name)
        if first != name:
            path = project.pipelines_dir / f"{name}.yml"
            errors.append(parse_yaml(path, project.display(path)).error(
                ("lake", "path"), f"'{spec.lake.path}' is already the lake path of pipeline "
                f"'{first}'; each pipeline needs its own", of_value=True))
    return errors


def shared_landing_tables(project: Project, specs: dict[str, PipelineSpec]) -> list[SpecError]:
    """Two pipelines loading one landing table would overwrite each other's rows (and share a
    stage on Snowflake). Compared case-insensitively, as Snowflake folds unquoted names."""
    owner: dict[tuple[str, str], str] = {}
    errors: list[SpecError] = []
    for name, spec in sorted(specs.items()):
        table = f"{spec.warehouse.db_schema}.{spec.table}"
        first = owner.setdefault((spec.warehouse.db_schema.lower(), spec.table.lower()), name)
        if first == name:
            continue
        path = project.pipelines_dir / f"{name}.yml"
        doc = parse_yaml(path, project.display(path))
        written = isinstance(doc.value(("warehouse",)), dict) and \
            "table" in doc.value(("warehouse",))
        errors.append(doc.error(
            ("warehouse", "table") if written else ("name",),
            f"landing table {table} is also the landing table of pipeline '{first}' "
            f"({project.display(project.pipelines_dir / f'{first}.yml')}); each pipeline "
            "needs its own: set warehouse.table", of_value=True))
    return errors


def _check_sql_file(project: Project, doc: YamlDocument, sql_file: str) -> list[SpecError]:
    if (project.pipelines_dir / sql_file).is_file():
        try:
            project.sql_file_text(sql_file)
        except FrameworkError as exc:
            return [doc.error(("transform", "sql_file"), str(exc), of_value=True)]
        return []
    existing = [p.relative_to(project.pipelines_dir).as_posix()
                for p in project.pipelines_dir.rglob("*.sql")]
    return [doc.error(("transform", "sql_file"), f"no file pipelines/{sql_file} (the path is "
                      f"relative to pipelines/){did_you_mean(sql_file, existing)}", of_value=True)]


def _check_dbt(project: Project, doc: YamlDocument, select: list[str]) -> list[SpecError]:
    errors: list[SpecError] = []
    index = dbt_index(project.dbt_dir)
    one_string = isinstance(doc.data.get("dbt", {}).get("select"), str)
    for i, selector in enumerate(select):
        key = ("dbt", "select") if one_string else ("dbt", "select", i)
        for word in selector.split():
            problem = _unresolved(word, index, project.dbt_dir)
            if problem:
                errors.append(doc.error(key, problem, of_value=True))
    return errors


def _check_suite(project: Project, doc: YamlDocument, suite: str) -> list[SpecError]:
    """The suite exists and each of its expectations is well formed (located in the suite file)."""
    folder = project.root / "quality"
    path = folder / f"{suite}.yml"
    if not path.is_file():
        suites = sorted(p.stem for p in folder.glob("*.yml"))
        return [doc.error(("quality", "suite"), f"unknown quality suite '{suite}': no "
                          f"quality/{suite}.yml{did_you_mean(suite, suites)}", of_value=True)]
    try:
        suite_doc = project.suite_document(suite)  # guarded like a pipeline file, read once
    except SpecError as exc:
        return [exc]
    data = suite_doc.data
    if not isinstance(data, dict):
        return [suite_doc.error((), "a suite file is a mapping with 'expectations' (a list)",
                                of_value=True)]
    errors = [suite_doc.error((key,), f"unknown key '{key}'"
                              f"{did_you_mean(key, SUITE_KEYS) or ' (allowed: ' + ', '.join(SUITE_KEYS) + ')'}")
              for key in data if key not in SUITE_KEYS]
    expectations = data.get("expectations", [])
    if not isinstance(expectations, list):
        return [*errors, suite_doc.error(("expectations",), "must be a list of expectations "
                                         "('- expect_...: {...}')", of_value=True)]
    for index, item in enumerate(expectations):
        problem = expectation_problem(item)
        if problem:
            errors.append(suite_doc.problem(("expectations", index, *problem.key),
                                            problem.message, at_key=problem.at_key))
    return errors


class DbtIndex:
    def __init__(self, nodes: set[str], tags: set[str]) -> None:
        self.nodes, self.tags = nodes, tags


@lru_cache(maxsize=4)
def dbt_index(dbt_dir: Path) -> DbtIndex:
    """Model, snapshot and seed names and tags, read from files without starting dbt (fast)."""
    nodes: set[str] = set()
    tags: set[str] = set()
    for sub in ("models", "snapshots", "seeds"):
        for path in (dbt_dir / sub).rglob("*"):
            if path.suffix in (".sql", ".csv", ".py"):
                nodes.add(path.stem)
                if path.suffix != ".csv":  # a seed's name is its file's; its rows say nothing
                    tags.update(_config_tags(path))
            elif path.suffix in (".yml", ".yaml"):
                _collect_yaml(path, nodes, tags)
    project_file = dbt_dir / "dbt_project.yml"
    if project_file.is_file():
        _collect_yaml(project_file, nodes, tags, names=False)
    return DbtIndex(nodes, tags)


def _config_tags(path: Path) -> list[str]:
    """Tags set in a model's `config(tags=[...])`; none from what is not a regular file (a
    directory named x.sql, a symlink to /dev/zero), and the first 8 MiB of a huge one."""
    if not path.is_file():  # follows a symlink: /dev/zero is not a regular file
        return []
    try:
        with open(path, "rb") as handle:
            text = handle.read(8 * 1024 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return []
    return [tag for group in re.findall(r"tags\s*=\s*\[([^\]]*)\]", text)
            for tag in re.findall(r"['\"]([^'\"]+)['\"]", group)]


def read_dbt_yaml(path: Path) -> Any:
    """A dbt YAML file's data, or None when it cannot be read as such.

    An alias bomb, a directory named x.yml or a symlink to /dev/zero in dbt's folders would
    hang or crash validate and run as one in pipelines/ would; dbt's files are larger, so the
    budget is too. A refused file is skipped, as a broken one is (dbt itself reports it).
    """
    try:
        text = read_text(path, str(path))
        check_structure(text, str(path), max_values=DBT_MAX_VALUES, max_depth=50)
        # libyaml's parser: every run reads every dbt file (0.2 s in Python's, 10x less in C).
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, SpecError):
        return None


def _collect_yaml(path: Path, nodes: set[str], tags: set[str], names: bool = True) -> None:
    data = read_dbt_yaml(path)

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("tags", "+tags"):
                    tags.update([item] if isinstance(item, str) else
                                [t for t in item or [] if isinstance(t, str)])
                elif key == "snapshots" and names and isinstance(item, list):
                    nodes.update(s["name"] for s in item if isinstance(s, dict) and "name" in s)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(data)


def _unresolved(word: str, index: DbtIndex, dbt_dir: Path) -> str | None:
    for part in word.split(","):
        method, _, value = part.partition(":") if ":" in part else ("", "", part)
        value = re.sub(r"^(\d*\+|@)|(\+\d*)$", "", value)
        if method == "tag" and value not in index.tags:
            hint = did_you_mean(value, index.tags) or (
                f" (tags: {', '.join(sorted(index.tags))})" if len(index.tags) <= 12 else "")
            return f"no dbt model has the tag '{value}'{hint}"
        if method == "path" and not (dbt_dir / value).exists():
            return f"dbt path '{value}' does not exist (paths are relative to {dbt_dir.name}/)"
        if not method and value not in index.nodes:
            return f"no dbt model named '{value}'{did_you_mean(value, index.nodes)}"
    return None
