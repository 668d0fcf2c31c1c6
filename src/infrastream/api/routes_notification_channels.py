"""The REST routes of notification channels (add, list, get, delete, test) and of the
deliveries: where notifications go and how their delivery went."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from infrastream.service import notification_channels, notification_outbox
from infrastream.service.notification_channels import ChannelView, TestResult
from infrastream.service.notification_outbox import DeliveryView

from .deps import PrincipalDep, ServicesDep
from .problems import declared
from .refusals_api import mutation
from .schemas_notifications import ChannelCreate

router = APIRouter(prefix="/api/v1")


@router.post("/notification-channels", status_code=201, tags=["notifications"],
             response_model=ChannelView, responses=declared(401, 403, 409, 422),
             openapi_extra=mutation("notification.channel.add", "notification-channel"))
def add_channel(body: ChannelCreate, services: ServicesDep,
                principal: PrincipalDep) -> ChannelView:
    """Add a channel; its webhook URL, password or secret is stored encrypted, never shown."""
    return notification_channels.add_channel(services, principal, body.name, body.kind,
                                             body.settings())


@router.get("/notification-channels", tags=["notifications"],
            response_model=list[ChannelView], responses=declared(401, 422))
def list_channels(services: ServicesDep, principal: PrincipalDep) -> list[ChannelView]:
    return notification_channels.list_channels(services)


@router.get("/notification-channels/{name}", tags=["notifications"],
            response_model=ChannelView, responses=declared(401, 404, 422))
def get_channel(name: str, services: ServicesDep, principal: PrincipalDep) -> ChannelView:
    return notification_channels.get_channel(services, name)


@router.delete("/notification-channels/{name}", tags=["notifications"],
               response_model=ChannelView, responses=declared(401, 403, 404, 422),
               openapi_extra=mutation("notification.channel.remove", "notification-channel",
                                      "{name}"))
def remove_channel(name: str, services: ServicesDep, principal: PrincipalDep) -> ChannelView:
    return notification_channels.remove_channel(services, principal, name)


@router.post("/notification-channels/{name}/test", tags=["notifications"],
             response_model=TestResult, responses=declared(401, 403, 404, 422, 502),
             openapi_extra=mutation("notification.channel.test", "notification-channel",
                                    "{name}"))
def test_channel(name: str, services: ServicesDep, principal: PrincipalDep) -> TestResult:
    """Send a test notification now and report the receiver's answer."""
    return notification_channels.test_channel(services, principal, name)


@router.get("/notification-deliveries", tags=["notifications"],
            response_model=list[DeliveryView], responses=declared(401, 422))
def list_deliveries(services: ServicesDep, principal: PrincipalDep,
                    outcome: Literal["pending", "delivered", "failed"] | None = None,
                    channel: str | None = None,
                    limit: int = Query(50, ge=1, le=500)) -> list[DeliveryView]:
    """Deliveries of notifications to channels, newest first, with their outcome."""
    return notification_outbox.list_deliveries(services, principal, outcome, channel, limit)
