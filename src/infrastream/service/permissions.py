"""Enforcing the permission rules of `domain.roles` in every use case, whatever face called."""

from __future__ import annotations

from infrastream.domain.errors import Forbidden
from infrastream.domain.roles import Principal


def require(principal: Principal, allowed: frozenset[str], action: str) -> None:
    """Refuse (Forbidden, naming the roles needed) unless `principal` holds one of `allowed`."""
    if not principal.holds(allowed):
        needed = " or ".join(sorted(allowed))
        raise Forbidden(f"{principal.name} may not {action}: it needs the role {needed}",
                        needed=sorted(allowed))
