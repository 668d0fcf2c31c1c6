"""Which freeze windows hold a stage's environments now (the current FreezeWindow manifests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from infrastream.domain.freeze import Frozen, frozen
from infrastream.manifests import Stage

from ..context import Services
from .manifests import current_bundle


def freezes_holding(services: Services, stage: Stage, lane: str, now: datetime,
                    conn: Connection | None = None) -> list[Frozen]:
    """The freeze windows that hold any environment of `stage` now (current manifests)."""
    windows = list(current_bundle(services, conn).freezes.values())
    found = [frozen(windows, env, lane, now) for env in stage.environments]
    return [f for f in found if f is not None]
