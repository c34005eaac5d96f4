"""Writes of the Kubernetes backend against a real kube-apiserver: pools and resources.

The adapter runs directly (no gateway) over the session's API server; every write is
checked twice: in the Kubernetes objects it changed, and in the InventoryEvents the
adapter's ``watch()`` stream then carries (the gateway's notifications come from there).
Nothing reconciles in this cluster (no controller-manager, scheduler or kubelet), so the
tests play the missing controllers where a write relies on one: pods are created bound to
a node and marked Running, and the finalizer a foreground deletion leaves is removed by
hand, as the garbage collector would.

Clusters without cluster-api use netweave's ResourcePool CRD (the file shipped in
``deploy/crds/``); clusters with it, the MachineSet (and Machine) CRDs of ``tests/kubeapi.py``.
The adapter discovers both when it starts, so CRDs are installed before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.kubeapi import (
    MACHINE_CRD,
    MACHINE_CRD_NAME,
    MACHINESET_CRD,
    RESOURCEPOOL_CRD_NAME,
    KubeAPIServer,
    delete_crd,
    install_crd,
    resourcepool_crd,
)

from netweave.adapters.base import (
    Capability,
    EventType,
    InventoryEvent,
    InventorySnapshot,
)
from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.adapter import KubernetesAdapter
from netweave.adapters.lifecycle import (
    PoolChange,
    PoolLifecycle,
    PoolRequest,
    ResourceLifecycle,
    Taint,
)
from netweave.errors import (
    BackendError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from netweave.models.ids import default_ocloud_id
from netweave.models.inventory import ObjectKind, Resource, ResourcePool

pytestmark = pytest.mark.timeout(300)

OCLOUD = default_ocloud_id("k8s-lifecycle-tests")
CLUSTER = "netweave-lifecycle"
POOL = m.DEFAULT_POOL_LABEL
TENANT = m.DEFAULT_TENANT_LABEL
NS = "netweave-lifecycle"  # pods and PodDisruptionBudgets
CAPI_NS = "netweave-capi"
NODES = "/api/v1/nodes"
CAPI = "/apis/cluster.x-k8s.io/v1beta1"
RESOURCE_POOLS = "/apis/o2ims.oran.org/v1alpha1/resourcepools"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON = dict[str, Any]


def expected_id(kind: str, key: str) -> str:
    """The id scheme, computed without netweave: UUIDv5 of ``kind:key`` under the O-Cloud."""
    return str(uuid.uuid5(uuid.UUID(OCLOUD), f"{kind}:{key}"))


# Cluster set-up and clean-up ----------------------------------------------------------------


def ok(response: httpx.Response) -> JSON:
    assert response.status_code in (200, 201), response.text
    body: JSON = response.json()
    return body


def _strip_finalizers(kube: httpx.Client, list_path: str, item_path: Callable[[JSON], str]) -> None:
    listing = kube.get(list_path)
    if listing.status_code != 200:
        return  # the CRD is not installed
    for item in listing.json()["items"]:
        if item["metadata"].get("finalizers"):
            kube.patch(item_path(item), json={"metadata": {"finalizers": None}}, headers=MERGE)


def clean_lifecycle_objects(kube: httpx.Client) -> None:
    """What these tests create beyond what conftest.py's ``kube_clean`` deletes: pods and
    budgets in NS, ResourcePools, Machines and their CRDs; finalizers a foreground deletion
    left (nobody would ever remove them here) go first, or the CRDs could not go."""
    for name in (NS, CAPI_NS):
        response = kube.post(
            "/api/v1/namespaces",
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        assert response.status_code in (201, 409), response.text  # kept: no namespace controller
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    response = kube.post(f"/api/v1/namespaces/{NS}/serviceaccounts", json=account)
    assert response.status_code in (201, 409), response.text  # no token controller either
    ok(kube.delete(f"/api/v1/namespaces/{NS}/pods", params={"gracePeriodSeconds": 0}))
    ok(kube.delete(f"/apis/policy/v1beta1/namespaces/{NS}/poddisruptionbudgets"))
    _strip_finalizers(
        kube,
        f"{CAPI}/machinesets",
        lambda ms: (
            f"{CAPI}/namespaces/{ms['metadata']['namespace']}/machinesets/{ms['metadata']['name']}"
        ),
    )
    _strip_finalizers(
        kube,
        f"{CAPI}/machines",
        lambda ma: (
            f"{CAPI}/namespaces/{ma['metadata']['namespace']}/machines/{ma['metadata']['name']}"
        ),
    )
    _strip_finalizers(kube, RESOURCE_POOLS, lambda rp: f"{RESOURCE_POOLS}/{rp['metadata']['name']}")
    delete_crd(kube, RESOURCEPOOL_CRD_NAME)
    delete_crd(kube, MACHINE_CRD_NAME)


@pytest.fixture
def kube(kube_admin: httpx.Client) -> Iterator[httpx.Client]:
    """The admin client of a clean API server, with NS ready for pods."""
    clean_lifecycle_objects(kube_admin)
    yield kube_admin
    clean_lifecycle_objects(kube_admin)  # before kube_clean removes the MachineSet CRD


def make_node(
    kube: httpx.Client,
    name: str,
    *,
    instance_type: str = "m5.xlarge",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    unschedulable: bool = False,
) -> JSON:
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": instance_type,
                **(labels or {}),
            },
            "annotations": annotations or {},
        },
        "spec": {"providerID": f"aws:///eu-west-1a/i-{name}", "unschedulable": unschedulable},
    }
    return ok(kube.post(NODES, json=body))


def make_pod(
    kube: httpx.Client,
    name: str,
    node: str,
    *,
    labels: dict[str, str] | None = None,
    daemonset: bool = False,
    mirror: bool = False,
) -> JSON:
    """A pod bound to ``node`` and Running (the phase PodDisruptionBudgets protect)."""
    metadata: JSON = {"name": name, "labels": labels or {}}
    if daemonset:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": "node-agent",
                "uid": str(uuid.uuid4()),
                "controller": True,
            }
        ]
    if mirror:
        metadata["annotations"] = {"kubernetes.io/config.mirror": "static"}
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
        },
    }
    ok(kube.post(f"/api/v1/namespaces/{NS}/pods", json=body))
    running = {"status": {"phase": "Running"}}
    return ok(
        kube.patch(f"/api/v1/namespaces/{NS}/pods/{name}/status", json=running, headers=MERGE)
    )


def pod_names(kube: httpx.Client) -> set[str]:
    return {
        pod["metadata"]["name"] for pod in ok(kube.get(f"/api/v1/namespaces/{NS}/pods"))["items"]
    }


def node(kube: httpx.Client, name: str) -> JSON:
    return ok(kube.get(f"{NODES}/{name}"))


def labels_of(obj: JSON) -> dict[str, str]:
    return dict(obj["metadata"].get("labels") or {})


def taints_of(obj: JSON) -> list[JSON]:
    """The node's taints but those the API server adds to a new node (not-ready...)."""
    taints = obj["spec"].get("taints") or []
    return [t for t in taints if not t["key"].startswith("node.kubernetes.io/")]


# The adapter and its watch stream ----------------------------------------------------------


@dataclass
class Watched:
    """An adapter and every InventoryEvent its ``watch()`` stream carried."""

    adapter: KubernetesAdapter
    snapshot: InventorySnapshot | None = None
    events: list[InventoryEvent] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.events)

    async def event(
        self,
        kind: ObjectKind,
        type_: EventType,
        object_id: str,
        check: Callable[[InventoryEvent], bool] = lambda _: True,
        *,
        since: int = 0,
        within: float = 10.0,
    ) -> InventoryEvent:
        """The first event since ``since`` of that kind, type and object passing ``check``."""
        deadline = time.monotonic() + within
        while True:
            for event in self.events[since:]:
                if (event.kind, event.type, event.object_id) == (kind, type_, object_id) and check(
                    event
                ):
                    return event
            assert time.monotonic() < deadline, (
                f"no {type_.name} event for {kind} {object_id}; got "
                f"{[(e.kind.name, e.type.name, e.object_id) for e in self.events[since:]]}"
            )
            await asyncio.sleep(0.02)

    async def pool(
        self, pool_id: str, check: Callable[[ResourcePool], bool], within: float = 10.0
    ) -> ResourcePool:
        """The pool as the adapter holds it, once ``check`` passes."""
        deadline = time.monotonic() + within
        while True:
            pool = await self.adapter.get_object(ObjectKind.RESOURCE_POOL, pool_id)
            if isinstance(pool, ResourcePool) and check(pool):
                return pool
            assert time.monotonic() < deadline, f"pool {pool_id}: {pool}"
            await asyncio.sleep(0.02)

    async def resource_pool_of(self, node_obj: JSON, pool_id: str, *, since: int = 0) -> None:
        """Wait for the event moving ``node_obj``'s resource into ``pool_id``."""
        await self.event(
            ObjectKind.RESOURCE,
            EventType.MODIFY,
            m.node_resource_id(node_obj, ctx()),
            lambda e: isinstance(e.post, Resource) and e.post.resource_pool_id == pool_id,
            since=since,
        )


def ctx() -> m.MappingContext:
    return m.MappingContext(ocloud_id=OCLOUD, cluster_name=CLUSTER, api_server_url="unused")


@contextlib.asynccontextmanager
async def watched(server: KubeAPIServer, **options: Any) -> AsyncIterator[Watched]:
    adapter = KubernetesAdapter.from_kubeconfig(
        ocloud_id=OCLOUD, kubeconfig=server.kubeconfig, cluster_name=CLUSTER, **options
    )
    state = Watched(adapter)
    ready = asyncio.Event()

    async def follow() -> None:
        async for item in adapter.watch():
            if isinstance(item, InventorySnapshot):
                state.snapshot = item
                ready.set()
            else:
                state.events.append(item)

    task = asyncio.create_task(follow())
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        yield state
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await adapter.aclose()


async def blocking(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a synchronous admin-client call off the event loop the adapter runs on."""
    return await asyncio.to_thread(call, *args, **kwargs)


def pool_by_name(state: Watched, name: str) -> ResourcePool:
    pools = state.adapter._state[ObjectKind.RESOURCE_POOL].values()
    [pool] = [p for p in pools if isinstance(p, ResourcePool) and p.name == name]
    return pool


# a. Pools on a cluster without cluster-api: ResourcePool objects -----------------------------


async def test_a_resource_pool_object_pool_through_its_whole_lifecycle(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    install_crd(kube, resourcepool_crd())
    workers = [make_node(kube, name) for name in ("w-1", "w-2", "w-3")]
    make_node(kube, "big-1", instance_type="m5.4xlarge")
    make_node(kube, "cp-1", labels={"node-role.kubernetes.io/control-plane": ""})
    make_node(kube, "edge-1", labels={POOL: "edge"})

    async with watched(kube_clean) as state:
        adapter = state.adapter
        assert isinstance(adapter, PoolLifecycle) and isinstance(adapter, ResourceLifecycle)
        assert {Capability.POOL_LIFECYCLE, Capability.RESOURCE_LIFECYCLE} <= adapter.capabilities
        default_pool = m.label_pool_id(None, ctx())
        request = PoolRequest(
            name="ran-du",
            description="DU servers",
            location="Madrid DC1",
            global_location_id="ES-MAD",
            instance_type="m5.xlarge",
            replicas=2,
            labels={"tier": "du"},
            taints=(Taint("dedicated", "NoSchedule", "ran"),),
            tenant="acme",
        )
        pool_id = await adapter.create_pool(request)

        stored = ok(await blocking(kube.get, f"{RESOURCE_POOLS}/ran-du"))
        assert pool_id == expected_id("resourcepool", stored["metadata"]["uid"])
        assert stored["metadata"]["labels"] == {TENANT: "acme"}
        assert stored["metadata"]["annotations"][m.MANAGED_BY_ANNOTATION] == "netweave"
        assert stored["spec"] == {
            "description": "DU servers",
            "location": "Madrid DC1",
            "globalLocationId": "ES-MAD",
            "instanceType": "m5.xlarge",
            "replicas": 2,
            "nodeSelector": {"node.kubernetes.io/instance-type": "m5.xlarge"},
            "labels": {"tier": "du"},
            "taints": [{"key": "dedicated", "value": "ran", "effect": "NoSchedule"}],
        }
        # The two first free nodes of that shape, by name; not the control plane, not the
        # other shape, not a node of another pool, not beyond replicas.
        dedicated = [{"key": "dedicated", "value": "ran", "effect": "NoSchedule"}]
        for name in ("w-1", "w-2"):
            got = await blocking(node, kube, name)
            assert labels_of(got)[POOL] == "ran-du" and labels_of(got)["tier"] == "du"
            assert taints_of(got) == dedicated
        for name in ("w-3", "big-1", "cp-1"):
            assert POOL not in labels_of(await blocking(node, kube, name)), name
        assert labels_of(await blocking(node, kube, "edge-1"))[POOL] == "edge"

        created = await state.event(ObjectKind.RESOURCE_POOL, EventType.CREATE, pool_id)
        assert isinstance(created.post, ResourcePool)
        assert (created.post.name, created.post.description) == ("ran-du", "DU servers")
        assert (created.post.location, created.post.global_location_id) == (
            "Madrid DC1",
            "ES-MAD",
        )
        assert created.post.extensions["tenant"] == "acme"
        assert created.post.extensions["source"] == "ResourcePool"
        for worker in workers[:2]:
            await state.resource_pool_of(worker, pool_id)
        pool = await state.pool(pool_id, lambda p: p.extensions["nodeCount"] == 2)
        assert pool.extensions["replicas"] == 2
        assert pool.extensions["labels"] == {"tier": "du"}
        assert pool.extensions["instanceType"] == "m5.xlarge"
        assert pool_by_name(state, "ran-du").resource_pool_id == pool_id  # ONE pool of that name

        # A duplicate name, of this pool or of a label pool: 409.
        with pytest.raises(ConflictError, match="ran-du"):
            await adapter.create_pool(PoolRequest(name="ran-du"))
        with pytest.raises(ConflictError, match="edge"):
            await adapter.create_pool(PoolRequest(name="edge"))

        # Update: description, labels replaced, one more node.
        mark = state.mark()
        change = PoolChange(
            description="DU servers, site A", labels={"tier": "cu", "site": "a"}, replicas=3
        )
        await adapter.update_pool(pool_id, change)
        for name in ("w-1", "w-2", "w-3"):
            got = await blocking(node, kube, name)
            assert {k: v for k, v in labels_of(got).items() if k in (POOL, "tier", "site")} == {
                POOL: "ran-du",
                "tier": "cu",
                "site": "a",
            }, name
            assert taints_of(got) == dedicated
        await state.event(
            ObjectKind.RESOURCE_POOL,
            EventType.MODIFY,
            pool_id,
            lambda e: (
                isinstance(e.post, ResourcePool) and e.post.description == "DU servers, site A"
            ),
            since=mark,
        )
        await state.resource_pool_of(workers[2], pool_id, since=mark)
        pool = await state.pool(pool_id, lambda p: p.extensions["nodeCount"] == 3)
        assert pool.extensions["labels"] == {"site": "a", "tier": "cu"}

        # Fewer replicas release the last nodes by name, and all netweave put on them.
        mark = state.mark()
        await adapter.update_pool(pool_id, PoolChange(replicas=1))
        for name in ("w-2", "w-3"):
            got = await blocking(node, kube, name)
            assert not {POOL, "tier", "site"} & set(labels_of(got)), name
            assert taints_of(got) == [], name
        for worker in workers[1:]:
            await state.resource_pool_of(worker, default_pool, since=mark)
        await state.pool(pool_id, lambda p: p.extensions["nodeCount"] == 1)

        # Delete: refused while a node is in it, then forced.
        with pytest.raises(ConflictError, match="1 node"):
            await adapter.delete_pool(pool_id)
        assert (await blocking(kube.get, f"{RESOURCE_POOLS}/ran-du")).status_code == 200
        mark = state.mark()
        await adapter.delete_pool(pool_id, force=True)
        assert (await blocking(kube.get, f"{RESOURCE_POOLS}/ran-du")).status_code == 404
        w1 = await blocking(node, kube, "w-1")
        assert not {POOL, "tier", "site"} & set(labels_of(w1)) and taints_of(w1) == []
        deleted = await state.event(ObjectKind.RESOURCE_POOL, EventType.DELETE, pool_id, since=mark)
        assert isinstance(deleted.prior, ResourcePool) and deleted.prior.name == "ran-du"
        await state.resource_pool_of(workers[0], default_pool, since=mark)
        with pytest.raises(NotFoundError):
            await adapter.delete_pool(pool_id)


async def test_resource_pool_object_requests_that_cannot_be_honoured(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    install_crd(kube, resourcepool_crd())
    edge = make_node(kube, "edge-1", labels={POOL: "edge"})
    make_node(kube, "plain-1")

    async with watched(kube_clean) as state:
        adapter = state.adapter
        edge_pool = m.label_pool_id("edge", ctx())
        default_pool = m.label_pool_id(None, ctx())

        # Replicas where no node fits: a pool all the same, empty.
        pool_id = await adapter.create_pool(
            PoolRequest(name="metal", instance_type="m7i.metal-24xl", replicas=5)
        )
        pool = await state.pool(pool_id, lambda p: p.extensions["nodeCount"] == 0)
        assert pool.extensions["replicas"] == 5
        assert POOL not in labels_of(await blocking(node, kube, "plain-1"))

        # No machine API behind a ResourcePool pool: adding a resource is a bad request.
        progress: list[str] = []
        with pytest.raises(InvalidRequestError, match="not backed by a MachineSet"):
            await adapter.add_resource(pool_id, progress.append)
        assert progress == []

        # Pools netweave did not create are read-only.
        for target in (edge_pool, default_pool):
            with pytest.raises(ConflictError, match="not managed by netweave"):
                await adapter.delete_pool(target, force=True)
            with pytest.raises(ConflictError, match="not managed by netweave"):
                await adapter.update_pool(target, PoolChange(description="mine now"))
        assert labels_of(await blocking(node, kube, "edge-1"))[POOL] == "edge"

        # Unknown ids, reserved names and labels.
        unknown = str(uuid.uuid4())
        with pytest.raises(NotFoundError):
            await adapter.update_pool(unknown, PoolChange(description="x"))
        with pytest.raises(NotFoundError):
            await adapter.add_resource(unknown, progress.append)
        with pytest.raises(NotFoundError):
            await adapter.remove_resource(unknown, progress.append)
        with pytest.raises(InvalidRequestError, match="default pool"):
            await adapter.create_pool(PoolRequest(name="default"))
        with pytest.raises(InvalidRequestError, match="reserved"):
            await adapter.create_pool(PoolRequest(name="x", labels={TENANT: "other"}))
        with pytest.raises(InvalidRequestError, match="reserved"):
            await adapter.update_pool(pool_id, PoolChange(labels={POOL: "elsewhere"}))

        # A ResourcePool object made outside netweave takes the label pool of its name over:
        # one pool "edge", the object's id and description, its node; but netweave leaves it.
        mark = state.mark()
        by_hand = ok(
            await blocking(
                kube.post,
                RESOURCE_POOLS,
                json={
                    "apiVersion": "o2ims.oran.org/v1alpha1",
                    "kind": "ResourcePool",
                    "metadata": {"name": "edge"},
                    "spec": {"description": "Edge servers"},
                },
            )
        )
        taken_over = expected_id("resourcepool", by_hand["metadata"]["uid"])
        await state.event(ObjectKind.RESOURCE_POOL, EventType.DELETE, edge_pool, since=mark)
        await state.resource_pool_of(edge, taken_over, since=mark)
        pool = await state.pool(taken_over, lambda p: p.extensions["nodeCount"] == 1)
        assert pool.description == "Edge servers"
        assert pool_by_name(state, "edge").resource_pool_id == taken_over
        with pytest.raises(ConflictError, match="not managed by netweave"):
            await adapter.delete_pool(taken_over, force=True)


async def test_without_cluster_api_or_the_crd_pools_cannot_be_created(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    make_node(kube, "plain-1")
    async with watched(kube_clean) as state:
        with pytest.raises(BackendError, match="deploy/crds/"):
            await state.adapter.create_pool(PoolRequest(name="ran"))
        assert (await blocking(kube.get, NODES)).json()["items"][0]["metadata"]["labels"].get(
            POOL
        ) is None


# b. Pools on a cluster with cluster-api: MachineSets ----------------------------------------

TEMPLATE_SPEC: JSON = {
    "clusterName": "ran-edge",
    "version": "v1.29.2",
    "failureDomain": "eu-west-1a",
    "bootstrap": {
        "configRef": {
            "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta1",
            "kind": "KubeadmConfigTemplate",
            "name": "workers",
        }
    },
    "infrastructureRef": {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2",
        "kind": "AWSMachineTemplate",
        "name": "workers-m5",
    },
}


def make_machineset(kube: httpx.Client, name: str, *, replicas: int = 3) -> JSON:
    """A MachineSet as a MachineDeployment makes it (owner reference, hash label)."""
    selector = {"cluster.x-k8s.io/deployment-name": "workers", "machine-template-hash": "42"}
    body = {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineSet",
        "metadata": {
            "name": name,
            "labels": {"cluster.x-k8s.io/cluster-name": "ran-edge", **selector},
            "ownerReferences": [
                {
                    "apiVersion": "cluster.x-k8s.io/v1beta1",
                    "kind": "MachineDeployment",
                    "name": "workers",
                    "uid": str(uuid.uuid4()),
                    "controller": True,
                }
            ],
        },
        "spec": {
            "clusterName": "ran-edge",
            "replicas": replicas,
            "deletePolicy": "Oldest",
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector}, "spec": TEMPLATE_SPEC},
        },
    }
    return ok(kube.post(f"{CAPI}/namespaces/{CAPI_NS}/machinesets", json=body))


def machineset(kube: httpx.Client, name: str) -> httpx.Response:
    return kube.get(f"{CAPI}/namespaces/{CAPI_NS}/machinesets/{name}")


async def test_a_machineset_pool_through_its_whole_lifecycle(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    install_crd(kube, MACHINESET_CRD)

    # Nothing to clone yet, or a template that does not exist: a bad request.
    async with watched(kube_clean) as state:
        with pytest.raises(InvalidRequestError, match="no MachineSet to clone"):
            await state.adapter.create_pool(PoolRequest(name="ran-du"))
    template = make_machineset(kube, "workers-42")
    async with watched(kube_clean, machineset_template=f"{CAPI_NS}/missing") as state:
        with pytest.raises(InvalidRequestError, match="missing"):
            await state.adapter.create_pool(PoolRequest(name="ran-du"))

    async with watched(kube_clean) as state:
        adapter = state.adapter
        template_pool = m.machineset_pool_id(template, ctx())
        request = PoolRequest(
            name="ran-du",
            description="DU servers",
            location="Madrid DC1",
            instance_type="m5.metal",
            replicas=2,
            labels={"tier": "du"},
            taints=(Taint("dedicated", "NoSchedule"),),
            tenant="acme",
        )
        pool_id = await adapter.create_pool(request)
        ms = ok(await blocking(machineset, kube, "ran-du"))
        assert pool_id == expected_id("machineset", ms["metadata"]["uid"])
        meta, spec = ms["metadata"], ms["spec"]
        selector = {m.MACHINESET_POOL_LABEL: "ran-du", "cluster.x-k8s.io/cluster-name": "ran-edge"}
        assert meta["labels"] == {**selector, "tier": "du", TENANT: "acme"}
        assert "ownerReferences" not in meta  # never adopted by the template's deployment
        annotations = meta["annotations"]
        assert annotations[m.MANAGED_BY_ANNOTATION] == "netweave"
        assert annotations[m.DESCRIPTION_ANNOTATION] == "DU servers"
        assert annotations[m.INSTANCE_TYPE_ANNOTATION] == "m5.metal"
        assert spec["clusterName"] == "ran-edge" and spec["deletePolicy"] == "Oldest"
        assert spec["replicas"] == 2
        assert spec["selector"] == {"matchLabels": selector}
        assert spec["template"] == {
            "metadata": {"labels": {**selector, "tier": "du"}},
            "spec": TEMPLATE_SPEC,
        }
        created = await state.event(ObjectKind.RESOURCE_POOL, EventType.CREATE, pool_id)
        assert isinstance(created.post, ResourcePool)
        pool = created.post
        assert (pool.name, pool.description, pool.location) == (
            "ran-du",
            "DU servers",
            "Madrid DC1",
        )
        assert pool.extensions["tenant"] == "acme"
        assert pool.extensions["replicas"] == 2
        assert pool.extensions["instanceType"] == "m5.metal"
        assert pool.extensions["taints"] == [{"key": "dedicated", "effect": "NoSchedule"}]
        assert pool.extensions["managedBy"] == "netweave"

        with pytest.raises(ConflictError, match="ran-du"):
            await adapter.create_pool(PoolRequest(name="ran-du"))

        # Update: description, labels (the ownership and selector labels stay), replicas.
        mark = state.mark()
        await adapter.update_pool(
            pool_id, PoolChange(description="CU servers", labels={"tier": "cu"}, replicas=4)
        )
        ms = ok(await blocking(machineset, kube, "ran-du"))
        assert ms["metadata"]["labels"] == {**selector, "tier": "cu", TENANT: "acme"}
        assert ms["spec"]["template"]["metadata"]["labels"] == {**selector, "tier": "cu"}
        assert ms["spec"]["replicas"] == 4
        await state.event(
            ObjectKind.RESOURCE_POOL,
            EventType.MODIFY,
            pool_id,
            lambda e: (
                isinstance(e.post, ResourcePool)
                and e.post.description == "CU servers"
                and e.post.extensions["replicas"] == 4
            ),
            since=mark,
        )

        # A resource more: the MachineSet scales by one; the node comes when it is built.
        mark, progress = state.mark(), list[str]()
        assert await adapter.add_resource(pool_id, progress.append) is None
        assert progress == [f"scaled MachineSet {CAPI_NS}/ran-du to 5 replicas"]
        assert ok(await blocking(machineset, kube, "ran-du"))["spec"]["replicas"] == 5
        await state.event(
            ObjectKind.RESOURCE_POOL,
            EventType.MODIFY,
            pool_id,
            lambda e: isinstance(e.post, ResourcePool) and e.post.extensions["replicas"] == 5,
            since=mark,
        )

        # The provider's machine registers as a node of the MachineSet.
        mark = state.mark()
        built = await blocking(
            make_node,
            kube,
            "ran-du-1",
            annotations={
                "cluster.x-k8s.io/owner-kind": "MachineSet",
                "cluster.x-k8s.io/owner-name": "ran-du",
                "cluster.x-k8s.io/cluster-namespace": CAPI_NS,
            },
        )
        await state.event(
            ObjectKind.RESOURCE,
            EventType.CREATE,
            m.node_resource_id(built, ctx()),
            lambda e: isinstance(e.post, Resource) and e.post.resource_pool_id == pool_id,
            since=mark,
        )

        # Delete: not the template's (netweave did not create it), not with a node unless forced.
        with pytest.raises(ConflictError, match="not managed by netweave"):
            await adapter.delete_pool(template_pool, force=True)
        with pytest.raises(ConflictError, match="not managed by netweave"):
            await adapter.update_pool(template_pool, PoolChange(replicas=0))
        with pytest.raises(ConflictError, match="1 node"):
            await adapter.delete_pool(pool_id)
        assert ok(await blocking(machineset, kube, template["metadata"]["name"]))
        mark = state.mark()
        await adapter.delete_pool(pool_id, force=True)
        doomed = ok(await blocking(machineset, kube, "ran-du"))
        assert doomed["metadata"]["deletionTimestamp"]
        assert doomed["metadata"]["finalizers"] == ["foregroundDeletion"]  # machines first
        # The garbage collector would remove the finalizer once the machines are gone.
        ok(
            await blocking(
                kube.patch,
                f"{CAPI}/namespaces/{CAPI_NS}/machinesets/ran-du",
                json={"metadata": {"finalizers": None}},
                headers=MERGE,
            )
        )
        await state.event(ObjectKind.RESOURCE_POOL, EventType.DELETE, pool_id, since=mark)
        assert (await blocking(machineset, kube, "ran-du")).status_code == 404
        await state.pool(template_pool, lambda p: p.extensions["replicas"] == 3)


# c. Retiring a resource: cordon, drain, delete -------------------------------------------------


async def test_a_node_with_pods_is_drained_and_deleted(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    doomed = make_node(kube, "w-1", labels={POOL: "edge"})
    make_node(kube, "w-2", labels={POOL: "edge"})
    for name in ("web-1", "web-2"):
        make_pod(kube, name, "w-1", labels={"app": "web"})
    make_pod(kube, "agent-1", "w-1", daemonset=True)
    make_pod(kube, "static-1", "w-1", mirror=True)
    make_pod(kube, "elsewhere-1", "w-2")

    async with watched(kube_clean, drain_timeout=10.0, drain_grace_period=0) as state:
        resource_id = m.node_resource_id(doomed, ctx())
        progress: list[str] = []
        await state.adapter.remove_resource(resource_id, progress.append)

        assert (await blocking(kube.get, f"{NODES}/w-1")).status_code == 404
        # Evicted: the node's own pods; left: DaemonSet and mirror pods, other nodes' pods.
        assert await blocking(pod_names, kube) == {"agent-1", "static-1", "elsewhere-1"}
        assert progress[0] == "cordoned node w-1"
        assert progress[1] == f"evicting 2 pod(s) from node w-1: {NS}/web-1, {NS}/web-2"
        assert progress[-1] == "deleted node w-1"
        deleted = await state.event(ObjectKind.RESOURCE, EventType.DELETE, resource_id)
        assert isinstance(deleted.prior, Resource) and deleted.prior.extensions["name"] == "w-1"
        with pytest.raises(NotFoundError):
            await state.adapter.remove_resource(resource_id, progress.append)


async def test_a_disruption_budget_blocks_the_drain_and_the_node_stays(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    blocked = make_node(kube, "w-1")
    cordoned = make_node(kube, "w-2", unschedulable=True)
    for name, host in (("web-1", "w-1"), ("web-2", "w-1"), ("web-3", "w-2")):
        make_pod(kube, name, host, labels={"app": "web"})
    budget = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}},
    }
    budgets = f"/apis/policy/v1beta1/namespaces/{NS}/poddisruptionbudgets"
    ok(await blocking(kube.post, budgets, json=budget))

    async with watched(kube_clean, drain_timeout=1.0, drain_grace_period=0) as state:
        resource_id = m.node_resource_id(blocked, ctx())
        progress: list[str] = []
        started = time.monotonic()
        with pytest.raises(ConflictError) as refused:
            await state.adapter.remove_resource(resource_id, progress.append)
        assert 0.9 <= time.monotonic() - started < 5.0  # retried until the drain timeout
        detail = refused.value.detail
        assert f"{NS}/web-1" in detail and f"PodDisruptionBudget {NS}/web-pdb" in detail, detail
        assert "drain timeout" in detail

        still = await blocking(node, kube, "w-1")
        assert still["spec"].get("unschedulable") is not True  # uncordoned again
        assert await blocking(pod_names, kube) == {"web-1", "web-2", "web-3"}
        assert progress[0] == "cordoned node w-1"
        assert any("refused" in line and "web-pdb" in line for line in progress), progress
        assert progress[-1] == "uncordoned node w-1"

        def unschedulable(value: bool) -> Callable[[InventoryEvent], bool]:
            return lambda e: (
                isinstance(e.post, Resource) and e.post.extensions["unschedulable"] is value
            )

        cordon = await state.event(
            ObjectKind.RESOURCE, EventType.MODIFY, resource_id, unschedulable(True)
        )
        await state.event(
            ObjectKind.RESOURCE,
            EventType.MODIFY,
            resource_id,
            unschedulable(False),
            since=state.events.index(cordon),
        )

        # A node cordoned before the call stays cordoned when its drain fails.
        with pytest.raises(ConflictError, match="web-3"):
            await state.adapter.remove_resource(
                m.node_resource_id(cordoned, ctx()), progress.append
            )
        assert (await blocking(node, kube, "w-2"))["spec"]["unschedulable"] is True


async def test_a_machine_backed_node_retires_its_machine(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    install_crd(kube, MACHINESET_CRD)
    install_crd(kube, MACHINE_CRD)
    workers = make_machineset(kube, "workers-42", replicas=2)
    machine = {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": {
            "name": "workers-42-abcde",
            "labels": {"cluster.x-k8s.io/set-name": "workers-42"},
            "ownerReferences": [
                {
                    "apiVersion": "cluster.x-k8s.io/v1beta1",
                    "kind": "MachineSet",
                    "name": "workers-42",
                    "uid": workers["metadata"]["uid"],
                    "controller": True,
                }
            ],
            # stands for cluster-api's own finalizer: the deleted Machine stays inspectable
            "finalizers": ["netweave.test/hold"],
        },
        "spec": {"clusterName": "ran-edge", "bootstrap": {}},
    }
    ok(await blocking(kube.post, f"{CAPI}/namespaces/{CAPI_NS}/machines", json=machine))
    backed = make_node(
        kube,
        "workers-42-abcde",
        annotations={
            "cluster.x-k8s.io/machine": "workers-42-abcde",
            "cluster.x-k8s.io/cluster-namespace": CAPI_NS,
            "cluster.x-k8s.io/owner-kind": "MachineSet",
            "cluster.x-k8s.io/owner-name": "workers-42",
        },
    )
    make_pod(kube, "web-1", "workers-42-abcde")

    async with watched(kube_clean, drain_timeout=10.0, drain_grace_period=0) as state:
        pool_id = m.machineset_pool_id(workers, ctx())
        mark, progress = state.mark(), list[str]()
        await state.adapter.remove_resource(m.node_resource_id(backed, ctx()), progress.append)

        machine_path = f"{CAPI}/namespaces/{CAPI_NS}/machines/workers-42-abcde"
        retired = ok(await blocking(kube.get, machine_path))
        assert retired["metadata"]["deletionTimestamp"]
        assert retired["metadata"]["annotations"]["cluster.x-k8s.io/delete-machine"] == "yes"
        assert ok(await blocking(machineset, kube, "workers-42"))["spec"]["replicas"] == 1
        assert await blocking(pod_names, kube) == set()
        # cluster-api deletes the Node once the machine is gone; until then it stays cordoned.
        assert (await blocking(node, kube, "workers-42-abcde"))["spec"]["unschedulable"] is True
        machine_name = f"{CAPI_NS}/workers-42-abcde"
        assert progress[-3:] == [
            f"marked Machine {machine_name} for deletion",
            f"scaled MachineSet {CAPI_NS}/workers-42 to 1 replicas",
            f"deleted Machine {machine_name}",
        ]
        await state.event(
            ObjectKind.RESOURCE_POOL,
            EventType.MODIFY,
            pool_id,
            lambda e: isinstance(e.post, ResourcePool) and e.post.extensions["replicas"] == 1,
            since=mark,
        )


# d. The shipped ClusterRole allows every write ------------------------------------------------

OWNED_LABEL = "netweave.test/owned"  # conftest.py's kube_clean deletes ClusterRoles carrying it
RBAC = "/apis/rbac.authorization.k8s.io/v1"
CLUSTERROLE = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "clusterrole.yaml"


def grant_shipped_role(kube: httpx.Client, server: KubeAPIServer) -> None:
    """Bind deploy/rbac/clusterrole.yaml to user netweave-restricted (who has nothing else)."""
    role = yaml.safe_load(CLUSTERROLE.read_text())
    role["metadata"] = {"name": "netweave-test-lifecycle", "labels": {OWNED_LABEL: "true"}}
    ok(kube.post(f"{RBAC}/clusterroles", json=role))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "netweave-test-lifecycle", "labels": {OWNED_LABEL: "true"}},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "netweave-test-lifecycle",
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "netweave-restricted"}
        ],
    }
    ok(kube.post(f"{RBAC}/clusterrolebindings", json=binding))
    deadline = time.monotonic() + 10
    with server.client(server.restricted_token, timeout=10.0) as restricted:
        while restricted.get(NODES).status_code != 200:  # the authorizer's cache catches up
            assert time.monotonic() < deadline, "the ClusterRoleBinding never took effect"
            time.sleep(0.05)


@contextlib.asynccontextmanager
async def restricted(server: KubeAPIServer, **options: Any) -> AsyncIterator[Watched]:
    """An adapter running as netweave-restricted, the identity the shipped role is bound to."""
    limited = KubeAPIServer(**{**server.__dict__, "kubeconfig": server.restricted_kubeconfig})
    async with watched(limited, **options) as state:
        assert state.adapter.degraded == []
        yield state


async def test_the_shipped_cluster_role_allows_every_write(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    grant_shipped_role(kube, kube_clean)
    install_crd(kube, resourcepool_crd())
    free = make_node(kube, "w-1")
    make_pod(kube, "web-1", "w-1", labels={"app": "web"})
    budget = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}},
    }
    budgets = f"/apis/policy/v1beta1/namespaces/{NS}/poddisruptionbudgets"
    ok(await blocking(kube.post, budgets, json=budget))
    progress: list[str] = []

    async with restricted(kube_clean, drain_timeout=0.3, drain_grace_period=0) as state:
        adapter = state.adapter
        pool_id = await adapter.create_pool(PoolRequest(name="ran", replicas=1, labels={"a": ""}))
        assert labels_of(await blocking(node, kube, "w-1"))[POOL] == "ran"
        await state.pool(pool_id, lambda p: p.extensions["nodeCount"] == 1)
        await adapter.update_pool(pool_id, PoolChange(labels={"b": "1"}, replicas=0))
        assert POOL not in labels_of(await blocking(node, kube, "w-1"))
        await adapter.delete_pool(pool_id, force=True)

        resource_id = m.node_resource_id(free, ctx())
        with pytest.raises(ConflictError, match=f"PodDisruptionBudget {NS}/web-pdb"):
            await adapter.remove_resource(resource_id, progress.append)  # budgets were read
        ok(await blocking(kube.delete, f"{budgets}/web-pdb"))
        await adapter.remove_resource(resource_id, progress.append)
        assert (await blocking(kube.get, f"{NODES}/w-1")).status_code == 404

    install_crd(kube, MACHINESET_CRD)
    install_crd(kube, MACHINE_CRD)
    make_machineset(kube, "workers-42", replicas=1)
    ok(
        await blocking(
            kube.post,
            f"{CAPI}/namespaces/{CAPI_NS}/machines",
            json={
                "apiVersion": "cluster.x-k8s.io/v1beta1",
                "kind": "Machine",
                "metadata": {
                    "name": "ran-du-x",
                    "labels": {"cluster.x-k8s.io/set-name": "ran-du"},
                },
                "spec": {"clusterName": "ran-edge", "bootstrap": {}},
            },
        )
    )
    backed = make_node(
        kube,
        "ran-du-x",
        annotations={
            "cluster.x-k8s.io/machine": "ran-du-x",
            "cluster.x-k8s.io/cluster-namespace": CAPI_NS,
        },
    )
    async with restricted(kube_clean, drain_timeout=5.0, drain_grace_period=0) as state:
        adapter = state.adapter
        pool_id = await adapter.create_pool(PoolRequest(name="ran-du", replicas=1))
        await state.pool(pool_id, lambda p: p.extensions["replicas"] == 1)
        await adapter.update_pool(pool_id, PoolChange(description="DU", replicas=2))
        await adapter.add_resource(pool_id, progress.append)
        assert ok(await blocking(machineset, kube, "ran-du"))["spec"]["replicas"] == 3
        await adapter.remove_resource(m.node_resource_id(backed, ctx()), progress.append)
        assert ok(await blocking(machineset, kube, "ran-du"))["spec"]["replicas"] == 2
        machine_path = f"{CAPI}/namespaces/{CAPI_NS}/machines/ran-du-x"
        assert (await blocking(kube.get, machine_path)).status_code == 404
        await adapter.delete_pool(pool_id, force=True)
        assert ok(await blocking(machineset, kube, "ran-du"))["metadata"]["deletionTimestamp"]
