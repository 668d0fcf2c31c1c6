"""Manifests of apiVersion `lowops.manifests.v1`: models, loading and validation.

Pure: this package parses text it is given and never touches files, the network or the
clock. `load_texts` is the entry point; `Bundle` is what it produces.
"""

from .application import Application, ApplicationSet, ApplicationSpec, EnvVar
from .bundle import Bundle, LoadResult, check_bundle, collection_paused, load_texts
from .diagnostics import CODES, Diagnostic, Severity
from .environment import Environment, Tier
from .fields import API_VERSION, format_duration, parse_duration
from .kinds import KINDS, Manifest
from .stored import (
    Parsed,
    assemble,
    check_with_stored,
    from_body,
    load_with_stored,
    parse,
    stored_source,
)
from .track import ApprovalRule, Lane, ReleaseTrack, Stage

__all__ = [
    "API_VERSION",
    "CODES",
    "KINDS",
    "Application",
    "ApplicationSet",
    "ApplicationSpec",
    "ApprovalRule",
    "Bundle",
    "Diagnostic",
    "EnvVar",
    "Environment",
    "Lane",
    "LoadResult",
    "Manifest",
    "Parsed",
    "ReleaseTrack",
    "Severity",
    "Stage",
    "Tier",
    "assemble",
    "check_bundle",
    "check_with_stored",
    "collection_paused",
    "format_duration",
    "from_body",
    "load_texts",
    "load_with_stored",
    "parse",
    "parse_duration",
    "stored_source",
]
