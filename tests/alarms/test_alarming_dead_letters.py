"""Dead letters of alarm subscriptions (they share the inventory's outbox): replayable while
the alarm subscription exists, on memory and Redis."""

from __future__ import annotations

import uuid

from tests.alarms.fakes import make_rig, node, signal

from netweave.store.alarms import AlarmStore, AlarmSubscriptionRecord, InMemoryAlarmStore
from netweave.store.base import Store
from netweave.store.memory import InMemoryStore


async def test_alarm_dead_letters_can_be_replayed(stores: tuple[Store, AlarmStore]) -> None:
    store, alarms = stores
    if isinstance(store, InMemoryStore):
        assert isinstance(alarms, InMemoryAlarmStore)
        store.also_subscribed(alarms.has_subscription)  # as build_alarms wires it
    rig = make_rig(store, alarms)
    record = AlarmSubscriptionRecord(subscription_id=str(uuid.uuid4()), callback="http://x/")
    await alarms.add_subscription(record)
    await rig.engine().apply(signal(node()))
    (delivery,) = await store.take("w", limit=10, wait=0)
    await store.dead_letter(delivery, reason="HTTP 404 after 1 attempt: permanent failure")
    (dead,) = await store.dead_letters()
    assert await store.replay(dead.dead_letter_id)
    (again,) = await store.take("w", limit=10, wait=0)
    assert again.body == delivery.body and again.subscription_id == record.subscription_id
    await store.dead_letter(again, reason="HTTP 404")
    (dead,) = await store.dead_letters()
    await alarms.remove_subscription(record.subscription_id)
    assert not await store.replay(dead.dead_letter_id)  # its subscription is gone
