"""Load a pipeline file: YAML -> JSON Schema -> frozen `PipelineSpec`, every error located.

One mistake is one line: schema violations are reduced to the most specific one per key, and
a misspelt required key is reported once, as the unknown key (with its suggestion).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import ValidationError

from framework.errors import SpecError, SpecErrors
from framework.spec.base import ProblemAt
from framework.spec.messages import (
    closest,
    describe,
    did_you_mean,
    flow,
    pattern_problem,
    quoted,
    type_name,
)
from framework.spec.model import NAME_PATTERN, PipelineSpec, expectation_problem
from framework.spec.schema import pipeline_schema
from framework.spec.yaml_source import Key, YamlDocument, parse_yaml

__all__ = ["did_you_mean", "load_spec", "load_spec_document", "schema_errors"]

_EXPECTATIONS = ("quality", "expectations")


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(pipeline_schema())


def load_spec(path: Path, display: str | None = None) -> PipelineSpec:
    """Parse and validate one pipeline file; raise `SpecErrors` listing every problem."""
    return load_spec_document(path, display)[0]


def load_spec_document(path: Path, display: str | None = None) -> tuple[PipelineSpec, YamlDocument]:
    doc = parse_yaml(path, display)
    errors = schema_errors(doc)
    if errors:
        raise SpecErrors(errors)
    try:
        spec = PipelineSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecErrors(_from_pydantic(doc, exc)) from None
    if spec.name != path.stem:
        raise SpecErrors([doc.error(("name",), f"'{spec.name}' differs from the file name; set "
                                    f"name: {path.stem} (or rename the file to {spec.name}.yml)",
                                    of_value=True)])
    return spec, doc


def schema_errors(doc: YamlDocument) -> list[SpecError]:
    if not isinstance(doc.data, dict):
        return [doc.error((), "a pipeline file must be a mapping of keys ('name', 'source', "
                          f"'lake', ...), not {describe(doc.data, doc.texts.get(()))}",
                          of_value=True)]
    violations = [inner for violation in _validator().iter_errors(doc.data)
                  for inner in _innermost(violation)]
    # The most specific violation first, so it is the one kept for its key.
    violations.sort(key=lambda e: (list(map(str, e.absolute_path)), e.validator == "type"))
    suggested = {(tuple(v.absolute_path), s) for v in violations
                 for s in _suggestions(v)}
    errors: dict[str, SpecError] = {}
    for violation in violations:
        for error in _from_schema(doc, violation, suggested):
            errors.setdefault(error.key, error)
    return list(errors.values())


def _innermost(error: SchemaViolation) -> list[SchemaViolation]:
    """For `anyOf` (an optional mapping, say), report what is wrong inside the branch meant.

    The branch meant is the one whose type the value has: its violations are not all a `type`
    mismatch at the value itself.
    """
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[Any, list[SchemaViolation]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    depth = len(error.absolute_path)
    meant = [subs for subs in branches.values()
             if not all(s.validator == "type" and len(s.absolute_path) == depth for s in subs)]
    if not meant:
        return [error]
    chosen = max(meant, key=lambda subs: max(len(s.absolute_path) for s in subs))
    return [inner for sub in chosen for inner in _innermost(sub)]


def _suggestions(error: SchemaViolation) -> list[str]:
    """Known keys suggested for the unknown keys of one mapping."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    allowed = list(error.schema.get("properties", {}))
    return [match for k in _unknown(error) if (match := closest(k, allowed))]


def _unknown(error: SchemaViolation) -> list[str]:
    allowed = error.schema.get("properties", {})
    patterns = error.schema.get("patternProperties", {})
    return [str(k) for k in error.instance
            if k not in allowed and not any(re.match(p, str(k)) for p in patterns)]


def _from_schema(doc: YamlDocument, error: SchemaViolation,
                 suggested: set[tuple[Key, str]]) -> list[SpecError]:
    key: Key = tuple(error.absolute_path)
    schema, value = error.schema, error.instance
    if len(key) >= 3 and key[:2] == _EXPECTATIONS and isinstance(key[2], int):
        problem = expectation_problem(doc.data["quality"]["expectations"][key[2]])
        if problem:
            return [doc.problem((*key[:3], *problem.key), problem.message,
                                at_key=problem.at_key)]
    validator = error.validator
    if validator == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        return [doc.error((*key, bad), f"unknown key {quoted(bad)}" + (
            did_you_mean(bad, allowed) or f" (allowed: {', '.join(allowed)})"))
            for bad in _unknown(error)]
    if validator == "required" and isinstance(value, dict):
        missing = [k for k in error.validator_value if k not in value]
        return [doc.error((*key, name), f"missing required key '{name}'"
                          + _example(doc, (*key, name), "; add it, e.g. "))
                for name in missing if (key, name) not in suggested]
    written = doc.texts.get(key)
    if validator == "enum":
        options = [str(o) for o in error.validator_value]
        message = f"{quoted(value)} is not one of: {', '.join(options)}" \
                  f"{did_you_mean(str(value), options)}"
    elif validator in ("type", "anyOf", "oneOf"):
        message = f"expected {_expected(schema)}, got {describe(value, written)}" + \
            _type_hint(doc, key, schema, value, written)
    elif validator == "pattern":
        message = pattern_problem(str(error.validator_value), value)
    elif validator in ("minItems", "minLength"):
        message = "must not be empty" + _example(doc, key, "; e.g. ")
    elif validator == "uniqueItems" and isinstance(value, list):
        index = next(i for i, item in enumerate(value) if item in value[:i])
        return [doc.problem((*key, index), f"{quoted(value[index])} is listed twice; remove one")]
    elif validator == "minimum":
        message = f"must be {error.validator_value} or more, got {flow(value)}" + \
            _example(doc, key, " (e.g. ", ")")
    else:
        message = error.message
    return [doc.problem(key, message)]


def _expected(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        names = []
        for option in options:
            if "$ref" in option:
                names.append("a mapping")
            elif option.get("type") != "null":
                names.append(type_name(option.get("type", "")))
        return " or ".join(dict.fromkeys(names)) or "a value"
    return type_name(str(schema.get("type")))


def _type_hint(doc: YamlDocument, key: Key, schema: dict[str, Any], value: Any,
               written: str | None) -> str:
    wanted = {schema.get("type")} | {o.get("type") for o in schema.get("anyOf", [])}
    if "string" in wanted and isinstance(value, (bool, int, float)) and written:
        return f"; quote it if you mean the text: '{written}'"
    if "array" in wanted and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(value)]
        return f"; write a list: {flow(items)}"
    return _example(doc, key, " (e.g. ", ")")


def _example(doc: YamlDocument, key: Key, before: str, after: str = "") -> str:
    """An example of the value at `key`, from the schema's examples, or '' if none."""
    names = [part for part in key if isinstance(part, str)]
    if key == ("name",):
        stem = Path(doc.path).stem
        return f"{before}name: {stem}{after}" if re.match(NAME_PATTERN, stem) else ""
    examples = _property_schema(key).get("examples")
    if not examples:
        return ""
    text = flow(examples[0])
    if len(text) > 100:
        return ""
    return f"{before}{names[-1]}: {text}{after}" if isinstance(key[-1], str) else \
        f"{before}{text}{after}"


def _property_schema(key: Key) -> dict[str, Any]:
    """The schema written for the key at `key` (with its description and examples)."""
    root = pipeline_schema()
    schema: dict[str, Any] = root
    for part in key:
        resolved = _resolve(root, schema)
        if isinstance(part, int):
            items = resolved.get("items", {})
            parent_examples = schema.get("examples") or []
            schema = dict(items)
            if "examples" not in schema and parent_examples and isinstance(parent_examples[0], list) \
                    and parent_examples[0]:
                schema["examples"] = [parent_examples[0][0]]
        else:
            schema = resolved.get("properties", {}).get(part, {})
            # A union of kinds (`source`, framework/spec/schema.py): the first kind that has
            # the key describes it.
            options = resolved.get("oneOf", []) + [rule["then"] for rule in
                                                   resolved.get("allOf", []) if "then" in rule]
            for option in options:
                found = _resolve(root, option).get("properties", {}).get(part)
                if found is not None:
                    schema = found
                    break
    return schema


def _resolve(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            schema = option
            break
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return dict(root["$defs"][ref.removeprefix("#/$defs/")])
    return schema


def _from_pydantic(doc: YamlDocument, exc: ValidationError) -> list[SpecError]:
    errors: dict[str, SpecError] = {}
    for error in exc.errors():
        key = _data_key(doc.data, error["loc"])
        problem = (error.get("ctx") or {}).get("error")
        if isinstance(problem, ProblemAt):
            key = (*key, *problem.key)
        spec_error = doc.problem(key, str(error["msg"]).removeprefix("Value error, "))
        errors.setdefault(spec_error.key, spec_error)
    return list(errors.values())


def _data_key(data: Any, loc: tuple[Any, ...]) -> Key:
    """Pydantic's error location without its own steps (union members, validator names)."""
    key: list[str | int] = []
    for part in loc:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
            key.append(part)
    return tuple(key)
