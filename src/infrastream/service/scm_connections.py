"""SCM connections: a GitHub or GitLab account Infrastream receives webhooks from and reports
commit statuses to, with its API token and webhook secret.

A connection is added by the platform team (`infrastream scm add github NAME`), the token and
secret read from stdin. Its settings are validated by the provider's own model (`scm.registry`)
and stored encrypted as a whole with the key secret values use (`records.secret_values`):
nothing returned, logged or audited here ever contains the token, the webhook secret or an
App's private key. What may be shown (type, API URL, status context, the Portal URL statuses
link to) is kept beside the ciphertext. `provider` builds the connection's `ScmProvider`
once per stored settings and hands the same one to every caller.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.fernet import InvalidToken
from pydantic import SecretStr
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from infrastream.domain.errors import Conflict, Invalid, NotFound, PermanentError
from infrastream.domain.roles import MANAGE_SCM, Principal
from infrastream.manifests.fields import is_dns_label
from infrastream.scm import DEFAULT_CONTEXT, ScmProvider, ScmRegistry
from infrastream.store.clock import utc
from infrastream.store.tables import scm_connections

from .auditing import trail as audit
from .context import Services
from .permissions import require
from .records.manifests import current_bundle
from .records.read_model import ReadModel
from .records.secret_values import fernet

REGISTRY = ScmRegistry()
"""The provider types connections may name (`github`, `gitlab`); embeddings may add more."""
RESERVED = frozenset({"connections", "deliveries", "pull-requests"})
"""Names the API's own paths under /api/v1/scm use."""
WEBHOOK_PATH = "/api/v1/scm/{name}/webhook"
COMMIT_PATHS = {"github": "{web}/{repository}/commit/{sha}",
                "gitlab": "{web}/{repository}/-/commit/{sha}"}


class ConnectionView(ReadModel):
    name: str
    type: str
    base_url: str
    context: str
    """The status context (GitHub) or name (GitLab) of the pre-release gate."""
    public_url: str
    """Where people open Infrastream: statuses link to the Portal under it."""
    webhook_url: str
    """What to enter as the webhook's payload URL on the Git host."""
    app_id: int | None = None
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Connected:
    """A connection as the gate uses it: its provider and what the statuses need."""

    name: str
    type: str
    provider: ScmProvider
    context: str
    public_url: str
    web_url: str

    def run_url(self, run_id: int) -> str:
        return f"{self.public_url}/portal/prereleases/{run_id}"

    def commit_url(self, repository: str, sha: str) -> str:
        return commit_url(self.type, self.web_url, repository, sha)


def commit_url(type_name: str, web_url: str, repository: str, sha: str) -> str:
    """Where people see commit `sha` of `repository` on the connection's host."""
    if not web_url:
        return ""
    template = COMMIT_PATHS.get(type_name, COMMIT_PATHS["github"])
    return template.format(web=web_url, repository=repository, sha=sha)


def web_hosts(conn: Connection) -> dict[str, tuple[str, str]]:
    """Per connection: its type and the web URL of its host (for links to commits)."""
    return {r.name: (r.type, r.public.get("webUrl") or "") for r in conn.execute(
        select(scm_connections.c.name, scm_connections.c.type, scm_connections.c.public))}


def add_connection(services: Services, principal: Principal, name: str, type_name: str, *,
                   token: str | None, webhook_secret: str, public_url: str,
                   base_url: str | None = None, context: str | None = None,
                   app_id: int | None = None, private_key: str | None = None,
                   installation_id: int | None = None) -> ConnectionView:
    require(principal, MANAGE_SCM, "connect Git hosts")
    if not is_dns_label(name) or name in RESERVED:
        raise Invalid(f"`{name[:80]}` is not a valid connection name: use at most 63 lowercase "
                      "letters, digits and `-`" + (" (that name is reserved)"
                                                   if name in RESERVED else ""))
    if not webhook_secret:
        raise Invalid("a connection needs the webhook secret (the second line on stdin): "
                      "without it no delivery can be verified")
    public = public_url.strip().rstrip("/")
    if not public.startswith(("http://", "https://")):
        raise Invalid(f"`{public_url[:120]}` is not the http(s) URL of this Infrastream server")
    chosen_context = (context or DEFAULT_CONTEXT).strip()
    if not chosen_context or len(chosen_context) > 255:
        raise Invalid("the status context must be 1 to 255 characters")
    settings: dict[str, Any] = {"type": type_name, "webhook_secret": webhook_secret}
    for key, value in (("base_url", base_url), ("token", token), ("app_id", app_id),
                       ("private_key", private_key), ("installation_id", installation_id)):
        if value not in (None, ""):
            settings[key] = value
    config = REGISTRY.parse_config(settings)
    try:
        provider = REGISTRY.build(config)
    except PermanentError as exc:
        raise Invalid(f"the {type_name} connection cannot work: {exc.reason}") from None
    _close(provider)
    shown = {"baseUrl": str(getattr(config, "base_url", "")), "context": chosen_context,
             "publicUrl": public, "webUrl": str(getattr(config, "web_url", "")),
             "appId": getattr(config, "app_id", None)}
    ciphertext = fernet(services.data_dir).encrypt(
        json.dumps(_plain(config.model_dump())).encode()).decode()
    now = services.now()
    try:
        with services.transaction() as conn:
            conn.execute(insert(scm_connections).values(
                name=name, type=type_name, settings=ciphertext, public=shown,
                created_at=now, created_by=principal.name))
            audit.record(conn, at=now, actor=principal.name, action="scm.connection.add",
                         object_type="scm-connection", object_id=name,
                         after={"type": type_name, **shown, "token": "<redacted>",
                                "webhookSecret": "<redacted>"})
    except IntegrityError:
        raise Conflict(f"a connection named `{name}` exists already (remove it first)") from None
    return _view(name, type_name, shown, now, principal.name)


def list_connections(services: Services) -> list[ConnectionView]:
    with services.db.connect() as conn:
        rows = conn.execute(select(scm_connections.c.name, scm_connections.c.type,
                                   scm_connections.c.public, scm_connections.c.created_at,
                                   scm_connections.c.created_by)
                            .order_by(scm_connections.c.name)).all()
    return [_view(r.name, r.type, r.public, utc(r.created_at) or r.created_at, r.created_by)
            for r in rows]


def remove_connection(services: Services, principal: Principal, name: str) -> ConnectionView:
    require(principal, MANAGE_SCM, "remove Git host connections")
    now = services.now()
    with services.transaction() as conn:
        row = conn.execute(select(scm_connections).where(scm_connections.c.name == name)
                           .with_for_update()).first()
        if row is None:
            raise NotFound(f"no SCM connection `{name}`")
        conn.execute(delete(scm_connections).where(scm_connections.c.name == name))
        audit.record(conn, at=now, actor=principal.name, action="scm.connection.remove",
                     object_type="scm-connection", object_id=name,
                     before={"type": row.type, **row.public})
    return _view(row.name, row.type, row.public, utc(row.created_at) or row.created_at,
                 row.created_by)


def connected(services: Services, name: str, conn: Connection | None = None) -> Connected:
    """The connection `name` with its provider (built once per stored settings)."""
    if conn is None:
        with services.db.connect() as own:
            return connected(services, name, own)
    row = conn.execute(select(scm_connections).where(scm_connections.c.name == name)).first()
    if row is None:
        raise NotFound(f"no SCM connection `{name}`")
    provider = _provider(services, row.settings)
    return Connected(row.name, row.type, provider, row.public["context"],
                     row.public["publicUrl"], row.public.get("webUrl") or "")


def known(conn: Connection) -> set[str]:
    return set(conn.execute(select(scm_connections.c.name)).scalars())


class ProtectionView(ReadModel):
    connection: str
    repository: str
    branch: str
    context: str
    outcome: str
    """applied, already, or needs-person (the token may not; `instructions` say who must
    set what, where)."""
    message: str
    instructions: str = ""
    settings_url: str | None = None


def protect(services: Services, principal: Principal, repository: str, branch: str,
            connection: str | None = None) -> ProtectionView:
    """Make the gate's status a required check for merges into `branch` of `repository`,
    through the host's API, or say exactly what a person with the right must set."""
    require(principal, MANAGE_SCM, "require the pre-release check")
    if not branch.strip():
        raise Invalid("name the branch merges must pass the check for (--branch)")
    if connection is None:
        named = sorted({a.spec.source.scm for a in current_bundle(services).applications
                        .values() if a.spec.source and a.spec.source.repository == repository})
        if len(named) != 1:
            raise Invalid(f"no single Application names {repository} as its source "
                          f"({'connections: ' + ', '.join(named) if named else 'none does'}): "
                          "name the connection with --connection")
        connection = named[0]
    scm = connected(services, connection)
    result = scm.provider.require_check(repository, branch.strip(), scm.context)
    now = services.now()
    with services.transaction() as conn:
        audit.record(conn, at=now, actor=principal.name, action="scm.protect",
                     object_type="scm-connection", object_id=connection,
                     after={"repository": repository, "branch": branch, "context": scm.context,
                            "outcome": result.outcome.value, "message": result.message})
    return ProtectionView(connection=connection, repository=repository, branch=branch.strip(),
                          context=scm.context, outcome=result.outcome.value,
                          message=result.message, instructions=result.instructions,
                          settings_url=result.settings_url)


_providers_lock = threading.Lock()
_providers: dict[str, ScmProvider] = {}


def _provider(services: Services, ciphertext: str) -> ScmProvider:
    key = hashlib.sha256(ciphertext.encode()).hexdigest()
    with _providers_lock:
        found = _providers.get(key)
    if found is not None:
        return found
    try:
        settings = json.loads(fernet(services.data_dir).decrypt(ciphertext.encode()))
    except InvalidToken:
        raise PermanentError("the connection's settings cannot be decrypted: is "
                             "INFRASTREAM_SECRET_KEY the key they were stored with?") from None
    built = REGISTRY.build(REGISTRY.parse_config(settings))
    with _providers_lock:
        if len(_providers) >= 64:
            for old in _providers.values():
                _close(old)
            _providers.clear()
        found = _providers.setdefault(key, built)
    if found is not built:
        _close(built)
    return found


def _close(provider: ScmProvider) -> None:
    close = getattr(provider, "close", None)
    if callable(close):
        close()


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """A settings dump with its secret values revealed, for the ciphertext only."""
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v
            for k, v in data.items() if v is not None}


def _view(name: str, type_name: str, public: dict[str, Any], created_at: datetime,
          created_by: str) -> ConnectionView:
    return ConnectionView(
        name=name, type=type_name, base_url=public.get("baseUrl") or "",
        context=public["context"], public_url=public["publicUrl"],
        webhook_url=public["publicUrl"] + WEBHOOK_PATH.format(name=name),
        app_id=public.get("appId"), created_at=created_at, created_by=created_by)
