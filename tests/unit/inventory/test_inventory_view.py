from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import pytest

from netweave.adapters.base import (
    Capability,
    EventType,
    InventoryEvent,
    InventorySnapshot,
    WatchItem,
)
from netweave.inventory.view import InventoryView
from netweave.models.inventory import InventoryModel, ObjectKind, ResourcePool


def pool(name: str, description: str = "d", **extensions: object) -> ResourcePool:
    return ResourcePool(
        resource_pool_id=f"00000000-0000-0000-0000-{name.rjust(12, '0')}",
        name=name,
        description=description,
        o_cloud_id="11111111-1111-1111-1111-111111111111",
        global_location_id="ES-MAD-1",
        extensions=dict(extensions),
    )


class ScriptedAdapter:
    """Plays a fixed script of watch items per watch() call; a failure is an exception."""

    name: ClassVar[str] = "scripted"

    def __init__(self, *scripts: Sequence[WatchItem | Exception]) -> None:
        self.scripts = list(scripts)
        self.calls = 0

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.WATCH})

    async def list_objects(self, kind: ObjectKind) -> Sequence[InventoryModel]:
        return []

    async def get_object(self, kind: ObjectKind, object_id: str) -> InventoryModel | None:
        return None

    async def watch(self) -> AsyncIterator[WatchItem]:
        script = self.scripts[min(self.calls, len(self.scripts) - 1)]
        self.calls += 1
        for item in script:
            if isinstance(item, Exception):
                raise item
            yield item
        await asyncio.Event().wait()  # stay connected

    async def aclose(self) -> None:
        return None


def test_snapshot_makes_the_view_ready_and_sorted() -> None:
    view = InventoryView(ScriptedAdapter([]))
    assert not view.ready
    b, a = pool("b"), pool("a")
    events = view.apply(InventorySnapshot({ObjectKind.RESOURCE_POOL: [b, a]}))
    assert events == []  # the first sync is not a change
    assert view.ready
    assert [e.model for e in view.entries(ObjectKind.RESOURCE_POOL)] == [a, b]
    entry = view.get(ObjectKind.RESOURCE_POOL, a.object_id)
    assert entry is not None and entry.raw.startswith(b'{"resourcePoolId"')


def test_events_become_changes_with_prior_state_and_noops_are_dropped() -> None:
    view = InventoryView(ScriptedAdapter([]))
    seen: list[InventoryEvent] = []
    view.add_listener(seen.append)
    a = pool("a")
    view.apply(InventorySnapshot({ObjectKind.RESOURCE_POOL: [a]}))
    generation = view.generation(ObjectKind.RESOURCE_POOL)
    # an adapter that reports "modified" with identical O2-IMS state: not a change
    same = InventoryEvent(ObjectKind.RESOURCE_POOL, EventType.MODIFY, a.object_id, prior=a, post=a)
    assert view.apply(same) == []
    assert view.generation(ObjectKind.RESOURCE_POOL) == generation
    changed = pool("a", description="new")
    [event] = view.apply(
        InventoryEvent(
            ObjectKind.RESOURCE_POOL, EventType.MODIFY, a.object_id, prior=a, post=changed
        )
    )
    assert event.type is EventType.MODIFY and event.prior == a and event.post == changed
    assert view.generation(ObjectKind.RESOURCE_POOL) > generation
    # an upsert of an unknown object is a create, a delete of an unknown one is nothing
    c = pool("c")
    [created] = view.apply(
        InventoryEvent(ObjectKind.RESOURCE_POOL, EventType.MODIFY, c.object_id, prior=c, post=c)
    )
    assert created.type is EventType.CREATE and created.prior is None
    ghost = pool("ghost")
    assert (
        view.apply(
            InventoryEvent(ObjectKind.RESOURCE_POOL, EventType.DELETE, ghost.object_id, prior=ghost)
        )
        == []
    )
    assert seen == [event, created]


def test_a_later_snapshot_is_diffed_into_events() -> None:
    view = InventoryView(ScriptedAdapter([]))
    a, b, c = pool("a"), pool("b"), pool("c")
    view.apply(InventorySnapshot({ObjectKind.RESOURCE_POOL: [a, b]}))
    b2 = pool("b", zone="z1")
    events = view.apply(InventorySnapshot({ObjectKind.RESOURCE_POOL: [b2, c]}))
    kinds = {(e.type, e.object_id) for e in events}
    assert kinds == {
        (EventType.DELETE, a.object_id),
        (EventType.MODIFY, b.object_id),
        (EventType.CREATE, c.object_id),
    }
    assert [e.model for e in view.entries(ObjectKind.RESOURCE_POOL)] == [b2, c]


def test_invalid_events_are_rejected_at_construction() -> None:
    a = pool("a")
    with pytest.raises(ValueError, match="create"):
        InventoryEvent(ObjectKind.RESOURCE_POOL, EventType.CREATE, a.object_id, prior=a, post=a)
    with pytest.raises(ValueError, match="delete"):
        InventoryEvent(ObjectKind.RESOURCE_POOL, EventType.DELETE, a.object_id, post=a)


async def test_run_survives_a_failing_watch_and_resyncs() -> None:
    a, b = pool("a"), pool("b")
    adapter = ScriptedAdapter(
        [RuntimeError("connection reset")],
        [InventorySnapshot({ObjectKind.RESOURCE_POOL: [a]}), RuntimeError("gone")],
        [InventorySnapshot({ObjectKind.RESOURCE_POOL: [a, b]})],
    )
    view = InventoryView(adapter, backoff_initial=0.01, backoff_max=0.02)
    seen: list[InventoryEvent] = []
    view.add_listener(seen.append)
    task = asyncio.create_task(view.run())
    try:
        assert await view.wait_ready(5)
        async with asyncio.timeout(5):
            while view.count(ObjectKind.RESOURCE_POOL) < 2:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert adapter.calls == 3
    assert [(e.type, e.object_id) for e in seen] == [(EventType.CREATE, b.object_id)]
