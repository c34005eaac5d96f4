"""Alarm subscriptions: create, list, get and delete, with the inventory subscriptions' rules.

A subscription is checked completely before it is stored: its filter must parse
(:mod:`.filters`), its callback must pass the same :class:`CallbackPolicy` as inventory
callbacks (absolute http(s), not aimed at internal addresses, answering ``GET`` with 204),
and no alarm subscription of the same tenant with the same callback and filter may exist
(400, as the conformance suites expect for duplicates).  A tenant's ``maxSubscriptions``
quota bounds its alarm subscriptions (counted apart from its inventory subscriptions).

Subscriptions belong to the tenant whose principal created them: a tenant lists, gets and
deletes only its own (another tenant's are 404).  Deleting one drops its pending
notifications from the outbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from netweave.alarms.filters import parse_alarm_filter
from netweave.errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from netweave.models.alarms import AlarmSubscriptionCreate, AlarmSubscriptionInfo
from netweave.notifications.callbacks import CallbackPolicy
from netweave.query import PageMarkers, schema_of
from netweave.query.listing import (
    FieldSelectionParams,
    ListQuery,
    RenderedPage,
    list_page,
    render_one,
)
from netweave.store.alarms import AlarmStore, AlarmSubscriptionRecord
from netweave.store.base import SubscriptionStore

__all__ = ["AlarmSubscriptionService", "to_wire"]

_SCHEMA = schema_of(AlarmSubscriptionInfo)
_LISTING = "alarmSubscriptions"

QuotaLookup = Callable[[str], Awaitable[int | None]]


async def _no_quota(_tenant: str) -> int | None:
    return None


def to_wire(record: AlarmSubscriptionRecord) -> dict[str, Any]:
    shown = AlarmSubscriptionInfo(
        alarm_subscription_id=record.subscription_id,
        consumer_subscription_id=record.consumer_subscription_id,
        filter=record.filter,
        callback=record.callback,
    )
    return shown.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True, slots=True)
class _Listed:
    object_id: str
    wire: dict[str, Any]
    raw: bytes

    @classmethod
    def of(cls, record: AlarmSubscriptionRecord) -> _Listed:
        wire = to_wire(record)
        return cls(record.subscription_id, wire, orjson.dumps(wire))


class AlarmSubscriptionService:
    def __init__(
        self,
        store: AlarmStore,
        *,
        outbox: SubscriptionStore,
        policy: CallbackPolicy,
        http: httpx.AsyncClient,
        markers: PageMarkers,
        page_size: int,
        max_subscriptions: QuotaLookup = _no_quota,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``outbox`` is the gateway's store: deleting a subscription drops its queued
        deliveries there (``remove_subscription`` of an id that is no inventory
        subscription drops just its outbox queue)."""
        self._store = store
        self._outbox = outbox
        self._policy = policy
        self._http = http
        self._markers = markers
        self._page_size = page_size
        self._max_subscriptions = max_subscriptions
        self._clock = clock

    async def create(
        self, request: AlarmSubscriptionCreate, *, tenant: str | None = None
    ) -> dict[str, Any]:
        parse_alarm_filter(request.filter)  # 400 when it does not parse
        if tenant is not None:
            await self._check_quota(tenant)
        await self._policy.check(request.callback, http=self._http)
        record = AlarmSubscriptionRecord(
            subscription_id=str(uuid.uuid4()),
            callback=request.callback,
            consumer_subscription_id=request.consumer_subscription_id,
            filter=request.filter,
            created_at=self._clock(),
            tenant=tenant,
        )
        try:
            await self._store.add_subscription(record)
        except ConflictError:
            raise InvalidRequestError(
                "an alarm subscription with the same callback and filter already exists"
            ) from None
        return to_wire(record)

    async def list(self, query: ListQuery, *, tenant: str | None = None) -> RenderedPage:
        records = await self._store.list_subscriptions()
        if tenant is not None:
            records = [record for record in records if record.tenant == tenant]
        entries = sorted((_Listed.of(r) for r in records), key=lambda e: e.object_id)
        scope = query.scope(_LISTING)
        return list_page(
            entries,
            query,
            schema=_SCHEMA,
            markers=self._markers,
            scope=scope,
            page_size=self._page_size,
        )

    async def get(
        self, subscription_id: str, selection: FieldSelectionParams, *, tenant: str | None = None
    ) -> bytes:
        record = await self._own(subscription_id, tenant)
        return render_one(_Listed.of(record), selection, _SCHEMA)

    async def delete(self, subscription_id: str, *, tenant: str | None = None) -> None:
        await self._own(subscription_id, tenant)
        if not await self._store.remove_subscription(subscription_id):
            raise NotFoundError(f"alarm subscription {subscription_id} does not exist")
        await self._outbox.remove_subscription(subscription_id)

    async def _own(self, subscription_id: str, tenant: str | None) -> AlarmSubscriptionRecord:
        record = await self._store.get_subscription(subscription_id)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise NotFoundError(f"alarm subscription {subscription_id} does not exist")
        return record

    async def _check_quota(self, tenant: str) -> None:
        limit = await self._max_subscriptions(tenant)
        if limit is None:
            return
        held = sum(1 for r in await self._store.list_subscriptions() if r.tenant == tenant)
        if held >= limit:
            raise ForbiddenError(
                f"alarm subscription quota exceeded: tenant {tenant} may hold {limit}",
                attributes={"quota": "maxSubscriptions", "limit": str(limit)},
            )
