"""`pipeline.schema.json`, generated from the spec models so the two cannot drift."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

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
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    return json.dumps(pipeline_schema(), indent=2, sort_keys=False) + "\n"
