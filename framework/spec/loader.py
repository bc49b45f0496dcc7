"""Load a pipeline file: YAML -> JSON Schema -> frozen `PipelineSpec`, every error located."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import ValidationError

from framework.errors import SpecError, SpecErrors
from framework.spec.model import PipelineSpec
from framework.spec.schema import pipeline_schema
from framework.spec.yaml_source import Key, YamlDocument, parse_yaml

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(pipeline_schema())


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


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
        raise SpecErrors([_from_pydantic(doc, err) for err in exc.errors()]) from None
    if spec.name != path.stem:
        raise SpecErrors([doc.error(("name",), f"'{spec.name}' must equal the file name "
                                    f"'{path.stem}'", of_value=True)])
    return spec, doc


def schema_errors(doc: YamlDocument) -> list[SpecError]:
    if not isinstance(doc.data, dict):
        return [SpecError(doc.path, 1, 1, "", "a pipeline file must be a mapping of keys "
                          "('name', 'source', 'lake', ...)")]
    # One line per key: the most specific violation wins (an enum's 'type' twin is dropped).
    violations = sorted(_validator().iter_errors(doc.data),
                        key=lambda e: (list(map(str, e.path)), e.validator == "type"))
    errors: dict[str, SpecError] = {}
    for violation in violations:
        error = _from_schema(doc, _innermost(violation))
        errors.setdefault(error.key, error)
    return list(errors.values())


def _innermost(error: SchemaViolation) -> SchemaViolation:
    """For `anyOf` (an optional mapping, say), report what is wrong inside the branch meant."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        deeper = [e for e in error.context if e.validator != "type" or len(e.absolute_path) >
                  len(error.absolute_path)]
        if deeper:
            return _innermost(min(deeper, key=lambda e: -len(e.absolute_path)))
    return error


def _from_schema(doc: YamlDocument, error: SchemaViolation) -> SpecError:
    key: Key = tuple(error.absolute_path)
    schema, value = error.schema, error.instance
    if error.validator == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        unknown = [k for k in value if k not in allowed and not _pattern_allows(schema, k)]
        if unknown:
            bad = unknown[0]
            hint = did_you_mean(bad, allowed) or (
                f" (allowed: {', '.join(allowed)})" if allowed else "")
            return doc.error((*key, bad), f"unknown key '{bad}'{hint}")
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return doc.error(key, f"missing required key '{missing}'")
    if error.validator == "enum":
        options = ", ".join(map(str, error.validator_value))
        return doc.error(key, f"{value!r} is not one of: {options}"
                         f"{did_you_mean(str(value), map(str, error.validator_value))}",
                         of_value=True)
    if error.validator in ("type", "anyOf", "oneOf"):
        return doc.error(key, f"expected {_expected(schema)}, got {_describe(value)}",
                         of_value=True)
    if error.validator == "pattern":
        return doc.error(key, f"{value!r} does not match the pattern {error.validator_value}",
                         of_value=True)
    if error.validator == "minItems":
        return doc.error(key, "must not be empty", of_value=True)
    if error.validator in ("minProperties", "maxProperties"):
        return doc.error(key, "an expectation is one 'expect_...' key with its arguments "
                         "(and an optional 'severity')", of_value=True)
    if error.validator == "minimum":
        return doc.error(key, f"must be at least {error.validator_value}", of_value=True)
    return doc.error(key, error.message, of_value=True)


def _pattern_allows(schema: dict[str, Any], key: str) -> bool:
    import re

    return any(re.match(p, key) for p in schema.get("patternProperties", {}))


def _expected(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        names = []
        for option in options:
            if "$ref" in option:
                names.append("a mapping")
            elif option.get("type") != "null":
                names.append(_TYPE_NAMES.get(option.get("type", ""), "a value"))
        return " or ".join(dict.fromkeys(names)) or "a value"
    return _TYPE_NAMES.get(str(schema.get("type")), "a value")


def _describe(value: Any) -> str:
    for python_type, name in ((bool, "a boolean"), (int, "a number"), (float, "a number"),
                              (str, "a string"), (list, "a list"), (dict, "a mapping")):
        if isinstance(value, python_type):
            return f"{name} ({value!r})" if not isinstance(value, (list, dict)) else name
    return "null" if value is None else type(value).__name__


def _from_pydantic(doc: YamlDocument, error: Any) -> SpecError:
    key = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
    message = str(error["msg"]).removeprefix("Value error, ")
    return doc.error(key, message, of_value=True)
