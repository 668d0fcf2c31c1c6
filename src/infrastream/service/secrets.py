"""Secret variables: values supplied per environment and application, never shown again.

`secret set` stores a value encrypted (see `records.secret_values` for the key and the
decryption the jobs do); the API lists names and timestamps, never values, and the audit
trail records that a secret changed, never what it became.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from infrastream.domain.errors import Invalid, NotFound
from infrastream.domain.inputs import storable
from infrastream.domain.roles import MANAGE_SECRETS, Principal
from infrastream.manifests.environment import secret_route
from infrastream.store.clock import utc
from infrastream.store.tables import secrets

from .auditing import refusals
from .auditing import trail as audit
from .context import Services
from .permissions import require
from .readmodel import ReadModel
from .records.manifests import current_bundle
from .records.secret_values import fernet


class SecretView(ReadModel):
    """A secret variable's value was set: where, by whom and when (never the value)."""

    environment: str
    application: str
    name: str
    updated_at: str
    updated_by: str


class SecretSet(SecretView):
    delivery: str
    """How the value reaches the running application."""


@refusals.audited("secret.set", "secret",
                  lambda a: f"{a['environment']}/{a['app']}/{a['name']}")
def set_secret(services: Services, principal: Principal, environment: str, app: str,
               name: str, value: str) -> SecretSet:
    require(principal, MANAGE_SECRETS, "set secrets")
    bundle = current_bundle(services)
    if app not in bundle.applications:
        raise NotFound(f"application `{app}` does not exist")
    declared = {v.name for v in bundle.applications[app].spec.env if v.secret}
    if name not in declared:
        raise Invalid(f"`{app}` declares no secret variable `{name}` (secret variables: "
                      + (", ".join(sorted(declared)) or "none") + ")")
    if not value:
        raise Invalid("a secret value cannot be empty")
    storable("the secret value", value)
    delivery = secret_route(bundle.environment(environment))
    if not delivery.accepts_values:
        raise Invalid(f"secret values cannot reach `{environment}` this way: {delivery.how}")
    ciphertext = fernet(services.data_dir).encrypt(value.encode()).decode()
    now = services.now()
    with services.transaction() as conn:
        existed = conn.execute(delete(secrets).where(
            (secrets.c.environment == environment) & (secrets.c.app == app)
            & (secrets.c.name == name))).rowcount
        conn.execute(insert(secrets).values(environment=environment, app=app, name=name,
                                            ciphertext=ciphertext, updated_at=now,
                                            updated_by=principal.name))
        audit.record(conn, at=now, actor=principal.name, action="secret.set",
                     object_type="secret", object_id=f"{environment}/{app}/{name}",
                     after={"changed": bool(existed), "value": "<redacted>"})
    return SecretSet(environment=environment, application=app, name=name,
                     updated_at=now.isoformat(), updated_by=principal.name,
                     delivery=f"{delivery.how}: the running application gets the new value at "
                     "its next deployment")


def list_secrets(services: Services, environment: str | None = None) -> list[SecretView]:
    query = select(secrets.c.environment, secrets.c.app, secrets.c.name, secrets.c.updated_at,
                   secrets.c.updated_by).order_by(secrets.c.environment, secrets.c.app,
                                                  secrets.c.name)
    if environment:
        query = query.where(secrets.c.environment == environment)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    return [SecretView(environment=r.environment, application=r.app, name=r.name,
                       updated_at=(utc(r.updated_at) or r.updated_at).isoformat(),
                       updated_by=r.updated_by) for r in rows]


