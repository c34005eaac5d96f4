"""The alarm engine with a fake source: NEW, CHANGE, CLEAR, snapshot reconciliation (clears
missed while down), ids stable across restarts, the lease between replicas."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
from tests.alarms.conftest import StoreFactory
from tests.alarms.fakes import (
    API_ROOT,
    GLOBAL_CLOUD,
    NODE_TYPE,
    NOT_READY,
    OCLOUD,
    WARNING_EVENT,
    Clock,
    Rig,
    cleared,
    drain,
    make_rig,
    node,
    signal,
)

from netweave.adapters.alarms import AlarmSnapshot
from netweave.alarms.catalog import alarm_definition_id, alarm_record_id, probable_cause_id
from netweave.alarms.engine import AlarmEngine
from netweave.models.alarms import format_time
from netweave.store.alarms import AlarmStore, AlarmSubscriptionRecord, InMemoryAlarmStore
from netweave.store.base import Delivery, Store
from netweave.store.memory import InMemoryStore

CONSUMER = str(uuid.uuid4())


@pytest.fixture
def rig(stores: tuple[Store, AlarmStore], clock: Clock) -> Rig:
    return make_rig(*stores, clock=clock)


async def subscribe(rig: Rig, *, created_at: float = 0.0, **fields: object) -> str:
    record = AlarmSubscriptionRecord(
        subscription_id=str(uuid.uuid4()),
        callback=f"https://smo.example/{uuid.uuid4()}",
        consumer_subscription_id=CONSUMER,
        created_at=created_at,
        **fields,  # type: ignore[arg-type]
    )
    await rig.alarms.add_subscription(record)
    return record.subscription_id


def bodies(deliveries: list[Delivery]) -> list[dict]:
    return [orjson.loads(delivery.body) for delivery in deliveries]


def sample(rig: Rig, name: str, **labels: str) -> float:
    return rig.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_snapshot_raises_its_alarms(rig: Rig, clock: Clock) -> None:
    subscription = await subscribe(rig)
    resource = node()
    raised_at = clock() - 30
    item = signal(resource, at=raised_at, extensions={"nodeName": "n1", "reason": "KubeletDown"})
    await rig.engine().apply(AlarmSnapshot(active=[item]))

    raised = format_time(raised_at)
    expected_id = alarm_record_id(OCLOUD, item.key, raised)
    (stored,) = (await rig.alarms.active_alarms()).values()
    assert stored.alarm_id == expected_id
    assert stored.wire() == {
        "alarmEventRecordId": expected_id,
        "alarmDefinitionID": alarm_definition_id(OCLOUD, "node-not-ready"),
        "probableCauseID": probable_cause_id(OCLOUD, NOT_READY.probable_cause),
        "alarmRaisedTime": raised,
        "alarmAcknowledged": False,
        "resourceTypeID": NODE_TYPE,
        "resourceID": resource,
        "perceivedSeverity": 0,
        "extensions": {"nodeName": "n1", "reason": "KubeletDown"},
    }
    assert stored.clearing_type == "AUTOMATIC" and stored.definition_name == "Node not ready"

    (delivery,) = await drain(rig.store)
    assert delivery.subscription_id == subscription
    assert orjson.loads(delivery.body) == {
        "globalCloudID": GLOBAL_CLOUD,
        "consumerSubscriptionId": CONSUMER,
        "notificationEventType": 0,
        "objectRef": f"{API_ROOT}/o2ims-infrastructureMonitoring/v1/alarms/{expected_id}",
        "alarmEventRecordId": expected_id,
        "resourceTypeID": NODE_TYPE,
        "resourceID": resource,
        "alarmDefinitionID": alarm_definition_id(OCLOUD, "node-not-ready"),
        "probableCauseID": probable_cause_id(OCLOUD, NOT_READY.probable_cause),
        "alarmRaisedTime": raised,
        "alarmChangedTime": raised,
        "alarmAcknowledged": False,
        "perceivedSeverity": 0,
        "extensions": {"nodeName": "n1", "reason": "KubeletDown"},
    }
    labels = {"definition": "Node not ready", "severity": "critical"}
    assert sample(rig, "netweave_alarms_raised_total", **labels) == 1


async def test_severity_change_and_clear(rig: Rig, clock: Clock) -> None:
    await subscribe(rig)
    engine = rig.engine()
    first = signal(node(), WARNING_EVENT, at=clock() - 60)
    await engine.apply(first)
    await engine.apply(first)  # the same raise again: nothing new
    changed_at = clock() - 30
    await engine.apply(signal(first.resource_id, WARNING_EVENT, severity=1, at=changed_at))
    await engine.apply(signal(first.resource_id, WARNING_EVENT, severity=1, at=clock() - 20))
    cleared_at = clock() - 10
    await engine.apply(cleared(first, at=cleared_at))
    await engine.apply(cleared(first, at=clock()))  # clearing again: nothing
    await engine.apply(cleared(signal(node()), at=clock()))  # an alarm never raised: nothing

    types = [body["notificationEventType"] for body in bodies(await drain(rig.store))]
    assert types == [0, 1, 2]
    assert await rig.alarms.active_alarms() == {}
    (kept,) = await rig.alarms.list_alarms()
    assert kept.wire()["perceivedSeverity"] == 5
    assert kept.record.alarm_cleared_time == format_time(cleared_at)
    assert kept.record.alarm_changed_time == format_time(cleared_at)
    assert kept.record.alarm_raised_time == format_time(first.event_time)
    assert kept.clearing_type == "MANUAL"
    # cleared alarms are counted by the severity they had
    labels = {"definition": "Node warning event", "severity": "major"}
    assert sample(rig, "netweave_alarms_cleared_total", **labels) == 1


async def test_clears_missed_while_down(make_stores: StoreFactory, clock: Clock) -> None:
    """A restarted gateway's first snapshot lacks an alarm the store holds as active: it
    cleared while nobody was looking, and is cleared now."""
    rig = make_rig(*make_stores(), clock=clock)
    await subscribe(rig)
    stays, goes = signal(node(), at=clock() - 100), signal(node(), at=clock() - 90)
    await rig.engine("before").apply(AlarmSnapshot(active=[stays, goes]))
    await drain(rig.store)

    clock.advance(3600)  # down for an hour
    restarted = make_rig(*make_stores(), clock=clock)
    await restarted.engine("after").apply(AlarmSnapshot(active=[stays]))
    (notification,) = bodies(await drain(restarted.store))
    assert notification["notificationEventType"] == 2
    assert notification["resourceID"] == goes.resource_id
    assert notification["alarmChangedTime"] == format_time(clock())
    assert list(await restarted.alarms.active_alarms()) == [stays.key]


async def test_ids_stable_across_restarts(make_stores: StoreFactory, clock: Clock) -> None:
    rig = make_rig(*make_stores(), clock=clock)
    await subscribe(rig)
    snapshot = AlarmSnapshot(active=[signal(node(), at=clock() - 5), signal(node(), at=clock())])
    await rig.engine().apply(snapshot)
    ids = {alarm.alarm_id for alarm in await rig.alarms.list_alarms()}
    assert len(ids) == 2 and len(await drain(rig.store)) == 2
    # a restart on the same store: the same snapshot changes nothing, notifies nobody
    again = make_rig(*make_stores(), clock=clock)
    await again.engine().apply(snapshot)
    assert {alarm.alarm_id for alarm in await again.alarms.list_alarms()} == ids
    assert await drain(again.store) == []
    # a gateway without persistence derives the very same ids
    fresh = make_rig(InMemoryStore(clock=clock), InMemoryAlarmStore(), clock=clock)
    await fresh.engine().apply(snapshot)
    assert {alarm.alarm_id for alarm in await fresh.alarms.list_alarms()} == ids


async def test_a_new_raise_after_a_clear_is_a_new_alarm(rig: Rig, clock: Clock) -> None:
    engine = rig.engine()
    first = signal(node(), at=clock() - 30)
    await engine.apply(first)
    await engine.apply(cleared(first, at=clock() - 20))
    await engine.apply(first)  # a replay of the cleared occurrence: ignored
    # an occurrence from before the clear (a late signal, or a backend that re-lists an
    # alarm an operator cleared with a refreshed time): ignored too
    await engine.apply(signal(first.resource_id, at=clock() - 25))
    assert len(await rig.alarms.list_alarms()) == 1
    again = signal(first.resource_id, at=clock() - 10)
    await engine.apply(again)
    alarms = await rig.alarms.list_alarms()
    assert len(alarms) == 2 and len({a.alarm_id for a in alarms}) == 2
    assert (await rig.alarms.active_alarm(first.key)).record.alarm_raised_time == format_time(
        again.event_time
    )


async def test_unknown_definition_and_bad_severity(rig: Rig, clock: Clock) -> None:
    from dataclasses import replace

    odd = replace(signal(node(), at=clock()), definition_key="vendor-special", severity=9)
    await rig.engine().apply(odd)
    (stored,) = await rig.alarms.list_alarms()
    assert stored.record.alarm_definition_id == alarm_definition_id(OCLOUD, "vendor-special")
    assert stored.definition_name == "vendor-special" and stored.clearing_type == "AUTOMATIC"
    assert stored.severity == 4  # a raised alarm is never CLEARED: INDETERMINATE


async def test_extensions_that_are_not_json_become_strings(rig: Rig, clock: Clock) -> None:
    item = signal(node(), at=clock(), extensions={"when": clock, "n": 1})
    await rig.engine().apply(item)
    (stored,) = await rig.alarms.list_alarms()
    assert stored.record.extensions["n"] == 1
    assert isinstance(stored.record.extensions["when"], str)


# -- the running engine: stream, lease, takeover ------------------------------------------


async def running(engine: AlarmEngine, rig: Rig) -> asyncio.Task[None]:
    task = asyncio.create_task(engine.run(rig.source))
    return task


async def wait_for(predicate) -> None:
    async with asyncio.timeout(5):
        while not await predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
def live() -> Rig:
    """A rig on real time (leases expire) and memory stores."""
    return make_rig(InMemoryStore(), InMemoryAlarmStore())


async def test_run_applies_the_stream_while_holding_the_lease(live: Rig) -> None:
    await subscribe(live)
    early = signal(node())
    live.source.publish(early)  # active before the engine starts: in its first snapshot
    engine = live.engine(lease_ttl=0.3)
    task = await running(engine, live)
    try:
        await wait_for(lambda: asyncio.sleep(0, engine.is_emitter))
        later = signal(node())
        live.source.publish(later, cleared(early))
        await wait_for(lambda: asyncio.sleep(0, engine.applied >= 3))
        await engine.wait_idle()
        assert list(await live.alarms.active_alarms()) == [later.key]
        types = [b["notificationEventType"] for b in bodies(await drain(live.store))]
        assert types == [0, 0, 2]
        labels = {"severity": "critical"}
        assert live.metrics.registry.get_sample_value("netweave_alarms_active", labels) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await live.store.holder("alarm-emitter") is None  # released on the way out


async def test_one_replica_records_and_a_successor_reconciles(live: Rig) -> None:
    await subscribe(live)
    first, second = live.engine("r1", lease_ttl=0.3), live.engine("r2", lease_ttl=0.3)
    one = await running(first, live)
    await wait_for(lambda: asyncio.sleep(0, first.is_emitter))
    two = await running(second, live)
    try:
        a, b = signal(node()), signal(node())
        live.source.publish(a, b)
        await wait_for(lambda: asyncio.sleep(0, first.applied >= 3))
        await first.wait_idle()
        assert not second.is_emitter and second.applied == 0
        assert len(await drain(live.store)) == 2  # each raise notified once

        first.fencing_token = None  # the emitter dies: its lease is not released ...
        one.cancel()
        await asyncio.gather(one, return_exceptions=True)
        assert await live.store.holder("alarm-emitter") == "r1"  # ... but runs out
        c, a_cleared = signal(node()), cleared(a, at=time.time() - 0.5)
        live.source.publish(a_cleared, c)  # seen by r2 before it holds the lease
        await wait_for(lambda: asyncio.sleep(0, second.is_emitter))
        await wait_for(lambda: _active_keys(live.alarms, {b.key, c.key}))
        await second.wait_idle()
        assert second.applied == 0  # the takeover reconciled what r2 had seen
        types = sorted(body["notificationEventType"] for body in bodies(await drain(live.store)))
        assert types == [0, 2]
        (gone,) = [alarm for alarm in await live.alarms.list_alarms() if not alarm.active]
        assert gone.key == a.key  # cleared at the time of its clear signal, not the takeover
        assert gone.record.alarm_cleared_time == format_time(a_cleared.event_time)
    finally:
        for task in (one, two):
            task.cancel()
        await asyncio.gather(one, two, return_exceptions=True)


async def _active_keys(store: AlarmStore, keys: set[str]) -> bool:
    return set(await store.active_alarms()) == keys


async def test_replicas_on_redis_record_each_alarm_once(redis_url: str, redis_prefix: str) -> None:
    """Three gateways on one Redis read the same stream: one record and one notification
    per raise, whoever holds the lease."""
    from netweave.store.alarms import RedisAlarmStore
    from netweave.store.redis import RedisStore

    rigs, tasks, engines = [], [], []
    source = None
    for index in range(3):
        store = RedisStore.from_url(redis_url, prefix=redis_prefix, poll_interval=0.02)
        rig = make_rig(store, RedisAlarmStore(store.client, prefix=redis_prefix))
        if source is None:
            source = rig.source
        rig.source = source  # one backend, three readers
        engine = rig.engine(f"r{index}", lease_ttl=0.5)
        rigs.append(rig)
        engines.append(engine)
        tasks.append(asyncio.create_task(engine.run(source)))
    try:
        await subscribe(rigs[0])
        await wait_for(lambda: asyncio.sleep(0, any(e.is_emitter for e in engines)))
        raises = [signal(node()) for _ in range(20)]
        source.publish(*raises)
        await wait_for(lambda: _count(rigs[1].alarms, 20))
        await asyncio.sleep(0.2)  # let a second writer, if there were one, do its worst
        assert len(await rigs[2].alarms.list_alarms()) == 20
        deliveries = await drain(rigs[0].store, wait=0.1)
        assert len(deliveries) == 20
        assert len({orjson.loads(d.body)["alarmEventRecordId"] for d in deliveries}) == 20
        assert sum(e.is_emitter for e in engines) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for rig in rigs:
            await rig.store.aclose()


async def _count(store: AlarmStore, expected: int) -> bool:
    return len(await store.list_alarms()) >= expected


async def test_a_stream_that_fails_is_read_again(live: Rig) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def alarm_dictionaries(self):
            return live.source.alarm_dictionaries()

        async def alarm_signals(self):
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("backend went away")
            async for item in live.source.alarm_signals():
                yield item

    live.source.publish(signal(node()))
    engine = live.engine(lease_ttl=0.3, reconnect_delay=0.01)
    flaky = Flaky()
    task = asyncio.create_task(engine.run(flaky))
    try:
        await wait_for(lambda: _count(live.alarms, 1))
        assert flaky.calls == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_no_source_means_nothing_runs(live: Rig) -> None:
    engine = live.engine()
    started = time.monotonic()
    await engine.run(None)  # returns at once
    assert time.monotonic() - started < 1 and not engine.is_emitter
