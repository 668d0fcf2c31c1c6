"""`metadata` of every manifest: a name, an optional parent, labels and annotations."""

from __future__ import annotations

from pydantic import Field

from .fields import ManifestModel, Name


class ParentRef(ManifestModel):
    """The manifest this one belongs to: an Application's parent is an ApplicationSet, an
    ApplicationSet's parent is a ReleaseTrack."""

    kind: str
    """Kind of the parent manifest."""
    name: Name
    """Name of the parent manifest."""


class Metadata(ManifestModel):
    name: Name
    """Unique name among the manifests of the same kind (a DNS-1123 label)."""
    parent: ParentRef | None = None
    """The parent manifest (required for Application and ApplicationSet)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form key/value labels."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Free-form key/value annotations (never interpreted by Infrastream)."""
