"""The subscription service: create, list, get, replace and delete inventory subscriptions.

Shared by every surface that manages subscriptions; the routers add only the envelope.
A subscription is checked completely before it is stored: its filter must parse, its
callback must be an acceptable, reachable URL (:mod:`.callbacks`), and no subscription
with the same callback and filter may exist (the conformance suites expect 400 there).
A replacement (netweave's ``PUT``) is checked exactly the same way, and the store swaps
it in atomically; deliveries already queued keep the callback and body they were
rendered for, while every change matched afterwards uses the new callback and filter.

Subscriptions belong to the tenant whose principal created them: a tenant's principals
list, get and delete only its own (another tenant's answer 404, as if they did not
exist), and the engine sends it only changes of objects that tenant may see.  A tenant's
``maxSubscriptions`` quota is checked on create (403: a quota is not a transient
condition that retrying cures, unlike the rate limit's 429).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from netweave.errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from netweave.models.subscriptions import Subscription, SubscriptionCreate
from netweave.notifications.callbacks import CallbackPolicy
from netweave.notifications.matching import parse_subscription_filter
from netweave.query import PageMarkers, schema_of
from netweave.query.listing import (
    FieldSelectionParams,
    ListQuery,
    RenderedPage,
    list_page,
    render_one,
)
from netweave.store.base import SubscriptionRecord, SubscriptionStore

__all__ = ["SubscriptionService"]

_SCHEMA = schema_of(Subscription)
_LISTING = "subscriptions"

#: the most subscriptions a tenant may hold (None: no limit)
QuotaLookup = Callable[[str], Awaitable[int | None]]


async def _no_quota(_tenant: str) -> int | None:
    return None


@dataclass(frozen=True, slots=True)
class _Listed:
    object_id: str
    wire: dict[str, Any]
    raw: bytes


def to_wire(record: SubscriptionRecord) -> dict[str, Any]:
    """The API's view of a stored subscription (never its signing secret)."""
    shown = Subscription(
        subscription_id=record.subscription_id,
        consumer_subscription_id=record.consumer_subscription_id,
        filter=record.filter,
        callback=record.callback,
    )
    return shown.model_dump(mode="json", by_alias=True, exclude_none=True)


class SubscriptionService:
    def __init__(
        self,
        store: SubscriptionStore,
        *,
        policy: CallbackPolicy,
        http: httpx.AsyncClient,
        markers: PageMarkers,
        page_size: int,
        max_subscriptions: QuotaLookup = _no_quota,
    ) -> None:
        self._store = store
        self._max_subscriptions = max_subscriptions
        self._policy = policy
        self._http = http
        self._markers = markers
        self._page_size = page_size

    async def create(
        self, request: SubscriptionCreate, *, tenant: str | None = None
    ) -> dict[str, Any]:
        parse_subscription_filter(request.filter)  # 400 when it does not parse
        if tenant is not None:
            await self._check_quota(tenant)
        await self._policy.check(request.callback, http=self._http)
        record = SubscriptionRecord(
            tenant=tenant,
            subscription_id=str(uuid.uuid4()),
            callback=request.callback,
            consumer_subscription_id=request.consumer_subscription_id,
            filter=request.filter,
            created_at=time.time(),
        )
        try:
            await self._store.add_subscription(record)
        except ConflictError:
            raise InvalidRequestError(
                "a subscription with the same callback and filter already exists"
            ) from None
        return to_wire(record)

    async def replace(
        self, subscription_id: str, request: SubscriptionCreate, *, tenant: str | None = None
    ) -> dict[str, Any]:
        """Replace the callback, filter and consumer id of one of ``tenant``'s subscriptions.

        Its id, creation time, signing secret and tenant stay; so do its pending
        deliveries (each goes to the callback it was queued for).  400 for a filter that
        does not parse, a callback the policy refuses, or the callback and filter of
        another subscription of the tenant; 404 for an id the tenant does not own.  The
        callback is checked only once the subscription is known to exist, so an unknown
        id never makes the gateway call anyone.
        """
        parse_subscription_filter(request.filter)
        current = await self._own(subscription_id, tenant)
        await self._policy.check(request.callback, http=self._http)
        record = dataclasses.replace(
            current,
            callback=request.callback,
            consumer_subscription_id=request.consumer_subscription_id,
            filter=request.filter,
        )
        try:
            replaced = await self._store.replace_subscription(record)
        except ConflictError:
            raise InvalidRequestError(
                "a subscription with the same callback and filter already exists"
            ) from None
        if not replaced:  # deleted meanwhile
            raise NotFoundError(f"subscription {subscription_id} does not exist")
        return to_wire(record)

    async def _check_quota(self, tenant: str) -> None:
        limit = await self._max_subscriptions(tenant)
        if limit is None:
            return
        held = sum(1 for r in await self._store.list_subscriptions() if r.tenant == tenant)
        if held >= limit:
            raise ForbiddenError(
                f"subscription quota exceeded: tenant {tenant} may hold {limit} subscriptions",
                attributes={"quota": "maxSubscriptions", "limit": str(limit)},
            )

    async def _own(self, subscription_id: str, tenant: str | None) -> SubscriptionRecord:
        record = await self._store.get_subscription(subscription_id)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise NotFoundError(f"subscription {subscription_id} does not exist")
        return record

    async def list(self, query: ListQuery, *, tenant: str | None = None) -> RenderedPage:
        records = await self._store.list_subscriptions()
        if tenant is not None:
            records = [record for record in records if record.tenant == tenant]
        entries = sorted((_listed(record) for record in records), key=lambda e: e.object_id)
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
        return render_one(_listed(record), selection, _SCHEMA)

    async def delete(self, subscription_id: str, *, tenant: str | None = None) -> None:
        await self._own(subscription_id, tenant)
        if not await self._store.remove_subscription(subscription_id):
            raise NotFoundError(f"subscription {subscription_id} does not exist")


def _listed(record: SubscriptionRecord) -> _Listed:
    wire = to_wire(record)
    return _Listed(record.subscription_id, wire, orjson.dumps(wire))
