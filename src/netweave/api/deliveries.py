"""Dead letters of the delivery outbox: ``/o2ims/v1/deliveries/dead`` (netweave's own API).

An operator lists the notifications the gateway gave up on, with why, and replays one
once the subscriber is fixed: it goes back to the tail of its subscription's queue with
a fresh retry budget.
"""

from __future__ import annotations

import base64
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import Response

from netweave.errors import NotFoundError
from netweave.models.common import ProblemDetails, WireModel
from netweave.security.principal import tenant_of
from netweave.store.alarms import AlarmStore
from netweave.store.base import DeadLetter, Outbox, SubscriptionStore

PREFIX = "/o2ims/v1/deliveries/dead"
_PROBLEM = {"model": ProblemDetails, "content": {"application/problem+json": {}}}

router = APIRouter(prefix=PREFIX, tags=["netweave deliveries"], responses={503: _PROBLEM})


class DeadLetterInfo(WireModel):
    dead_letter_id: str
    subscription_id: str
    notification_id: str
    callback: str
    reason: str
    dead_at: float = Field(description="Unix time the delivery was given up.")
    attempts: int
    last_error: str | None = None
    event_time: float
    body: str = Field(description="The notification that was not delivered (base64).")


class DeadLetterList(WireModel):
    items: list[DeadLetterInfo]
    next_marker: str | None = None


def _outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.store
    return outbox


def _info(dead: DeadLetter) -> DeadLetterInfo:
    delivery = dead.delivery
    return DeadLetterInfo(
        dead_letter_id=dead.dead_letter_id,
        subscription_id=delivery.subscription_id,
        notification_id=delivery.notification_id,
        callback=delivery.callback,
        reason=dead.reason,
        dead_at=dead.dead_at,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        event_time=delivery.event_time,
        body=base64.b64encode(delivery.body).decode(),
    )


#: how many dead letters are scanned to find a tenant's own
_TENANT_SCAN = 10_000


async def _visible_dead_letters(request: Request, limit: int) -> list[DeadLetter]:
    """Dead letters the caller may see: all for the platform, a tenant's own otherwise
    (those of its subscriptions, inventory and alarm: they hold its callbacks and its
    notifications)."""
    tenant = tenant_of(request.scope)
    if tenant is None:
        return await _outbox(request).dead_letters(limit=limit)
    store: SubscriptionStore = request.app.state.store
    own = {r.subscription_id for r in await store.list_subscriptions() if r.tenant == tenant}
    alarm_store: AlarmStore | None = getattr(request.app.state, "alarm_store", None)
    if alarm_store is not None:
        alarm_subscriptions = await alarm_store.list_subscriptions()
        own.update(r.subscription_id for r in alarm_subscriptions if r.tenant == tenant)
    dead = await _outbox(request).dead_letters(limit=_TENANT_SCAN)
    return [item for item in dead if item.delivery.subscription_id in own][:limit]


@router.get("", response_model=DeadLetterList, operation_id="listDeadLetters")
async def list_dead_letters(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    dead = await _visible_dead_letters(request, limit)
    listing = DeadLetterList(items=[_info(item) for item in dead])
    return Response(
        content=orjson.dumps(listing.model_dump(mode="json", by_alias=True)),
        media_type="application/json",
    )


@router.post(
    "/{deadLetterId}/replay",
    status_code=202,
    responses={404: _PROBLEM},
    operation_id="replayDeadLetter",
    summary="Queue a dead letter for delivery again",
)
async def replay_dead_letter(request: Request, deadLetterId: str) -> Response:
    if tenant_of(request.scope) is not None and not any(
        item.dead_letter_id == deadLetterId
        for item in await _visible_dead_letters(request, _TENANT_SCAN)
    ):
        raise NotFoundError(f"dead letter {deadLetterId} does not exist")
    if not await _outbox(request).replay(deadLetterId):
        raise NotFoundError(
            f"dead letter {deadLetterId} does not exist (or its subscription was deleted)"
        )
    return Response(status_code=202)
