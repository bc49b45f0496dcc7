"""`pipeline.schema.json`: generated from the models, complete, closed, and true of the shipped files."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from framework.cli import main
from framework.spec.schema import SCHEMA_FILE, pipeline_schema, render_schema

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yml"))
# The arguments of an expectation are Great Expectations' own keyword arguments: left open.
OPEN_OBJECTS = {"$defs.Expectation.patternProperties.^expect_[a-z0-9_]+$"}
# `source` picks its kind by `kind` (framework/spec/schema.py): the picker and its conditions
# are open, the kind's own schema (each `then`) is closed.
OPEN_SOURCE = re.compile(r"^properties\.source(\.allOf\[\d+\]\.if.*)?$")


def subschemas(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside `schema` ($defs, properties, items, anyOf, ... included)."""
    if isinstance(schema, dict):
        yield path, schema
        for key, value in schema.items():
            if key in ("examples", "default", "enum", "const"):
                continue
            yield from subschemas(value, f"{path}.{key}" if path else key)
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from subschemas(value, f"{path}[{index}]")


def properties() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every key a pipeline file can hold, at every level, with its schema."""
    for path, schema in subschemas(pipeline_schema()):
        for group in ("properties", "patternProperties"):
            for name, prop in schema.get(group, {}).items():
                yield f"{path}.{group}.{name}" if path else f"{group}.{name}", prop


def test_schema_committed_file_is_generated_from_the_models() -> None:
    committed = (ROOT / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == render_schema(), "pipeline.schema.json is stale: run `framework schema`"


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads((ROOT / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_schema_walk_reaches_every_level() -> None:
    names = {path.rsplit(".", 1)[-1] for path, _ in properties()}
    assert {"name", "source", "cursor", "lag", "path", "action", "severity", "select",
            "write_disposition", "^expect_[a-z0-9_]+$"} <= names


@pytest.mark.parametrize("field", ["description", "examples"])
def test_schema_every_property_has(field: str) -> None:
    missing = [path for path, prop in properties() if not prop.get(field)]
    assert missing == []


def test_schema_examples_are_valid_values() -> None:
    """An example of a key validates against that key's own schema."""
    schema = pipeline_schema()
    for path, prop in properties():
        validator = Draft202012Validator({**prop, "$defs": schema["$defs"]})
        for example in prop["examples"]:
            errors = [e.message for e in validator.iter_errors(example)]
            assert errors == [], f"{path}: example {example!r}: {errors}"


def test_schema_every_object_is_closed() -> None:
    open_objects = [path for path, schema in subschemas(pipeline_schema())
                    if (schema.get("type") == "object" or "properties" in schema)
                    and schema.get("additionalProperties") is not False
                    and path not in OPEN_OBJECTS and not OPEN_SOURCE.match(path)]
    assert open_objects == []


def _mappings(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        yield path
        for key, value in data.items():
            if not (len(path) == 3 and path[:2] == ("quality", "expectations")):
                yield from _mappings(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _mappings(value, (*path, index))


def test_schema_rejects_unknown_keys_at_every_level() -> None:
    """A full pipeline; an unknown key added to any of its mappings is a schema error."""
    full = yaml.safe_load((ROOT / "pipelines" / "orders.yml").read_text())
    full["source"]["incremental"]["lag"] = "10m"
    full["transform"]["pii"] = [{"column": "customer_id", "action": "hash"}]
    full["quality"]["expectations"] = [
        {"expect_column_values_to_be_unique": {"column": "order_id"}, "severity": "warn"}]
    validator = Draft202012Validator(pipeline_schema())
    assert list(validator.iter_errors(full)) == []
    levels = list(_mappings(full))
    assert len(levels) >= 10
    for level in levels:
        broken = copy.deepcopy(full)
        target = broken
        for part in level:
            target = target[part]
        target["unknown_key"] = 1
        assert list(validator.iter_errors(broken)), f"unknown key accepted under {level}"


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_schema_accepts_shipped_pipeline(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [e.message for e in Draft202012Validator(pipeline_schema()).iter_errors(data)]
    assert errors == []


def test_schema_shipped_pipelines_exist() -> None:
    assert len(PIPELINES) >= 5


def test_schema_validate_command_on_shipped_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """`framework validate` passes on the shipped files; its time is printed, not asserted
    (timing targets live in the benchmarks)."""
    monkeypatch.setenv("FRAMEWORK_PROJECT_DIR", str(ROOT))
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["validate"])
    elapsed = time.perf_counter() - started
    print(f"framework validate on {len(PIPELINES)} shipped pipelines: {elapsed:.3f}s")
    assert result.exit_code == 0, result.output
    assert f"ok {len(PIPELINES)} pipeline file(s) valid" in result.output
