"""`pipeline.schema.json`, generated from the spec models so the two cannot drift."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from framework.sources.registry import DEFAULT_KIND
from framework.spec.model import PipelineSpec

SCHEMA_FILE = "pipeline.schema.json"
SCHEMA_ID = "https://github.com/ecommerce-framework/framework/pipeline.schema.json"


class _KeepExamples(GenerateJsonSchema):
    """Keys of the schema sorted as pydantic does; examples kept as written (name first)."""

    def _sort_recursive(self, value: Any, parent_key: str | None = None) -> Any:
        if parent_key == "examples":
            return value
        return super()._sort_recursive(value, parent_key)


@lru_cache(maxsize=1)
def pipeline_schema() -> dict[str, Any]:
    schema = PipelineSpec.model_json_schema(by_alias=True, mode="validation",
                                            schema_generator=_KeepExamples)
    schema["properties"]["source"] = _by_kind(schema["properties"]["source"], schema["$defs"])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def _by_kind(source: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The source kinds as `if kind is K then K's schema` instead of pydantic's `oneOf`.

    A `oneOf` reports a mistake in one kind as "matches none of the kinds"; chosen by `kind`
    (absent means `sql`), every error names the exact key inside the kind the file meant, and
    an editor completes that kind's keys.
    """
    kinds: dict[str, str] = {}
    for option in source.pop("oneOf"):
        ref = option["$ref"]
        kinds[defs[ref.removeprefix("#/$defs/")]["properties"]["kind"]["const"]] = ref
    rules = []
    for kind, ref in kinds.items():
        chosen: dict[str, Any] = {"properties": {"kind": {
            "const": kind, "description": f"`{kind}` chooses this kind.", "examples": [kind]}},
            "required": ["kind"]}
        if kind == DEFAULT_KIND:
            chosen = {"anyOf": [{"not": {"required": ["kind"]}}, chosen]}
        rules.append({"if": {"type": "object", **chosen}, "then": {"$ref": ref}})
    return {**source, "type": "object",
            "properties": {"kind": {"enum": list(kinds), "examples": list(kinds),
                                    "description": f"Source kind; omit for `{DEFAULT_KIND}`."}},
            "allOf": rules}


def render_schema() -> str:
    return json.dumps(pipeline_schema(), indent=2, sort_keys=False) + "\n"
