"""Manifests of apiVersion `lowops.manifests.v1`: models, loading and validation.

Pure: this package parses text it is given and never touches files, the network or the
clock. `load_texts` is the entry point; `Bundle` is what it produces.

The names below load on first use (PEP 562): a command that only needs the diagnostics
(the CLI printing a server's answer) never imports the pydantic models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "API_VERSION": ".fields",
    "Application": ".application",
    "ApplicationSet": ".application",
    "ApplicationSpec": ".application",
    "ApprovalRule": ".track",
    "Bundle": ".bundle",
    "CODES": ".diagnostics",
    "Diagnostic": ".diagnostics",
    "EnvVar": ".application",
    "Environment": ".environment",
    "KINDS": ".kinds",
    "Lane": ".track",
    "LoadResult": ".bundle",
    "Manifest": ".kinds",
    "Parsed": ".stored",
    "ReleaseTrack": ".track",
    "Severity": ".diagnostics",
    "Stage": ".track",
    "Tier": ".environment",
    "assemble": ".stored",
    "check_bundle": ".bundle",
    "check_with_stored": ".stored",
    "collection_paused": ".bundle",
    "format_duration": ".fields",
    "from_body": ".stored",
    "load_texts": ".bundle",
    "load_with_stored": ".stored",
    "parse": ".stored",
    "parse_duration": ".fields",
    "stored_source": ".stored",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value

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
