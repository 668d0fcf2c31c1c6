"""What every program Infrastream launches for an application gets, in one place.

The `local` target starts applications, the `integration-tests` gate starts test commands,
and the Kubernetes renderer writes the variables a Pod gets: all of them give the program a
clean base environment (the basics of ours, without our virtualenv on PATH), the same
`INFRASTREAM_*` variables, and all of them redact secret values from whatever the program
prints before anyone sees it. The adapters are siblings that may not import each other, so
this sits below them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

BASE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")
"""The variables of our own environment a launched program inherits."""

INJECTED = ("INFRASTREAM_APP", "INFRASTREAM_VERSION", "INFRASTREAM_RELEASE",
            "INFRASTREAM_ENVIRONMENT")
"""The variables Infrastream sets for every program it launches for an application."""

RELEASE_SCOPED = frozenset({"INFRASTREAM_RELEASE"})
"""Injected variables that change with every release even when the build does not: the
Kubernetes renderer leaves them out, so an unchanged application is not rolled for nothing
(the release is on the environment's objects and in the commit instead)."""


def injected_variables(app: str, version: str, release: str, environment: str, *,
                       release_scoped: bool = True) -> dict[str, str]:
    """The `INFRASTREAM_*` variables of one application's program."""
    values = dict(zip(INJECTED, (app, version, release, environment), strict=True))
    if not release_scoped:
        values = {name: value for name, value in values.items() if name not in RELEASE_SCOPED}
    return values


def base_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The basics of `source` (default: `os.environ`) a child needs, without any virtualenv."""
    source = os.environ if source is None else source
    env = {name: source[name] for name in BASE_VARIABLES if name in source}
    venv = source.get("VIRTUAL_ENV")
    if venv and "PATH" in env:
        venv_bin = os.path.join(venv, "bin")
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    return env


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `***` (longest first)."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text
