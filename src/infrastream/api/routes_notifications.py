"""The REST routes of notification subscriptions: who hears what, on which channel.

Thin like `routes.py`: parse, call the service layer, return its answer. (The channels and
the deliveries have their own routes, on the delivery side.)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from infrastream.domain.inputs import MAX_ID
from infrastream.domain.notifications import EventKind
from infrastream.service import notification_subscriptions as subscriptions
from infrastream.service.notification_subscriptions import Selector, SubscriptionView

from .deps import PrincipalDep, ServicesDep
from .problems import declared
from .refusals_api import mutation
from .schemas import Body, Name

router = APIRouter(prefix="/api/v1")


class SubscriptionCreate(Body):
    channel: Name = Field(examples=["releases-slack"])
    selector: Selector = Field(description="Whom it concerns: a role asked to act, the team "
                               "owning the application set, a person told, or everyone")
    value: Annotated[str, Field(max_length=63)] = Field(
        "", description="The role, team or user name (empty for everyone)", examples=["qa"])
    track: Name | None = Field(None, description="Only this track's events (default: every "
                               "track)")
    events: list[EventKind] = Field(default_factory=list, max_length=len(EventKind),
                                    description="Only these kinds (default: every kind)")




@router.get("/notification-subscriptions", tags=["notifications"],
            responses=declared(401, 403))
def list_subscriptions(services: ServicesDep,
                       principal: PrincipalDep) -> list[SubscriptionView]:
    return subscriptions.list_subscriptions(services, principal)


@router.post("/notification-subscriptions", status_code=201, tags=["notifications"],
             responses=declared(401, 403, 404, 409, 422),
             openapi_extra=mutation("notification.subscribe", "notification-channel"))
def subscribe(body: SubscriptionCreate, services: ServicesDep,
              principal: PrincipalDep) -> SubscriptionView:
    """Subscribe a channel to the events that concern a role, a team, a person or everyone."""
    return subscriptions.subscribe(services, principal, body.channel,
                                   selector=body.selector.value, value=body.value,
                                   track=body.track, events=[e.value for e in body.events])


@router.delete("/notification-subscriptions/{subscription_id}", tags=["notifications"],
               responses=declared(401, 403, 404, 422),
               openapi_extra=mutation("notification.unsubscribe", "notification-subscription",
                                      "{subscription_id}"))
def unsubscribe(services: ServicesDep, principal: PrincipalDep,
                subscription_id: int = Path(ge=1, le=MAX_ID)) -> SubscriptionView:
    return subscriptions.unsubscribe(services, principal, subscription_id)
