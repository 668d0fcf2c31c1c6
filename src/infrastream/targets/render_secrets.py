"""The Secret `<app>-secrets`, and how its values reach a cluster without passing through Git.

Rendered Deployments only reference `<app>-secrets`; this module makes what fills it. For
the `kubernetes` target (and a `gitops` environment whose `secrets` route is `cluster`)
the Secret itself, carrying the values of the deployment request, sent by server-side apply
and never written anywhere else. For a `gitops` environment whose route is
`externalSecret`, an External Secrets Operator `ExternalSecret` committed beside the
application: it names the store and key the values are fetched from, never a value.
"""

from __future__ import annotations

import base64
from typing import Any

from infrastream.manifests.environment import ExternalSecrets, fill

from .base import AppDeployment
from .render import independent, metadata_of, secret_name

EXTERNAL_SECRETS_API = "external-secrets.io/v1"


def secret_variables(app: AppDeployment) -> list[str]:
    """The names of `app`'s secret variables, in declaration order."""
    return [v.name for v in app.spec.env if v.secret or v.name in app.secret_names]


def render_secret(app: AppDeployment, environment: str, *, app_set: str,
                  namespace: str) -> dict[str, Any] | None:
    """The Secret `<app>-secrets` with the values `app` carries, for server-side apply
    (never for Git); None when the application declares no secret variable. A variable
    without a value here is left out, so a key someone else provisioned is kept."""
    names = secret_variables(app)
    if not names:
        return None
    metadata, _, _ = metadata_of(app.app, environment, app_set, None, namespace)
    metadata["name"] = secret_name(app.app)
    data = {n: base64.b64encode(app.env[n].encode()).decode() for n in names if n in app.env}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque"}
    return {**secret, "data": data} if data else secret


def render_external_secret(app: AppDeployment, environment: str, settings: ExternalSecrets,
                           *, app_set: str) -> dict[str, Any] | None:
    """An External Secrets Operator ExternalSecret that fills `<app>-secrets` from the
    environment's store: the tree names where values are, never what they are."""
    names = secret_variables(app)
    if not names:
        return None
    metadata, _, _ = metadata_of(app.app, environment, app_set, None, None)
    metadata["name"] = secret_name(app.app)
    key = fill(settings.remote_key, app=app.app, environment=environment)
    store = settings.secret_store_ref
    return independent([{
        "apiVersion": EXTERNAL_SECRETS_API, "kind": "ExternalSecret", "metadata": metadata,
        "spec": {"refreshInterval": settings.refresh_interval,
                 "secretStoreRef": {"name": store.name, "kind": store.kind},
                 "target": {"name": secret_name(app.app), "creationPolicy": "Owner"},
                 "data": [{"secretKey": n, "remoteRef": {"key": key, "property": n}}
                          for n in names]}}])[0]
