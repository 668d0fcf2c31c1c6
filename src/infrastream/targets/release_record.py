"""The release record: the one environment-level object that names the release.

Application objects leave the release out so that a release which does not change an
application leaves its file byte for byte (no churn for Argo CD or Flux). Which release
deployed last, its digest, and per application the release that put its build there live
here instead: a ConfigMap `infrastream-release-<environment>` in the environment's tree or
namespace, rewritten at every deployment, read back by `status`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .render import COMPONENT, ENVIRONMENT, MANAGED_BY, MANAGER, app_set_of, label_value

RECORD = "release-record"
"""The `app.kubernetes.io/component` of the record (pruning never takes it for an app)."""


def release_record_name(environment: str) -> str:
    return label_value(f"infrastream-release-{environment}")


def render_release_record(environment: str, *, release: str, digest: str,
                          apps: Mapping[str, str], namespace: str | None = None
                          ) -> dict[str, Any]:
    """The one environment-level object that names the release: which release deployed
    last (and its digest), and per application the release that put its build there."""
    metadata: dict[str, Any] = {
        "name": release_record_name(environment),
        "labels": {MANAGED_BY: MANAGER, COMPONENT: RECORD},
        "annotations": {ENVIRONMENT: environment}}
    if namespace is not None:
        metadata["namespace"] = namespace
    data = {"environment": environment, "release": release, "digest": digest,
            **{f"{app}.release": by for app, by in sorted(apps.items())}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def recorded_releases(record: Mapping[str, Any] | None) -> dict[str, str]:
    """`{app: release}` from a release record (empty for None or anything else)."""
    data = (record or {}).get("data") or {}
    return {key.removesuffix(".release"): str(value) for key, value in data.items()
            if key.endswith(".release")}


def merge_releases(recorded: Mapping[str, str], request_release: str, apps: Sequence[str],
                   *, prune: bool) -> dict[str, str]:
    """The record's per-app releases after a deployment of `apps` by `request_release`:
    with `prune`, applications of the same set that the release no longer carries go."""
    merged = dict(recorded)
    if prune:
        own_set = app_set_of(request_release)
        merged = {a: r for a, r in merged.items() if app_set_of(r) != own_set}
    merged.update({app: request_release for app in apps})
    return merged
