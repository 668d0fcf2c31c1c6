"""The manifest kinds of `lowops.manifests.v1`, by name."""

from __future__ import annotations

from .application import Application, ApplicationSet
from .environment import Environment
from .fields import API_VERSION
from .freeze import FreezeWindow
from .track import ReleaseTrack

Manifest = ReleaseTrack | ApplicationSet | Application | Environment | FreezeWindow

KINDS: dict[str, type[Manifest]] = {
    "ReleaseTrack": ReleaseTrack,
    "ApplicationSet": ApplicationSet,
    "Application": Application,
    "Environment": Environment,
    "FreezeWindow": FreezeWindow,
}

#: Which kind each kind's metadata.parent must be (None: no parent is required).
PARENT_KIND: dict[str, str | None] = {
    "Application": "ApplicationSet",
    "ApplicationSet": "ReleaseTrack",
    "ReleaseTrack": None,
    "Environment": None,
    "FreezeWindow": None,
}

__all__ = ["API_VERSION", "KINDS", "PARENT_KIND", "Manifest"]
