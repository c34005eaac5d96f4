"""Alarms of the simulated O-Cloud: dictionaries, the stream, churn, determinism, on demand."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from netweave.adapters.alarm_catalog import NODE_DEFINITIONS, condition_alarms
from netweave.adapters.alarms import (
    SEVERITY_MAJOR,
    SEVERITY_WARNING,
    AlarmSignal,
    AlarmSnapshot,
    AlarmSource,
)
from netweave.adapters.base import EventType, InventoryEvent
from netweave.adapters.lifecycle import PoolChange
from netweave.adapters.simulated import SimulatedAdapter
from netweave.adapters.simulated.catalog import HARDWARE
from netweave.adapters.simulated.identity import element_id, node_id, pool_id, resource_type_id
from netweave.adapters.simulated.nodes import condition_status, with_condition, with_readiness
from netweave.adapters.simulated.topology import build_topology
from netweave.errors import InvalidRequestError, NotFoundError
from netweave.models.ids import default_ocloud_id
from netweave.models.inventory import ObjectKind, Resource

OCLOUD_ID = default_ocloud_id("demo")
NODE = node_id(OCLOUD_ID, "mad-core-01")
DISK_NODE = node_id(OCLOUD_ID, "dal-storage-03")
OOM_NODE = node_id(OCLOUD_ID, "tyo-core-02")


@pytest.fixture
async def adapter() -> AsyncIterator[SimulatedAdapter]:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID)
    yield adapter
    await adapter.aclose()


class Collected:
    """Every item of one stream, gathered by a task as soon as the adapter publishes it."""

    def __init__(self) -> None:
        self.items: list[object] = []

    @property
    def signals(self) -> list[AlarmSignal]:
        return [item for item in self.items if isinstance(item, AlarmSignal)]

    def since(self, mark: int) -> list[object]:
        return self.items[mark:]


@contextlib.asynccontextmanager
async def collecting(stream: AsyncGenerator[Any, None]) -> AsyncIterator[Collected]:
    """Collect ``stream`` (an ``alarm_signals()`` or ``watch()`` stream) while in the block."""
    collected = Collected()

    async def follow() -> None:
        async with aclosing(stream):
            async for item in stream:
                collected.items.append(item)

    task = asyncio.create_task(follow())
    await settle()
    try:
        yield collected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settle() -> None:
    """Let the collecting tasks take what was published (it is queued synchronously)."""
    for _ in range(5):
        await asyncio.sleep(0)


def steps(adapter: SimulatedAdapter, count: int) -> list[InventoryEvent]:
    return [event for _ in range(count) for event in adapter.apply_churn_step()]


def snapshot_of(collected: Collected) -> AlarmSnapshot:
    first = collected.items[0]
    assert isinstance(first, AlarmSnapshot)
    return first


async def current_snapshot(adapter: SimulatedAdapter) -> AlarmSnapshot:
    async with aclosing(adapter.alarm_signals()) as stream:
        first = await anext(stream)
    assert isinstance(first, AlarmSnapshot)
    return first


def replay(snapshot: AlarmSnapshot, signals: list[AlarmSignal]) -> dict[str, AlarmSignal]:
    """Apply signals to a snapshot as the alarm service would, checking each is a change."""
    active = {signal.key: signal for signal in snapshot.active}
    assert len(active) == len(snapshot.active)
    for signal in signals:
        held = active.get(signal.key)
        if signal.raised:
            if held is not None:  # a refresh (Warning events) or a severity change
                assert signal.definition_key == "node-warning-event" or (
                    signal.severity != held.severity
                ), signal
                assert signal.extensions["count"] == held.extensions["count"] + 1
            active[signal.key] = signal
        else:
            assert held is not None, f"cleared an alarm that was not active: {signal}"
            del active[signal.key]
    return active


def stable(signal: AlarmSignal) -> tuple[object, ...]:
    """A signal without its wall-clock time."""
    return (
        signal.key,
        signal.definition_key,
        signal.resource_id,
        signal.resource_type_id,
        signal.severity,
        signal.raised,
        tuple(sorted(signal.extensions.items())),
    )


# Dictionaries and the start ------------------------------------------------------------------


async def test_every_resource_type_has_a_dictionary(adapter: SimulatedAdapter) -> None:
    assert isinstance(adapter, AlarmSource)
    types = await adapter.list_objects(ObjectKind.RESOURCE_TYPE)
    dictionaries = adapter.alarm_dictionaries()
    assert [d.resource_type_id for d in dictionaries] == [t.object_id for t in types]
    servers = {resource_type_id(OCLOUD_ID, hardware.key) for hardware in HARDWARE}
    for dictionary in dictionaries:
        expected = NODE_DEFINITIONS if dictionary.resource_type_id in servers else ()
        assert tuple(dictionary.definitions) == expected
    assert Counter(len(d.definitions) for d in dictionaries) == {7: 7, 0: 7}  # parts, storage
    nodes = await adapter.list_objects(ObjectKind.RESOURCE)
    assert {n.resource_type_id for n in nodes if isinstance(n, Resource)} <= servers


async def test_it_starts_with_the_two_documented_alarms(adapter: SimulatedAdapter) -> None:
    async with collecting(adapter.alarm_signals()) as collected:
        assert len(collected.items) == 1
        disk, oom = snapshot_of(collected).active
    disk_node = await adapter.get_object(ObjectKind.RESOURCE, DISK_NODE)
    assert isinstance(disk_node, Resource)
    assert disk == AlarmSignal(
        key=f"{DISK_NODE}/node-disk-pressure",
        definition_key="node-disk-pressure",
        resource_id=DISK_NODE,
        resource_type_id=disk_node.resource_type_id,
        severity=SEVERITY_MAJOR,
        raised=True,
        event_time=disk.event_time,
        extensions={
            "nodeName": "dal-storage-03",
            "condition": "DiskPressure",
            "status": "True",
            "reason": "KubeletHasDiskPressure",
            "message": "kubelet has disk pressure",
        },
    )
    assert condition_status(disk_node, "DiskPressure") == "True"
    assert {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"} in (
        disk_node.extensions["taints"]
    )
    assert disk_node.extensions["status"] == "Ready"
    assert (oom.key, oom.definition_key, oom.resource_id) == (
        f"{OOM_NODE}/event/SystemOOM",
        "node-warning-event",
        OOM_NODE,
    )
    assert (oom.severity, oom.extensions["count"]) == (SEVERITY_WARNING, 1)
    # the initial topology is the adapter's inventory: the condition is part of it
    assert build_topology(OCLOUD_ID).nodes == tuple(await adapter.list_objects(ObjectKind.RESOURCE))


# The stream under churn ----------------------------------------------------------------------


async def test_snapshot_then_signals_that_replay_to_the_current_state(
    adapter: SimulatedAdapter,
) -> None:
    async with collecting(adapter.alarm_signals()) as collected:
        steps(adapter, 400)
        await settle()
        assert all(isinstance(item, AlarmSignal) for item in collected.items[1:])
        active = replay(snapshot_of(collected), collected.signals)
    now = await current_snapshot(adapter)
    assert active == {signal.key: signal for signal in now.active}
    seen = Counter((s.definition_key, s.raised) for s in collected.signals)
    for key in ("node-not-ready", "node-unreachable"):  # both ways churn takes a node down
        assert seen[key, True] > 20 and seen[key, False] > 20, seen
    assert sum(n for (key, _), n in seen.items() if key.endswith("pressure")) > 0, seen
    assert seen["node-warning-event", True] > 0, seen
    for signal in collected.signals:
        prefix = f"{signal.resource_id}/"
        suffix = signal.key.removeprefix(prefix)
        assert signal.key.startswith(prefix)
        assert suffix == signal.definition_key or (
            suffix == f"event/{signal.extensions['reason']}"
            and signal.definition_key == "node-warning-event"
        )


async def test_condition_alarms_always_agree_with_the_nodes(adapter: SimulatedAdapter) -> None:
    for _ in range(8):
        steps(adapter, 50)
        active = {s.key for s in (await current_snapshot(adapter)).active}
        expected = set()
        for node in await adapter.list_objects(ObjectKind.RESOURCE):
            assert isinstance(node, Resource)
            for key in condition_alarms(node.extensions["conditions"]):
                expected.add(f"{node.resource_id}/{key}")
        assert {key for key in active if "/event/" not in key} == expected
        events = {key.split("/event/")[0] for key in active if "/event/" in key}
        nodes = {n.object_id for n in await adapter.list_objects(ObjectKind.RESOURCE)}
        assert events <= nodes  # a retired node's Warning events went with it


async def test_the_rates_are_a_few_percent(adapter: SimulatedAdapter) -> None:
    async with collecting(adapter.alarm_signals()) as collected:
        steps(adapter, 2000)
        await settle()
    raised = Counter(s.definition_key for s in collected.signals if s.raised)
    pressures = sum(n for key, n in raised.items() if key.endswith(("pressure", "unavailable")))
    # PRESSURE_RATE 3 %: about half of those steps add a condition; WARNING_RATE 2 %
    assert 10 <= pressures <= 60, raised
    assert 20 <= raised["node-warning-event"] <= 60, raised


async def signals_of(seed: int, count: int) -> list[tuple[object, ...]]:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID, seed=seed)
    try:
        async with collecting(adapter.alarm_signals()) as collected:
            steps(adapter, count)
            await settle()
        return [stable(snapshot) for snapshot in snapshot_of(collected).active] + [
            stable(signal) for signal in collected.signals
        ]
    finally:
        await adapter.aclose()


async def test_the_same_seed_replays_the_same_alarms() -> None:
    first = await signals_of(7, 500)
    assert first == await signals_of(7, 500)
    assert first != await signals_of(8, 500)
    assert len(first) > 100


# On demand -------------------------------------------------------------------------------------


@pytest.mark.parametrize("definition", [d.key for d in NODE_DEFINITIONS])
async def test_set_condition_raises_and_clears(adapter: SimulatedAdapter, definition: str) -> None:
    async with (
        collecting(adapter.alarm_signals()) as alarms,
        collecting(adapter.watch()) as inventory,
    ):
        published = adapter.set_condition(NODE, definition, True, reason="Rebooted")
        [raised] = published
        suffix = "event/Rebooted" if definition == "node-warning-event" else definition
        assert (raised.key, raised.definition_key, raised.raised) == (
            f"{NODE}/{suffix}",
            definition,
            True,
        )
        assert raised.resource_id == NODE
        node = await adapter.get_object(ObjectKind.RESOURCE, NODE)
        assert isinstance(node, Resource)
        assert raised.resource_type_id == node.resource_type_id
        if definition == "node-warning-event":
            assert raised.extensions["message"] == "Rebooted reported on demand"
            await settle()
            assert len(inventory.items) == 1  # an event changes no inventory
            [refresh] = adapter.set_condition(NODE, definition, True, reason="Rebooted")
            assert (refresh.key, refresh.raised, refresh.extensions["count"]) == (
                raised.key,
                True,
                2,
            )
            published.append(refresh)
        else:
            assert definition in condition_alarms(node.extensions["conditions"])
            await settle()
            [modify] = inventory.since(1)
            assert isinstance(modify, InventoryEvent) and modify.type is EventType.MODIFY
            assert modify.post == node
            assert adapter.set_condition(NODE, definition, True) == []  # already so
        [cleared] = adapter.set_condition(NODE, definition, False, reason="Rebooted")
        assert (cleared.key, cleared.raised) == (raised.key, False)
        assert adapter.set_condition(NODE, definition, False, reason="Rebooted") == []
        await settle()
        assert alarms.since(1) == [*published, cleared]  # what it returned is what it published
    node = await adapter.get_object(ObjectKind.RESOURCE, NODE)
    assert isinstance(node, Resource)
    assert condition_alarms(node.extensions["conditions"]) == {}
    assert node.extensions["status"] == "Ready"


async def test_set_condition_moves_between_not_ready_and_unreachable(
    adapter: SimulatedAdapter,
) -> None:
    adapter.set_condition(NODE, "node-unreachable", True)
    signals = adapter.set_condition(NODE, "node-not-ready", True)
    assert [(s.definition_key, s.raised) for s in signals] == [
        ("node-not-ready", True),
        ("node-unreachable", False),
    ]
    assert adapter.set_condition(NODE, "node-unreachable", False) == []  # it is not unreachable
    node = await adapter.get_object(ObjectKind.RESOURCE, NODE)
    assert isinstance(node, Resource)
    assert condition_status(node, "Ready") == "False"
    taints = {(t["key"], t["effect"]) for t in node.extensions["taints"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in taints
    assert not any(key == "node.kubernetes.io/unreachable" for key, _ in taints)


async def test_set_condition_refuses_what_is_no_node_or_no_definition(
    adapter: SimulatedAdapter,
) -> None:
    with pytest.raises(NotFoundError):
        adapter.set_condition(node_id(OCLOUD_ID, "no-such-node"), "node-not-ready", True)
    with pytest.raises(NotFoundError):  # a part of a node raises no node alarm
        adapter.set_condition(element_id(OCLOUD_ID, "mad-core-01", "nic0"), "node-not-ready", True)
    with pytest.raises(InvalidRequestError, match="node-on-fire"):
        adapter.set_condition(NODE, "node-on-fire", True)
    await adapter.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        adapter.set_condition(NODE, "node-not-ready", True)


# No signal without a real change ------------------------------------------------------------


async def test_writes_signal_only_what_changes_an_alarm(adapter: SimulatedAdapter) -> None:
    pool = pool_id(OCLOUD_ID, "dal-storage")
    async with collecting(adapter.alarm_signals()) as collected:
        # relabelling every node of the pool (the DiskPressure node too): inventory only
        await adapter.update_pool(pool, PoolChange(labels={"tier": "gold"}))
        await adapter.add_resource(pool, lambda _: None)  # a new, healthy node
        await settle()
        assert collected.since(1) == []
        # retiring the node with the alarm: cordoned (nothing), then gone (its clear)
        await adapter.remove_resource(DISK_NODE, lambda _: None)
        await settle()
        [cleared] = collected.since(1)
        assert isinstance(cleared, AlarmSignal)
        assert (cleared.key, cleared.raised) == (f"{DISK_NODE}/node-disk-pressure", False)
        # asking for the state a node is in already changes nothing
        mark = len(collected.items)
        assert adapter.set_condition(NODE, "node-memory-pressure", False) == []
        assert adapter.set_condition(NODE, "node-not-ready", False) == []
        await settle()
        assert collected.since(mark) == []


# Streams -------------------------------------------------------------------------------------


async def test_every_stream_gets_everything_and_ends_on_aclose(adapter: SimulatedAdapter) -> None:
    one, two = adapter.alarm_signals(), adapter.alarm_signals()
    async with collecting(one) as first, collecting(two) as second:
        steps(adapter, 100)
        adapter.set_condition(NODE, "node-pid-pressure", True)
        await settle()
        assert first.items == second.items
        assert len(first.items) > 20
        await adapter.aclose()
        await settle()
    assert [item async for item in adapter.alarm_signals()] == []  # opened after the close


async def test_a_consumer_that_falls_behind_gets_a_fresh_snapshot() -> None:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID, max_pending_events=3)
    try:
        async with aclosing(adapter.alarm_signals()) as stream:
            first = await anext(stream)
            assert isinstance(first, AlarmSnapshot)
            for name in ("mad-core-01", "mad-core-02", "mad-core-03", "mad-core-04"):
                adapter.set_condition(node_id(OCLOUD_ID, name), "node-not-ready", True)
            resync = await anext(stream)
            assert isinstance(resync, AlarmSnapshot)
            assert resync == adapter._cloud.alarm_snapshot()
            assert len(resync.active) == len(first.active) + 4
            adapter.set_condition(NODE, "node-not-ready", False)
            cleared = await anext(stream)
            assert isinstance(cleared, AlarmSignal) and not cleared.raised
    finally:
        await adapter.aclose()


# The node looks behind the alarms ------------------------------------------------------------


def node_conditions(node: Resource) -> dict[str, str]:
    return {c["type"]: c["status"] for c in node.extensions["conditions"]}


def taint_keys(node: Resource) -> set[str]:
    return {t["key"] for t in node.extensions["taints"]}


def test_readiness_looks() -> None:
    node = build_topology(OCLOUD_ID).nodes[0]
    pressed = with_condition(
        with_condition(node, "MemoryPressure", True), "NetworkUnavailable", True
    )
    assert node_conditions(pressed) == {
        "Ready": "True",
        "MemoryPressure": "True",
        "DiskPressure": "False",
        "PIDPressure": "False",
        "NetworkUnavailable": "True",
    }
    assert {"node.kubernetes.io/memory-pressure", "node.kubernetes.io/network-unavailable"} <= (
        taint_keys(pressed)
    )
    # the kubelet reports NotReady: the pressures stay as they were
    not_ready = with_readiness(pressed, ready=False, reachable=True)
    assert node_conditions(not_ready) == {**node_conditions(pressed), "Ready": "False"}
    assert "node.kubernetes.io/not-ready" in taint_keys(not_ready)
    # it goes silent: the kubelet's conditions are Unknown, the network plugin's stays
    silent = with_readiness(not_ready, ready=False)
    assert node_conditions(silent) == {
        "Ready": "Unknown",
        "MemoryPressure": "Unknown",
        "DiskPressure": "Unknown",
        "PIDPressure": "Unknown",
        "NetworkUnavailable": "True",
    }
    assert "node.kubernetes.io/unreachable" in taint_keys(silent)
    assert "node.kubernetes.io/not-ready" not in taint_keys(silent)
    # back: what was Unknown reads False again
    back = with_readiness(silent, ready=True)
    assert node_conditions(back) == {**node_conditions(node), "NetworkUnavailable": "True"}
    assert back.extensions["status"] == "Ready"
    assert not {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"} & taint_keys(back)
    # a node that flaps and recovers looks as it did
    assert with_readiness(with_readiness(node, ready=False), ready=True) == node
    relieved = with_condition(
        with_condition(pressed, "MemoryPressure", False), "NetworkUnavailable", False
    )
    assert condition_alarms(relieved.extensions["conditions"]) == {}
    assert taint_keys(relieved) == taint_keys(node)
