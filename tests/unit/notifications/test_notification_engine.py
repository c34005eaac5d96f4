"""The notification engine with the real in-memory store (no HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from netweave.adapters.base import EventType, InventoryEvent
from netweave.models.inventory import ObjectKind, ResourcePool
from netweave.notifications.engine import LEASE, NotificationEngine
from netweave.observability.metrics import Metrics
from netweave.store.base import SubscriptionRecord
from netweave.store.memory import InMemoryStore

OCLOUD = "11111111-1111-1111-1111-111111111111"


def pool_event(name: str, description: str = "d") -> InventoryEvent:
    pool = ResourcePool(
        resource_pool_id=f"00000000-0000-0000-0000-{name.rjust(12, '0')}",
        name=name,
        description=description,
        o_cloud_id=OCLOUD,
        global_location_id="ES-MAD-1",
    )
    return InventoryEvent(ObjectKind.RESOURCE_POOL, EventType.CREATE, pool.object_id, post=pool)


async def store_with_subscription() -> InMemoryStore:
    store = InMemoryStore()
    await store.add_subscription(
        SubscriptionRecord(subscription_id="s1", callback="http://smo.example/cb")
    )
    return store


async def deliveries(store: InMemoryStore) -> list[str]:
    taken = []
    while batch := await store.take("t", limit=100, wait=0):
        for delivery in batch:
            taken.append(delivery.body.decode())
            await store.complete(delivery)
    return taken


async def run_until(engine: NotificationEngine, check, seconds: float = 5.0) -> None:
    task = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(seconds):
            while not await check():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_lease_holder_writes_one_delivery_per_matching_change() -> None:
    store = await store_with_subscription()
    engine = NotificationEngine(store, api_root="http://gw", replica="r1", lease_ttl=1.0)
    engine.on_event(pool_event("a"))
    engine.on_event(pool_event("b"))
    await run_until(engine, lambda: _depth_is(store, 2))
    bodies = await deliveries(store)
    assert len(bodies) == 2
    assert '"objectRef":"http://gw/o2ims-infrastructureInventory/v1/resourcePools/' in bodies[0]
    assert engine.is_emitter


async def test_a_replica_without_the_lease_writes_nothing() -> None:
    store = await store_with_subscription()
    assert await store.acquire(LEASE, "other", ttl=30) is not None
    engine = NotificationEngine(store, api_root="http://gw", replica="r1", lease_ttl=1.0)
    engine.on_event(pool_event("a"))

    async def settled() -> bool:
        await asyncio.sleep(0.2)
        return True

    await run_until(engine, settled)
    assert not engine.is_emitter
    assert await store.depth() == 0


async def test_a_take_over_writes_only_what_the_old_holder_had_not() -> None:
    store = await store_with_subscription()
    old = NotificationEngine(store, api_root="http://gw", replica="old", lease_ttl=0.3)
    new = NotificationEngine(store, api_root="http://gw", replica="new", lease_ttl=0.3)
    written, missed = pool_event("written"), pool_event("missed")
    old.on_event(written)
    await run_until(old, lambda: _depth_is(store, 1))  # the old holder wrote one change
    new.on_event(written)  # the follower saw both; the old holder died before "missed"
    new.on_event(missed)
    await run_until(new, lambda: _depth_is(store, 2))  # takes the lease once it expires
    bodies = await deliveries(store)
    assert len(bodies) == 2
    assert sum('"name":"missed"' in body for body in bodies) == 1
    assert sum('"name":"written"' in body for body in bodies) == 1


async def test_overflow_is_counted_never_silent() -> None:
    store = await store_with_subscription()
    metrics = Metrics(version="test", backend="simulated")
    engine = NotificationEngine(
        store, api_root="http://gw", replica="r1", buffer_limit=2, metrics=metrics
    )
    for name in ("a", "b", "c", "d"):
        engine.on_event(pool_event(name))
    assert engine.dropped == 2
    assert metrics.notifications_dropped._value.get() == 2


async def _depth_is(store: InMemoryStore, wanted: int) -> bool:
    return await store.depth() >= wanted
