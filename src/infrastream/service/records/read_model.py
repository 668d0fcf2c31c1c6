"""The base of the typed values the SCM use cases return to the faces.

Frozen pydantic models with snake_case attributes in Python and camelCase in JSON, so the
API can name them as `response_model` (the OpenAPI then documents what clients get) and the
CLI and the Portal read the same fields.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)
