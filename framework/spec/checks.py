"""Checks of a pipeline file against the rest of the project (the schema cannot see files)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from framework.errors import SpecError
from framework.spec.loader import did_you_mean
from framework.spec.model import Expectation, PipelineSpec
from framework.spec.yaml_source import YamlDocument

if TYPE_CHECKING:
    from framework.project import Project


def check_pipeline(project: Project, doc: YamlDocument, spec: PipelineSpec,
                   pipelines: set[str]) -> list[SpecError]:
    errors: list[SpecError] = []
    connections = project.connection_names()
    if spec.source.connection not in connections:
        errors.append(doc.error(("source", "connection"), f"unknown connection "
                                f"'{spec.source.connection}'{did_you_mean(spec.source.connection, connections)}"
                                " (connections are the files in sources/)", of_value=True))
    if spec.transform.sql_file and not (project.pipelines_dir / spec.transform.sql_file).is_file():
        errors.append(doc.error(("transform", "sql_file"), f"file 'pipelines/"
                                f"{spec.transform.sql_file}' does not exist", of_value=True))
    if spec.quality.suite:
        errors.extend(_check_suite(project, doc, spec.quality.suite))
    for index, dependency in enumerate(spec.depends_on):
        if dependency == spec.name:
            errors.append(doc.error(("depends_on", index), "a pipeline cannot depend on itself",
                                    of_value=True))
        elif dependency not in pipelines:
            errors.append(doc.error(("depends_on", index), f"unknown pipeline '{dependency}'"
                                    f"{did_you_mean(dependency, pipelines)}", of_value=True))
    if spec.source.incremental and spec.source.incremental.cursor in spec.source.primary_key:
        errors.append(doc.error(("source", "incremental", "cursor"), "the cursor cannot be part "
                                "of the primary key", of_value=True))
    if spec.dbt:
        index = dbt_index(project.dbt_dir)
        for i, selector in enumerate(spec.dbt.select):
            for word in selector.split():
                problem = _unresolved(word, index, project.dbt_dir)
                if problem:
                    errors.append(doc.error(("dbt", "select", i), problem, of_value=True))
    return errors


def _check_suite(project: Project, doc: YamlDocument, suite: str) -> list[SpecError]:
    path = project.root / "quality" / f"{suite}.yml"
    if not path.is_file():
        return [doc.error(("quality", "suite"), f"suite file 'quality/{suite}.yml' does not exist",
                          of_value=True)]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in raw.get("expectations", []):
            Expectation.model_validate(item)
        if not isinstance(raw.get("expectations", []), list):
            raise ValueError("'expectations' must be a list")
    except (yaml.YAMLError, ValidationError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0]
        return [doc.error(("quality", "suite"), f"quality/{suite}.yml is invalid: {first}",
                          of_value=True)]
    return []


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
                text = path.read_text(encoding="utf-8", errors="replace")
                for group in re.findall(r"tags\s*=\s*\[([^\]]*)\]", text):
                    tags.update(re.findall(r"['\"]([^'\"]+)['\"]", group))
            elif path.suffix in (".yml", ".yaml"):
                _collect_yaml(path, nodes, tags)
    project_file = dbt_dir / "dbt_project.yml"
    if project_file.is_file():
        _collect_yaml(project_file, nodes, tags, names=False)
    return DbtIndex(nodes, tags)


def _collect_yaml(path: Path, nodes: set[str], tags: set[str], names: bool = True) -> None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return

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
            return f"no dbt model has the tag '{value}'{did_you_mean(value, index.tags)}"
        if method == "path" and not (dbt_dir / value).exists():
            return f"dbt path '{value}' does not exist"
        if not method and value not in index.nodes:
            return f"no dbt model named '{value}'{did_you_mean(value, index.nodes)}"
    return None
