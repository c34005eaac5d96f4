"""The alarm store contract, against memory and a real Redis: compare-and-set records, the
active index, clear marks, purging, subscriptions, configuration, and (Redis) persistence."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests.alarms.conftest import StoreFactory
from tests.alarms.fakes import NODE_TYPE

from netweave.errors import ConflictError
from netweave.models.alarms import AlarmEventRecord, PerceivedSeverity, format_time
from netweave.store.alarms import (
    AlarmStore,
    AlarmSubscriptionRecord,
    RedisAlarmStore,
    StoredAlarm,
    next_revision,
)
from netweave.store.base import Store
from netweave.store.redis import RedisStore

T0 = 1_800_000_000.0


def alarm(key: str = "node-1/node-not-ready", *, at: float = T0, severity: int = 0) -> StoredAlarm:
    record = AlarmEventRecord(
        alarm_event_record_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}@{at}")),
        alarm_definition_id=str(uuid.uuid4()),
        probable_cause_id=str(uuid.uuid4()),
        alarm_raised_time=format_time(at),
        resource_type_id=NODE_TYPE,
        resource_id=str(uuid.uuid4()),
        perceived_severity=PerceivedSeverity(severity),
        extensions={"nested": {"a": [1, 2]}},
    )
    return StoredAlarm(
        record=record,
        key=key,
        definition_key="node-not-ready",
        definition_name="Node not ready",
        clearing_type="AUTOMATIC",
        resource_pool_id="pool-1",
        raised_at=at,
    )


def clear(stored: StoredAlarm, *, at: float) -> StoredAlarm:
    record = stored.record.model_copy(
        update={
            "perceived_severity": PerceivedSeverity.CLEARED,
            "alarm_cleared_time": format_time(at),
            "alarm_changed_time": format_time(at),
        }
    )
    return next_revision(stored, record=record, cleared_at=at)


def subscription(callback: str = "https://smo.example/alarms", **fields: object):
    defaults: dict[str, object] = {
        "subscription_id": str(uuid.uuid4()),
        "callback": callback,
        "created_at": T0,
    }
    return AlarmSubscriptionRecord(**{**defaults, **fields})  # type: ignore[arg-type]


async def test_create_get_list_and_active_index(stores: tuple[Store, AlarmStore]) -> None:
    _, store = stores
    first = alarm()
    assert await store.create_alarm(first)
    assert await store.get_alarm(first.alarm_id) == first
    assert await store.list_alarms() == [first]
    assert await store.active_alarms() == {first.key: first}
    assert await store.active_alarm(first.key) == first
    assert await store.active_alarm("no/such") is None
    assert await store.get_alarm(str(uuid.uuid4())) is None
    # the same id again, or another alarm of an active key: refused, nothing written
    assert not await store.create_alarm(first)
    other_time = alarm(at=T0 + 5)
    assert not await store.create_alarm(other_time)
    assert await store.list_alarms() == [first]


async def test_update_is_compare_and_set(stores: tuple[Store, AlarmStore]) -> None:
    _, store = stores
    first = alarm()
    await store.create_alarm(first)
    changed = next_revision(
        first,
        record=first.record.model_copy(update={"perceived_severity": PerceivedSeverity.MAJOR}),
    )
    assert await store.update_alarm(changed, expected_revision=1)
    assert (await store.get_alarm(first.alarm_id)) == changed
    # a writer that read revision 1 loses: nothing is overwritten
    stale = next_revision(
        first, record=first.record.model_copy(update={"alarm_acknowledged": True})
    )
    assert not await store.update_alarm(stale, expected_revision=1)
    assert (await store.get_alarm(first.alarm_id)) == changed
    # an update of a record that does not exist writes nothing
    ghost = alarm("ghost/x")
    assert not await store.update_alarm(next_revision(ghost), expected_revision=1)
    assert await store.get_alarm(ghost.alarm_id) is None


async def test_clearing_leaves_the_active_index_and_marks_the_key(
    stores: tuple[Store, AlarmStore],
) -> None:
    _, store = stores
    first = alarm()
    await store.create_alarm(first)
    assert await store.last_cleared(first.key) is None
    assert await store.update_alarm(clear(first, at=T0 + 60), expected_revision=1)
    assert await store.active_alarms() == {}
    assert await store.last_cleared(first.key) == T0 + 60
    kept = await store.get_alarm(first.alarm_id)
    assert kept is not None and not kept.active and kept.severity == 5
    # a new occurrence of the key may be raised now, and cleared later than before
    second = alarm(at=T0 + 120)
    assert await store.create_alarm(second)
    assert await store.active_alarm(first.key) == second
    await store.update_alarm(clear(second, at=T0 + 180), expected_revision=1)
    assert await store.last_cleared(first.key) == T0 + 180
    assert {a.alarm_id for a in await store.list_alarms()} == {first.alarm_id, second.alarm_id}


async def test_purge_drops_only_alarms_cleared_before_the_horizon(
    stores: tuple[Store, AlarmStore],
) -> None:
    _, store = stores
    old, recent, active = alarm("a/x"), alarm("b/x"), alarm("c/x", at=T0 - 10 * 86400)
    for stored in (old, recent, active):
        await store.create_alarm(stored)
    await store.update_alarm(clear(old, at=T0), expected_revision=1)
    await store.update_alarm(clear(recent, at=T0 + 86400), expected_revision=1)
    assert await store.purge_cleared(T0) == 0  # cleared exactly at the horizon: kept
    assert await store.purge_cleared(T0 + 1) == 1
    remaining = {a.alarm_id for a in await store.list_alarms()}
    assert remaining == {recent.alarm_id, active.alarm_id}  # an active alarm is never purged
    assert await store.last_cleared("a/x") is None  # its clear mark went with it
    assert await store.last_cleared("b/x") == T0 + 86400
    assert await store.purge_cleared(T0 + 1) == 0


async def test_purge_of_many(stores: tuple[Store, AlarmStore]) -> None:
    _, store = stores
    many = [alarm(f"n{i}/x") for i in range(1200)]  # more than one purge script call
    for stored in many:
        await store.create_alarm(stored)
        await store.update_alarm(clear(stored, at=T0), expected_revision=1)
    assert await store.purge_cleared(T0 + 1) == 1200
    assert await store.list_alarms() == []


async def test_subscriptions(stores: tuple[Store, AlarmStore]) -> None:
    _, store = stores
    generation = await store.subscriptions_generation()
    first = subscription(created_at=T0 + 1)
    await store.add_subscription(first)
    assert await store.subscriptions_generation() != generation
    assert await store.get_subscription(first.subscription_id) == first
    # same tenant, callback and filter: refused; another filter or tenant: fine
    with pytest.raises(ConflictError):
        await store.add_subscription(subscription())
    with pytest.raises(ConflictError):
        await store.add_subscription(first)
    other_filter = subscription(filter="NEW", created_at=T0)
    other_tenant = subscription(tenant="acme", created_at=T0 + 2)
    await store.add_subscription(other_filter)
    await store.add_subscription(other_tenant)
    listed = await store.list_subscriptions()
    assert listed == [other_filter, first, other_tenant]  # oldest first
    generation = await store.subscriptions_generation()
    assert await store.remove_subscription(first.subscription_id)
    assert not await store.remove_subscription(first.subscription_id)
    assert await store.subscriptions_generation() != generation
    assert await store.get_subscription(first.subscription_id) is None
    await store.add_subscription(subscription())  # its callback and filter are free again


async def test_configuration_is_compare_and_set(stores: tuple[Store, AlarmStore]) -> None:
    _, store = stores
    empty = await store.get_configuration()
    assert empty.data == {} and empty.revision == 0
    assert await store.put_configuration({"retentionPeriod": 7}, expected_revision=0) == 1
    assert await store.put_configuration({"retentionPeriod": 9}, expected_revision=0) == 0
    stored = await store.get_configuration()
    assert stored.data == {"retentionPeriod": 7} and stored.revision == 1
    assert await store.put_configuration({"retentionPeriod": 9}, expected_revision=1) == 2
    assert (await store.get_configuration()).data == {"retentionPeriod": 9}


async def test_racing_writers_one_wins(make_stores: StoreFactory) -> None:
    """Replicas creating the same alarm or updating the same revision: exactly one wins."""
    pairs = [make_stores() for _ in range(4)]
    first = alarm()
    created = await asyncio.gather(*(s.create_alarm(first) for _, s in pairs))
    assert created.count(True) == 1
    updates = [
        next_revision(first, record=first.record.model_copy(update={"alarm_acknowledged": True}))
        for _ in pairs
    ]
    won = await asyncio.gather(
        *(s.update_alarm(u, expected_revision=1) for (_, s), u in zip(pairs, updates, strict=True))
    )
    assert won.count(True) == 1


async def test_redis_state_survives_a_new_store(redis_url: str, redis_prefix: str) -> None:
    """A restart: a new store instance (a new client) finds everything the old one wrote."""
    store_before = RedisStore.from_url(redis_url, prefix=redis_prefix)
    before = RedisAlarmStore(store_before.client, prefix=redis_prefix)
    kept, gone = alarm("a/x"), alarm("b/x")
    await before.create_alarm(kept)
    await before.create_alarm(gone)
    await before.update_alarm(clear(gone, at=T0 + 5), expected_revision=1)
    sub = subscription(tenant="acme", filter="(eq,perceivedSeverity,0)")
    await before.add_subscription(sub)
    await before.put_configuration({"retentionPeriod": 3, "extensions": {}}, expected_revision=0)
    await store_before.aclose()

    store_after = RedisStore.from_url(redis_url, prefix=redis_prefix)
    after = RedisAlarmStore(store_after.client, prefix=redis_prefix)
    assert await after.active_alarms() == {kept.key: kept}
    assert await after.get_alarm(gone.alarm_id) == clear(gone, at=T0 + 5)
    assert await after.last_cleared(gone.key) == T0 + 5
    assert await after.list_subscriptions() == [sub]
    with pytest.raises(ConflictError):  # its uniqueness claim survived too
        await after.add_subscription(subscription(tenant="acme", filter=sub.filter))
    configuration = await after.get_configuration()
    assert configuration.data["retentionPeriod"] == 3 and configuration.revision == 1
    await store_after.aclose()
