"""What the portal needs to sign people in with the identity provider: the OpenID client
and the service's policy (issuer, group → role mapping, how long sessions may last)."""

from __future__ import annotations

from dataclasses import dataclass

from infrastream.oidc.client import Provider
from infrastream.service.single_sign_on import SsoPolicy


@dataclass(frozen=True)
class SingleSignOn:
    provider: Provider
    policy: SsoPolicy
