"""Writes to the simulated O-Cloud: pool and resource lifecycle, published through watch()."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from typing import Any

import pytest

from netweave.adapters.base import (
    Capability,
    EventType,
    InventoryEvent,
    InventorySnapshot,
    WatchItem,
)
from netweave.adapters.lifecycle import (
    PoolChange,
    PoolLifecycle,
    PoolRequest,
    ResourceLifecycle,
    Taint,
)
from netweave.adapters.simulated import SimulatedAdapter
from netweave.adapters.simulated.catalog import DEFAULT_HARDWARE, HARDWARE_BY_KEY, POOL_BY_NAME
from netweave.adapters.simulated.writes import MAX_REPLICAS
from netweave.errors import (
    BackendUnavailableError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from netweave.models.ids import default_ocloud_id, stable_id
from netweave.models.inventory import (
    MODEL_OF_KIND,
    DeploymentManager,
    InventoryModel,
    ObjectKind,
    OCloudSiteInfo,
    Resource,
    ResourcePool,
)

OCLOUD_ID = default_ocloud_id("demo")
TIMEOUT = 5.0

POOL = ObjectKind.RESOURCE_POOL
NODE = ObjectKind.RESOURCE
DM = ObjectKind.DEPLOYMENT_MANAGER
SITE = ObjectKind.OCLOUD_SITE
CREATE, MODIFY, DELETE = EventType.CREATE, EventType.MODIFY, EventType.DELETE

View = dict[ObjectKind, dict[str, InventoryModel]]
Stream = AsyncIterator[WatchItem]


@pytest.fixture
async def adapter() -> AsyncIterator[SimulatedAdapter]:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def stream(adapter: SimulatedAdapter) -> AsyncIterator[Stream]:
    """A watch stream whose snapshot was already taken."""
    async with aclosing(adapter.watch()) as stream:
        assert isinstance(await next_item(stream), InventorySnapshot)
        yield stream


async def next_item(stream: Stream) -> WatchItem:
    return await asyncio.wait_for(anext(stream), TIMEOUT)


async def take(stream: Stream, count: int) -> list[InventoryEvent]:
    items = [await next_item(stream) for _ in range(count)]
    assert all(isinstance(item, InventoryEvent) for item in items)
    return [item for item in items if isinstance(item, InventoryEvent)]


def shape(events: Iterable[InventoryEvent]) -> list[tuple[ObjectKind, EventType]]:
    return [(event.kind, event.type) for event in events]


def view_of(snapshot: InventorySnapshot) -> View:
    return {kind: {o.object_id: o for o in objs} for kind, objs in snapshot.objects.items()}


def apply(view: View, events: Iterable[WatchItem]) -> View:
    """Apply events as the inventory view does, checking every prior state on the way."""
    for event in events:
        if isinstance(event, InventorySnapshot):
            view = view_of(event)
            continue
        assert view[event.kind].get(event.object_id) == event.prior
        if event.post is None:
            del view[event.kind][event.object_id]
        else:
            view[event.kind][event.object_id] = event.post
    return view


async def view_of_adapter(adapter: SimulatedAdapter) -> View:
    return {
        kind: {o.object_id: o for o in await adapter.list_objects(kind)} for kind in MODEL_OF_KIND
    }


async def pool_of(adapter: SimulatedAdapter, pool_id: str) -> ResourcePool:
    pool = await adapter.get_object(POOL, pool_id)
    assert isinstance(pool, ResourcePool)
    return pool


async def nodes_of(adapter: SimulatedAdapter, pool_id: str) -> list[Resource]:
    nodes = await adapter.list_objects(NODE)
    return [n for n in nodes if isinstance(n, Resource) and n.resource_pool_id == pool_id]


async def capacity_nodes(adapter: SimulatedAdapter) -> int:
    (dm,) = await adapter.list_objects(DM)
    assert isinstance(dm, DeploymentManager)
    return int(dm.capacity["nodes"])


def pool_key(pool_name: str) -> str:
    return stable_id(OCLOUD_ID, "resource-pool", pool_name)


def node_key(pool_name: str, n: int) -> str:
    return stable_id(OCLOUD_ID, "node", f"{pool_name}/node-{n}")


def built_in(name: str) -> str:
    return pool_key(name)


def ignore(_: str) -> None:
    """A progress callback that drops the messages."""


# -- capabilities ---------------------------------------------------------------------------


def test_declares_both_lifecycles_with_and_without_churn() -> None:
    lifecycles = {Capability.POOL_LIFECYCLE, Capability.RESOURCE_LIFECYCLE}
    quiet = SimulatedAdapter(ocloud_id=OCLOUD_ID)
    churning = SimulatedAdapter(ocloud_id=OCLOUD_ID, churn_interval=1.0)
    assert quiet.capabilities == {Capability.WATCH, *lifecycles}
    assert churning.capabilities == {Capability.WATCH, Capability.CHURN, *lifecycles}
    assert isinstance(quiet, PoolLifecycle)
    assert isinstance(quiet, ResourceLifecycle)


# -- create_pool ----------------------------------------------------------------------------


async def test_create_pool_publishes_pool_site_nodes_and_capacity(
    adapter: SimulatedAdapter, stream: Stream
) -> None:
    before = await view_of_adapter(adapter)
    request = PoolRequest(
        name="edge-gpu",
        description="GPU workers for the Tokyo vRAN trial",
        global_location_id="JP-TYO-1",
        instance_type="dell-poweredge-xr7620",
        replicas=3,
        labels={"team": "ran", "example.com/tier": "gold"},
        taints=(Taint("dedicated", "NoSchedule", "ran"), Taint("gpu", "NoExecute")),
        tenant="tenant-a",
    )
    pool_id = await adapter.create_pool(request)
    assert pool_id == pool_key("edge-gpu")
    events = await take(stream, 6)
    assert shape(events) == [
        (POOL, CREATE),
        (SITE, MODIFY),
        (NODE, CREATE),
        (NODE, CREATE),
        (NODE, CREATE),
        (DM, MODIFY),
    ]
    assert apply(before, events) == await view_of_adapter(adapter)

    pool = await pool_of(adapter, pool_id)
    assert events[0].post == pool
    assert pool.name == "edge-gpu"
    assert pool.description == request.description
    assert pool.global_location_id == "JP-TYO-1"
    assert pool.location == "Tokyo Edge DC 1, Tokyo, Japan"
    assert pool.o_cloud_id == OCLOUD_ID
    assert pool.extensions["instanceType"] == "dell-poweredge-xr7620"
    assert pool.extensions["replicas"] == 3
    assert pool.extensions["labels"] == {"team": "ran", "example.com/tier": "gold"}
    assert pool.extensions["taints"] == [
        {"key": "dedicated", "value": "ran", "effect": "NoSchedule"},
        {"key": "gpu", "value": "", "effect": "NoExecute"},
    ]
    assert pool.extensions["placement"] == "requested"
    assert pool.extensions["tenant"] == "tenant-a"
    assert "shared" not in pool.extensions
    assert pool.extensions["resourceTypeId"] == stable_id(
        OCLOUD_ID, "resource-type", "dell-poweredge-xr7620"
    )

    site = events[1].post
    assert isinstance(site, OCloudSiteInfo)
    assert site.o_cloud_site_id == pool.o_cloud_site_id
    assert site.resource_pools[-1] == pool_id
    assert isinstance(events[1].prior, OCloudSiteInfo)
    assert site.resource_pools[:-1] == events[1].prior.resource_pools

    nodes = await nodes_of(adapter, pool_id)
    assert [n.resource_id for n in nodes] == [node_key("edge-gpu", i) for i in (1, 2, 3)]
    assert [e.post for e in events[2:5]] == nodes
    for slot, node in enumerate(nodes, start=1):
        assert node.extensions["hostname"] == f"edge-gpu-{slot:02d}"
        assert node.resource_type_id == pool.extensions["resourceTypeId"]
        assert node.extensions["gpuCount"] == 2
        labels = node.extensions["labels"]
        assert labels["team"] == "ran"
        assert labels["example.com/tier"] == "gold"
        assert labels["o2ims.oran.org/resource-pool"] == "edge-gpu"
        assert node.extensions["taints"] == [
            {"key": "dedicated", "value": "ran", "effect": "NoSchedule"},
            {"key": "gpu", "effect": "NoExecute"},
        ]
    dm = events[-1]
    assert isinstance(dm.prior, DeploymentManager)
    assert isinstance(dm.post, DeploymentManager)
    assert int(dm.post.capacity["nodes"]) == int(dm.prior.capacity["nodes"]) + 3
    assert int(dm.post.capacity["gpu"]) == int(dm.prior.capacity["gpu"]) + 6


async def test_an_empty_pool_touches_neither_nodes_nor_capacity(
    adapter: SimulatedAdapter, stream: Stream
) -> None:
    pool_id = await adapter.create_pool(
        PoolRequest(name="spare", location="Cage 4, row B", tenant=None)
    )
    events = await take(stream, 2)
    assert shape(events) == [(POOL, CREATE), (SITE, MODIFY)]
    pool = await pool_of(adapter, pool_id)
    assert pool.extensions["instanceType"] == DEFAULT_HARDWARE
    assert pool.extensions["replicas"] == 0
    assert pool.extensions["labels"] == {}
    assert pool.extensions["taints"] == []
    assert pool.location == "Cage 4, row B"
    assert "tenant" not in pool.extensions
    assert "shared" not in pool.extensions
    assert await nodes_of(adapter, pool_id) == []


@pytest.mark.parametrize(
    ("requested", "site", "placement", "noted"),
    [
        ("US-DAL-1", "US-DAL-1", "requested", None),
        ("XX-NOWHERE-9", "ES-MAD-1", "default", "XX-NOWHERE-9"),
        (None, "ES-MAD-1", "default", None),
    ],
)
async def test_pool_placement(
    adapter: SimulatedAdapter,
    requested: str | None,
    site: str,
    placement: str,
    noted: str | None,
) -> None:
    pool_id = await adapter.create_pool(
        PoolRequest(name="placed", global_location_id=requested, replicas=1)
    )
    pool = await pool_of(adapter, pool_id)
    assert pool.global_location_id == site
    assert pool.o_cloud_site_id == stable_id(OCLOUD_ID, "ocloud-site", site)
    assert pool.extensions["placement"] == placement
    assert pool.extensions.get("requestedGlobalLocationId") == noted
    (node,) = await nodes_of(adapter, pool_id)
    assert node.extensions["globalLocationId"] == site
    listed = await adapter.get_object(SITE, stable_id(OCLOUD_ID, "ocloud-site", site))
    assert isinstance(listed, OCloudSiteInfo)
    assert pool_id in listed.resource_pools


async def test_pools_at_one_site_get_distinct_node_networks(adapter: SimulatedAdapter) -> None:
    first = await adapter.create_pool(PoolRequest(name="one", replicas=1))
    second = await adapter.create_pool(PoolRequest(name="two", replicas=1))
    existing = {
        n.extensions["internalIP"].rsplit(".", 2)[0]
        for n in await adapter.list_objects(NODE)
        if isinstance(n, Resource) and n.resource_pool_id not in (first, second)
    }
    (a,) = await nodes_of(adapter, first)
    (b,) = await nodes_of(adapter, second)
    network_a = a.extensions["internalIP"].rsplit(".", 1)[0]
    network_b = b.extensions["internalIP"].rsplit(".", 1)[0]
    assert network_a != network_b
    assert {network_a, network_b}.isdisjoint(existing)


@pytest.mark.parametrize(
    ("request_args", "error", "message"),
    [
        ({"name": "mad-core"}, ConflictError, "already exists"),
        ({"name": "Not_A_Name"}, InvalidRequestError, "not a valid pool name"),
        ({"name": "big", "replicas": MAX_REPLICAS + 1}, InvalidRequestError, "between 0 and 100"),
        ({"name": "neg", "replicas": -1}, InvalidRequestError, "between 0 and 100"),
        ({"name": "odd", "instance_type": "m5.large"}, InvalidRequestError, "dell-poweredge-xr11"),
    ],
)
async def test_create_pool_rejects_bad_requests_and_changes_nothing(
    adapter: SimulatedAdapter,
    stream: Stream,
    request_args: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    before = await view_of_adapter(adapter)
    with pytest.raises(error, match=message) as caught:
        await adapter.create_pool(PoolRequest(**request_args))
    assert await view_of_adapter(adapter) == before
    if "instance_type" in request_args:
        for key in HARDWARE_BY_KEY:
            assert key in str(caught.value)
    # nothing was published: the next event is the one of the next write
    await adapter.create_pool(PoolRequest(name="after"))
    assert shape(await take(stream, 2)) == [(POOL, CREATE), (SITE, MODIFY)]


async def test_a_duplicate_of_a_created_pool_is_a_conflict(adapter: SimulatedAdapter) -> None:
    await adapter.create_pool(PoolRequest(name="twice"))
    with pytest.raises(ConflictError, match="twice"):
        await adapter.create_pool(PoolRequest(name="twice", replicas=2))


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [("tenant-b", {"tenant": "tenant-b"}), ("shared", {"shared": True}), (None, {})],
)
async def test_ownership_fields(
    adapter: SimulatedAdapter, tenant: str | None, expected: dict[str, Any]
) -> None:
    pool_id = await adapter.create_pool(PoolRequest(name="owned", tenant=tenant))
    pool = await pool_of(adapter, pool_id)
    owned = {k: v for k, v in pool.extensions.items() if k in ("tenant", "shared")}
    assert owned == expected
    await adapter.update_pool(pool_id, PoolChange(description="x", labels={"a": "b"}, replicas=1))
    pool = await pool_of(adapter, pool_id)
    assert {k: v for k, v in pool.extensions.items() if k in ("tenant", "shared")} == expected


# -- deterministic ids ----------------------------------------------------------------------


async def script(
    adapter: SimulatedAdapter, ocloud_id: str
) -> tuple[list[str | None], list[WatchItem]]:
    """The same writes, in the same order; the ids they returned and what a watcher saw."""
    mad_core = stable_id(ocloud_id, "resource-pool", "mad-core")
    async with aclosing(adapter.watch()) as stream:
        assert isinstance(await next_item(stream), InventorySnapshot)
        ids: list[str | None] = []
        ids.append(await adapter.create_pool(PoolRequest(name="alpha", replicas=2)))
        ids.append(await adapter.create_pool(PoolRequest(name="beta", instance_type=None)))
        ids.append(await adapter.add_resource(ids[1] or "", ignore))
        ids.append(await adapter.add_resource(mad_core, ignore))
        await adapter.update_pool(ids[0] or "", PoolChange(replicas=4))
        await adapter.remove_resource(ids[2] or "", ignore)
        await adapter.delete_pool(ids[0] or "", force=True)
        ids.append(await adapter.create_pool(PoolRequest(name="alpha", replicas=1)))
        await adapter.aclose()
        return ids, [item async for item in stream]


async def test_the_same_writes_give_the_same_ids_and_events() -> None:
    other_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, "other.example"))
    ids_one, seen_one = await script(SimulatedAdapter(ocloud_id=OCLOUD_ID), OCLOUD_ID)
    ids_two, seen_two = await script(SimulatedAdapter(ocloud_id=OCLOUD_ID), OCLOUD_ID)
    ids_other, _ = await script(SimulatedAdapter(ocloud_id=other_id), other_id)
    assert ids_one == ids_two
    assert len(seen_one) > 20
    assert seen_one == seen_two
    assert set(ids_one).isdisjoint(ids_other)
    assert ids_one[:4] == [
        pool_key("alpha"),
        pool_key("beta"),
        node_key("beta", 1),
        node_key("mad-core", 1),
    ]
    # re-created under the same name: the same pool id, but nodes never reuse an id
    assert ids_one[4] == pool_key("alpha")
    alpha_now = [
        e.object_id
        for e in seen_one[-4:]
        if isinstance(e, InventoryEvent) and e.kind is NODE and e.type is CREATE
    ]
    assert alpha_now == [node_key("alpha", 5)]
    alpha_nodes = [
        e.object_id
        for e in seen_one
        if isinstance(e, InventoryEvent) and e.kind is NODE and e.type is CREATE
        if isinstance(e.post, Resource) and e.post.resource_pool_id == pool_key("alpha")
    ]
    assert alpha_nodes == [node_key("alpha", n) for n in (1, 2, 3, 4, 5)]
    assert len(set(alpha_nodes)) == len(alpha_nodes)


# -- update_pool ----------------------------------------------------------------------------


async def test_scaling_up_and_down(adapter: SimulatedAdapter, stream: Stream) -> None:
    pool_id = await adapter.create_pool(PoolRequest(name="elastic", replicas=1))
    await take(stream, 4)
    capacity = await capacity_nodes(adapter)

    await adapter.update_pool(pool_id, PoolChange(replicas=4))
    up = await take(stream, 5)
    assert shape(up) == [
        (POOL, MODIFY),
        (NODE, CREATE),
        (NODE, CREATE),
        (NODE, CREATE),
        (DM, MODIFY),
    ]
    assert [e.object_id for e in up[1:4]] == [node_key("elastic", n) for n in (2, 3, 4)]
    assert (await pool_of(adapter, pool_id)).extensions["replicas"] == 4
    assert await capacity_nodes(adapter) == capacity + 3

    await adapter.update_pool(pool_id, PoolChange(replicas=2))
    down = await take(stream, 4)
    assert shape(down) == [(POOL, MODIFY), (NODE, DELETE), (NODE, DELETE), (DM, MODIFY)]
    assert [e.object_id for e in down[1:3]] == [node_key("elastic", 4), node_key("elastic", 3)]
    remaining = await nodes_of(adapter, pool_id)
    assert [n.resource_id for n in remaining] == [node_key("elastic", n) for n in (1, 2)]
    assert (await pool_of(adapter, pool_id)).extensions["replicas"] == 2
    assert await capacity_nodes(adapter) == capacity + 1

    # the next node takes the lowest free hostname slot but a fresh id
    await adapter.update_pool(pool_id, PoolChange(replicas=3))
    again = await take(stream, 3)
    assert again[1].object_id == node_key("elastic", 5)
    assert isinstance(again[1].post, Resource)
    assert again[1].post.extensions["hostname"] == "elastic-03"


async def test_update_description_and_labels(adapter: SimulatedAdapter, stream: Stream) -> None:
    pool_id = await adapter.create_pool(
        PoolRequest(name="labelled", replicas=2, labels={"old": "1", "keep": "x"}, tenant="t")
    )
    await take(stream, 5)
    await adapter.update_pool(
        pool_id, PoolChange(description="now described", labels={"keep": "y", "new": "2"})
    )
    events = await take(stream, 3)
    assert shape(events) == [(POOL, MODIFY), (NODE, MODIFY), (NODE, MODIFY)]
    pool = await pool_of(adapter, pool_id)
    assert pool.description == "now described"
    assert pool.extensions["labels"] == {"keep": "y", "new": "2"}
    assert pool.extensions["tenant"] == "t"
    for node in await nodes_of(adapter, pool_id):
        labels = node.extensions["labels"]
        assert "old" not in labels
        assert labels["keep"] == "y"
        assert labels["new"] == "2"
        assert labels["kubernetes.io/hostname"] == node.extensions["hostname"]
    # a node added later carries the new labels too
    added = await adapter.add_resource(pool_id, ignore)
    later = await adapter.get_object(NODE, added or "")
    assert isinstance(later, Resource)
    assert later.extensions["labels"]["new"] == "2"


async def test_an_update_that_changes_nothing_publishes_nothing(
    adapter: SimulatedAdapter, stream: Stream
) -> None:
    pool_id = await adapter.create_pool(PoolRequest(name="steady", replicas=1, labels={"a": "b"}))
    await take(stream, 4)
    await adapter.update_pool(pool_id, PoolChange())
    await adapter.update_pool(pool_id, PoolChange(labels={"a": "b"}, replicas=1))
    await adapter.update_pool(pool_id, PoolChange(description="changed"))
    (event,) = await take(stream, 1)
    assert shape([event]) == [(POOL, MODIFY)]
    assert isinstance(event.post, ResourcePool)
    assert event.post.description == "changed"


async def test_update_pool_errors(adapter: SimulatedAdapter) -> None:
    with pytest.raises(NotFoundError):
        await adapter.update_pool(str(uuid.uuid4()), PoolChange(description="x"))
    pool_id = await adapter.create_pool(PoolRequest(name="bounded", replicas=1))
    before = await view_of_adapter(adapter)
    for replicas in (-1, MAX_REPLICAS + 1):
        with pytest.raises(InvalidRequestError, match="replicas"):
            await adapter.update_pool(pool_id, PoolChange(description="x", replicas=replicas))
    assert await view_of_adapter(adapter) == before


async def test_built_in_pools_can_be_updated(adapter: SimulatedAdapter, stream: Stream) -> None:
    pool_id = built_in("mad-core")
    spec = POOL_BY_NAME["mad-core"]
    original = await pool_of(adapter, pool_id)
    await adapter.update_pool(pool_id, PoolChange(description="UPF pool", replicas=spec.nodes + 2))
    events = await take(stream, 4)
    assert shape(events) == [(POOL, MODIFY), (NODE, CREATE), (NODE, CREATE), (DM, MODIFY)]
    pool = await pool_of(adapter, pool_id)
    assert pool.description == "UPF pool"
    assert pool.extensions["replicas"] == spec.nodes + 2
    assert {k: v for k, v in pool.extensions.items() if k != "replicas"} == original.extensions
    hosts = sorted(n.extensions["hostname"] for n in await nodes_of(adapter, pool_id))
    assert hosts == [f"mad-core-{slot:02d}" for slot in range(1, spec.nodes + 3)]


async def test_scaling_a_built_in_pool_below_its_budget_is_refused(
    adapter: SimulatedAdapter,
) -> None:
    pool_id = built_in("dal-storage")
    spec = POOL_BY_NAME["dal-storage"]
    before = await view_of_adapter(adapter)
    with pytest.raises(ConflictError, match="disruption budget"):
        await adapter.update_pool(pool_id, PoolChange(replicas=spec.min_nodes - 1))
    assert await view_of_adapter(adapter) == before
    await adapter.update_pool(pool_id, PoolChange(replicas=spec.min_nodes))
    assert len(await nodes_of(adapter, pool_id)) == spec.min_nodes


# -- delete_pool ----------------------------------------------------------------------------


async def test_delete_an_empty_pool(adapter: SimulatedAdapter, stream: Stream) -> None:
    pool_id = await adapter.create_pool(PoolRequest(name="short-lived"))
    created = await take(stream, 2)
    await adapter.delete_pool(pool_id)
    events = await take(stream, 2)
    assert shape(events) == [(POOL, DELETE), (SITE, MODIFY)]
    assert events[1].post == created[1].prior  # the site lists what it listed before
    assert await adapter.get_object(POOL, pool_id) is None
    with pytest.raises(NotFoundError):
        await adapter.delete_pool(pool_id)


async def test_a_pool_with_nodes_needs_force(adapter: SimulatedAdapter, stream: Stream) -> None:
    before = await view_of_adapter(adapter)
    pool_id = await adapter.create_pool(PoolRequest(name="doomed", replicas=2))
    await take(stream, 5)
    with pytest.raises(ConflictError, match="2 resources"):
        await adapter.delete_pool(pool_id)
    assert len(await nodes_of(adapter, pool_id)) == 2

    await adapter.delete_pool(pool_id, force=True)
    events = await take(stream, 5)
    assert shape(events) == [
        (NODE, DELETE),
        (NODE, DELETE),
        (DM, MODIFY),
        (POOL, DELETE),
        (SITE, MODIFY),
    ]
    assert {e.object_id for e in events[:2]} == {node_key("doomed", 1), node_key("doomed", 2)}
    assert await view_of_adapter(adapter) == before


async def test_built_in_pools_follow_the_same_rule(
    adapter: SimulatedAdapter, stream: Stream
) -> None:
    pool_id = built_in("tyo-core")
    count = POOL_BY_NAME["tyo-core"].nodes
    with pytest.raises(ConflictError, match="force"):
        await adapter.delete_pool(pool_id)
    await adapter.delete_pool(pool_id, force=True)
    events = await take(stream, count + 3)
    assert shape(events) == [
        *[(NODE, DELETE)] * count,
        (DM, MODIFY),
        (POOL, DELETE),
        (SITE, MODIFY),
    ]
    assert await adapter.get_object(POOL, pool_id) is None
    assert await nodes_of(adapter, pool_id) == []
    site = events[-1].post
    assert isinstance(site, OCloudSiteInfo)
    assert pool_id not in site.resource_pools
    assert "jp-tyo-1b" not in site.extensions["zones"]


# -- add_resource ---------------------------------------------------------------------------


async def test_add_resource(adapter: SimulatedAdapter, stream: Stream) -> None:
    pool_id = await adapter.create_pool(
        PoolRequest(name="grow", instance_type="dell-poweredge-xr11", replicas=1)
    )
    await take(stream, 4)
    messages: list[str] = []
    resource_id = await adapter.add_resource(pool_id, messages.append)
    assert resource_id == node_key("grow", 2)
    assert messages == ["provisioning node grow-02", "node grow-02 joined pool grow"]
    events = await take(stream, 3)
    assert shape(events) == [(POOL, MODIFY), (NODE, CREATE), (DM, MODIFY)]
    node = await adapter.get_object(NODE, resource_id)
    assert isinstance(node, Resource)
    assert events[1].post == node
    assert node.resource_pool_id == pool_id
    assert node.resource_type_id == stable_id(OCLOUD_ID, "resource-type", "dell-poweredge-xr11")
    assert len(node.elements) == 2  # the NIC and the FEC accelerator of the profile
    assert (await pool_of(adapter, pool_id)).extensions["replicas"] == 2


async def test_add_resource_to_a_built_in_pool(adapter: SimulatedAdapter) -> None:
    messages: list[str] = []
    resource_id = await adapter.add_resource(built_in("dal-ran-edge"), messages.append)
    node = await adapter.get_object(NODE, resource_id or "")
    assert isinstance(node, Resource)
    assert node.extensions["hostname"] == "dal-ran-edge-06"
    assert messages[-1] == "node dal-ran-edge-06 joined pool dal-ran-edge"


async def test_add_resource_errors(adapter: SimulatedAdapter) -> None:
    with pytest.raises(NotFoundError):
        await adapter.add_resource(str(uuid.uuid4()), ignore)
    full = await adapter.create_pool(PoolRequest(name="full", replicas=MAX_REPLICAS))
    before = await view_of_adapter(adapter)
    messages: list[str] = []
    with pytest.raises(InvalidRequestError, match="maximum"):
        await adapter.add_resource(full, messages.append)
    assert messages == []
    assert await view_of_adapter(adapter) == before


# -- remove_resource ------------------------------------------------------------------------


async def test_remove_resource_cordons_drains_and_removes(
    adapter: SimulatedAdapter, stream: Stream
) -> None:
    pool_id = await adapter.create_pool(PoolRequest(name="shrink", replicas=2))
    await take(stream, 5)
    target = node_key("shrink", 1)
    messages: list[str] = []
    await adapter.remove_resource(target, messages.append)
    assert messages[0] == "cordoned node shrink-01"
    assert messages[1].startswith("drained ")
    assert messages[1].endswith(" workloads from node shrink-01")
    assert int(messages[1].split()[1]) > 0
    assert messages[2] == "removed node shrink-01 from pool shrink"
    events = await take(stream, 4)
    assert shape(events) == [(NODE, MODIFY), (NODE, DELETE), (POOL, MODIFY), (DM, MODIFY)]
    cordoned = events[0].post
    assert isinstance(cordoned, Resource)
    assert cordoned.extensions["unschedulable"] is True
    assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in (
        cordoned.extensions["taints"]
    )
    assert events[1].prior == cordoned
    assert await adapter.get_object(NODE, target) is None
    assert [n.resource_id for n in await nodes_of(adapter, pool_id)] == [node_key("shrink", 2)]
    assert (await pool_of(adapter, pool_id)).extensions["replicas"] == 1


async def test_remove_resource_errors(adapter: SimulatedAdapter) -> None:
    with pytest.raises(NotFoundError):
        await adapter.remove_resource(str(uuid.uuid4()), ignore)
    node = next(iter(await nodes_of(adapter, built_in("mad-core"))))
    with pytest.raises(NotFoundError):  # a part of a node is no node
        await adapter.remove_resource(node.elements[0].resource_id, ignore)


async def test_a_disruption_budget_blocks_the_drain(adapter: SimulatedAdapter) -> None:
    control_plane = await nodes_of(adapter, built_in("dal-control-plane"))
    assert len(control_plane) == POOL_BY_NAME["dal-control-plane"].min_nodes
    before = await view_of_adapter(adapter)
    messages: list[str] = []
    with pytest.raises(ConflictError, match="disruption budget") as caught:
        await adapter.remove_resource(control_plane[0].resource_id, messages.append)
    assert "control-plane" in caught.value.detail
    assert messages == [f"cannot drain node dal-control-plane-01: {caught.value.detail}"]
    assert await view_of_adapter(adapter) == before
    # above its budget a built-in pool's node can be retired
    newest = (await nodes_of(adapter, built_in("mad-core")))[-1]
    await adapter.remove_resource(newest.resource_id, ignore)
    assert await adapter.get_object(NODE, newest.resource_id) is None


# -- the adapter around the writes ----------------------------------------------------------


async def test_progress_that_raises_does_not_half_publish(
    adapter: SimulatedAdapter, stream: Stream
) -> None:
    pool_id = await adapter.create_pool(PoolRequest(name="noisy", replicas=1))
    await take(stream, 4)

    def broken(message: str) -> None:
        raise RuntimeError(f"cannot record {message!r}")

    before = await view_of_adapter(adapter)
    with pytest.raises(RuntimeError, match="provisioning"):
        await adapter.add_resource(pool_id, broken)
    events = await take(stream, 3)
    assert apply(before, events) == await view_of_adapter(adapter)
    assert len(await nodes_of(adapter, pool_id)) == 2


async def test_writes_after_close_are_refused() -> None:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID)
    await adapter.aclose()
    with pytest.raises(BackendUnavailableError):
        await adapter.create_pool(PoolRequest(name="late"))
    with pytest.raises(BackendUnavailableError):
        await adapter.add_resource(built_in("mad-core"), ignore)
    assert await adapter.get_object(POOL, pool_key("late")) is None


async def test_churn_leaves_created_pools_alone_and_skips_deleted_ones(
    adapter: SimulatedAdapter,
) -> None:
    created = await adapter.create_pool(PoolRequest(name="mine", replicas=3))
    await adapter.delete_pool(built_in("mad-ran-edge"), force=True)
    mine = await nodes_of(adapter, created)
    for _ in range(400):
        for event in adapter.apply_churn_step():
            if event.kind is NODE:
                node = event.post or event.prior
                assert isinstance(node, Resource)
                assert node.resource_pool_id not in (created, built_in("mad-ran-edge"))
    assert await nodes_of(adapter, created) == mine


async def test_writes_interleaved_with_background_churn_stay_consistent() -> None:
    adapter = SimulatedAdapter(ocloud_id=OCLOUD_ID, churn_interval=0.001, seed=5)
    received: list[WatchItem] = []

    async def record() -> None:
        async for item in adapter.watch():
            received.append(item)

    recorder = asyncio.create_task(record())
    try:
        await asyncio.sleep(0.01)
        pools = [
            await adapter.create_pool(PoolRequest(name=f"mixed-{i}", replicas=i)) for i in range(3)
        ]
        await asyncio.sleep(0.01)

        async def churn_alongside(pool_id: str) -> None:
            for replicas in (4, 1, 3):
                await adapter.update_pool(pool_id, PoolChange(replicas=replicas))
                await asyncio.sleep(0.002)
            added = await adapter.add_resource(pool_id, ignore)
            await asyncio.sleep(0.002)
            await adapter.remove_resource(added or "", ignore)

        await asyncio.gather(*(churn_alongside(pool_id) for pool_id in pools))
        await adapter.add_resource(built_in("mad-core"), ignore)
        await adapter.delete_pool(pools[0], force=True)
        await asyncio.sleep(0.01)
    finally:
        await adapter.aclose()
        await asyncio.wait_for(recorder, TIMEOUT)
    assert isinstance(received[0], InventorySnapshot)
    final = apply(view_of(received[0]), received[1:])
    assert final == await view_of_adapter(adapter)
    (dm,) = final[DM].values()
    assert isinstance(dm, DeploymentManager)
    assert dm.capacity["nodes"] == str(len(final[NODE]))
    for pool_id in pools[1:]:
        assert len(await nodes_of(adapter, pool_id)) == 3
