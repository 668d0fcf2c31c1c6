"""The base of every read model the service layer hands the faces.

A read model is an immutable pydantic type with snake_case attributes that serialises with
the camelCase names the faces have always printed (`runsIn`, `createdAt`, …): the API uses
it as its `response_model` (so the OpenAPI documents exactly what clients get), the CLI
reads that JSON, and the Portal's templates read a model as they read that JSON:
`model["runsIn"]` (and `.get`) look a field up by its JSON name, read-only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ReadModel(BaseModel):
    """Immutable, camelCase on the wire, unknown fields refused when read back."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True, extra="forbid")

    def __getitem__(self, name: str) -> Any:
        """The field whose JSON name (or attribute name) is `name`."""
        field = _field_of(type(self), name)
        if field is None:
            raise KeyError(name)
        return getattr(self, field)

    def get(self, name: str, default: Any = None) -> Any:
        field = _field_of(type(self), name)
        return default if field is None else getattr(self, field)

    def to_json(self) -> dict[str, Any]:
        """The JSON the faces print (camelCase names, ISO times)."""
        return self.model_dump(mode="json", by_alias=True)


def _field_of(model: type[ReadModel], name: str) -> str | None:
    fields = model.model_fields
    if name in fields:
        return name
    return next((f for f, info in fields.items() if info.alias == name), None)
