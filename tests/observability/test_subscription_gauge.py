"""``netweave_subscriptions{tenant}``: kept by the notification engine over a real Redis store.

The engine refreshes its subscription index when it emits the first change after a
subscription changed; the gauge then counts the subscriptions by tenant (``""`` for the
platform's), and a tenant whose last subscription went loses its series.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from netweave.adapters.base import EventType, InventoryEvent
from netweave.models.inventory import ObjectKind, ResourcePool
from netweave.notifications.engine import NotificationEngine
from netweave.observability.metrics import Metrics
from netweave.store.base import SubscriptionRecord
from netweave.store.redis import RedisStore

OCLOUD = "11111111-1111-1111-1111-111111111111"


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    redis_store = RedisStore.from_url(redis_url, prefix=redis_prefix, poll_interval=0.02)
    yield redis_store
    await redis_store.aclose()


def change(serial: int) -> InventoryEvent:
    pool = ResourcePool(
        resource_pool_id=f"00000000-0000-0000-0000-{serial:012d}",
        name=f"pool-{serial}",
        description="d",
        o_cloud_id=OCLOUD,
        global_location_id="ES-MAD-1",
    )
    return InventoryEvent(ObjectKind.RESOURCE_POOL, EventType.CREATE, pool.object_id, post=pool)


def by_tenant(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["tenant"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "netweave_subscriptions"
        for sample in family.samples
    }


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not check():
            await asyncio.sleep(0.01)


async def test_subscriptions_are_counted_by_tenant(store: RedisStore) -> None:
    records = [
        SubscriptionRecord(subscription_id="p1", callback="http://smo.example/p1"),
        SubscriptionRecord(subscription_id="a1", callback="http://a.example/1", tenant="smo-a"),
        SubscriptionRecord(subscription_id="a2", callback="http://a.example/2", tenant="smo-a"),
        SubscriptionRecord(subscription_id="b1", callback="http://b.example/1", tenant="smo-b"),
    ]
    for record in records:
        await store.add_subscription(record)
    metrics = Metrics(version="test", backend="simulated")
    engine = NotificationEngine(
        store, api_root="http://gw", replica="r1", lease_ttl=1.0, metrics=metrics
    )
    task = asyncio.create_task(engine.run())
    try:
        assert by_tenant(metrics) == {}  # nothing is known before the engine loads them
        engine.on_event(change(1))
        await until(lambda: by_tenant(metrics) == {"": 1, "smo-a": 2, "smo-b": 1})

        await store.remove_subscription("b1")
        await store.remove_subscription("p1")
        engine.on_event(change(2))
        await until(lambda: by_tenant(metrics) == {"": 0, "smo-a": 2})
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
