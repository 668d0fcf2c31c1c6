"""JSON Schema of the manifests, generated from the models (never written by hand).

The combined schema accepts any kind (selected by `kind`), which is what editors with
yaml-language-server want for a `# yaml-language-server: $schema=…` line.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from .kinds import KINDS, Manifest

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(kind: str | None = None) -> dict[str, Any]:
    """The schema of one kind, or of every kind when `kind` is None. KeyError if unknown."""
    if kind is not None:
        schema = KINDS[kind].model_json_schema(by_alias=True, mode="validation")
        schema["title"] = f"{kind} (lowops.manifests.v1)"
    else:
        adapter: TypeAdapter[Any] = TypeAdapter(
            Annotated[Manifest, Field(discriminator="kind")]
        )
        schema = adapter.json_schema(by_alias=True, mode="validation")
        schema["title"] = "Infrastream manifest (lowops.manifests.v1)"
    return {"$schema": _DIALECT, **schema}
