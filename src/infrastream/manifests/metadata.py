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
    team: Name | None = None
    """The team that owns it (`infrastream team`): only the team's members among the kind's
    owners may change it, and the team reviews its pull requests (CODEOWNERS). Omitted: any
    holder of the kind's owner role may."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Free-form key/value labels."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Free-form key/value annotations (never interpreted by Infrastream)."""
