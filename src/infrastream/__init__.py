"""Infrastream: a self-hosted release orchestrator.

Teams declare what runs (Application), what ships together (ApplicationSet) and how it must
travel to production (ReleaseTrack) as manifests; Infrastream turns builds into immutable
releases and walks them through the stages of the track, collecting sign-offs on the way.
"""

__version__ = "0.1.0"
