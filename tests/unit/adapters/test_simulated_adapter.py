"""The simulated adapter: reads, watch streams, churn, fan-out and shutdown."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from typing import Any

import pytest

from netweave.adapters.base import (
    Capability,
    EventType,
    InfrastructureAdapter,
    InventoryEvent,
    InventorySnapshot,
    WatchItem,
)
from netweave.adapters.simulated import SimulatedAdapter
from netweave.adapters.simulated.state import MAX_NODES, MAX_NOT_READY, MIN_NODES
from netweave.adapters.simulated.topology import build_topology
from netweave.models.ids import default_ocloud_id
from netweave.models.inventory import (
    MODEL_OF_KIND,
    DeploymentManager,
    InventoryModel,
    ObjectKind,
    Resource,
)

OCLOUD_ID = default_ocloud_id("demo")
TIMEOUT = 5.0

View = dict[ObjectKind, dict[str, InventoryModel]]


@pytest.fixture
async def adapter() -> AsyncIterator[SimulatedAdapter]:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID)
    yield adapter
    await adapter.aclose()


def view_of(snapshot: InventorySnapshot) -> View:
    return {kind: {o.object_id: o for o in objs} for kind, objs in snapshot.objects.items()}


def apply(view: View, events: Iterable[WatchItem]) -> View:
    """Apply events to a view as the inventory view does, checking every prior state."""
    for event in events:
        assert isinstance(event, InventoryEvent)
        assert view[event.kind].get(event.object_id) == event.prior
        if event.post is None:
            del view[event.kind][event.object_id]
        else:
            assert event.post.object_id == event.object_id
            view[event.kind][event.object_id] = event.post
    return view


def replay(snapshot: InventorySnapshot, events: Iterable[WatchItem]) -> View:
    return apply(view_of(snapshot), events)


async def view_of_adapter(adapter: SimulatedAdapter) -> View:
    return {
        kind: {o.object_id: o for o in await adapter.list_objects(kind)} for kind in MODEL_OF_KIND
    }


def steps(adapter: SimulatedAdapter, count: int) -> list[InventoryEvent]:
    return [event for _ in range(count) for event in adapter.apply_churn_step()]


async def next_item(stream: AsyncIterator[WatchItem]) -> WatchItem:
    return await asyncio.wait_for(anext(stream), TIMEOUT)


# -- construction and reads ----------------------------------------------------------------


def test_is_an_infrastructure_adapter() -> None:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID)
    assert isinstance(adapter, InfrastructureAdapter)
    assert SimulatedAdapter.name == "simulated"
    writes = {Capability.POOL_LIFECYCLE, Capability.RESOURCE_LIFECYCLE}
    assert adapter.capabilities == {Capability.WATCH, *writes}
    churning = SimulatedAdapter(ocloud_id=OCLOUD_ID, churn_interval=1.0)
    assert churning.capabilities == {Capability.WATCH, Capability.CHURN, *writes}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ocloud_id": "not-a-uuid"}, "ocloud_id must be a UUID"),
        ({"ocloud_id": OCLOUD_ID, "churn_interval": -1.0}, "churn_interval"),
        ({"ocloud_id": OCLOUD_ID, "max_pending_events": 0}, "max_pending_events"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatedAdapter(**kwargs)


def test_ocloud_id_is_normalised() -> None:
    upper = SimulatedAdapter(ocloud_id=OCLOUD_ID.upper())
    lower = SimulatedAdapter(ocloud_id=OCLOUD_ID)
    assert upper.apply_churn_step() == lower.apply_churn_step()


async def test_lists_and_gets_every_kind(adapter: SimulatedAdapter) -> None:
    topology = build_topology(OCLOUD_ID)
    for kind, expected in topology.objects().items():
        listed = await adapter.list_objects(kind)
        assert list(listed) == list(expected)
        for obj in expected:
            assert await adapter.get_object(kind, obj.object_id) == obj
        assert await adapter.get_object(kind, str(uuid.uuid4())) is None
    assert len(await adapter.list_objects(ObjectKind.RESOURCE)) == 29
    assert await adapter.list_objects(ObjectKind.CLOUD) == ()
    assert await adapter.get_object(ObjectKind.LOCATION, "ES-MAD-1") is not None
    node = topology.nodes[0]
    assert await adapter.get_object(ObjectKind.RESOURCE_POOL, node.resource_id) is None


# -- churn ---------------------------------------------------------------------------------


def test_churn_is_deterministic() -> None:
    first = steps(SimulatedAdapter(ocloud_id=OCLOUD_ID, seed=3), 100)
    second = steps(SimulatedAdapter(ocloud_id=OCLOUD_ID, seed=3), 100)
    other = steps(SimulatedAdapter(ocloud_id=OCLOUD_ID, seed=4), 100)
    assert first == second
    assert first != other


async def test_churn_events_are_valid_and_replay_to_the_final_state(
    adapter: SimulatedAdapter,
) -> None:
    async with aclosing(adapter.watch()) as stream:
        snapshot = await next_item(stream)
    assert isinstance(snapshot, InventorySnapshot)
    view = view_of(snapshot)
    seen: Counter[tuple[ObjectKind, EventType]] = Counter()
    for _ in range(600):
        events = adapter.apply_churn_step()
        assert events
        apply(view, events)
        for event in events:
            seen[event.kind, event.type] += 1
            for state in (event.prior, event.post):
                if state is not None:
                    model = MODEL_OF_KIND[event.kind]
                    assert type(state) is model
                    assert model.model_validate(state.to_wire()) == state
        nodes = [n for n in view[ObjectKind.RESOURCE].values() if isinstance(n, Resource)]
        assert MIN_NODES <= len(nodes) <= MAX_NODES
        not_ready = [n for n in nodes if n.extensions["status"] != "Ready"]
        assert len(not_ready) <= MAX_NOT_READY
        assert all(n.extensions["role"] != "control-plane" for n in not_ready)
        (dm,) = view[ObjectKind.DEPLOYMENT_MANAGER].values()
        assert isinstance(dm, DeploymentManager)
        assert dm.capacity["nodes"] == str(len(nodes))
        assert dm.capacity["cpu"] == str(sum(n.extensions["cpuThreads"] for n in nodes))
    assert view == await view_of_adapter(adapter)
    assert set(seen) == {
        (ObjectKind.RESOURCE, EventType.CREATE),
        (ObjectKind.RESOURCE, EventType.MODIFY),
        (ObjectKind.RESOURCE, EventType.DELETE),
        (ObjectKind.DEPLOYMENT_MANAGER, EventType.MODIFY),
    }


async def test_readiness_flap_modifies_status(adapter: SimulatedAdapter) -> None:
    modify = next(
        e
        for e in steps(adapter, 50)
        if e.kind is ObjectKind.RESOURCE and e.type is EventType.MODIFY
    )
    assert isinstance(modify.prior, Resource)
    assert isinstance(modify.post, Resource)
    statuses = {modify.prior.extensions["status"], modify.post.extensions["status"]}
    assert statuses == {"Ready", "NotReady"}
    assert modify.prior.model_copy(update={"extensions": {}}) == modify.post.model_copy(
        update={"extensions": {}}
    )
    if modify.post.extensions["status"] == "NotReady":
        taints = {t["key"] for t in modify.post.extensions["taints"]}
        assert "node.kubernetes.io/unreachable" in taints


async def test_added_nodes_get_counter_ids_and_update_capacity(adapter: SimulatedAdapter) -> None:
    events = steps(adapter, 200)
    created = [e for e in events if e.type is EventType.CREATE]
    assert created
    first = created[0]
    assert first.object_id == str(uuid.uuid5(uuid.UUID(OCLOUD_ID), "node:node-added-1"))
    position = events.index(first)
    dm_event = events[position + 1]
    assert dm_event.kind is ObjectKind.DEPLOYMENT_MANAGER
    assert isinstance(dm_event.prior, DeploymentManager)
    assert isinstance(dm_event.post, DeploymentManager)
    assert int(dm_event.post.capacity["nodes"]) == int(dm_event.prior.capacity["nodes"]) + 1
    pools = {p.object_id for p in await adapter.list_objects(ObjectKind.RESOURCE_POOL)}
    types = {t.object_id for t in await adapter.list_objects(ObjectKind.RESOURCE_TYPE)}
    for event in created:
        assert isinstance(event.post, Resource)
        assert event.post.resource_pool_id in pools
        assert event.post.resource_type_id in types


# -- watch ---------------------------------------------------------------------------------


async def test_watch_yields_the_snapshot_first(adapter: SimulatedAdapter) -> None:
    async with aclosing(adapter.watch()) as stream:
        snapshot = await next_item(stream)
        assert isinstance(snapshot, InventorySnapshot)
        assert view_of(snapshot) == await view_of_adapter(adapter)
        assert set(snapshot.objects) == set(MODEL_OF_KIND)


async def test_a_late_watcher_gets_the_current_state_then_new_events(
    adapter: SimulatedAdapter,
) -> None:
    steps(adapter, 30)
    async with aclosing(adapter.watch()) as stream:
        snapshot = await next_item(stream)
        assert isinstance(snapshot, InventorySnapshot)
        assert view_of(snapshot) == await view_of_adapter(adapter)
        events = steps(adapter, 10)
        received = [await next_item(stream) for _ in events]
    assert received == events
    assert replay(snapshot, received) == await view_of_adapter(adapter)


async def test_two_watchers_see_the_same_events(adapter: SimulatedAdapter) -> None:
    async with aclosing(adapter.watch()) as one, aclosing(adapter.watch()) as two:
        snapshot_one = await next_item(one)
        snapshot_two = await next_item(two)
        assert snapshot_one == snapshot_two
        events = steps(adapter, 25)
        received_one = [await next_item(one) for _ in events]
        received_two = [await next_item(two) for _ in events]
    assert received_one == events
    assert received_two == events


async def test_aclose_ends_every_stream(adapter: SimulatedAdapter) -> None:
    async def consume(stream: AsyncIterator[WatchItem]) -> list[WatchItem]:
        return [item async for item in stream]

    streams = [adapter.watch(), adapter.watch()]
    tasks = [asyncio.create_task(consume(stream)) for stream in streams]
    await asyncio.sleep(0)  # let both consumers take their snapshots
    events = steps(adapter, 5)
    await adapter.aclose()
    results = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    for items in results:
        assert isinstance(items[0], InventorySnapshot)
        assert items[1:] == events
    await adapter.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        adapter.apply_churn_step()
    async with aclosing(adapter.watch()) as late:
        assert [item async for item in late] == []


async def test_a_stalled_watcher_is_resynced_with_a_snapshot() -> None:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID, max_pending_events=4)
    try:
        async with aclosing(adapter.watch()) as stream:
            await next_item(stream)
            steps(adapter, 10)  # more than four events: the backlog is dropped
            resync = await next_item(stream)
            assert isinstance(resync, InventorySnapshot)
            assert view_of(resync) == await view_of_adapter(adapter)
            events = steps(adapter, 1)
            assert [await next_item(stream) for _ in events] == events
    finally:
        await adapter.aclose()


# -- background churn ----------------------------------------------------------------------


async def test_background_churn_reaches_every_watcher() -> None:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID, churn_interval=0.01)
    wanted = 10
    try:
        async with aclosing(adapter.watch()) as one, aclosing(adapter.watch()) as two:
            for stream in (one, two):
                snapshot = await next_item(stream)
                assert isinstance(snapshot, InventorySnapshot)
                received = [await next_item(stream) for _ in range(wanted)]
                view = replay(snapshot, received)
                assert len(view[ObjectKind.RESOURCE]) >= MIN_NODES
    finally:
        await adapter.aclose()


async def test_start_runs_churn_without_a_watcher() -> None:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID, churn_interval=0.01)
    try:
        before = await adapter.list_objects(ObjectKind.RESOURCE)
        await adapter.start()
        await adapter.start()  # idempotent
        for _ in range(int(TIMEOUT / 0.01)):  # poll: no watcher to wait on
            if await adapter.list_objects(ObjectKind.RESOURCE) != before:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("background churn changed nothing")
    finally:
        await adapter.aclose()
    after_close = await adapter.list_objects(ObjectKind.RESOURCE)
    await asyncio.sleep(0.05)
    assert await adapter.list_objects(ObjectKind.RESOURCE) == after_close


async def test_without_an_interval_nothing_changes_by_itself(adapter: SimulatedAdapter) -> None:
    async with aclosing(adapter.watch()) as stream:
        await next_item(stream)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 0.05)
